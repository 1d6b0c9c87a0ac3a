package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/jobs/queues"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
)

// This file is the one place that reads or changes River's jobs outside the
// workers, so a River upgrade breaks here and nowhere else. It uses River's
// own JobList, JobListTx and JobCancelTx where they do the job; the raw SQL
// left is what River's API cannot say (counts by kind and state, an order
// by failure time, a lock lookup), and names River's tables only here.

// portalArgs is the one SQL idiom here for "this job is the portal's":
// containment of portal_id in the args, which River's GIN index on args
// serves. Every job kind of a portal carries portal_id as a JSON number; a
// cast of args->>'portal_id' would fail on a job whose args say otherwise.
func portalArgs(args, portal string) string {
	return args + " @> jsonb_build_object('portal_id', " + portal + "::bigint)"
}

// unfinishedJobSQL is the condition that an unfinished job of the kind
// named by the SQL argument kind names the portal and install generation
// in the given columns: how the maintenance finds an uninstalled portal
// whose erase job was lost (lostErases). Both are matched by containment,
// as portalArgs is.
func unfinishedJobSQL(kind, states, portal, generation string) string {
	return `EXISTS (SELECT 1 FROM river_job j WHERE j.kind = ` + kind + ` AND j.state = ANY(` + states + `::river_job_state[])
		AND ` + portalArgs("j.args", portal) + ` AND j.args @> jsonb_build_object('generation', ` + generation + `::bigint))`
}

// stateNames are River's job states as the text its state column's
// values cast from.
func stateNames(states []rivertype.JobState) []string {
	names := make([]string, len(states))
	for i, st := range states {
		names[i] = string(st)
	}
	return names
}

// ofPortal is portalArgs as the Where of River's job lists and deletes,
// with its named argument.
func ofPortal(portalID int64) (string, river.NamedArgs) {
	return portalArgs("args", "@portal_id"), river.NamedArgs{"portal_id": portalID}
}

// PortalOf returns the portal a job's args name, or 0 when they name none
// (the dispatcher, maintenance and uninstall checks).
func PortalOf(j *rivertype.JobRow) int64 {
	var a struct {
		PortalID int64 `json:"portal_id"`
	}
	if json.Unmarshal(j.EncodedArgs, &a) != nil {
		return 0
	}
	return a.PortalID
}

// LastError is the error of the job's latest failed attempt, or "".
func LastError(j *rivertype.JobRow) string {
	if len(j.Errors) == 0 {
		return ""
	}
	return j.Errors[len(j.Errors)-1].Error
}

// Queue reads and cancels River's jobs for the pages, the uninstall and the
// metrics. rc may be an insert-only client, or nil when only CountJobs is
// used (the metrics are registered before the client exists); db is needed
// only by the reads River's API has no call for.
type Queue struct {
	db store.DBTX
	rc *river.Client[pgx.Tx]
}

// NewQueue returns a Queue on db and rc.
func NewQueue(db store.DBTX, rc *river.Client[pgx.Tx]) *Queue {
	return &Queue{db: db, rc: rc}
}

// PortalJobs lists the portal's newest jobs in any state, newest first.
func (q *Queue) PortalJobs(ctx context.Context, portalID int64, limit int) ([]*rivertype.JobRow, error) {
	res, err := q.rc.JobList(ctx, river.NewJobListParams().
		Where(ofPortal(portalID)).
		OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(limit))
	if err != nil {
		return nil, fmt.Errorf("list portal jobs: %w", err)
	}
	return res.Jobs, nil
}

// failedJobs is the SQL of Failed.
const failedJobs = `(state IN ('retryable', 'discarded') OR (state = 'cancelled' AND cardinality(errors) > 0
	AND NOT metadata ? 'cancel_attempted_at'))`

// Failed says whether the job failed: it waits for a retry, was discarded
// after its last attempt, or its worker cancelled it with the reason as its
// error (river.JobCancel: refused Learn credentials, a portal no longer
// syncable), which the app does when another attempt cannot help. A job
// cancelled from outside (CancelPortalJobs, River UI) did not fail: River
// marks every such job with cancel_attempted_at, running or not, and a
// waiting retry cancelled so keeps the errors of its earlier attempts.
func Failed(j *rivertype.JobRow) bool {
	switch j.State {
	case rivertype.JobStateRetryable, rivertype.JobStateDiscarded:
		return true
	case rivertype.JobStateCancelled:
		var m map[string]json.RawMessage
		_ = json.Unmarshal(j.Metadata, &m)
		_, remote := m["cancel_attempted_at"]
		return len(j.Errors) > 0 && !remote
	}
	return false
}

