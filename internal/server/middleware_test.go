package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// An oversized body is refused before any handler reads it, and nothing is
// stored; a body that lies about its length is cut off at the limit too.
func TestBodySizeLimit(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	big := "DOMAIN=x&junk=" + strings.Repeat("a", maxBodyBytes)
	for _, path := range []string{"/b24/install", "/b24/app", "/b24/events", "/app/settings"} {
		resp, err := http.Post(e.app.URL+path, "application/x-www-form-urlencoded", strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with %d bytes: %d, want 413", path, len(big), resp.StatusCode)
		}
	}
	// Chunked: no Content-Length to refuse up front; the reader stops at the limit.
	req, _ := http.NewRequest(http.MethodPost, e.app.URL+"/b24/install", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("chunked oversized install: %d, want an error", resp.StatusCode)
	}
	if n := e.count(`SELECT count(*) FROM portals`); n != 0 {
		t.Fatalf("%d portals stored from oversized requests", n)
	}
}

// Responses carry the security headers; only iframe pages may be framed.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	resp, err := http.Get(e.app.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); got != "frame-ancestors 'none'" {
		t.Errorf("CSP = %q", got)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
}
