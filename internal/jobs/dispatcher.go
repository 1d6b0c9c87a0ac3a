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

	"b24learn/internal/jobs/queues"
	"b24learn/internal/schedule"
	"b24learn/internal/settings"
	"b24learn/internal/store"
)

// DispatchArgs is the periodic job that turns due slots into sync jobs.
type DispatchArgs struct{ periodicOnce }

func (DispatchArgs) Kind() string { return "dispatch" }

// ScheduledSyncArgs is a scheduled sync; unique by (portal, slot) in every
// state, completed included, so a slot runs exactly once.
type ScheduledSyncArgs struct {
	PortalID int64  `json:"portal_id" river:"unique"`
	Slot     string `json:"slot" river:"unique"`
}

func (ScheduledSyncArgs) Kind() string { return "sync_scheduled" }

// InsertOpts bounds a slot's attempts as "Sync now"'s: River's default of
// 25 spreads its backoff over weeks, past many later slots of the portal,
// while syncMaxAttempts ends within about 16 minutes of waits, and the next
// slot tries afresh.
func (ScheduledSyncArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queues.Sync, MaxAttempts: syncMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
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

// portalSchedule is one syncable portal's run times.
type portalSchedule struct {
	portalID int64
	runs     schedule.Schedule
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
	var params []river.InsertManyParams
	for _, s := range schedules {
		for _, at := range s.runs.Every(d.SlotEvery).Due(last, now, d.CatchUpWindow) {
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
		d.Log.InfoContext(ctx, "dispatched scheduled syncs", "jobs", len(params), "from", last, "to", now)
	}
	return len(params), nil
}

// syncableSchedules reads the run times of every portal settings.Syncable
// admits. The query only narrows the portals to those its partial index
// covers; the rule itself is Syncable's.
func syncableSchedules(ctx context.Context, tx pgx.Tx) ([]portalSchedule, error) {
	portals, err := store.QueryAll(ctx, tx, "read syncable portals", func(row pgx.Row) (store.Portal, error) {
		var p store.Portal
		err := row.Scan(&p.ID, &p.InstallState, &p.ActivationState, &p.NeedsReconnect)
		return p, err
	}, `
		SELECT id, install_state, activation_state, needs_reconnect FROM portals
		WHERE install_state = 'installed' AND activation_state = 'active' AND NOT needs_reconnect
		ORDER BY id`)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(portals))
	for i, p := range portals {
		ids[i] = p.ID
	}
	saved, err := settings.LoadMany(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	var out []portalSchedule
	for _, p := range portals {
		st := saved[p.ID]
		if ok, _ := settings.Syncable(p, st); ok {
			out = append(out, portalSchedule{portalID: p.ID, runs: st.Schedule})
		}
	}
	return out, nil
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
