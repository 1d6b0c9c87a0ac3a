package server

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"b24learn/internal/config"
	"b24learn/internal/metrics"
)

// An anonymous client chooses the request method freely (any token up to
// the header limit): each new one must not become a new series of the HTTP
// metrics, or the registry grows with every request.
func TestHTTPMetricsMethodLabelBounded(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	app := httptest.NewServer(New(Deps{Log: slog.New(slog.DiscardHandler), Config: &config.Config{}, Metrics: m}))
	t.Cleanup(app.Close)
	for i := range 40 {
		method := fmt.Sprintf("X%d%s", i, strings.Repeat("A", 1000))
		req, err := http.NewRequest(method, app.URL+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "b24learn_http_requests_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "method" {
					methods[l.GetValue()] = true
				}
			}
		}
	}
	if len(methods) > 2 {
		t.Errorf("40 made-up methods made %d method label values; want them folded into one", len(methods))
	}
}
