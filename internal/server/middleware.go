package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"b24learn/internal/apperr"
	"b24learn/internal/bitrix24"
	"b24learn/internal/i18n"
	"b24learn/internal/remote"
)

func requestID(r *http.Request) string { return middleware.GetReqID(r.Context()) }

// maxRequestID bounds a proxy's request id (a UUID is 36 bytes).
const maxRequestID = 64

// keepProxyRequestID lets middleware.RequestID take the X-Request-Id of a
// trusted proxy (TRUSTED_PROXIES), when it is short and plain; any other is
// dropped and middleware.RequestID makes one. The id is in every log line
// of the request: a client's own would be free text there, as long as the
// header, and could name another request.
func (s *Server) keepProxyRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get(middleware.RequestIDHeader); id != "" {
			peer, err := netip.ParseAddr(peerIP(r))
			if err != nil || !isTrusted(peer, s.cfg.TrustedProxies) || !plainRequestID(id) {
				r.Header.Del(middleware.RequestIDHeader)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// plainRequestID says whether id is at most maxRequestID letters, digits
// and the punctuation request ids use.
func plainRequestID(id string) bool {
	if len(id) > maxRequestID {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-_.:/+=", c)) {
			return false
		}
	}
	return true
}

// accessLog writes one structured line per request and feeds the HTTP metrics,
// labelled by route pattern (not the raw path) to keep label sets small.
// Query strings are not logged: Bitrix24 puts tokens in some of them.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		s.metrics.ObserveHTTP(route, knownMethod(r.Method), status, d)
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(r.Context(), level, "http",
			slog.String("method", logText(r.Method)),
			slog.String("path", logText(r.URL.Path)),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Int("bytes", ww.BytesWritten()),
			slog.Duration("duration", d),
			slog.String("request_id", requestID(r)),
			slog.String("remote", r.RemoteAddr),
			slog.String("client", clientIP(r)),
		)
	})
}

// maxLogText bounds a client's free text in a log line: a path or an event
// name may be as long as the request allows (a megabyte), and log shippers
// cut or drop such lines.
const maxLogText = 512

// logText is s as a log line may quote it.
func logText(s string) string { return remote.Clip(s, maxLogText) }

// recoverer turns a panic into a 500 and a logged stack, keeping the process up.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic", "value", fmt.Sprint(v), "stack", string(debug.Stack()), "request_id", requestID(r))
				lang := frameLang(r, bitrix24.AppRequest{})
				s.errorIn(w, r, lang, errPanicked(lang))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// errPanicked answers a request whose handler panicked; the recoverer has
// logged the panic and its stack. Before (or without) its handler the
// answer's language is the one the LANG query parameter of a frame page's
// address names, English elsewhere.
func errPanicked(lang i18n.Lang) error { return apperr.New(apperr.EINTERNAL, msgInternal.in(lang)) }

// limitBody bounds request bodies; a larger one fails to parse with a clear
// 413, in the language of the frame page's LANG query parameter if any.
func (s *Server) limitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				lang := frameLang(r, bitrix24.AppRequest{})
				s.errorIn(w, r, lang, apperr.New(apperr.ETOOLARGE, msgBodyTooLarge.in(lang)))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}

// consolePageCSP is the console's pages' policy: they run no script, load
// nothing from elsewhere and post only to this origin, so an injected script,
// image or form has nowhere to go (their inline style attributes stay
// allowed).
var consolePageCSP = withCSP("default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'none'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

// riverUICSP is River UI's policy: its own script files only, never inline
// or another origin's. Job args and errors it shows come from portals and
// Learn servers; should one slip past its escaping, the script cannot run
// with a manager's session. Its config is a JSON data block, which the
// policy does not govern; its icons may be data: URLs.
var riverUICSP = withCSP("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

// withCSP sets policy as the response's Content-Security-Policy, over the
// default securityHeaders sets.
func withCSP(policy string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", policy)
			next.ServeHTTP(w, r)
		})
	}
}

// securityHeaders are sent on every response. Pages framed by Bitrix24 set
// their own frame-ancestors; everything else may not be framed at all.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}
