package bitrix24_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/netguard"
)

const hostileMarker = "HOSTILE-BODY-7f3a"

// A portal's REST endpoint, or the place its redirect points to, on loopback,
// private or metadata addresses is refused by the address rule; nothing is
// sent there, the stored endpoint stays, and the error says nothing of what
// such a service would answer.
func TestPortalEndpointAndRedirectsObeyAddressRule(t *testing.T) {
	t.Parallel()
	var internalHits atomic.Int32
	internal := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":"ACCESS_DENIED","error_description":"`+hostileMarker+`"}`)
	}))
	defer internal.Close()

	for _, c := range []struct{ name, location string }{
		{"loopback", internal.URL + "/rest/profile.json"},
		{"private", "https://10.0.0.7/rest/profile.json"},
		{"metadata", "https://169.254.169.254/rest/profile.json"},
		{"documentation range", "https://203.0.113.5/rest/profile.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var redirects atomic.Int32
			portal := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				redirects.Add(1)
				http.Redirect(w, r, c.location, http.StatusFound)
			}))
			defer portal.Close()
			portalAddr := netip.MustParseAddrPort(strings.TrimPrefix(portal.URL, "https://"))
			pool := x509.NewCertPool()
			pool.AddCert(portal.Certificate())
			pool.AddCert(internal.Certificate())
			var changed []string
			client := bitrix24.New(bitrix24.Config{
				Endpoint: portal.URL + "/rest/",
				Tokens:   bitrix24.NewMemoryTokenSource(nil, bitrix24.Token{AccessToken: "secret-token", Expires: time.Now().Add(time.Hour)}),
				// The test's portal is on loopback too: only its own address is let through.
				HTTP: netguard.NewHTTPClient(netguard.Options{TLSConfig: &tls.Config{RootCAs: pool},
					Exempt: func(ap netip.AddrPort) bool { return ap == portalAddr }}),
				OnEndpointChange: func(_ context.Context, ep string) { changed = append(changed, ep) },
			})
			before := internalHits.Load()
			_, err := client.Profile(context.Background())
			if !errors.Is(err, netguard.ErrForbidden) {
				t.Fatalf("err = %v, want the address rule's refusal", err)
			}
			if redirects.Load() != 1 {
				t.Fatalf("portal hit %d times, want 1 (the test must reach it)", redirects.Load())
			}
			if internalHits.Load() != before {
				t.Error("the request (with the access token) reached the internal service")
			}
			if client.Endpoint() != portal.URL+"/rest/" || len(changed) != 0 {
				t.Errorf("endpoint rewritten: now %s, stored %v", client.Endpoint(), changed)
			}
			if strings.Contains(err.Error(), hostileMarker) {
				t.Errorf("error shows the internal answer: %v", err)
			}
		})
	}

	t.Run("endpoint itself", func(t *testing.T) {
		for _, ep := range []string{internal.URL + "/rest/", "https://169.254.169.254/rest/", "http://93.184.215.14/rest/"} {
			pool := x509.NewCertPool()
			pool.AddCert(internal.Certificate())
			client := bitrix24.New(bitrix24.Config{
				Endpoint: ep,
				Tokens:   bitrix24.NewMemoryTokenSource(nil, bitrix24.Token{AccessToken: "secret-token", Expires: time.Now().Add(time.Hour)}),
				HTTP:     netguard.NewHTTPClient(netguard.Options{TLSConfig: &tls.Config{RootCAs: pool}}),
			})
			before := internalHits.Load()
			_, err := client.Profile(context.Background())
			if !errors.Is(err, netguard.ErrForbidden) && !errors.Is(err, netguard.ErrInsecure) {
				t.Errorf("%s: err = %v, want a refusal", ep, err)
			}
			if internalHits.Load() != before {
				t.Errorf("%s: the internal service was called", ep)
			}
		}
	})
}

// Bitrix24's error texts never reach an error's text: they end up on pages.
func TestAPIErrorTextHasNoRemoteDescription(t *testing.T) {
	t.Parallel()
	f := setup(t, b24sim.GenerateOrg(1, 5, 2), bitrix24.Config{})
	f.portal.InjectFault(b24sim.Fault{Method: "profile", Status: 403, Code: "ACCESS_DENIED", Description: "<b>" + hostileMarker + "</b>"})
	_, err := f.client.Profile(context.Background())
	var ae *bitrix24.APIError
	if !errors.As(err, &ae) || !errors.Is(err, bitrix24.ErrAccessDenied) || !strings.Contains(ae.Description, hostileMarker) {
		t.Fatalf("err = %v, want ACCESS_DENIED with the description kept in the field", err)
	}
	if strings.Contains(err.Error(), hostileMarker) || !strings.Contains(err.Error(), "ACCESS_DENIED") {
		t.Errorf("error text %q: want the code and not the description", err)
	}
	f.portal.InjectFault(b24sim.Fault{Method: "profile", Status: 400, Code: hostileMarker + " <script>", Description: "x"})
	if _, err := f.client.Profile(context.Background()); err == nil || strings.Contains(err.Error(), "<script>") {
		t.Errorf("a code that is not a code is shown: %v", err)
	}
}

// The attacker: a portal's REST endpoint redirects to a host whose name
// runs to 100 KB and holds a byte that is not UTF-8, once over plain http
// (refused) and once over https (which no resolver finds). The errors
// quoted the host whole: every run stored and logged 100 KB, and
// PostgreSQL refused to store the text at all. They now quote a short
// excerpt in valid UTF-8.
func TestRedirectToHostileHostErrorIsBounded(t *testing.T) {
	t.Parallel()
	host := "a\xffb" + strings.Repeat("c", 100_000) + ".example"
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			portal := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", scheme+"://"+host+"/rest/profile.json")
				w.WriteHeader(http.StatusFound)
			}))
			defer portal.Close()
			portalAddr := netip.MustParseAddrPort(strings.TrimPrefix(portal.URL, "https://"))
			pool := x509.NewCertPool()
			pool.AddCert(portal.Certificate())
			client := bitrix24.New(bitrix24.Config{
				Endpoint: portal.URL + "/rest/",
				Tokens:   bitrix24.NewMemoryTokenSource(nil, bitrix24.Token{AccessToken: "a", Expires: time.Now().Add(time.Hour)}),
				HTTP: netguard.NewHTTPClient(netguard.Options{TLSConfig: &tls.Config{RootCAs: pool},
					Exempt: func(ap netip.AddrPort) bool { return ap == portalAddr }}),
				Limiter: bitrix24.NewLimiter(0, 0), MaxRetries: 1,
			})
			_, err := client.Profile(context.Background())
			if err == nil {
				t.Fatal("redirect to a host that cannot be reached: no error")
			}
			if msg := err.Error(); len(msg) > 1<<10 || !utf8.ValidString(msg) {
				t.Errorf("error of %d bytes (valid UTF-8: %v), want at most 1 KiB of valid UTF-8: %.200q", len(msg), utf8.ValidString(msg), msg)
			}
		})
	}
}
