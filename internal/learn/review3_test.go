package learn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"testing"
)

// hostileClient is a client for an account whose server is h: a TLS server
// that the address rule lets through as the one exemption, as a public
// server the portal admin chose would be.
func hostileClient(t *testing.T, h http.Handler, retry RetryPolicy) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	addr := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "https://"))
	hc := NewHTTPClient(DialerOptions{TLSConfig: &tls.Config{RootCAs: pool},
		exempt: func(ap netip.AddrPort) bool { return ap == addr }})
	c, err := New(Credentials{AccountURL: "https://learn.hostile.example", Email: testEmail, Password: testPassword},
		Options{HTTPClient: hc, BaseURL: srv.URL, Retry: retry})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// allocated is how many bytes fn allocates (the test runs alone: no
// t.Parallel, so the package's parallel tests wait for it).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A create's answer is read for the new ID through any number of
// {"response": …} envelopes, each one parsed again from its copy: 140 KB of
// nested envelopes (well under the 1 MiB answer cap) cost gigabytes of
// allocations and seconds of CPU for one create, and parallel creates
// against a hostile server take the worker's memory, every tenant's jobs
// with it. Learn wraps at most once.
func TestReview3CreateIDEnvelopesAreBounded(t *testing.T) {
	const levels = 9000 // under encoding/json's nesting limit of 10,000
	body := strings.Repeat(`{"response":`, levels) + `"d-1"` + strings.Repeat("}", levels)
	c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}), fastRetry)
	var err error
	n := allocated(func() {
		_, err = c.CreateDepartment(context.Background(), NewDepartment{Name: "x", ParentID: "root"})
	})
	if n > 64<<20 {
		t.Fatalf("one create answer of %d KB allocated %d MB", len(body)>>10, n>>20)
	}
	t.Logf("err = %v, allocated %d MB", err, n>>20)
}
