package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/calllog"
	"b24learn/internal/jobs"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
	"b24learn/templates"
)

// The operator parts of a portal's console page: its sync health, runs,
// River jobs and call log. The console-wide view of River's jobs is River UI
// (manager_river.go); the portal's page keeps its own list, filtered by
// portal, which River UI cannot do.

const (
	// consoleFailedJobs is how many failed jobs the portal list shows; River
	// UI has them all.
	consoleFailedJobs = 20
	consoleRuns       = 20
	consoleJobs       = 50
	consoleCalls      = 200
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
			CreatedAt: j.CreatedAt, AttemptedAt: j.AttemptedAt, FinalizedAt: j.FinalizedAt, LastError: jobs.LastError(j),
			Failed: jobs.Failed(j)}
		if d, ok := domains[jobs.PortalOf(j)]; ok {
			r.PortalID, r.PortalDomain = jobs.PortalOf(j), d
		}
		out = append(out, r)
	}
	return out
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

// failedJobs lists the latest failed River jobs of every portal, each with
// its portal's domain.
func failedJobs(ctx context.Context, db store.DBTX, q *jobs.Queue, limit int) ([]templates.JobRow, error) {
	ctx, cancel := context.WithTimeout(ctx, consoleQueryTimeout)
	defer cancel()
	list, err := q.FailedJobs(ctx, limit)
	if err != nil {
		return nil, err
	}
	domains := map[int64]string{}
	for _, j := range list {
		id := jobs.PortalOf(j)
		if _, ok := domains[id]; ok || id == 0 {
			continue
		}
		p, err := store.GetPortal(ctx, db, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return nil, err
		}
		domains[id] = p.Domain
	}
	return jobRows(list, domains), nil
}

// portalOps fills the operator parts of a portal's page.
func (s *Server) portalOps(ctx context.Context, v *templates.PortalView) error {
	id := v.Portal.ID
	p, err := store.GetPortal(ctx, s.pool, id)
	if err != nil {
		return fmt.Errorf("read portal health: %w", err)
	}
	v.Health = templates.PortalHealth(p.Health)
	if v.Runs, err = syncer.NewStore(s.pool).Runs(ctx, id, consoleRuns); err != nil {
		return err
	}
	// River's table, as on the portal list: the page, from which the
	// portal is activated, still shows when it cannot be read.
	if v.Jobs, err = portalJobs(ctx, jobs.NewQueue(s.pool, s.river), id, v.Portal.Domain, consoleJobs); err != nil {
		s.log.Warn("console: read portal jobs", "portal_id", id, "error", err)
		v.JobsUnread = true
	}
	if v.Calls, err = calllog.List(ctx, s.pool, id, consoleCalls); err != nil {
		return err
	}
	return nil
}
