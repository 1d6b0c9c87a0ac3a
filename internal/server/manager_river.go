package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode"

	"riverqueue.com/riverui"

	"b24learn/internal/apperr"
	"b24learn/internal/i18n"
	"b24learn/internal/manager"
	"b24learn/internal/remote"
)

// riverUIPrefix is where River UI lives inside the console; its script and
// API calls are made under it.
const riverUIPrefix = "/manager/river"

// newRiverUI builds River UI over the app's River client and starts its
// background work (caches of its job counts), which ends with ctx. River UI
// answers for River's whole table, read and write: retry, cancel, delete.
// Without a River client (or if River UI cannot be built) the route
// answers 503 and the rest of the console works.
func (s *Server) newRiverUI(ctx context.Context) http.Handler {
	unavailable := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.error(w, r, apperr.New(apperr.EUNAVAILABLE, "River UI is not available on this instance."))
	})
	if s.river == nil {
		return unavailable
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(s.river, nil),
		Logger:    s.log.With("component", "riverui"),
		Prefix:    riverUIPrefix,
		// Job args name portals and departments, not secrets; showing them
		// is what an operator opens a job for.
		JobListHideArgsByDefault: false,
	})
	if err == nil {
		err = h.Start(ctx)
	}
	if err != nil {
		s.log.Error("river ui unavailable", "error", err)
		return unavailable
	}
	return s.auditRiverChanges(h)
}

// riverAuditNoteMax bounds the request text kept in an audit line (River UI
// may name up to 1,000 job ids at once).
const riverAuditNoteMax = 2000

// auditRiverChanges writes each state-changing River UI request (cancel,
// delete or retry jobs; pause, resume or change a queue) to the console's
// audit trail before River UI acts on it, as the console's own actions are:
// the manager, the address, the method, the path and the body that names the
// jobs. A request whose line cannot be written is refused, so no change goes
// unrecorded. It runs behind requireManagerSameOrigin.
func (s *Server) auditRiverChanges(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || managerFrom(r.Context()) == nil {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body) // bounded by limitBody
		if err != nil {
			s.error(w, r, s.riverBodyError(r, err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		a := s.managerActor(r)
		note := r.Method + " " + strings.TrimPrefix(r.URL.Path, riverUIPrefix) + " " + printable(string(body), riverAuditNoteMax)
		if err := manager.Audit(r.Context(), s.pool, manager.AuditEntry{ManagerID: a.ManagerID, ManagerEmail: a.Email,
			Action: "river_ui", Note: note, IP: a.IP, At: s.now()}); err != nil {
			s.error(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// riverBodyError is the console's answer, in its language, to a River UI
// request body that could not be read: over limitBody's bound, or cut off.
func (s *Server) riverBodyError(r *http.Request, err error) error {
	lang := s.consoleLang(r, managerFrom(r.Context()))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return apperr.New(apperr.ETOOLARGE, i18n.T(lang, "mgr.err_body_too_large"))
	}
	return apperr.New(apperr.EMALFORMED, i18n.T(lang, "mgr.err_body_unread"))
}

// printable is s as one line of valid UTF-8 without control characters
// (which PostgreSQL's text, or a reader of the trail, would trip on), cut
// to at most n bytes.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	return remote.Clip(s, n)
}

// handleRiverRoot sends /manager/river to River UI's own root.
func (s *Server) handleRiverRoot(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, riverUIPrefix+"/", http.StatusSeeOther)
}
