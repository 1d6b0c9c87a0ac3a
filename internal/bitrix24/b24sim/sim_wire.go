package b24sim

// How requests are read (form, JSON, query; command order kept) and
// answers written (the REST envelope and errors).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// readParams merges the query string and a JSON or form body into one tree
// (body keys win), keeping the order of batch commands under cmdOrderKey.
func readParams(r *http.Request) (map[string]any, error) {
	params, _, err := phpForm(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("bad query string: %w", err)
	}
	if r.Body == nil {
		return params, nil
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return params, nil
	}
	if strings.Contains(r.Header.Get("Content-Type"), "json") {
		var body map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return nil, fmt.Errorf("bad JSON body: %w", err)
		}
		for k, v := range body {
			params[k] = v
		}
		if order := jsonKeyOrder(raw, "cmd"); order != nil {
			params[cmdOrderKey] = order
		}
		return params, nil
	}
	form, order, err := phpForm(string(raw))
	if err != nil {
		return nil, fmt.Errorf("bad form body: %w", err)
	}
	for k, val := range form {
		params[k] = val
	}
	params[cmdOrderKey] = order["cmd"]
	return params, nil
}

const cmdOrderKey = "\x00cmdorder"

// jsonKeyOrder returns the key order of the object at top-level key name.
func jsonKeyOrder(raw []byte, name string) []string {
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return nil
	}
	obj, ok := top[name]
	if !ok {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}

func authOf(r *http.Request, params map[string]any) string {
	if a, ok := params["auth"].(string); ok && a != "" {
		return a
	}
	if a, ok := params["access_token"].(string); ok && a != "" {
		return a
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return strings.TrimPrefix(h, "Bearer ")
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func errBody(code, desc string) map[string]any {
	return map[string]any{"error": code, "error_description": desc}
}

// isoOffset is how Bitrix24 writes times: ISO 8601 with a numeric offset (+00:00, not Z).
const isoOffset = "2006-01-02T15:04:05-07:00"

// timeBlock is an answer's time block; its dates have the offset of loc,
// the portal's time zone (nil: UTC).
func timeBlock(loc *time.Location) map[string]any {
	if loc == nil {
		loc = time.UTC
	}
	now := time.Now().In(loc)
	f := float64(now.UnixNano()) / 1e9
	return map[string]any{"start": f, "finish": f + 0.001, "duration": 0.001, "processing": 0.0005,
		"date_start": now.Format(isoOffset), "date_finish": now.Format(isoOffset),
		"operating_reset_at": now.Unix() + 600, "operating": 0}
}

func envelope(result any, total, next *int) map[string]any {
	e := map[string]any{"result": result, "time": timeBlock(nil)}
	if total != nil {
		e["total"] = *total
	}
	if next != nil {
		e["next"] = *next
	}
	return e
}
