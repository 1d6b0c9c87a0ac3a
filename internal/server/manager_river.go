package server

import (
	"context"
	"net/http"

	"riverqueue.com/riverui"

	"b24learn/internal/apperr"
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
	return h
}

// handleRiverRoot sends /manager/river to River UI's own root.
func (s *Server) handleRiverRoot(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, riverUIPrefix+"/", http.StatusSeeOther)
}
