package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// DispatchArgs is the periodic job that turns due slots into sync jobs.
type DispatchArgs struct{}

func (DispatchArgs) Kind() string { return "dispatch" }

// InsertOpts keep at most one dispatch job waiting: ticks that pile up while
// workers are busy are one tick.
func (DispatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateScheduled, rivertype.JobStateRetryable,
	}}}
}

// ScheduledSyncArgs is a scheduled sync; unique by (portal, slot) in every
// state, completed included, so a slot runs exactly once.
type ScheduledSyncArgs struct {
	PortalID int64  `json:"portal_id" river:"unique"`
	Slot     string `json:"slot" river:"unique"`
}

func (ScheduledSyncArgs) Kind() string { return "sync_scheduled" }

func (ScheduledSyncArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// SlotFormat names a slot: its UTC date and time.
const SlotFormat = "2006-01-02T15:04Z"

// Dispatcher finds the portals whose UTC run times fell due since the last
// tick and inserts one sync job per portal and slot.
type Dispatcher struct {
	Log  *slog.Logger
	Pool *pgxpool.Pool
	// CatchUpWindow bounds how late a missed slot still runs.
	CatchUpWindow time.Duration
	// Now is the dispatcher's clock; tests drive it.
	Now func() time.Time
	// SlotEvery, when set (the demo), makes every multiple of it a slot for
	// every syncable portal instead of the portal's own run times.
	SlotEvery time.Duration
}

// schedule is one portal's run times of day, as offsets from midnight UTC.
type schedule struct {
	portalID int64
	times    []time.Duration
}

// DueSlots returns the slot instants of one schedule in (from, to] that are
// no older than window at to. It is pure and does the date arithmetic.
func DueSlots(times []time.Duration, from, to time.Time, window time.Duration) []time.Time {
	if !to.After(from) {
		return nil
	}
	earliest := from
	if w := to.Add(-window); w.After(earliest) {
		earliest = w.Add(-time.Nanosecond) // a slot exactly window old still runs
	}
	var due []time.Time
	for day := truncDay(earliest); !day.After(to); day = day.AddDate(0, 0, 1) {
		for _, t := range times {
			at := day.Add(t)
			if at.After(earliest) && at.After(from) && !at.After(to) {
				due = append(due, at)
			}
		}
	}
	return due
}

func truncDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// Tick dispatches the slots due in (last tick, now] and moves the watermark.
// It returns the number of sync jobs inserted. Two processes ticking at once
// serialise on the watermark row; unique jobs are a second guard.
func (d *Dispatcher) Tick(ctx context.Context, client *river.Client[pgx.Tx]) (int, error) {
	now := d.Now().UTC()
	tx, err := d.Pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)

	var last time.Time
	err = tx.QueryRow(ctx, `SELECT last_tick_at FROM dispatcher_state WHERE id FOR UPDATE`).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		// First tick ever: nothing is overdue yet.
		if _, err := tx.Exec(ctx, `INSERT INTO dispatcher_state (last_tick_at) VALUES ($1) ON CONFLICT (id) DO NOTHING`, now); err != nil {
			return 0, fmt.Errorf("init watermark: %w", err)
		}
		return 0, tx.Commit(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("read watermark: %w", err)
	}
	if !now.After(last) {
		return 0, nil
	}

	schedules, err := syncableSchedules(ctx, tx)
	if err != nil {
		return 0, err
	}
	if d.SlotEvery > 0 {
		var every []time.Duration
		for t := time.Duration(0); t < 24*time.Hour; t += d.SlotEvery {
			every = append(every, t)
		}
		for i := range schedules {
			schedules[i].times = every
		}
	}
	var params []river.InsertManyParams
	for _, s := range schedules {
		for _, at := range DueSlots(s.times, last, now, d.CatchUpWindow) {
			params = append(params, river.InsertManyParams{Args: ScheduledSyncArgs{PortalID: s.portalID, Slot: at.Format(SlotFormat)}})
		}
	}
	if len(params) > 0 {
		if _, err := client.InsertManyFastTx(ctx, tx, params); err != nil {
			return 0, fmt.Errorf("insert sync jobs: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE dispatcher_state SET last_tick_at = $1 WHERE id`, now); err != nil {
		return 0, fmt.Errorf("move watermark: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	if len(params) > 0 {
		d.Log.Info("dispatched scheduled syncs", "jobs", len(params), "from", last, "to", now)
	}
	return len(params), nil
}

// syncableSchedules reads the run times of every portal that may sync:
// installed, active, configured, and with working Bitrix24 tokens.
func syncableSchedules(ctx context.Context, tx pgx.Tx) ([]schedule, error) {
	rows, err := tx.Query(ctx, `
		SELECT p.id,
		       extract(epoch FROM s.first_run)::bigint,
		       extract(epoch FROM s.second_run)::bigint
		FROM portals p
		JOIN portal_settings s ON s.portal_id = p.id
		WHERE p.install_state = 'installed' AND p.activation_state = 'active' AND NOT p.needs_reconnect
		  AND s.first_run IS NOT NULL AND s.learn_url <> '' AND s.learn_password IS NOT NULL
		  AND jsonb_array_length(s.departments->'selected') > 0`)
	if err != nil {
		return nil, fmt.Errorf("read schedules: %w", err)
	}
	defer rows.Close()
	var out []schedule
	for rows.Next() {
		var id int64
		var first int64
		var second *int64
		if err := rows.Scan(&id, &first, &second); err != nil {
			return nil, fmt.Errorf("read schedules: %w", err)
		}
		s := schedule{portalID: id, times: []time.Duration{time.Duration(first) * time.Second}}
		if second != nil {
			s.times = append(s.times, time.Duration(*second)*time.Second)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// DispatchWorker runs a tick.
type DispatchWorker struct {
	river.WorkerDefaults[DispatchArgs]
	Dispatcher *Dispatcher
}

func (w *DispatchWorker) Work(ctx context.Context, job *river.Job[DispatchArgs]) error {
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("river client: %w", err)
	}
	if _, err := w.Dispatcher.Tick(ctx, client); err != nil {
		return err
	}
	_, err = ReapOrphans(ctx, w.Dispatcher.Pool, w.Dispatcher.Log)
	return err
}

// PeriodicDispatch is the every-minute periodic job, run on start so a
// restarted service catches up at once.
func PeriodicDispatch() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Minute),
		func() (river.JobArgs, *river.InsertOpts) { return DispatchArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true, ID: "dispatch"})
}
