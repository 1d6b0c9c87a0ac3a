package learn

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"b24learn/internal/learn/learnsim"
)

// TestAPIKeyRefusalIsNamedForTheKey: a wrong secret, and a key deleted in
// Learn while the client works, are refused as the API key, never as an
// e-mail and password: the error says so (its text is what a run stores),
// the check's code is bad_api_key, and a password client's refusal keeps
// the password's words.
func TestAPIKeyRefusalIsNamedForTheKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newTokenEnv(t, learnsim.Unsettled{}, 0)
	wrong, err := New(Credentials{AccountURL: testAccount, Email: testEmail, ClientID: testClientID, ClientSecret: "wrong"},
		Options{BaseURL: e.srv.URL, AllowHTTP: true, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.ListDepartments(ctx)
	keyRefused(t, "a wrong secret", err)
	if _, err := wrong.FindAPI(ctx); err != nil {
		t.Fatal(err) // a fixed base: no probe
	}
	he := newHostEnv(t, learnsim.Options{Mount: learnsim.MountBoth}, "", "acme.ispringlearn.ru", "api-learn.ispringlearn.ru")
	if _, err := he.sim.AddAccount(learnsim.AccountOptions{URL: he.url("acme.ispringlearn.ru"), Email: testEmail, Password: testPassword,
		ClientID: testClientID, ClientSecret: testClientSecret}); err != nil {
		t.Fatal(err)
	}
	cr := he.creds("acme.ispringlearn.ru")
	cr.Password, cr.ClientID, cr.ClientSecret = "", testClientID, "wrong"
	free, err := New(cr, he.opts())
	if err != nil {
		t.Fatal(err)
	}
	_, err = free.FindAPI(ctx) // a run's search for the API, as syncer.findLearnAPI makes it
	checkCode(t, err, CheckBadAPIKey)
	keyRefused(t, "the search for the API", err)

	c := e.keyClient(t, nil)
	if _, err := c.ListDepartments(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetAPIKey(testAccount, "", ""); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: e.root, Code: "s"})
	keyRefused(t, "a key deleted meanwhile", err)
	if f, _ := e.counts(); f != 2 {
		t.Errorf("%d token fetches, want 2: the first, and one after the 401", f)
	}

	pw, err := New(Credentials{AccountURL: testAccount, Email: testEmail, Password: "wrong"}, Options{BaseURL: e.srv.URL, AllowHTTP: true, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pw.ListDepartments(ctx)
	if !errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrAPIKeyRefused) || !strings.Contains(err.Error(), "wrong email or password") {
		t.Errorf("a wrong password: %v, want the password's words", err)
	}
}

func keyRefused(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrAPIKeyRefused) || !errors.Is(err, ErrNoToken) || errors.Is(err, ErrBadCredentials) ||
		!strings.Contains(err.Error(), "API key refused") || strings.Contains(err.Error(), "password") {
		t.Errorf("%s: %v, want the API key refused", what, err)
	}
}

// TestTokenEndpointFailingIsAskedBoundedly: a token endpoint that keeps
// failing gets one fetch with its retries for a burst of parallel calls,
// not one per call; the calls fail with ErrNoToken and are not repeated.
func TestTokenEndpointFailingIsAskedBoundedly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newTokenEnv(t, learnsim.Unsettled{HeaderAuthRetired: true}, 0)
	var mu sync.Mutex
	failing := false
	inner := e.srv.Config.Handler
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f := failing
		mu.Unlock()
		if f && r.URL.Path == tokenRoute {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"code":503,"message":"Service Unavailable"}`))
			return
		}
		inner.ServeHTTP(w, r)
	})
	c := e.keyClient(t, nil)
	if _, err := c.ListDepartments(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	failing = true
	mu.Unlock()
	e.advance(learnsim.DefaultTokenLifetime)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := c.ListDepartments(ctx)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrNoToken) || errors.Is(err, ErrAPIKeyRefused) || !strings.Contains(err.Error(), "no access token") {
			t.Fatalf("a call without a token: %v, want ErrNoToken", err)
		}
	}
	fetches, refused := e.counts()
	if want := 1 + fastRetry.MaxAttempts; fetches != want {
		t.Errorf("%d token fetches for 16 parallel calls, want %d: the first, then one fetch and its retries", fetches, want)
	}
	if refused != 16 {
		t.Errorf("%d calls refused, want each of the 16 once (the expired token), none sent again", refused)
	}
}
