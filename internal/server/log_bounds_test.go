package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"b24learn/internal/apptest"
	"b24learn/internal/config"
	"b24learn/internal/metrics"
)

// An anonymous request chooses its method, its path and an event's name: each is
// written to a log line, which must stay short whatever was sent (log
// shippers cut or drop long lines, and the lines cost disk per request).
func TestAnonymousStringsInLogLinesBounded(t *testing.T) {
	t.Parallel()
	const maxLine = 4 << 10
	logs := &apptest.Logs{}
	app := httptest.NewServer(New(Deps{Log: slog.New(slog.NewTextHandler(logs, nil)), Config: &config.Config{}, Metrics: metrics.New()}))
	t.Cleanup(app.Close)

	long := strings.Repeat("%C3%A9", 10000) // 20 KB of "é" once decoded
	resp, err := http.Get(app.URL + "/no/such/" + long)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	req, err := http.NewRequest("M"+strings.Repeat("E", 20000), app.URL+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	form := url.Values{"event": {strings.Repeat("X", 60<<10)}}
	resp, err = http.PostForm(app.URL+"/b24/events", form)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 4 {
		t.Fatalf("want the access lines and the event's line, got %d lines", len(lines))
	}
	for _, line := range lines {
		if len(line) > maxLine {
			t.Errorf("log line of %d bytes (over %d): %.120s…", len(line), maxLine, line)
		}
	}
}

// Every log line of a request names its request id. A client's own
// X-Request-Id is its free text: taken as it came, it made each line as long
// as the header (which log shippers cut or drop, so the client's requests
// leave no trace) or named another request's id. Only a trusted proxy's
// id, short and plain, is kept.
func TestClientRequestIDNotTakenOnTrust(t *testing.T) {
	t.Parallel()
	const maxLine = 4 << 10
	get := func(app *httptest.Server, id string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, app.URL+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	serve := func(trusted ...netip.Prefix) (*httptest.Server, *apptest.Logs) {
		logs := &apptest.Logs{}
		app := httptest.NewServer(New(Deps{Log: slog.New(slog.NewTextHandler(logs, nil)),
			Config: &config.Config{TrustedProxies: trusted}, Metrics: metrics.New()}))
		t.Cleanup(app.Close)
		return app, logs
	}

	anon, logs := serve()
	get(anon, strings.Repeat("R", 20000))
	get(anon, "req-of-someone-else")
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if len(line) > maxLine {
			t.Errorf("log line of %d bytes (over %d): %.120s…", len(line), maxLine, line)
		}
		if strings.Contains(line, "req-of-someone-else") {
			t.Errorf("a client's own request id was logged: %s", line)
		}
	}

	proxied, logs := serve(netip.MustParsePrefix("127.0.0.0/8"))
	get(proxied, "lb-7f3a9c-0001")
	get(proxied, "lb "+strings.Repeat("R", 300))
	out := logs.String()
	if !strings.Contains(out, "request_id=lb-7f3a9c-0001") {
		t.Errorf("the trusted proxy's request id was not kept:\n%s", out)
	}
	if strings.Contains(out, "RRRR") {
		t.Errorf("a long, unplain id was kept from the proxy:\n%s", out)
	}
}
