package learnsim

import (
	"net"
	"net/http"
	"strings"
)

// Mount says where the simulator serves the API (docs/learn-api.md, "Where
// the API answers"): on an API host (api-learn.<domain>) at the root, on an
// account's own host only under /api/v2 (and /index.php/api/v2). A host is an
// API host when the Host header starts with "api-learn."; any other host is
// an account host, whose other paths answer as the account's web site does.
type Mount int

const (
	// MountListener makes the listener itself an API host: the API at the
	// root whatever the Host header (tests that point the client at the
	// listener with learn.Options.BaseURL).
	MountListener Mount = iota
	// MountAPIHost serves the API only at the root of api-learn.* hosts;
	// account hosts are web sites without the API.
	MountAPIHost
	// MountAccountHost serves the API only under /api/v2 on account hosts;
	// api-learn.* hosts answer 404 pages.
	MountAccountHost
	// MountBoth serves both: api-learn.* at the root, account hosts under
	// /api/v2 (the demo).
	MountBoth
)

// WebPage is how an account host answers a path that is not the API: as a
// web application would. Which one Learn does is not settled; the client
// must take none of them for the API.
type WebPage int

const (
	WebPageApp      WebPage = iota // 200 text/html: a single-page app answers every path with its page
	WebPageNotFound                // 404 text/html
	WebPageLogin                   // 302 to /login, which is a 200 text/html page
)

// WebPages are the choices of WebPage, for tests to run against each.
func WebPages() map[string]WebPage {
	return map[string]WebPage{"app page": WebPageApp, "404 page": WebPageNotFound, "login redirect": WebPageLogin}
}

// accountAPIPrefixes are where an account host serves the API.
var accountAPIPrefixes = []string{"/index.php/api/v2", "/api/v2"}

// isAPIHost reports whether the request's Host names an API host.
func isAPIHost(r *http.Request) bool {
	h := r.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.HasPrefix(strings.ToLower(h), "api-learn.")
}

// route serves a request by the mount: the API, the simulator's own pages
// (/_sim/, on every host), or a web page.
func (s *Sim) route(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") || r.URL.Path == "/api/v3/token" {
		s.mux.ServeHTTP(w, r) // the token endpoint has the same path on both kinds of host
		return
	}
	apiHost := isAPIHost(r)
	switch m := s.opts.Mount; {
	case m == MountListener, apiHost && (m == MountAPIHost || m == MountBoth):
		s.mux.ServeHTTP(w, r)
	case apiHost: // MountAccountHost: no API host exists
		webPage(w, r, WebPageNotFound)
	case m == MountAccountHost || m == MountBoth:
		for _, p := range accountAPIPrefixes {
			if rest, ok := strings.CutPrefix(r.URL.Path, p); ok && strings.HasPrefix(rest, "/") {
				r2 := r.Clone(r.Context())
				r2.URL.Path = rest
				r2.URL.RawPath = ""
				s.mux.ServeHTTP(w, r2)
				return
			}
		}
		webPage(w, r, s.opts.WebPage)
	default: // MountAPIHost: the account host is only a web site
		webPage(w, r, s.opts.WebPage)
	}
}

// webPage answers as the account's web site would.
func webPage(w http.ResponseWriter, r *http.Request, p WebPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch {
	case p == WebPageLogin && r.URL.Path != "/login":
		http.Redirect(w, r, "/login", http.StatusFound)
		return
	case p == WebPageNotFound:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`<!doctype html><html><head><title>Page not found</title></head><body><h1>404</h1><p>Page not found.</p></body></html>`))
		return
	}
	_, _ = w.Write([]byte(`<!doctype html><html><head><title>iSpring Learn</title></head><body><div id="app">Loading…</div><script src="/app.js"></script></body></html>`))
}
