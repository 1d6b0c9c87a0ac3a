package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/calllog"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
	"b24learn/templates"
)

// The operator parts of the console: a portal's sync health, runs, River jobs
// and call log, and the console-wide job page. River UI is not available as a
// library here, so the pages read River's table directly.

const (
	consoleRuns     = 20
	consoleJobs     = 50
	consoleCalls    = 200
	consoleFailures = 100
	// consoleQueryTimeout bounds the reads of River's table, which may be
	// large on a busy installation.
	consoleQueryTimeout = 5 * time.Second
)

// jobSelect reads a job and its last error (River appends one entry to
// errors per failed attempt). The portal comes from the args' portal_id,
// when it names an existing portal.
const jobSelect = `SELECT j.id, j.kind, j.state::text, j.attempt, j.max_attempts, coalesce(p.id, 0), coalesce(p.domain, ''),
	j.created_at, j.attempted_at, j.finalized_at,
	coalesce(j.errors[array_upper(j.errors, 1)]->>'error', '')
	FROM river_job j
	LEFT JOIN portals p ON p.id = CASE WHEN j.args->>'portal_id' ~ '^[0-9]{1,18}$' THEN (j.args->>'portal_id')::bigint END`

func scanJobs(rows pgx.Rows) ([]templates.JobRow, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (templates.JobRow, error) {
		var j templates.JobRow
		err := row.Scan(&j.ID, &j.Kind, &j.State, &j.Attempt, &j.MaxAttempts, &j.PortalID, &j.PortalDomain,
			&j.CreatedAt, &j.AttemptedAt, &j.FinalizedAt, &j.LastError)
		return j, err
	})
}

// portalJobs lists the portal's newest River jobs. The containment test uses
// River's GIN index on args.
func portalJobs(ctx context.Context, db store.DBTX, portalID int64, limit int) ([]templates.JobRow, error) {
	ctx, cancel := context.WithTimeout(ctx, consoleQueryTimeout)
	defer cancel()
	rows, err := db.Query(ctx, jobSelect+`
		WHERE j.args @> jsonb_build_object('portal_id', $1::bigint)
		ORDER BY j.id DESC LIMIT $2`, portalID, limit)
	if err != nil {
		return nil, fmt.Errorf("list portal jobs: %w", err)
	}
	out, err := scanJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("list portal jobs: %w", err)
	}
	return out, nil
}

// failedJobs lists the latest jobs that failed: waiting for a retry or
// discarded after their last attempt.
func failedJobs(ctx context.Context, db store.DBTX, limit int) ([]templates.JobRow, error) {
	ctx, cancel := context.WithTimeout(ctx, consoleQueryTimeout)
	defer cancel()
	rows, err := db.Query(ctx, jobSelect+`
		WHERE j.state IN ('retryable', 'discarded')
		ORDER BY coalesce(j.finalized_at, j.attempted_at, j.created_at) DESC, j.id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list failed jobs: %w", err)
	}
	out, err := scanJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("list failed jobs: %w", err)
	}
	return out, nil
}

// queueDepth counts River's jobs by kind and state.
func queueDepth(ctx context.Context, db store.DBTX) ([]templates.QueueCount, error) {
	ctx, cancel := context.WithTimeout(ctx, consoleQueryTimeout)
	defer cancel()
	rows, err := db.Query(ctx, `SELECT kind, state::text, count(*) FROM river_job GROUP BY kind, state ORDER BY kind, state`)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (templates.QueueCount, error) {
		var c templates.QueueCount
		err := row.Scan(&c.Kind, &c.State, &c.N)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
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
func (c *console) portalOps(ctx context.Context, v *templates.PortalView) error {
	id := v.Portal.ID
	var err error
	if v.Health, err = portalHealth(ctx, c.s.pool, id); err != nil {
		return err
	}
	if v.Runs, err = syncer.NewStore(c.s.pool).Runs(ctx, id, consoleRuns); err != nil {
		return err
	}
	if v.Jobs, err = portalJobs(ctx, c.s.pool, id, consoleJobs); err != nil {
		return err
	}
	if v.Calls, err = calllog.List(ctx, c.s.pool, id, consoleCalls); err != nil {
		return err
	}
	return nil
}

func (c *console) handleJobs(w http.ResponseWriter, r *http.Request) {
	v := templates.JobsView{Nav: c.nav(r, "jobs")}
	var err error
	if v.Depth, err = queueDepth(r.Context(), c.s.pool); err != nil {
		c.s.serverError(w, r, err)
		return
	}
	if v.Failed, err = failedJobs(r.Context(), c.s.pool, consoleFailures); err != nil {
		c.s.serverError(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, templates.ManagerJobs(v))
}
