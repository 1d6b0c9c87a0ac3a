package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"

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
		s.error(w, r, apperr.New(apperr.EUNAVAILABLE, i18n.T(s.sessionLang(r), "mgr.err_river_off")))
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

// riverAuditNoteMax bounds the text kept in an audit line (River UI may
// name up to 1,000 job ids at once).
const riverAuditNoteMax = 2000

// riverAuditPath is the paths of River UI's state-changing requests: jobs
// by id, queues by name (the app's queue names are lower-case words).
var riverAuditPath = regexp.MustCompile(`^/api/(?:jobs/(?:cancel|delete|retry)|queues/[a-z0-9_]{1,64}(?:/pause|/resume)?)$`)

// riverAuditNote is what an audit line keeps of a River UI request: the
// method, the path when it is one River UI acts on, the job ids and a
// queue's limits, and nothing else. A request body is whatever the sender
// wrote; kept as it came, a manager's free text about a portal's people
// would sit in a line tied to no portal, which no erase of the portal could
// find (store.ErasePortalData blanks the notes of the portal's lines).
func riverAuditNote(method, path string, body []byte) string {
	if !riverAuditPath.MatchString(path) {
		path = "(other path)"
	}
	note := method + " " + path
	var req struct {
		IDs         []any `json:"ids"` // River UI sends strings; numbers are read too
		Concurrency *struct {
			GlobalLimit json.Number `json:"global_limit"`
			LocalLimit  json.Number `json:"local_limit"`
		} `json:"concurrency"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if len(bytes.TrimSpace(body)) == 0 || d.Decode(&req) != nil {
		if len(bytes.TrimSpace(body)) > 0 {
			note += " (body not read)"
		}
		return note
	}
	var ids []string
	for _, id := range req.IDs {
		var s string
		switch v := id.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		}
		if digits(s) {
			ids = append(ids, s)
		}
	}
	if len(ids) > 0 {
		note += " ids=" + strings.Join(ids, ",")
	}
	if c := req.Concurrency; c != nil && digits(c.GlobalLimit.String()) && digits(c.LocalLimit.String()) {
		note += " global_limit=" + c.GlobalLimit.String() + " local_limit=" + c.LocalLimit.String()
	}
	return remote.Clip(note, riverAuditNoteMax)
}

// digits reports whether s is a non-negative integer of at most 19 digits.
func digits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// auditRiverChanges writes each state-changing River UI request (cancel,
// delete or retry jobs; pause, resume or change a queue) to the console's
// audit trail before River UI acts on it, as the console's own actions are:
// the manager, the address, the method, the path and the jobs or queue
// limits the body names (riverAuditNote). A request whose line cannot be written is refused, so no change goes
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
		note := riverAuditNote(r.Method, strings.TrimPrefix(r.URL.Path, riverUIPrefix), body)
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
	lang := s.sessionLang(r)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return apperr.New(apperr.ETOOLARGE, i18n.T(lang, "mgr.err_body_too_large"))
	}
	return apperr.New(apperr.EMALFORMED, i18n.T(lang, "mgr.err_body_unread"))
}

// handleRiverRoot sends /manager/river to River UI's own root.
func (s *Server) handleRiverRoot(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, riverUIPrefix+"/", http.StatusSeeOther)
}
