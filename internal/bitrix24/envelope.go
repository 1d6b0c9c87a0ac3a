package bitrix24

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"b24learn/internal/remote"
)

// Envelope is a decoded REST answer: {"result":…, "total":N, "next":N, "time":{…}}.
type Envelope struct {
	Result json.RawMessage
	Total  int
	Next   int // 0 when there is no next page
	// HasNext is set when the answer carried "next".
	HasNext bool
	Time    Time
}

// Time is the envelope's "time" block; its keys vary, so all are optional.
type Time struct {
	Start            float64 `b24:"start"`
	Finish           float64 `b24:"finish"`
	Duration         float64 `b24:"duration"`
	Processing       float64 `b24:"processing"`
	Operating        float64 `b24:"operating"`
	OperatingResetAt int64   `b24:"operating_reset_at"`
}

func (t *Time) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		*t = Time{}
		return nil // [] or null: PHP empty array
	}
	return decodeRow(b, t)
}

type rawEnvelope struct {
	Result           json.RawMessage `json:"result"`
	Total            *flexInt        `json:"total"`
	Next             *flexInt        `json:"next"`
	Time             Time            `json:"time"`
	Error            flexString      `json:"error"`
	ErrorDescription flexString      `json:"error_description"`
}

// DecodeEnvelope decodes a REST answer with its HTTP status. An "error" key or a
// non-2xx status gives *APIError; a 2xx answer that is not an envelope gives a
// plain error.
func DecodeEnvelope(status int, body []byte) (*Envelope, error) {
	var r rawEnvelope
	jerr := json.Unmarshal(body, &r)
	if jerr == nil && r.Error != "" {
		return nil, &APIError{Code: string(r.Error), Description: string(r.ErrorDescription), HTTPStatus: status}
	}
	if status < 200 || status > 299 {
		return nil, &APIError{Code: httpCode(status), Description: snippet(body), HTTPStatus: status}
	}
	if jerr != nil {
		return nil, fmt.Errorf("decode envelope: %w", jerr)
	}
	if r.Result == nil {
		return nil, fmt.Errorf("decode envelope: no result")
	}
	e := &Envelope{Result: r.Result, Time: r.Time}
	if r.Total != nil {
		e.Total = int(*r.Total)
	}
	if r.Next != nil {
		e.Next, e.HasNext = int(*r.Next), true
	}
	return e, nil
}

// httpCode names an error answered without a JSON body, so that callers can still
// match the usual cases (a proxy's bare 503 is a rate limit in practice).
func httpCode(status int) string {
	switch status {
	case http.StatusServiceUnavailable:
		return "QUERY_LIMIT_EXCEEDED"
	case http.StatusTooManyRequests:
		return "OPERATION_TIME_LIMIT"
	case http.StatusUnauthorized:
		return "NO_AUTH_FOUND"
	case http.StatusNotFound:
		return "NOT_FOUND"
	}
	return statusCode(status)
}

// statusCode is the code of an answer that has none but its status.
func statusCode(status int) string { return fmt.Sprintf("HTTP_%d", status) }

// snippet is the start of an answer that is not JSON, as an error quotes it.
func snippet(b []byte) string { return remote.Clip(strings.TrimSpace(string(b)), 200) }
