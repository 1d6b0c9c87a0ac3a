package learn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/i18n"
	"b24learn/internal/learn/learnsim"
)

// tokenEnv is a simulator with an API key on its account, a clock the test
// moves, and a record of the Authorization values it was sent.
type tokenEnv struct {
	*simEnv
	mu    sync.Mutex
	now   time.Time
	auths map[string]bool
	calls []Call
}

func newTokenEnv(t *testing.T, u learnsim.Unsettled, life time.Duration) *tokenEnv {
	t.Helper()
	e := &tokenEnv{now: time.Now(), auths: map[string]bool{}}
	e.simEnv = newSimEnv(t, learnsim.Options{Seed: 3, Unsettled: u, TokenLifetime: life, Now: e.clock}, learnsim.AccountOptions{})
	inner := e.srv.Config.Handler
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			e.mu.Lock()
			e.auths[a] = true
			e.mu.Unlock()
		}
		inner.ServeHTTP(w, r)
	})
	return e
}

func (e *tokenEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *tokenEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// keyClient is a client with the account's API key, recording its calls.
func (e *tokenEnv) keyClient(t *testing.T, log *slog.Logger) *Client {
	t.Helper()
	c, err := New(Credentials{AccountURL: testAccount, Email: testEmail, ClientID: testClientID, ClientSecret: testClientSecret},
		Options{BaseURL: e.srv.URL, AllowHTTP: true, Retry: fastRetry, Logger: log, OnCall: func(c Call) {
			e.mu.Lock()
			e.calls = append(e.calls, c)
			e.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// counts are the token fetches and the 401 answers the client met.
func (e *tokenEnv) counts() (fetches, refused int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.calls {
		switch {
		case c.Route == tokenRoute:
			fetches++
		case c.Status == http.StatusUnauthorized:
			refused++
		}
	}
	return fetches, refused
}

// TestTokenAuthAgainstSwitches: with an API key the client works whether
// Learn still takes header auth or not, and whichever form of the token it
// takes; it fetches one token, and meets at most one 401 (a bare-only
// Learn's first answer), after which it keeps the form that worked.
func TestTokenAuthAgainstSwitches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		u       learnsim.Unsettled
		refused int
	}{
		{"default", learnsim.Unsettled{}, 0},
		{"header auth retired", learnsim.Unsettled{HeaderAuthRetired: true}, 0},
		{"Bearer only", learnsim.Unsettled{TokenForm: learnsim.TokenFormBearer}, 0},
		{"bare only", learnsim.Unsettled{TokenForm: learnsim.TokenFormBare}, 1},
		{"header auth retired, bare only", learnsim.Unsettled{HeaderAuthRetired: true, TokenForm: learnsim.TokenFormBare}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newTokenEnv(t, tc.u, 0)
			c := e.keyClient(t, nil)
			for i := range 3 {
				if _, err := c.ListDepartments(ctx); err != nil {
					t.Fatalf("list %d: %v", i, err)
				}
			}
			if _, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: e.root, Code: "s"}); err != nil {
				t.Fatal(err)
			}
			if f, r := e.counts(); f != 1 || r != tc.refused {
				t.Errorf("%d token fetches and %d refusals, want 1 and %d", f, r, tc.refused)
			}
			for a := range e.auths {
				if bare := !strings.HasPrefix(a, "Bearer "); tc.u.TokenForm == learnsim.TokenFormBearer && bare {
					t.Errorf("sent a bare token to a Learn that takes only Bearer")
				}
			}
			if _, err := FindAPI(ctx, Credentials{AccountURL: testAccount, Email: testEmail, ClientID: testClientID, ClientSecret: testClientSecret},
				Options{BaseURL: e.srv.URL, AllowHTTP: true}); err != nil {
				t.Errorf("the check with the API key: %v", err)
			}
		})
	}
}

