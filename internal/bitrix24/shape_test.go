package bitrix24

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// Frame POSTs whose fields cannot be real are refused by the parser, so the
// server never spends an OAuth call on them.
func TestParseAppRequestRefusesImplausibleFields(t *testing.T) {
	bad := []struct{ k, v string }{
		{"member_id", "y"},
		{"member_id", strings.Repeat("g", 32)},
		{"member_id", strings.ToUpper("a223c6b3710f85df22e9377d6c4f7553")},
		{"member_id", "a223c6b3710f85df22e9377d6c4f75530"},
		{"REFRESH_ID", ""},
		{"REFRESH_ID", strings.Repeat("a", maxTokenLen+1)},
		{"REFRESH_ID", "abc def"},
		{"AUTH_ID", strings.Repeat("a", maxTokenLen+1)},
		{"AUTH_ID", "a<b"},
		{"DOMAIN", "a..b"},
		{"DOMAIN", ".a.b"},
		{"DOMAIN", "a.b."},
		{"DOMAIN", "a:b:c"},
		{"DOMAIN", "a.b:"},
		{"DOMAIN", "a.b:123456"},
		{"DOMAIN", "a.b:8x"},
		{"DOMAIN", strings.Repeat("a", 64) + ".com"},
	}
	for _, b := range bad {
		q, _ := url.ParseQuery(sampleInstallQuery)
		body, _ := url.ParseQuery(sampleInstallBody)
		if b.k == "DOMAIN" {
			q.Set(b.k, b.v)
		} else {
			body.Set(b.k, b.v)
		}
		if _, err := ParseAppRequestValues(q, body); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s=%q accepted: %v", b.k, b.v, err)
		}
	}
	// What Bitrix24 and the simulator really send still passes.
	for _, domain := range []string{"acme.bitrix24.com", "b24-x1y2z3.bitrix24.de", "127.0.0.1:43121", "localhost"} {
		q, _ := url.ParseQuery(sampleInstallQuery)
		body, _ := url.ParseQuery(sampleInstallBody)
		q.Set("DOMAIN", domain)
		if _, err := ParseAppRequestValues(q, body); err != nil {
			t.Errorf("DOMAIN %q refused: %v", domain, err)
		}
	}
}

func TestEventCheckRefreshAuth(t *testing.T) {
	v, _ := url.ParseQuery(sampleOnAppInstall)
	ev, err := ParseEvent(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.CheckRefreshAuth(); err != nil {
		t.Fatalf("sample ONAPPINSTALL refused: %v", err)
	}
	for k, val := range map[string]string{
		"auth[member_id]":         "not-a-member",
		"auth[refresh_token]":     "",
		"auth[application_token]": "",
		"auth[domain]":            "evil.com/x",
	} {
		v, _ := url.ParseQuery(sampleOnAppInstall)
		v.Set(k, val)
		ev, _ := ParseEvent(v)
		if err := ev.CheckRefreshAuth(); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s=%q accepted: %v", k, val, err)
		}
	}
	v, _ = url.ParseQuery(sampleOnUserAdd)
	ev, _ = ParseEvent(v)
	if err := ev.CheckRefreshAuth(); !errors.Is(err, ErrBadRequest) {
		t.Errorf("event without auth block accepted: %v", err)
	}
}
