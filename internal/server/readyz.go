package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"b24learn/internal/apperr"
	"b24learn/internal/store"
)

// readyFor is how long a readiness answer is given again without asking
// the database: /readyz is public, and each check takes a pool connection
// for a few queries.
const readyFor = time.Second

// readyTimeout bounds one readiness check, which no request cancels: the
// others waiting for it share its answer.
const readyTimeout = 3 * time.Second

// readiness answers /readyz from the last check while it is younger than
// readyFor; otherwise one check runs and every request arriving meanwhile
// waits for its answer. A failing state is logged once, when it begins (or
// its kind changes), and its end once.
type readiness struct {
	check func(context.Context) error
	log   *slog.Logger
	now   func() time.Time // the monotonic clock; tests may not move it

	mu      sync.Mutex
	checked bool
	at      time.Time
	err     error
	running chan struct{} // closed when the check under way ends; nil when none runs
}

func newReadiness(check func(context.Context) error, log *slog.Logger) *readiness {
	return &readiness{check: check, log: log, now: time.Now}
}

// get is the current answer, waiting for a check when the last is too old.
func (r *readiness) get(ctx context.Context) error {
	r.mu.Lock()
	if r.checked && r.now().Sub(r.at) < readyFor {
		err := r.err
		r.mu.Unlock()
		return err
	}
	if r.running == nil {
		r.running = make(chan struct{})
		go r.run(r.running)
	}
	running := r.running
	r.mu.Unlock()
	select {
	case <-running:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// run runs one check and hands its answer to those waiting. A check that
// panics answers "not ready" like one that fails: the answer is handed on
// in a deferred call, or every later request would wait on done for ever.
func (r *readiness) run(done chan struct{}) {
	var err error
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("readiness check panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("readiness check panicked: %v", p)
		}
		r.finish(done, err)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	err = r.check(ctx)
}

// finish records a check's answer, wakes those waiting for it, and logs a
// change of state.
func (r *readiness) finish(done chan struct{}, err error) {
	r.mu.Lock()
	was, wasChecked := r.err, r.checked
	r.checked, r.at, r.err, r.running = true, r.now(), err, nil
	close(done)
	r.mu.Unlock()
	switch {
	case err != nil && (!wasChecked || readyKind(was) != readyKind(err)):
		r.log.Warn("not ready", "error", err)
	case err == nil && wasChecked && was != nil:
		r.log.Info("ready again")
	}
}

// readyKind tells the failing states apart for the log: ready, not
// migrated, or the database not answering.
func readyKind(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, store.ErrNotMigrated):
		return 1
	default:
		return 2
	}
}

// handleReadyz answers 200 only when the database answers and its schema is
// current, so a load balancer sends no traffic to an instance that would fail.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.ready.get(r.Context()); err != nil {
		s.error(w, r, apperr.New(apperr.EUNAVAILABLE, "not ready: database unavailable or not migrated"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
