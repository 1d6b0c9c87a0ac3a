package learn

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"b24learn/internal/learn/learnsim"
)

// TestKeyRefusalSettings: however the token endpoint refuses a wrong key
// (each learnsim.KeyRefusal), the settings' check says bad_api_key, on a
// fixed base and in the search for the API, and a call says the key was
// refused; the right key still works.
func TestKeyRefusalSettings(t *testing.T) {
	t.Parallel()
	for _, k := range []learnsim.KeyRefusal{learnsim.KeyRefused401, learnsim.KeyRefused401OAuth, learnsim.KeyRefused400Client,
		learnsim.KeyRefused400Grant, learnsim.KeyRefused400Unauthorized, learnsim.KeyRefused403} {
		u := learnsim.Unsettled{KeyRefusal: k}
		t.Run(variantName(u), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newTokenEnv(t, u, 0)
			opts := Options{BaseURL: e.srv.URL, AllowHTTP: true, Retry: fastRetry}
			wrong := Credentials{AccountURL: testAccount, Email: testEmail, ClientID: testClientID, ClientSecret: "wrong"}
			checkCode(t, CheckConnection(ctx, wrong, opts), CheckBadAPIKey)
			c, err := New(wrong, opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ListDepartments(ctx)
			keyRefused(t, "a wrong secret", err)
			if _, err := e.keyClient(t, nil).ListDepartments(ctx); err != nil {
				t.Errorf("the right key: %v", err)
			}

			he := newHostEnv(t, learnsim.Options{Mount: learnsim.MountBoth, Unsettled: u}, "", "acme.ispringlearn.ru", "api-learn.ispringlearn.ru")
			if _, err := he.sim.AddAccount(learnsim.AccountOptions{URL: he.url("acme.ispringlearn.ru"), Email: testEmail, Password: testPassword,
				ClientID: testClientID, ClientSecret: testClientSecret}); err != nil {
				t.Fatal(err)
			}
			cr := he.creds("acme.ispringlearn.ru")
			cr.Password, cr.ClientID, cr.ClientSecret = "", testClientID, "wrong"
			_, err = FindAPI(ctx, cr, he.opts())
			checkCode(t, err, CheckBadAPIKey)
		})
	}
}

func variantName(u learnsim.Unsettled) string {
	for _, v := range learnsim.Variants() {
		if v.Unsettled == u {
			return v.Name
		}
	}
	return "default"
}

// TestTokenRefusalBodies: the token endpoint's refusals are read by what
// they say, tolerant of form: a refusal naming the client is the key
// refused, in OAuth's or Learn's shape; a 400 about the request (our own
// bug), or a web server's page, is not taken for a wrong key, and a 400 of
// that kind is logged.
func TestTokenRefusalBodies(t *testing.T) {
	t.Parallel()
	const (
		jsonType = "application/json"
		htmlType = "text/html; charset=utf-8"
	)
	for _, tc := range []struct {
		name, ctype, body string
		status            int
		refused, logged   bool
	}{
		{"OAuth invalid_client", jsonType, `{"error":"invalid_client","error_description":"Client authentication failed"}`, 400, true, false},
		{"OAuth invalid_client with charset", "application/json; charset=UTF-8", `{"error":"invalid_client"}`, 400, true, false},
		{"OAuth upper case", jsonType, `{"error":"INVALID_CLIENT"}`, 400, true, false},
		{"OAuth invalid_grant", jsonType, `{"error":"invalid_grant"}`, 400, true, false},
		{"OAuth unauthorized_client", jsonType, `{"error":"unauthorized_client"}`, 400, true, false},
		{"OAuth 401", jsonType, `{"error":"invalid_client"}`, 401, true, false},
		{"OAuth 403", jsonType, `{"error":"access_denied"}`, 403, true, false},
		{"Learn 400 naming the client", jsonType, `{"code":400,"message":"Invalid client_id or client_secret"}`, 400, true, false},
		{"Learn 400 in XML", "application/xml", `<response><code>400</code><message>invalid_client</message></response>`, 400, true, false},
		{"Learn 403", jsonType, `{"code":403,"message":"Access denied"}`, 403, true, false},
		{"empty 401", jsonType, ``, 401, true, false},
		{"empty 403", jsonType, ``, 403, false, false},
		{"gateway's JSON 403", jsonType, `{"error":"forbidden"}`, 403, false, false},
		{"OAuth invalid_request 403", jsonType, `{"error":"invalid_request"}`, 403, false, false},
		{"OAuth invalid_request", jsonType, `{"error":"invalid_request","error_description":"Missing parameter"}`, 400, false, true},
		{"OAuth unsupported_grant_type", jsonType, `{"error":"unsupported_grant_type"}`, 400, false, true},
		{"Learn 400 malformed", jsonType, `{"code":400,"message":"Malformed form"}`, 400, false, true},
		{"web page 400", htmlType, `<html><body>Bad Request: invalid client</body></html>`, 400, false, true},
		{"web page 403", htmlType, `<html><body>Forbidden</body></html>`, 403, false, false},
		{"error that is not a code", jsonType, `{"error":{"code":400,"message":"client_id"}}`, 400, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			var mu syncBuffer
			log := slog.New(slog.NewTextHandler(&mu, &slog.HandlerOptions{Level: slog.LevelWarn}))
			c, err := New(Credentials{AccountURL: testAccount, Email: testEmail, ClientID: testClientID, ClientSecret: "wrong"},
				Options{BaseURL: srv.URL, AllowHTTP: true, Retry: fastRetry, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ListDepartments(context.Background())
			if got := errors.Is(err, ErrAPIKeyRefused); got != tc.refused {
				t.Errorf("key refused = %v (%v), want %v", got, err, tc.refused)
			}
			if !errors.Is(err, ErrNoToken) {
				t.Errorf("%v, want ErrNoToken", err)
			}
			if tc.refused != strings.Contains(err.Error(), "API key refused") {
				t.Errorf("error text %q", err)
			}
			if got := strings.Contains(mu.String(), "learn token request refused as invalid"); got != tc.logged {
				t.Errorf("logged = %v, want %v: %s", got, tc.logged, mu.String())
			}
		})
	}
}

// syncBuffer is a log's output that a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
