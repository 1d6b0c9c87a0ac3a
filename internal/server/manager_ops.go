package server

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/calllog"
	"b24learn/internal/jobs"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
	"b24learn/templates"
)

// The operator parts of the console: a portal's sync health, runs, River jobs
// and call log, and the console-wide job page. River UI is not available as a
// library here; the pages read River's jobs through jobs.Queue.

const (
	consoleRuns     = 20
	consoleJobs     = 50
	consoleCalls    = 200
	consoleFailures = 100
	// consoleQueryTimeout bounds the reads of River's jobs, which may be
	// many on a busy installation.
	consoleQueryTimeout = 5 * time.Second
)

// jobRows shows River's jobs with the portal each names; domains maps
// portal ids to domains, and a job of a portal not in it shows no portal.
func jobRows(list []*rivertype.JobRow, domains map[int64]string) []templates.JobRow {
	out := make([]templates.JobRow, 0, len(list))
	for _, j := range list {
		r := templates.JobRow{ID: j.ID, Kind: j.Kind, State: string(j.State), Attempt: j.Attempt, MaxAttempts: j.MaxAttempts,
			CreatedAt: j.CreatedAt, AttemptedAt: j.AttemptedAt, FinalizedAt: j.FinalizedAt, LastError: jobs.LastError(j)}
		if d, ok := domains[jobs.PortalOf(j)]; ok {
			r.PortalID, r.PortalDomain = jobs.PortalOf(j), d
		}
		out = append(out, r)
	}
	return out
}

// portalDomains returns the domains of the portals the jobs name.
func portalDomains(ctx context.Context, db store.DBTX, list []*rivertype.JobRow) (map[int64]string, error) {
	var ids []int64
	for _, j := range list {
		if id := jobs.PortalOf(j); id != 0 {
			ids = append(ids, id)
		}
	}
	out := map[int64]string{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.Query(ctx, `SELECT id, domain FROM portals WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read portal domains: %w", err)
	}
	var id int64
	var domain string
	if _, err := pgx.ForEachRow(rows, []any{&id, &domain}, func() error { out[id] = domain; return nil }); err != nil {
		return nil, fmt.Errorf("read portal domains: %w", err)
	}
	return out, nil
}

// portalJobs lists the portal's newest River jobs.
func portalJobs(ctx context.Context, q *jobs.Queue, portalID int64, domain string, limit int) ([]templates.JobRow, error) {
	ctx, cancel := context.WithTimeout(ctx, consoleQueryTimeout)
	defer cancel()
	list, err := q.PortalJobs(ctx, portalID, limit)
	if err != nil {
		return nil, err
	}
	return jobRows(list, map[int64]string{portalID: domain}), nil
}

// failedJobs lists the latest jobs that failed: waiting for a retry or
// discarded after their last attempt.
func failedJobs(ctx context.Context, db store.DBTX, q *jobs.Queue, limit int) ([]templates.JobRow, error) {
	ctx, cancel := context.WithTimeout(ctx, consoleQueryTimeout)
	defer cancel()
	list, err := q.FailedJobs(ctx, limit)
	if err != nil {
		return nil, err
	}
	domains, err := portalDomains(ctx, db, list)
	if err != nil {
		return nil, err
	}
	return jobRows(list, domains), nil
}

// queueDepth counts River's jobs by kind and state.
func queueDepth(ctx context.Context, q *jobs.Queue) ([]templates.QueueCount, error) {
	ctx, cancel := context.WithTimeout(ctx, consoleQueryTimeout)
	defer cancel()
	counts, err := q.CountJobs(ctx)
	if err != nil {
		return nil, err
	}
	var out []templates.QueueCount
	for kind, byState := range counts {
		for state, n := range byState {
			out = append(out, templates.QueueCount{Kind: kind, State: string(state), N: n})
		}
	}
	slices.SortFunc(out, func(a, b templates.QueueCount) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.State, b.State))
	})
	return out, nil
}

func portalHealth(ctx context.Context, db store.DBTX, portalID int64) (templates.PortalHealth, error) {
	var h templates.PortalHealth
	err := db.QueryRow(ctx, `SELECT needs_attention, sync_failures, last_sync_error FROM portals WHERE id = $1`, portalID).
		Scan(&h.NeedsAttention, &h.SyncFailures, &h.LastSyncError)
	if err != nil {
		return h, fmt.Errorf("read portal health: %w", err)
	}
	return h, nil
}

// portalOps fills the operator parts of a portal's page.
func (s *Server) portalOps(ctx context.Context, v *templates.PortalView) error {
	id := v.Portal.ID
	var err error
	if v.Health, err = portalHealth(ctx, s.pool, id); err != nil {
		return err
	}
	if v.Runs, err = syncer.NewStore(s.pool).Runs(ctx, id, consoleRuns); err != nil {
		return err
	}
	if v.Jobs, err = portalJobs(ctx, jobs.NewQueue(s.pool, s.river), id, v.Portal.Domain, consoleJobs); err != nil {
		return err
	}
	if v.Calls, err = calllog.List(ctx, s.pool, id, consoleCalls); err != nil {
		return err
	}
	return nil
}

func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request) {
	v := templates.JobsView{Nav: s.consoleNav(r, "jobs")}
	var err error
	if v.Depth, err = queueDepth(r.Context(), jobs.NewQueue(s.pool, s.river)); err != nil {
		s.error(w, r, err)
		return
	}
	if v.Failed, err = failedJobs(r.Context(), s.pool, jobs.NewQueue(s.pool, s.river), consoleFailures); err != nil {
		s.error(w, r, err)
		return
	}
	s.renderConsole(w, r, http.StatusOK, templates.ManagerJobs(v))
}
