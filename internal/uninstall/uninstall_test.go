package uninstall

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"b24learn/internal/bitrix24"
)

// Only answers that mean "the app is gone" confirm; a token that merely
// expired, a missing method, a deleted user or a failing server do not.
func TestClassify(t *testing.T) {
	t.Parallel()
	refused := func(code string, status int) error {
		// As the client reports a refused refresh: reconnect needed, wrapping the OAuth answer.
		return fmt.Errorf("app.info: %w: %w", bitrix24.ErrNeedsReconnect, &bitrix24.APIError{Code: code, HTTPStatus: status})
	}
	rest := func(code string, status int) error {
		return fmt.Errorf("app.info: %w", &bitrix24.APIError{Code: code, HTTPStatus: status})
	}
	// As the token source reports a refresh the OAuth server failed (not a
	// refusal of the tokens): the OAuth answer, wrapped.
	oauth := func(code string, status int) error {
		return fmt.Errorf("app.info: refresh portal token: %w", &bitrix24.APIError{Code: code, HTTPStatus: status, OAuth: true})
	}
	for name, c := range map[string]struct {
		info bitrix24.AppInfo
		err  error
		want Verdict
	}{
		"installed":                   {bitrix24.AppInfo{Installed: true}, nil, Refuted},
		"INSTALLED false":             {bitrix24.AppInfo{}, nil, TokensRefused},
		"APPLICATION_NOT_FOUND":       {err: rest("APPLICATION_NOT_FOUND", 401), want: TokensRefused},
		"refresh invalid_grant":       {err: refused("invalid_grant", 400), want: TokensRefused},
		"refresh invalid_client":      {err: refused("invalid_client", 401), want: TokensRefused},
		"refresh PAYMENT_REQUIRED":    {err: refused("PAYMENT_REQUIRED", 400), want: TokensRefused},
		"portal 404":                  {err: rest("NOT_FOUND", 404), want: Confirmed},
		"PORTAL_DELETED":              {err: rest("PORTAL_DELETED", 500), want: Confirmed},
		"expired_token after refresh": {err: rest("expired_token", 401), want: Unknown},
		"invalid_token after refresh": {err: rest("invalid_token", 401), want: Unknown},
		"method not found":            {err: rest("ERROR_METHOD_NOT_FOUND", 404), want: Unknown},
		"user deleted":                {err: rest("authorization_error", 401), want: Unknown},
		"no auth":                     {err: rest("NO_AUTH_FOUND", 401), want: Unknown},
		"server error":                {err: rest("INTERNAL_SERVER_ERROR", 500), want: Unknown},
		"rate limited":                {err: rest("QUERY_LIMIT_EXCEEDED", 503), want: Unknown},
		"no tokens stored":            {err: fmt.Errorf("get token: %w", bitrix24.ErrNeedsReconnect), want: Unknown},
		// The OAuth server's answers say nothing of the portal: a 404 page
		// is no deleted portal, a bare 401 or 503 no refusal.
		"OAuth 404 page":                 {err: oauth("HTTP_404", 404), want: Unknown},
		"OAuth 404 with a code":          {err: oauth("NOT_FOUND", 404), want: Unknown},
		"OAuth bare 401":                 {err: oauth("HTTP_401", 401), want: Unknown},
		"OAuth bare 503":                 {err: oauth("HTTP_503", 503), want: Unknown},
		"OAuth QUERY_LIMIT_EXCEEDED":     {err: oauth("QUERY_LIMIT_EXCEEDED", 503), want: Unknown},
		"OAuth invalid_grant, OAuth set": {err: fmt.Errorf("app.info: %w: %w", bitrix24.ErrNeedsReconnect, &bitrix24.APIError{Code: "invalid_grant", HTTPStatus: 400, OAuth: true}), want: TokensRefused},
		"timeout":                        {err: fmt.Errorf("app.info: %w", context.DeadlineExceeded), want: Unknown},
		"network":                        {err: errors.New("dial tcp: connection refused"), want: Unknown},
	} {
		if got, reason := Classify(c.info, c.err); got != c.want || reason == "" {
			t.Errorf("%s: %v (%q), want %v", name, got, reason, c.want)
		}
	}
}

// A reason quoting a long error is stored with the event: it stays valid
// UTF-8 (PostgreSQL refuses a bad byte, and the event would be lost) and
// short, wherever the cut falls.
func TestReasonStaysStorable(t *testing.T) {
	t.Parallel()
	for odd := range 3 {
		err := errors.New(strings.Repeat("x", odd) + strings.Repeat("ошибка сети ", 40))
		_, reason := Classify(bitrix24.AppInfo{}, err)
		if !utf8.ValidString(reason) || len(reason) > 210 {
			t.Errorf("reason %q (%d bytes)", reason, len(reason))
		}
	}
}

// The events a deferred erase reads (KeptSince) are still there when it
// runs: an erase waits at most EraseDelay after the uninstall, which came
// at most RetryWindow after its event.
func TestEventsOutliveTheLongestDeferredErase(t *testing.T) {
	t.Parallel()
	if EventRetention <= EraseDelay+RetryWindow+SettleDelay {
		t.Fatalf("EventRetention %v: an erase up to %v after an event would not see it", EventRetention, EraseDelay+RetryWindow+SettleDelay)
	}
}
