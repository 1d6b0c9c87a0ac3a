package learn

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"

	"b24learn/internal/learn/learnsim"
)

// hostEnv is learnsim on a loopback listener that stands for several host
// names: the client's lookup maps the names in hosts to 127.0.0.1 and fails
// for any other, and every request is logged by Host and path.
type hostEnv struct {
	sim  *learnsim.Sim
	port string
	hc   *http.Client
	mu   sync.Mutex
	seen []string // "host path" of every request
}

func newHostEnv(t *testing.T, o learnsim.Options, account string, hosts ...string) *hostEnv {
	t.Helper()
	e := &hostEnv{sim: learnsim.New(o)}
	h := e.sim.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.Host)
		e.mu.Lock()
		e.seen = append(e.seen, host+" "+r.URL.Path)
		e.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	e.port = u.Port()
	if account != "" {
		if _, err := e.sim.AddAccount(learnsim.AccountOptions{URL: e.url(account), Email: testEmail, Password: testPassword}); err != nil {
			t.Fatal(err)
		}
	}
	known := map[string]bool{}
	for _, h := range hosts {
		known[h] = true
	}
	e.hc = NewHTTPClient(DialerOptions{AllowPrivate: true, LookupIP: func(_ context.Context, host string) ([]netip.Addr, error) {
		if known[host] {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}})
	return e
}

// url is http://host:port of the listener.
func (e *hostEnv) url(host string) string { return "http://" + host + ":" + e.port }

func (e *hostEnv) creds(host string) Credentials {
	return Credentials{AccountURL: e.url(host), Email: testEmail, Password: testPassword}
}

func (e *hostEnv) opts() Options { return Options{HTTPClient: e.hc, AllowHTTP: true, Retry: fastRetry} }

// requests returns the requests seen since the last call.
func (e *hostEnv) requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.seen
	e.seen = nil
	return out
}

// TestFindAPICustomDomain: an account on its own domain whose host serves the
// API only under /api/v2 is found there, whatever the host answers on other
// paths, and the client then works at that base.
func TestFindAPICustomDomain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, page := range learnsim.WebPages() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newHostEnv(t, learnsim.Options{Mount: learnsim.MountAccountHost, WebPage: page}, "lms.acme.test", "lms.acme.test")
			base, err := FindAPI(ctx, e.creds("lms.acme.test"), e.opts())
			if err != nil || base != e.url("lms.acme.test")+"/api/v2" {
				t.Fatalf("FindAPI = %q, %v; want the account host's /api/v2", base, err)
			}
			// One probe, then the sign-in user's role read at the same base (checkRole).
			if got := e.requests(); len(got) != 2 || got[0] != "lms.acme.test /api/v2/departments" || got[1] != "lms.acme.test /api/v2/users/v2" {
				t.Errorf("probes %q, want one at /api/v2 and the user read there", got)
			}
			c, err := New(e.creds("lms.acme.test"), Options{HTTPClient: e.hc, AllowHTTP: true, BaseURL: base})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.ListDepartments(ctx); err != nil {
				t.Fatalf("list at the found base: %v", err)
			}
		})
	}
}

