package connect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/calllog"
	"b24learn/internal/netguard"
	"b24learn/internal/pgtest"
	"b24learn/internal/store"
)

// A stored portal whose endpoint redirects its REST calls to an internal
// service: the address rule refuses the redirect, nothing reaches the
// service, the stored endpoint stays, and neither the error nor the call
// log carries anything of the service's answer.
func TestPortalRedirectToInternalServiceRefused(t *testing.T) {
	t.Parallel()
	const marker = "INTERNAL-SERVICE-BODY-c0de"
	var internalHits atomic.Int32
	internal := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":"`+marker+`","error_description":"`+marker+`"}`)
	}))
	defer internal.Close()
	var redirects atomic.Int32
	hostile := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirects.Add(1)
		method := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		http.Redirect(w, r, internal.URL+"/rest/"+method, http.StatusFound)
	}))
	defer hostile.Close()
	hostileAddr := netip.MustParseAddrPort(strings.TrimPrefix(hostile.URL, "https://"))

	pool := pgtest.NewPool(t)
	kr := apptest.Keyring(t)
	sim := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1"})
	t.Cleanup(sim.Close)
	p := apptest.InstallPortal(t, pool, kr, sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 5, 2)}))
	endpoint := hostile.URL + "/rest/"
	if err := store.SetPortalAddress(context.Background(), pool, p.ID, strings.TrimPrefix(hostile.URL, "https://"), endpoint, ""); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(hostile.Certificate())
	roots.AddCert(internal.Certificate())
	calls := calllog.NewRecorder(pool, slog.New(slog.DiscardHandler))
	defer calls.Close()
	f := New(Options{Pool: pool, Keyring: kr, Log: slog.New(slog.DiscardHandler), CallLog: calls,
		OAuth: &bitrix24.OAuth{URL: sim.URL, ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret()},
		B24Net: &netguard.Options{TLSConfig: &tls.Config{RootCAs: roots},
			Exempt: func(ap netip.AddrPort) bool { return ap == hostileAddr }}})

	ctx := context.Background()
	c, err := f.Bitrix24(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Departments(ctx)
	if !errors.Is(err, netguard.ErrForbidden) {
		t.Fatalf("err = %v, want the address rule's refusal", err)
	}
	if redirects.Load() == 0 {
		t.Fatal("the hostile portal was never asked (the test must reach it)")
	}
	if internalHits.Load() != 0 {
		t.Errorf("the internal service got %d requests with the portal's token", internalHits.Load())
	}
	if strings.Contains(err.Error(), marker) {
		t.Errorf("error shows the internal answer: %v", err)
	}
	got, err := store.GetPortal(ctx, pool, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ClientEndpoint != endpoint {
		t.Errorf("stored endpoint rewritten to %s", got.ClientEndpoint)
	}
	if err := calls.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	entries, err := calllog.List(ctx, pool, p.ID, 100)
	if err != nil || len(entries) == 0 {
		t.Fatalf("call log: %v %v", entries, err)
	}
	if s := fmt.Sprintf("%+v", entries); strings.Contains(s, marker) {
		t.Errorf("call log holds the internal answer: %s", s)
	}
}