// FailedJobs lists the latest jobs that failed (Failed), the latest
// failure first. River orders a list by one column only, so the order by
// failure time is SQL that picks the ids; River reads the jobs.
func (q *Queue) FailedJobs(ctx context.Context, limit int) ([]*rivertype.JobRow, error) {
	rows, err := q.db.Query(ctx, `SELECT id FROM river_job WHERE `+failedJobs+`
		ORDER BY coalesce(finalized_at, attempted_at, created_at) DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list failed jobs: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("list failed jobs: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	res, err := q.rc.JobList(ctx, river.NewJobListParams().IDs(ids...).First(len(ids)))
	if err != nil {
		return nil, fmt.Errorf("list failed jobs: %w", err)
	}
	at := make(map[int64]int, len(ids))
	for i, id := range ids {
		at[id] = i
	}
	out := res.Jobs
	slices.SortFunc(out, func(a, b *rivertype.JobRow) int { return cmp.Compare(at[a.ID], at[b.ID]) })
	return out, nil
}

// portalJobsMax bounds the unfinished jobs of a portal read at once; the
// unique options keep them to a handful.
const portalJobsMax = 1000

// PortalSyncJob returns the portal's unfinished sync or preview job, a
// running one first, then the one due first; nil when there is none.
func (q *Queue) PortalSyncJob(ctx context.Context, portalID int64) (*rivertype.JobRow, error) {
	res, err := q.rc.JobList(ctx, river.NewJobListParams().Kinds(syncKinds...).States(queues.Unfinished()...).
		Where(ofPortal(portalID)).
		First(portalJobsMax))
	if err != nil {
		return nil, fmt.Errorf("read portal jobs: %w", err)
	}
	var best *rivertype.JobRow
	for _, j := range res.Jobs {
		if best == nil || syncJobBefore(j, best) {
			best = j
		}
	}
	return best, nil
}

func syncJobBefore(a, b *rivertype.JobRow) bool {
	ar, br := a.State == rivertype.JobStateRunning, b.State == rivertype.JobStateRunning
	if ar != br {
		return ar
	}
	if !a.ScheduledAt.Equal(b.ScheduledAt) {
		return a.ScheduledAt.Before(b.ScheduledAt)
	}
	return a.ID < b.ID
}

// CancelPortalJobs cancels in tx every unfinished job whose args name the
// portal (every job kind of a portal carries portal_id). A running job is
// flagged, and River cancels its worker's context.
func (q *Queue) CancelPortalJobs(ctx context.Context, tx pgx.Tx, portalID int64) error {
	params := river.NewJobListParams().States(queues.Unfinished()...).
		Where(ofPortal(portalID)).First(portalJobsMax)
	for {
		res, err := q.rc.JobListTx(ctx, tx, params)
		if err != nil {
			return fmt.Errorf("list portal jobs: %w", err)
		}
		for _, j := range res.Jobs {
			if _, err := q.rc.JobCancelTx(ctx, tx, j.ID); err != nil {
				return fmt.Errorf("cancel job %d: %w", j.ID, err)
			}
		}
		if len(res.Jobs) < portalJobsMax {
			return nil
		}
		params = params.After(res.LastCursor)
	}
}

// FinishedStates are River's states of jobs that will not run again.
var FinishedStates = []rivertype.JobState{
	rivertype.JobStateCancelled, rivertype.JobStateCompleted, rivertype.JobStateDiscarded,
}

// DeletePortalJobs deletes in tx every finished job of the portal, for the
// erase of a clean uninstall: their args and attempt errors hold the
// portal's data (an alert address, a remote server's message), and River
// would keep them for its retention (a discarded job a week). A job is the
// portal's when its args name it, or, for an uninstall check, whose args
// name the event and not the portal (UninstallCheckArgs), when they name
// one of its uninstall events. Jobs not finished are CancelPortalJobs'; a
// running one is left to end.
func (q *Queue) DeletePortalJobs(ctx context.Context, tx pgx.Tx, portalID int64) error {
	checks := river.NewJobDeleteManyParams().States(FinishedStates...).Kinds(UninstallCheckArgs{}.Kind()).
		Where(`args->'event_id' IN (SELECT to_jsonb(e.id) FROM uninstall_events e WHERE e.portal_id = @portal_id)`,
			river.NamedArgs{"portal_id": portalID}).First(portalJobsMax)
	for _, params := range []*river.JobDeleteManyParams{
		river.NewJobDeleteManyParams().States(FinishedStates...).Where(ofPortal(portalID)).First(portalJobsMax),
		checks,
	} {
		for {
			res, err := q.rc.JobDeleteManyTx(ctx, tx, params)
			if err != nil {
				return fmt.Errorf("delete portal jobs: %w", err)
			}
			if len(res.Jobs) < portalJobsMax {
				break
			}
		}
	}
	return nil
}

// CountPortalJobs counts the portal's unfinished jobs of one kind in tx;
// the caller holds the portal's row lock, so the count stays true until
// it inserts.
func (q *Queue) CountPortalJobs(ctx context.Context, tx pgx.Tx, portalID int64, kind string) (int, error) {
	names := stateNames(queues.Unfinished())
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM river_job
		WHERE kind = $1 AND state = ANY($2::river_job_state[]) AND `+portalArgs("args", "$3"),
		kind, names, portalID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count portal %s jobs: %w", kind, err)
	}
	return n, nil
}

