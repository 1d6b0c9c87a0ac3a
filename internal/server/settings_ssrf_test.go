package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"b24learn/internal/learn"
	"b24learn/internal/netguard"
)

// The Learn check gives a portal admin one and the same answer for an
// address the rule refuses (even with a live service behind it), a closed
// port and a name that does not resolve: the settings page is no scanner of
// the app's network.
func TestLearnCheckSameAnswerForRefusedClosedAndUnresolvable(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("scan", "en")
	_, tok := e.session(p, 1, true, "en")

	const marker = "INTERNAL-ADMIN-PANEL-91c2"
	var internalHits atomic.Int32
	internal := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		io.WriteString(w, `{"departments":[],"message":"`+marker+`"}`)
	}))
	defer internal.Close()
	internalPort := internal.URL[strings.LastIndex(internal.URL, ":")+1:]

	// A port on loopback that nothing listens on, let through the rule so
	// that the check really meets a closed port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := netip.MustParseAddrPort(l.Addr().String())
	l.Close()

	hc := netguard.NewHTTPClient(netguard.Options{
		LookupIP: func(_ context.Context, host string) ([]netip.Addr, error) {
			switch host {
			case "intranet.example.com", "closed.example.com":
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
			case "metadata.example.com":
				return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		},
		Exempt: func(ap netip.AddrPort) bool { return ap == closed },
	})
	e.s.check = learnCheckFunc(func(ctx context.Context, c learn.Credentials) error {
		return learn.CheckConnection(ctx, c, learn.Options{HTTPClient: hc})
	})

	var first string
	for _, u := range []string{
		"https://intranet.example.com:" + internalPort, // a live internal service
		"https://127.0.0.1:" + internalPort,
		"https://metadata.example.com",
		"https://192.0.2.1", // documentation range
		"https://closed.example.com:" + strconv.Itoa(int(closed.Port())),
		"https://nowhere.example.com",
	} {
		r, sr := e.save(tok, with(validForm(), "learn_url", u))
		if r.status != http.StatusUnprocessableEntity || sr.OK {
			t.Fatalf("%s: status %d %s", u, r.status, r.body)
		}
		if strings.Contains(r.body, marker) {
			t.Errorf("%s: the internal answer reached the page: %s", u, r.body)
		}
		// The whole answer, not just the field, must be the same.
		if first == "" {
			first = r.body
			if !strings.Contains(sr.Errors["learn_url"], "public address") {
				t.Errorf("message %q", sr.Errors["learn_url"])
			}
		} else if r.body != first {
			t.Errorf("%s answered differently:\n%s\nvs\n%s", u, r.body, first)
		}
	}
	if internalHits.Load() != 0 {
		t.Errorf("the internal service was called %d times", internalHits.Load())
	}
}
