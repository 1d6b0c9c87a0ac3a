package learn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"

	"b24learn/internal/i18n"
	"b24learn/internal/learn/learnsim"
)

func TestNormalizeAccountURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want  string
		allowHTTP bool
		err       error
	}{
		{in: "acme.ispringlearn.ru", want: "https://acme.ispringlearn.ru"},
		{in: "  https://ACME.ispringlearn.ru/  ", want: "https://acme.ispringlearn.ru"},
		{in: "https://acme.ispringlearn.ru/dashboard", want: "https://acme.ispringlearn.ru"},
		{in: "https://acme.ispringlearn.com/app/learner/courses?x=1#top", want: "https://acme.ispringlearn.com"},
		{in: "acme.ispring.eu/admin/users", want: "https://acme.ispring.eu"},
		{in: "https://learn.example.com:443/", want: "https://learn.example.com"},
		{in: "https://learn.example.com:8443/lms", want: "https://learn.example.com:8443"},
		{in: "https://обучение.рф", want: "https://xn--90aialyd0b6a.xn--p1ai"},
		{in: "learn.example.com.", want: "https://learn.example.com"},
		{in: "http://acme.ispringlearn.ru", err: ErrInsecureURL},
		{in: "http://127.0.0.1:8081/", allowHTTP: true, want: "http://127.0.0.1:8081"},
		{in: "", err: ErrInvalidURL},
		{in: "ftp://acme.ru", err: ErrInvalidURL},
		{in: "https://user:pw@acme.ru", err: ErrInvalidURL},
		{in: "https://", err: ErrInvalidURL},
		{in: "not a url", err: ErrInvalidURL},
		{in: "javascript:alert(1)", err: ErrInvalidURL},
	}
	for _, tt := range tests {
		got, err := NormalizeAccountURL(tt.in, tt.allowHTTP)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("NormalizeAccountURL(%q) = %q, %v; want error %v", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeAccountURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestAPICandidates(t *testing.T) {
	t.Parallel()
	tests := map[string][]string{
		"https://acme.ispringlearn.ru":  {"https://api-learn.ispringlearn.ru", "https://acme.ispringlearn.ru/api/v2"},
		"https://acme.ispringlearn.com": {"https://api-learn.ispringlearn.com", "https://acme.ispringlearn.com/api/v2"},
		"https://acme.ispringlearn.eu":  {"https://api-learn.ispringlearn.eu", "https://acme.ispringlearn.eu/api/v2"},
		"https://acme.ispring.com":      {"https://api-learn.ispring.com", "https://acme.ispring.com/api/v2"},
		"https://acme.ispring.ru":       {"https://api-learn.ispring.ru", "https://acme.ispring.ru/api/v2"},
		"https://acme.ispring.eu":       {"https://api-learn.ispring.eu", "https://acme.ispring.eu/api/v2"},
		"https://a.b.ispringlearn.ru":   {"https://api-learn.ispringlearn.ru", "https://a.b.ispringlearn.ru/api/v2"},
		// Custom domain and on-premise: the account's own host only.
		"https://learn.acme.ru":            {"https://learn.acme.ru/api/v2", "https://learn.acme.ru/index.php/api/v2"},
		"https://ispringlearn.ru.evil.com": {"https://ispringlearn.ru.evil.com/api/v2", "https://ispringlearn.ru.evil.com/index.php/api/v2"},
		"https://evilispringlearn.ru":      {"https://evilispringlearn.ru/api/v2", "https://evilispringlearn.ru/index.php/api/v2"},
		"http://127.0.0.1:8081":            {"http://127.0.0.1:8081/api/v2", "http://127.0.0.1:8081/index.php/api/v2"},
		// A port stays with the host (tests and the demo).
		"http://acme.ispringlearn.ru:8082": {"http://api-learn.ispringlearn.ru:8082", "http://acme.ispringlearn.ru:8082/api/v2"},
	}
	for in, want := range tests {
		if got := APICandidates(in); !slices.Equal(got, want) {
			t.Errorf("APICandidates(%q) = %q, want %q", in, got, want)
		}
		if got := APIBaseURL(in); got != want[0] {
			t.Errorf("APIBaseURL(%q) = %q, want %q", in, got, want[0])
		}
	}
	c, err := New(Credentials{AccountURL: "acme.ispringlearn.ru/dashboard", Email: "a", Password: "b"}, Options{})
	if err != nil || c.BaseURL() != "https://api-learn.ispringlearn.ru" || c.AccountURL() != "https://acme.ispringlearn.ru" {
		t.Fatalf("New: base %q account %q err %v", c.BaseURL(), c.AccountURL(), err)
	}
}

func TestAddrAllowed(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"127.0.0.1", "127.9.9.9", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
		"100.64.0.1", "0.0.0.0", "::", "fd00:ec2::254", "fe80::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "255.255.255.255",
		"64:ff9b::a9fe:a9fe", "64:ff9b:1::a9fe:a9fe", "::127.0.0.1"} {
		if AddrAllowed(netip.MustParseAddr(s)) {
			t.Errorf("AddrAllowed(%s) = true, want refused", s)
		}
	}
	for _, s := range []string{"8.8.8.8", "93.184.216.34", "2a00:1450:4010:c05::71", "100.128.0.1"} {
		if !AddrAllowed(netip.MustParseAddr(s)) {
			t.Errorf("AddrAllowed(%s) = false, want allowed", s)
		}
	}
}

// tlsSim serves the simulator over TLS on 127.0.0.1 and returns the server and a
// pool trusting its certificate.
func tlsSim(t *testing.T, h http.Handler) (*httptest.Server, *tls.Config) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, &tls.Config{RootCAs: pool}
}

