package netguard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

func TestAddrAllowedIANARegistries(t *testing.T) {
	refused := []string{
		// The three documentation ranges the first rule missed.
		"192.0.2.1", "192.0.2.255", "198.51.100.7", "203.0.113.200",
		// A sample of the other IPv4 special-purpose entries.
		"0.0.0.0", "0.1.2.3", "10.1.2.3", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.8.8.8",
		"169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.0.170", "192.88.99.1",
		"192.168.1.1", "198.18.0.1", "198.19.255.255", "224.0.0.251", "239.255.255.250", "240.0.0.1",
		"255.255.255.255",
		// IPv6 entries, and IPv4 private space reached through IPv6 forms.
		"::", "::1", "::127.0.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "64:ff9b:1::1",
		"100::1", "100:0:0:1::1", "2001::1", "2001:2::1", "2001:10::1", "2001:db8::1", "2002:a00:1::1",
		"3fff::1", "5f00::1", "fc00::1", "fd00:ec2::254", "fe80::1", "fec0::1", "ff02::1",
	}
	for _, s := range refused {
		if AddrAllowed(netip.MustParseAddr(s)) {
			t.Errorf("%s allowed, want refused", s)
		}
	}
	allowed := []string{
		"8.8.8.8", "1.1.1.1", "93.184.215.14", "192.0.3.1", "198.51.101.1", "203.0.114.1", "100.128.0.1",
		"192.31.196.1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "2620:4f:8000::1",
	}
	for _, s := range allowed {
		if !AddrAllowed(netip.MustParseAddr(s)) {
			t.Errorf("%s refused, want allowed", s)
		}
	}
	if AddrAllowed(netip.MustParseAddr("fe80::1%eth0")) || AddrAllowed(netip.Addr{}) {
		t.Error("zoned or invalid address allowed")
	}
}

// tlsServer is an https test server on loopback and a pool that trusts it.
func tlsServer(t *testing.T, h http.Handler) (*httptest.Server, netip.AddrPort) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv, netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "https://"))
}

func trust(srvs ...*httptest.Server) *tls.Config {
	pool := x509.NewCertPool()
	for _, s := range srvs {
		pool.AddCert(s.Certificate())
	}
	return &tls.Config{RootCAs: pool}
}

func TestClientRefusesInternalDestinations(t *testing.T) {
	var internalHits atomic.Int32
	internal, _ := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		_, _ = w.Write([]byte("INTERNAL-SECRET"))
	}))
	var redirects atomic.Int32
	front, frontAddr := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirects.Add(1)
		http.Redirect(w, r, internal.URL+"/admin", http.StatusFound)
	}))
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "rebind.example":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		case "meta.example":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
		}
		return nil, errors.New("no such host")
	}
	c := NewHTTPClient(Options{TLSConfig: trust(internal, front), LookupIP: lookup,
		Exempt: func(ap netip.AddrPort) bool { return ap == frontAddr }})
	ctx := context.Background()
	get := func(u string) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, u := range []string{internal.URL, "https://rebind.example:" + internal.URL[strings.LastIndex(internal.URL, ":")+1:],
		"https://meta.example/latest/meta-data/", "https://[::1]:1/", "https://192.0.2.10/"} {
		if err := get(u); !errors.Is(err, ErrForbidden) {
			t.Errorf("GET %s: err = %v, want ErrForbidden", u, err)
		}
	}
	if err := get(front.URL + "/rest/profile"); !errors.Is(err, ErrForbidden) {
		t.Errorf("redirect to loopback: err = %v, want ErrForbidden", err)
	}
	if redirects.Load() != 1 {
		t.Fatalf("front hit %d times, want 1 (the test must reach it)", redirects.Load())
	}
	if err := get("http://" + frontAddr.String() + "/"); !errors.Is(err, ErrInsecure) {
		t.Errorf("plain http: err = %v, want ErrInsecure", err)
	}
	if redirects.Load() != 1 {
		t.Error("a plain http request reached the server")
	}
	if internalHits.Load() != 0 {
		t.Errorf("internal server hit %d times", internalHits.Load())
	}

	// The switch lifts the rule for the demo and tests.
	open := NewHTTPClient(Options{AllowPrivate: true, TLSConfig: trust(internal)})
	resp, err := open.Get(internal.URL)
	if err != nil {
		t.Fatalf("AllowPrivate: %v", err)
	}
	resp.Body.Close()
}

func TestForbiddenErrorHidesResolvedAddress(t *testing.T) {
	err := error(&ForbiddenAddrError{Host: "intranet.example", Addr: netip.MustParseAddr("10.20.30.40")})
	if strings.Contains(err.Error(), "10.20.30.40") || !errors.Is(err, ErrForbidden) {
		t.Errorf("error %q: must match ErrForbidden and not name the address", err)
	}
}

// IPv6 outside 2000::/3, the only space IANA allocates as global unicast,
// is never a public server, however the deny-list above missed it: an
// IPv4-translated address (::ffff:0:a.b.c.d, RFC 6145) that a SIIT
// translator on the operator's network turns into 127.0.0.1 or 10.0.0.1,
// the rest of the reserved 0000::/8, unallocated space.
func TestAddrAllowedOnlyGlobalUnicastIPv6(t *testing.T) {
	for _, s := range []string{"::ffff:0:7f00:1", "::ffff:0:a00:1", "::1:0:0:1", "1::1", "4000::1", "8000::1", "e000::1", "fb00::1"} {
		if AddrAllowed(netip.MustParseAddr(s)) {
			t.Errorf("%s allowed, want refused: not global unicast (2000::/3)", s)
		}
	}
}
