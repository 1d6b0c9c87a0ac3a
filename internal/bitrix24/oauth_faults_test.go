package bitrix24_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
)

// A refresh the OAuth server answers without an error code (an HTML error
// page, an empty body, a proxy's text) is an *APIError whose code is only
// the status, HTTP_<status>, with OAuth set: not the portal REST's readings
// of a bare status, so a bare 401 is no refused token (no reconnect), a
// bare 503 no rate limit and a bare 404 no missing method or portal. The
// refresh token is not used up, and the next refresh works. A coded
// answer carries OAuth too.
func TestOAuthRefreshNonJSONAnswers(t *testing.T) {
	t.Parallel()
	f := setup(t, b24sim.GenerateOrg(1, 5, 1), bitrix24.Config{})
	ctx := context.Background()
	tok, _ := f.tokens.Token(ctx)
	oauth := &bitrix24.OAuth{URL: f.srv.URL, ClientID: f.srv.ClientID(), ClientSecret: f.srv.ClientSecret()}
	html := "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
	for _, c := range []struct {
		status int
		body   string
	}{{503, html}, {503, ""}, {502, html}, {500, ""}, {404, html}, {401, ""}, {401, "Unauthorized"}, {403, html}, {400, ""}, {200, html}, {200, ""}} {
		name := fmt.Sprintf("%d %.12q", c.status, c.body)
		f.srv.InjectOAuthFault(c.status, c.body)
		_, err := oauth.Refresh(ctx, tok.RefreshToken)
		var ae *bitrix24.APIError
		if !errors.As(err, &ae) {
			t.Errorf("%s: %v, want an *APIError", name, err)
			continue
		}
		if want := fmt.Sprintf("HTTP_%d", c.status); ae.Code != want || ae.HTTPStatus != c.status || !ae.OAuth {
			t.Errorf("%s: code %q status %d OAuth %v, want %s, OAuth", name, ae.Code, ae.HTTPStatus, ae.OAuth, want)
		}
		for _, not := range []error{bitrix24.ErrQueryLimitExceeded, bitrix24.ErrNoAuthFound, bitrix24.ErrMethodNotFound, bitrix24.ErrOperationTimeLimit} {
			if errors.Is(err, not) {
				t.Errorf("%s: %v reads as %v", name, err, not)
			}
		}
		if bitrix24.IsPermanentAuthError(err) {
			t.Errorf("%s: %v reads as a permanent refusal", name, err)
		}
		if !bitrix24.OAuthUnavailable(err) {
			t.Errorf("%s: %v reads as a refusal", name, err)
		}
	}
	next, err := oauth.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatalf("the refresh token after the faults: %v", err)
	}
	_, err = oauth.Refresh(ctx, tok.RefreshToken) // used up now
	var ae *bitrix24.APIError
	if !errors.Is(err, bitrix24.ErrInvalidGrant) || !errors.As(err, &ae) || !ae.OAuth || bitrix24.OAuthUnavailable(err) {
		t.Errorf("reused refresh token: %v, want invalid_grant with OAuth set, a refusal", err)
	}
	// A coded answer keeps its code, whatever the status.
	f.srv.InjectOAuthFault(503, `{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}`)
	if _, err := oauth.Refresh(ctx, next.RefreshToken); !errors.Is(err, bitrix24.ErrQueryLimitExceeded) || !errors.As(err, &ae) || !ae.OAuth || !bitrix24.OAuthUnavailable(err) {
		t.Errorf("coded 503: %v, want QUERY_LIMIT_EXCEEDED with OAuth set, no refusal", err)
	}
}

// A reset connection and an answer past the call's bound are errors
// without an answer (no *APIError), ErrTimeout for the latter, and leave
// the refresh token unused.
func TestOAuthRefreshResetAndSlowAnswer(t *testing.T) {
	t.Parallel()
	f := setup(t, b24sim.GenerateOrg(2, 5, 1), bitrix24.Config{})
	ctx := context.Background()
	tok, _ := f.tokens.Token(ctx)
	// Each call on a connection of its own: Go's transport sends a GET
	// again after a reset on a reused one.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	oauth := &bitrix24.OAuth{URL: f.srv.URL, ClientID: f.srv.ClientID(), ClientSecret: f.srv.ClientSecret(),
		HTTP: hc, Timeout: 200 * time.Millisecond}
	f.srv.InjectOAuth(b24sim.OAuthFault{Reset: true})
	var ae *bitrix24.APIError
	if _, err := oauth.Refresh(ctx, tok.RefreshToken); err == nil || errors.As(err, &ae) {
		t.Errorf("reset: %v, want an error without an answer", err)
	}
	f.srv.InjectOAuth(b24sim.OAuthFault{Delay: 10 * time.Second})
	start := time.Now()
	if _, err := oauth.Refresh(ctx, tok.RefreshToken); !errors.Is(err, bitrix24.ErrTimeout) || time.Since(start) > 5*time.Second {
		t.Errorf("slow answer: %v after %s, want ErrTimeout at the bound", err, time.Since(start))
	}
	if _, err := oauth.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Errorf("the refresh token after the faults: %v", err)
	}
}