func checkCode(t *testing.T, err error, code string) {
	t.Helper()
	var ce *CheckError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("err = %v, want CheckError %s", err, code)
	}
	// The page shows a sentence per code; every code needs one in both languages.
	ru, en := i18n.T(i18n.RU, "check."+code), i18n.T(i18n.EN, "check."+code)
	if !i18n.Has("check."+code) || ru == en || !strings.ContainsFunc(ru, func(r rune) bool { return unicode.Is(unicode.Cyrillic, r) }) {
		t.Errorf("messages for %s: ru %q en %q", code, ru, en)
	}
}

func TestSSRFRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim := learnsim.New(learnsim.Options{})
	srv, tlsConf := tlsSim(t, sim.Handler())
	creds := func(u string) Credentials {
		return Credentials{AccountURL: u, Email: testEmail, Password: testPassword}
	}
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "localhost":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		case "learn.internal.example":
			return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
		case "rebind.example":
			return []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	safe := NewHTTPClient(DialerOptions{TLSConfig: tlsConf, LookupIP: lookup})

	cases := map[string]string{
		"loopback":           srv.URL, // https://127.0.0.1:port
		"metadata":           "https://169.254.169.254",
		"metadata v6":        "https://[fd00:ec2::254]",
		"name to 10.0.0.1":   "https://learn.internal.example",
		"localhost":          "https://localhost:" + mustPort(t, srv.URL),
		"cgnat":              "https://100.64.1.2",
		"unspecified":        "https://0.0.0.0",
		"v4-mapped loopback": "https://[::ffff:127.0.0.1]",
		"TEST-NET-1":         "https://192.0.2.10",
		"TEST-NET-2":         "https://198.51.100.10",
		"TEST-NET-3":         "https://203.0.113.10",
		"IPv6 documentation": "https://[3fff::1]",
	}
	for name, u := range cases {
		err := CheckConnection(ctx, creds(u), Options{HTTPClient: safe})
		if !isForbidden(err) {
			t.Errorf("%s (%s): err = %v, want forbidden address", name, u, err)
			continue
		}
		checkCode(t, err, CheckUnreachable)
	}
	// The same client calls a public-looking host whose name resolves to loopback: refused at connect.
	c, _ := New(creds("https://learn.internal.example"), Options{HTTPClient: safe, Retry: fastRetry})
	if _, err := c.ListDepartments(ctx); !errors.Is(err, ErrForbiddenAddr) {
		t.Errorf("client call: err = %v, want ErrForbiddenAddr", err)
	}

	// A redirect from an allowed server to loopback is refused by the dialer.
	target, _ := tlsSim(t, sim.Handler())
	var hops int
	redirector := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hops++
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusFound)
	}))
	redirector.StartTLS()
	t.Cleanup(redirector.Close)
	pool := x509.NewCertPool()
	pool.AddCert(redirector.Certificate())
	pool.AddCert(target.Certificate())
	redirAddr := netip.MustParseAddrPort(strings.TrimPrefix(redirector.URL, "https://"))
	exemptOne := NewHTTPClient(DialerOptions{TLSConfig: &tls.Config{RootCAs: pool}, LookupIP: lookup,
		exempt: func(ap netip.AddrPort) bool { return ap == redirAddr }})
	err := CheckConnection(ctx, creds(redirector.URL), Options{HTTPClient: exemptOne})
	if hops != 1 {
		t.Fatalf("redirector hit %d times, want 1 (the test must reach it)", hops)
	}
	checkCode(t, err, CheckUnreachable)
}