// CountPortalJobsSince counts in tx the portal's jobs of one kind queued
// in the last window, finished or not, by the database's clock (River's
// created_at is the database's). River keeps finished jobs a day at least,
// so a window up to that sees them all.
func (q *Queue) CountPortalJobsSince(ctx context.Context, tx pgx.Tx, portalID int64, kind string, window time.Duration) (int, error) {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM river_job
		WHERE kind = $1 AND created_at > now() - make_interval(secs => $2) AND `+portalArgs("args", "$3"),
		kind, window.Seconds(), portalID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count portal %s jobs of the last %s: %w", kind, window, err)
	}
	return n, nil
}

// CountJobs counts the jobs in the given states (all when none) by kind,
// then state. River has no count call.
func (q *Queue) CountJobs(ctx context.Context, states ...rivertype.JobState) (map[string]map[rivertype.JobState]int64, error) {
	if len(states) == 0 {
		states = rivertype.JobStates()
	}
	names := stateNames(states)
	rows, err := q.db.Query(ctx, `SELECT kind, state::text, count(*) FROM river_job
		WHERE state = ANY($1::river_job_state[]) GROUP BY kind, state`, names)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	out := map[string]map[rivertype.JobState]int64{}
	var kind, state string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&kind, &state, &n}, func() error {
		if out[kind] == nil {
			out[kind] = map[rivertype.JobState]int64{}
		}
		out[kind][rivertype.JobState(state)] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	return out, nil
}

// orphanGrace is how long a sync job may be running before its portal's
// lock must be held: a live sync takes the lock at once.
const orphanGrace = 30 * time.Second

// syncKinds are the job kinds that run syncer.Run under its portal lock.
var syncKinds = []string{ScheduledSyncArgs{}.Kind(), SyncArgs{}.Kind(), PreviewArgs{}.Kind(), ProvisionArgs{}.Kind()}

// ReapOrphans hands back sync jobs whose process died. River only rescues a
// running job after the worker's timeout (hours for a sync), and while the
// job looks running, "Sync now" is merged into it. A live sync always holds
// its portal's advisory lock on a connection of its own; PostgreSQL drops
// that lock when the process dies. So a sync job running for over a minute
// with no lock held is an orphan: it is made available again at once, and
// another process resumes it (syncs are resumable). River has no call that
// looks at locks, so this is SQL.
func ReapOrphans(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (int, error) {
	rows, err := pool.Query(ctx, `
		UPDATE river_job j
		SET state = 'available', scheduled_at = now(),
		    errors = array_append(j.errors, jsonb_build_object('at', now(), 'attempt', j.attempt,
		        'error', 'the process running this sync stopped; resumed by another process', 'trace', ''))
		WHERE j.state = 'running' AND j.kind = ANY($1) AND j.attempted_at < now() - make_interval(secs => $2)
		  AND NOT EXISTS (
		      SELECT 1 FROM pg_locks l
		      WHERE l.locktype = 'advisory' AND l.granted
		        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		        AND l.classid = $3::bigint::oid AND l.objsubid = 2
		        AND `+portalArgs("j.args", "l.objid")+`)
		RETURNING j.id, j.args`, syncKinds, orphanGrace.Seconds(), int64(syncer.LockKey))
	if err != nil {
		return 0, fmt.Errorf("reap orphaned syncs: %w", err)
	}
	n := 0
	var j rivertype.JobRow
	_, err = pgx.ForEachRow(rows, []any{&j.ID, &j.EncodedArgs}, func() error {
		log.WarnContext(ctx, "resuming a sync whose process stopped", "job_id", j.ID, "portal_id", PortalOf(&j))
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("reap orphaned syncs: %w", err)
	}
	return n, nil
}
