package activation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"b24learn/internal/remote"
)

// CRM adds leads to iSpring's own Bitrix24 through an inbound webhook
// (LEAD_WEBHOOK_URL, e.g. https://company.bitrix24.ru/rest/1/abc123/).
type CRM struct {
	base string // ends with "/"
	hc   *http.Client
}

// NewCRM builds the client; hc nil means a client with a 30 s timeout.
func NewCRM(webhook *url.URL, hc *http.Client) *CRM {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	// A POST must not turn into a GET on a domain-change redirect
	// (docs/bitrix24-api.md, "Renamed portals"): redirects are followed by hand.
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &CRM{base: strings.TrimRight(webhook.String(), "/") + "/", hc: &c}
}

// Field is one value of a CRM multi-field (PHONE, EMAIL).
type Field struct {
	Value     string `json:"VALUE"`
	ValueType string `json:"VALUE_TYPE"`
}

// Lead is what crm.lead.add gets.
type Lead struct {
	Title    string  `json:"TITLE"`
	Name     string  `json:"NAME"`
	Phone    []Field `json:"PHONE,omitempty"`
	Email    []Field `json:"EMAIL,omitempty"`
	Comments string  `json:"COMMENTS,omitempty"`
	SourceID string  `json:"SOURCE_ID,omitempty"`
	Source   string  `json:"SOURCE_DESCRIPTION,omitempty"`
}

// CRMError is an error answer of the webhook.
type CRMError struct {
	Status      int
	Code        string
	Description string
}

func (e *CRMError) Error() string {
	return fmt.Sprintf("crm.lead.add: HTTP %d %s: %s", e.Status, e.Code, e.Description)
}

// AddLead calls crm.lead.add and returns the new lead's id.
func (c *CRM) AddLead(ctx context.Context, l Lead) (string, error) {
	body, err := json.Marshal(map[string]any{"fields": l, "params": map[string]string{"REGISTER_SONET_EVENT": "Y"}})
	if err != nil {
		return "", fmt.Errorf("encode lead: %w", err)
	}
	target := c.base + "crm.lead.add"
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return "", fmt.Errorf("crm.lead.add: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "b24learn/1")
		resp, err := c.hc.Do(req)
		if err != nil {
			// *url.Error names the URL, whose path holds the webhook code:
			// report the host only.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return "", fmt.Errorf("crm.lead.add: request to %s failed: %w", req.URL.Host, err)
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return "", fmt.Errorf("crm.lead.add: read answer: %w", err)
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			loc, err := resp.Location()
			if err != nil || hop >= 3 {
				return "", fmt.Errorf("crm.lead.add: redirect without usable location (HTTP %d)", resp.StatusCode)
			}
			// The body holds the admin's name, e-mail and phone: a hop from
			// https to plain http would send them in clear.
			if req.URL.Scheme == "https" && loc.Scheme != "https" {
				return "", fmt.Errorf("crm.lead.add: redirect from https to %s://%s refused", loc.Scheme, loc.Host)
			}
			target = loc.String()
			continue
		}
		return decodeLeadAnswer(resp.StatusCode, raw)
	}
}

func decodeLeadAnswer(status int, raw []byte) (string, error) {
	var env struct {
		Result      json.RawMessage `json:"result"`
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		if status != http.StatusOK {
			return "", &CRMError{Status: status, Code: "HTTP", Description: remote.Clip(string(raw), 200)}
		}
		return "", fmt.Errorf("crm.lead.add: answer is not JSON: %w", err)
	}
	if env.Error != "" || status != http.StatusOK {
		return "", &CRMError{Status: status, Code: remote.Clip(env.Error, 100), Description: remote.Clip(env.Description, 200)}
	}
	// The id comes as a number or a string.
	id := strings.Trim(string(env.Result), `"`)
	if id == "" || id == "null" || id == "false" {
		return "", errors.New("crm.lead.add: answer without a lead id")
	}
	return id, nil
}