func mustPort(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

func TestCheckConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim := learnsim.New(learnsim.Options{})
	if _, err := sim.AddAccount(learnsim.AccountOptions{URL: testAccount, Email: testEmail, Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.AddAccount(learnsim.AccountOptions{URL: "https://noapi.ispringlearn.ru", Email: testEmail, Password: testPassword, NoAPIAccess: true}); err != nil {
		t.Fatal(err)
	}
	srv, tlsConf := tlsSim(t, sim.Handler())
	private := NewHTTPClient(DialerOptions{AllowPrivate: true, TLSConfig: tlsConf})
	opts := Options{HTTPClient: private, BaseURL: srv.URL}

	if err := CheckConnection(ctx, Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword}, opts); err != nil {
		t.Fatalf("good credentials: %v", err)
	}
	checkCode(t, CheckConnection(ctx, Credentials{AccountURL: testAccount, Email: testEmail, Password: "nope"}, opts), CheckBadCredentials)
	checkCode(t, CheckConnection(ctx, Credentials{AccountURL: "https://noapi.ispringlearn.ru", Email: testEmail, Password: testPassword}, opts), CheckNoAPIAccess)
	checkCode(t, CheckConnection(ctx, Credentials{AccountURL: "http://acme.ispringlearn.ru", Email: "a", Password: "b"}, Options{}), CheckNotHTTPS)
	checkCode(t, CheckConnection(ctx, Credentials{AccountURL: "ftp://x", Email: "a", Password: "b"}, Options{}), CheckBadURL)

	// A web server that is not Learn.
	other, otherTLS := tlsSim(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html><body>Welcome</body></html>") // every path, as a web app does
	}))
	otherClient := NewHTTPClient(DialerOptions{AllowPrivate: true, TLSConfig: otherTLS})
	checkCode(t, CheckConnection(ctx, Credentials{AccountURL: other.URL, Email: "a", Password: "b"}, Options{HTTPClient: otherClient}), CheckNotLearn)

	// Wrong certificate: the default client does not trust httptest's.
	checkCode(t, CheckConnection(ctx, Credentials{AccountURL: other.URL, Email: "a", Password: "b"},
		Options{HTTPClient: NewHTTPClient(DialerOptions{AllowPrivate: true})}), CheckTLS)

	// Host that does not resolve.
	nx := NewHTTPClient(DialerOptions{LookupIP: func(ctx context.Context, host string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}})
	checkCode(t, CheckConnection(ctx, Credentials{AccountURL: "https://nowhere.example", Email: "a", Password: "b"}, Options{HTTPClient: nx}), CheckUnreachable)
}

// TestRedirectDropsCredentials: the admin's password never follows a redirect to another host.
func TestRedirectDropsCredentials(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("X-Auth-Password") + "|" + r.Header.Get("X-Auth-Email")
		io.WriteString(w, `{"departments":[]}`)
	}))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusFound)
	}))
	defer redirector.Close()
	c, _ := New(Credentials{AccountURL: redirector.URL, Email: "admin", Password: "pw"}, Options{AllowHTTP: true, Retry: fastRetry})
	if _, err := c.ListDepartments(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h != "|" {
		t.Fatalf("target saw credentials %q", h)
	}
}