// TestFindAPIHosted: an account on iSpring's domain is found on the API host
// api-learn.<domain> when only that host serves the API, and on the account's
// own /api/v2 when the API host does not resolve (api-learn.ispring.ru is not
// known to exist).
func TestFindAPIHosted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newHostEnv(t, learnsim.Options{Mount: learnsim.MountAPIHost}, "acme.ispringlearn.ru", "acme.ispringlearn.ru", "api-learn.ispringlearn.ru")
	base, err := FindAPI(ctx, e.creds("acme.ispringlearn.ru"), e.opts())
	if err != nil || base != e.url("api-learn.ispringlearn.ru") {
		t.Fatalf("FindAPI = %q, %v; want the API host", base, err)
	}
	// One probe, then the sign-in user's role read at the same base (checkRole).
	if got := e.requests(); len(got) != 2 || got[0] != "api-learn.ispringlearn.ru /departments" || got[1] != "api-learn.ispringlearn.ru /users/v2" {
		t.Errorf("probes %q, want one on the API host and the user read there", got)
	}

	// The client finds it too, and keeps it: later calls go there and probe nothing.
	c, err := New(e.creds("acme.ispringlearn.ru"), e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.FindAPI(ctx); err != nil || got != base || c.BaseURL() != base {
		t.Fatalf("Client.FindAPI = %q, %v (base %q)", got, err, c.BaseURL())
	}
	e.requests()
	if got, err := c.FindAPI(ctx); err != nil || got != base {
		t.Fatalf("second FindAPI = %q, %v", got, err)
	}
	if _, err := c.ListDepartments(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.requests(); len(got) != 1 || got[0] != "api-learn.ispringlearn.ru /departments" {
		t.Errorf("after FindAPI: requests %q, want only the listing on the API host", got)
	}

	e2 := newHostEnv(t, learnsim.Options{Mount: learnsim.MountAccountHost, WebPage: learnsim.WebPageLogin}, "acme.ispring.ru", "acme.ispring.ru")
	base, err = FindAPI(ctx, e2.creds("acme.ispring.ru"), e2.opts())
	if err != nil || base != e2.url("acme.ispring.ru")+"/api/v2" {
		t.Fatalf("FindAPI without an API host = %q, %v; want the account's /api/v2", base, err)
	}
}

// TestFindAPIRefusesWebPages: what an account's web site answers on a bare
// path is never taken for the API, whatever its status.
func TestFindAPIRefusesWebPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, page := range learnsim.WebPages() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The API is only on the API host, which does not resolve for a custom domain.
			e := newHostEnv(t, learnsim.Options{Mount: learnsim.MountAPIHost, WebPage: page}, "lms.acme.test", "lms.acme.test")
			_, err := FindAPI(ctx, e.creds("lms.acme.test"), e.opts())
			checkCode(t, err, CheckNotLearn)
			// A base pointing at the bare account host (what the client used to call) is refused too.
			e2 := newHostEnv(t, learnsim.Options{Mount: learnsim.MountAccountHost, WebPage: page}, "lms.acme.test", "lms.acme.test")
			o := e2.opts()
			o.BaseURL = e2.url("lms.acme.test")
			_, err = FindAPI(ctx, e2.creds("lms.acme.test"), o)
			checkCode(t, err, CheckNotLearn)
		})
	}
}

// TestFindAPILearnErrors: a Learn-shaped refusal ends the search (wrong
// password: no other host gets the credentials); an HTML 401 does not.
func TestFindAPILearnErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newHostEnv(t, learnsim.Options{Mount: learnsim.MountBoth}, "acme.ispringlearn.ru", "acme.ispringlearn.ru", "api-learn.ispringlearn.ru")
	cr := e.creds("acme.ispringlearn.ru")
	cr.Password = "wrong"
	_, err := FindAPI(ctx, cr, e.opts())
	checkCode(t, err, CheckBadCredentials)
	if got := e.requests(); len(got) != 1 {
		t.Errorf("probes %q, want only the API host", got)
	}

	// /api/v2 is behind a web server's HTML login (401); /index.php/api/v2 is Learn.
	sim := learnsim.New(learnsim.Options{Mount: learnsim.MountAccountHost})
	h := sim.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v2/departments" {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte("<html><body>Sign in</body></html>"))
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	if _, err := sim.AddAccount(learnsim.AccountOptions{URL: srv.URL, Email: testEmail, Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	base, err := FindAPI(ctx, Credentials{AccountURL: srv.URL, Email: testEmail, Password: testPassword}, Options{AllowHTTP: true, Retry: fastRetry})
	if err != nil || base != srv.URL+"/index.php/api/v2" {
		t.Fatalf("FindAPI = %q, %v; want /index.php/api/v2", base, err)
	}
	var ce *CheckError
	if _, err := FindAPI(ctx, Credentials{AccountURL: "http://nowhere.test:1", Email: "a", Password: "b"}, e.opts()); !errors.As(err, &ce) || ce.Code != CheckUnreachable {
		t.Errorf("unresolvable host: %v", err)
	}
}
