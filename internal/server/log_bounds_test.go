package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"b24learn/internal/config"
	"b24learn/internal/metrics"
)

// An anonymous request chooses its method, its path and an event's name: each is
// written to a log line, which must stay short whatever was sent (log
// shippers cut or drop long lines, and the lines cost disk per request).
func TestAnonymousStringsInLogLinesBounded(t *testing.T) {
	t.Parallel()
	const maxLine = 4 << 10
	logs := &lockedBuffer{}
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