// TestTokenExpiresMidRun: a token Learn stops taking before the client
// expects (its clock ahead, or revoked) is fetched again once, and the call
// goes through; a short-lived one is fetched again before it runs out,
// without a refusal.
func TestTokenExpiresMidRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		e := newTokenEnv(t, learnsim.Unsettled{HeaderAuthRetired: true}, 0)
		c := e.keyClient(t, nil)
		if _, err := c.ListDepartments(ctx); err != nil {
			t.Fatal(err)
		}
		e.advance(learnsim.DefaultTokenLifetime)
		if _, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: e.root, Code: "s"}); err != nil {
			t.Fatalf("a create after the token expired: %v", err)
		}
		if _, err := c.ListDepartments(ctx); err != nil {
			t.Fatal(err)
		}
		if f, r := e.counts(); f != 2 || r != 1 {
			t.Errorf("%d token fetches and %d refusals, want 2 and 1", f, r)
		}
		if n := len(e.state(t).Departments); n != 2 {
			t.Errorf("%d departments, want the root and one made once", n)
		}
	})
	t.Run("short-lived", func(t *testing.T) {
		t.Parallel()
		e := newTokenEnv(t, learnsim.Unsettled{HeaderAuthRetired: true}, 2*time.Second)
		c := e.keyClient(t, nil)
		for range 4 {
			if _, err := c.ListDepartments(ctx); err != nil {
				t.Fatal(err)
			}
			e.advance(time.Second)
			time.Sleep(time.Second)
		}
		if f, r := e.counts(); f < 2 || r != 0 {
			t.Errorf("%d token fetches and %d refusals, want 2 or more and none", f, r)
		}
	})
}

// TestTokenFetchedOnce: parallel calls of a client share one token fetch,
// and one more when Learn stops taking it.
func TestTokenFetchedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newTokenEnv(t, learnsim.Unsettled{HeaderAuthRetired: true}, 0)
	e.sim.SetFaults(learnsim.Faults{}) // the fetch is the only slow step
	c := e.keyClient(t, nil)
	burst := func() {
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for range 32 {
			wg.Go(func() {
				if _, err := c.ListDepartments(ctx); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	burst()
	if f, _ := e.counts(); f != 1 {
		t.Errorf("%d token fetches for 32 parallel calls, want 1", f)
	}
	e.advance(learnsim.DefaultTokenLifetime)
	burst()
	if f, _ := e.counts(); f != 2 {
		t.Errorf("%d token fetches after the token expired, want 2", f)
	}
}

// TestHeaderAuthRetiredCheck: with header auth retired, e-mail and password
// alone fail the check as refused credentials, whose message tells the
// admin to make an API key; a wrong API key is named as such.
func TestHeaderAuthRetiredCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newTokenEnv(t, learnsim.Unsettled{HeaderAuthRetired: true}, 0)
	opts := Options{BaseURL: e.srv.URL, AllowHTTP: true}
	err := CheckConnection(ctx, Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword}, opts)
	checkCode(t, err, CheckBadCredentials)
	for _, l := range []i18n.Lang{i18n.EN, i18n.RU} {
		if msg := i18n.T(l, "check."+CheckBadCredentials); !strings.Contains(msg, "API") || !strings.Contains(msg, "Client ID") {
			t.Errorf("%s: the message %q does not tell the admin to make an API key", l, msg)
		}
	}
	err = CheckConnection(ctx, Credentials{AccountURL: testAccount, Email: testEmail, ClientID: testClientID, ClientSecret: "wrong"}, opts)
	checkCode(t, err, CheckBadAPIKey)
	err = CheckConnection(ctx, Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword, ClientID: testClientID}, opts)
	checkCode(t, err, CheckBadAPIKey)
	if err := CheckConnection(ctx, Credentials{AccountURL: testAccount, Email: testEmail, ClientID: testClientID, ClientSecret: testClientSecret}, opts); err != nil {
		t.Errorf("the API key without a password: %v", err)
	}
}

