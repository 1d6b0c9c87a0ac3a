package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"b24learn/internal/tracing"
)

// recorded runs body under the portal's sync lock (ErrBusy while another
// run holds it) as one sync_runs row of the trigger. body fills the report
// and the Bitrix24 ids of the users it held; the row is finished with them
// and body's error even when ctx is gone, and done is logged with attrs.
// The report is returned whenever the row was written.
func (s *Syncer) recorded(ctx context.Context, portalID int64, trigger Trigger, body func(log *slog.Logger, rep *Report, held *[]int64) error, done string, attrs ...any) (*Report, error) {
	conn, err := s.cfg.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire lock connection: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2::int)`, LockKey, portalID).Scan(&locked); err != nil {
		return nil, fmt.Errorf("take sync lock: %w", err)
	}
	if !locked {
		return nil, ErrBusy
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, $2::int)`, LockKey, portalID)

	start := time.Now()
	runID, err := s.store.StartRun(ctx, portalID, trigger)
	if err != nil {
		return nil, err
	}
	rep := &Report{RunID: runID, Counts: map[string]int{}, Phases: map[string]time.Duration{}}
	// The caller's span (the River job's) says which portal and run it is;
	// every line the run logs does too, with the trace to find it by.
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int64("portal_id", portalID), attribute.Int64("run_id", runID),
		attribute.String("trigger", string(trigger)))
	// (The applier's lines name the portal themselves.)
	log := s.log.With(append([]any{slog.Int64("run_id", runID)}, tracing.LogAttrs(ctx)...)...)
	var held []int64
	runErr := body(log, rep, &held)
	rep.Duration = time.Since(start)
	errText := ""
	if runErr != nil {
		rep.Status = RunFailed
		errText = runErr.Error()
		// Stopped from outside, the run's error is only the cancel's echo
		// ("context canceled"): the row says who stopped it instead. An
		// error of the run's own keeps its text.
		if cause := StopCause(ctx, runErr); cause != "" {
			log.Info("run stopped", slog.String("cause", cause), slog.Any("error", runErr))
			errText = cause
		}
	}
	// The report is written even when the run's context is gone.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.store.FinishRun(fctx, portalID, runID, rep.Status, rep.Counts, errText, held); err != nil {
		return rep, errors.Join(runErr, err)
	}
	log.Info(done, append([]any{slog.Int64("portal_id", portalID),
		slog.String("trigger", string(trigger)), slog.String("status", rep.Status), slog.Int("writes", rep.Writes),
		slog.Duration("duration", rep.Duration), slog.Any("counts", rep.Counts)}, attrs...)...)
	return rep, runErr
}

// open loads the portal's settings and makes its clients: Learn, with its
// API address found and the field mapping fitted to the account's profile
// fields, and Bitrix24.
func (s *Syncer) open(ctx context.Context, portalID, runID int64) (Settings, Learn, Bitrix24, error) {
	set, err := s.cfg.Settings.Settings(ctx, portalID)
	if err != nil {
		return set, nil, nil, fmt.Errorf("load settings: %w", err)
	}
	lc, err := s.cfg.NewLearn(ctx, portalID, set)
	if err != nil {
		return set, nil, nil, fmt.Errorf("learn client: %w", err)
	}
	if err := s.findLearnAPI(ctx, portalID, set, lc); err != nil {
		return set, nil, nil, err
	}
	if set.FieldMap, err = s.fitFieldMap(ctx, portalID, runID, lc, set.FieldMap); err != nil {
		return set, nil, nil, err
	}
	b24, err := s.cfg.NewBitrix24(ctx, portalID)
	if err != nil {
		return set, nil, nil, fmt.Errorf("bitrix24 client: %w", err)
	}
	return set, lc, b24, nil
}
