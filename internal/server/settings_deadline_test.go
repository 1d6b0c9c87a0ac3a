package server

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"b24learn/internal/i18n"
	"b24learn/internal/learn"
)

// TestSettingsCheckOfDrippingServer: a Learn server that sends its
// headers and then one byte now and then does not hold the admin's Save:
// the answer comes within the check's bound and says, in the portal's
// language, that the server did not answer in time.
func TestSettingsCheckOfDrippingServer(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	e.s.cfg.LearnAllowPrivateHosts = true
	drip := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for _, b := range []byte(`{"departments":[{"departmentId":"1","name":"`) {
			if _, err := w.Write([]byte{b}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(drip.Close)
	u, _ := url.Parse(drip.URL)
	hc := learn.NewHTTPClient(learn.DialerOptions{AllowPrivate: true, LookupIP: func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "lms.drip.test" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}})
	const bound = time.Second // production: learn.DefaultCheckTimeout, the same path
	e.s.check = learnFindFunc(func(ctx context.Context, c learn.Credentials) (string, error) {
		return learn.FindAPI(ctx, c, learn.Options{HTTPClient: hc, AllowHTTP: true, CheckTimeout: bound})
	})
	p := e.addPortal("drip", "ru")
	_, tok := e.session(p, 1, true, "ru")
	start := time.Now()
	r, sr := e.save(tok, with(validForm(), "learn_url", "http://lms.drip.test:"+u.Port()))
	took := time.Since(start)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d after %s: %s", r.status, took, r.body)
	}
	if want := i18n.T(i18n.RU, "check."+learn.CheckTimeout); sr.Errors[fieldLearnURL] != want {
		t.Errorf("errors %v, want %q on %s", sr.Errors, want, fieldLearnURL)
	}
	if took > bound+2*time.Second {
		t.Errorf("the save answered after %s, want about %s", took, bound)
	}
}