// TestTokenAuthKeepsSecrets: neither the client secret nor a token is in
// the client's debug log or in its errors.
func TestTokenAuthKeepsSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newTokenEnv(t, learnsim.Unsettled{HeaderAuthRetired: true, TokenForm: learnsim.TokenFormBare}, 0)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := e.keyClient(t, log)
	if _, err := c.ListDepartments(ctx); err != nil {
		t.Fatal(err)
	}
	e.advance(learnsim.DefaultTokenLifetime)
	if _, err := c.ListDepartments(ctx); err != nil {
		t.Fatal(err)
	}
	var errs []error
	bad, err := New(Credentials{AccountURL: testAccount, Email: testEmail, ClientID: testClientID, ClientSecret: testClientSecret + "x"},
		Options{BaseURL: e.srv.URL, AllowHTTP: true, Retry: fastRetry, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.ListDepartments(ctx)
	if !errors.Is(err, ErrAPIKeyRefused) {
		t.Errorf("a wrong secret: %v, want ErrAPIKeyRefused", err)
	}
	errs = append(errs, err, CheckConnection(ctx, Credentials{AccountURL: testAccount, Email: testEmail, ClientID: testClientID,
		ClientSecret: testClientSecret + "x"}, Options{BaseURL: e.srv.URL, AllowHTTP: true, Logger: log}))
	if len(e.auths) < 2 {
		t.Fatalf("the server saw %d tokens, want 2", len(e.auths))
	}
	secrets := []string{testClientSecret}
	for a := range e.auths {
		secrets = append(secrets, strings.TrimPrefix(a, "Bearer "))
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log holds a secret or token: %s", logs.String())
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Errorf("an error holds a secret or token: %v", err)
			}
		}
	}
}

func (e *simEnv) state(t *testing.T) learnsim.State {
	t.Helper()
	st, err := e.sim.Snapshot(testAccount)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The token request's body is the secret: a 307 or 308 from the API host
// must not carry it to another host, as a redirect never carries the
// header auth's password.
func TestTokenRequestFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	var got atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		http.Error(w, "{}", http.StatusInternalServerError)
	}))
	defer other.Close()
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/api/v3/token", code)
		}))
		c, err := New(Credentials{AccountURL: api.URL, Email: testEmail, ClientID: testClientID, ClientSecret: "TOP/SECRET+1"},
			Options{HTTPClient: NewHTTPClient(DialerOptions{AllowPrivate: true}), AllowHTTP: true, BaseURL: api.URL + "/api/v2",
				Retry: RetryPolicy{MaxAttempts: 1}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListDepartments(context.Background())
		api.Close()
		if err == nil {
			t.Errorf("%d: a redirected token request succeeded", code)
		}
		if body, _ := got.Load().(string); body != "" {
			t.Errorf("%d: the other host got %q", code, body)
		}
	}
}

// Learn's error words may echo the form it was sent, where the secret is
// encoded: no form of it reaches the error.
func TestTokenErrorHidesEncodedSecret(t *testing.T) {
	t.Parallel()
	const secret = "TOP/SECRET+1 x"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"code": 400, "message": "bad request: " + string(b) + " / " + url.PathEscape(secret)})
	}))
	defer api.Close()
	c, err := New(Credentials{AccountURL: api.URL, Email: testEmail, ClientID: testClientID, ClientSecret: secret},
		Options{HTTPClient: NewHTTPClient(DialerOptions{AllowPrivate: true}), AllowHTTP: true, BaseURL: api.URL + "/api/v2",
			Retry: RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListDepartments(context.Background())
	if err == nil {
		t.Fatal("a refused token request succeeded")
	}
	var ae *APIError
	if !errors.As(err, &ae) || !strings.Contains(ae.Message, "bad request") {
		t.Fatalf("err = %v, want an *APIError with Learn's words", err)
	}
	for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
		if strings.Contains(err.Error(), form) || strings.Contains(ae.Message, form) {
			t.Errorf("the error holds the secret as %q: %v (%q)", form, err, ae.Message)
		}
	}
}
