package syncer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Phase is what a running run is doing, as the status panel names it.
type Phase string

const (
	// PhaseReadLearn: Learn is read (its departments first, and its users
	// when Bitrix24 has been read already).
	PhaseReadLearn Phase = "read_learn"
	// PhaseRead: Bitrix24 and Learn are read at once.
	PhaseRead Phase = "read"
	// PhaseReadBitrix24: Learn is read; Bitrix24 still is.
	PhaseReadBitrix24 Phase = "read_bitrix24"
	PhasePlan         Phase = "plan"
	// PhaseWrite: the plan's steps go to Learn; planned and done count them.
	PhaseWrite Phase = "write"
	// PhaseFinish: the writes are done; the report is being completed.
	PhaseFinish Phase = "finish"
)

// ProgressEvery is how often, at most, a writing run's done count is stored:
// the panel polls every 2 s, and a write per step would cost 10,000 UPDATEs
// on a first sync of 10,000 employees.
const ProgressEvery = time.Second

// progress stores a running run's phase and, while it writes, its done
// count. A failure to store progress is logged and does not fail the run:
// the panel only shows it.
type progress struct {
	store    *Store
	log      *slog.Logger
	portalID int64
	runID    int64
	every    time.Duration
	ctx      context.Context // the run's, without its cancellation

	mu    sync.Mutex // orders the phase writes as they were decided
	phase Phase

	done     atomic.Int64
	stop     chan struct{}
	finished chan struct{}
}

func newProgress(ctx context.Context, st *Store, log *slog.Logger, portalID, runID int64, every time.Duration) *progress {
	if every <= 0 {
		every = ProgressEvery
	}
	return &progress{store: st, log: log, portalID: portalID, runID: runID, every: every, ctx: context.WithoutCancel(ctx)}
}

// to marks the phase p.
func (p *progress) to(ph Phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.set(ph)
}

// narrow marks ph only while the run is still in from: the two reads end in
// either order, and a late mark must not undo a later phase.
func (p *progress) narrow(from, ph Phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.phase == from {
		p.set(ph)
	}
}

func (p *progress) set(ph Phase) {
	if p.phase == ph {
		return
	}
	p.phase = ph
	if err := p.store.SetPhase(p.ctx, p.portalID, p.runID, ph); err != nil {
		p.log.Warn("record sync phase", slog.Int64("portal_id", p.portalID), slog.Int64("run_id", p.runID), slog.Any("error", err))
	}
}

// writing marks the write phase with its planned steps and stores the done
// count every p.every until finish.
func (p *progress) writing(planned int) {
	p.mu.Lock()
	p.phase = PhaseWrite
	err := p.store.StartWrites(p.ctx, p.portalID, p.runID, planned)
	p.mu.Unlock()
	if err != nil {
		p.log.Warn("record sync phase", slog.Int64("portal_id", p.portalID), slog.Int64("run_id", p.runID), slog.Any("error", err))
	}
	p.stop, p.finished = make(chan struct{}), make(chan struct{})
	go p.loop()
}

// add counts n steps done (recorded).
func (p *progress) add(n int) { p.done.Add(int64(n)) }

func (p *progress) loop() {
	defer close(p.finished)
	t := time.NewTicker(p.every)
	defer t.Stop()
	var stored int64
	for {
		select {
		case <-p.stop:
			p.flush(&stored)
			return
		case <-t.C:
			p.flush(&stored)
		}
	}
}

// flush stores the done count when it moved since the last store.
func (p *progress) flush(stored *int64) {
	n := p.done.Load()
	if n == *stored {
		return
	}
	if err := p.store.SetDone(p.ctx, p.portalID, p.runID, int(n)); err != nil {
		p.log.Warn("record sync progress", slog.Int64("portal_id", p.portalID), slog.Int64("run_id", p.runID), slog.Any("error", err))
		return
	}
	*stored = n
}

// finish stores the last done count and marks the finish phase.
func (p *progress) finish() {
	if p.stop != nil {
		close(p.stop)
		<-p.finished
		p.stop = nil
	}
	p.to(PhaseFinish)
}

// Applied is the number of steps the applier carries out (and records
// one report row each): all but the held ones.
func (p *Plan) Applied() int {
	n := 0
	for _, s := range p.Steps {
		if !s.Held {
			n++
		}
	}
	return n
}

// RunProgress is a running run's progress as stored.
type RunProgress struct {
	Phase   Phase
	Planned int
	Done    int
	// Elapsed is the time since the writes started, by the database's
	// clock (the syncer's process may run on another machine); 0 before.
	// Done may lag it by up to ProgressEvery, which errs on the long side.
	Elapsed time.Duration
}

// Minimum evidence before the time left is estimated: the first seconds of
// the writes (a Learn client finding its limit, department creates that go
// one level at a time) say little about the rate of the rest.
const (
	estimateAfter   = 5 * time.Second
	estimateMinDone = 20
)

// Left estimates the time the rest of the writes takes at the rate of those
// done so far; ok is false while there is too little to go by.
func (p RunProgress) Left() (left time.Duration, ok bool) {
	switch {
	case p.Phase != PhaseWrite || p.Planned <= 0:
		return 0, false
	case p.Done >= p.Planned:
		return 0, true
	case p.Done < estimateMinDone || p.Elapsed < estimateAfter:
		return 0, false
	}
	perStep := float64(p.Elapsed) / float64(p.Done)
	return time.Duration(perStep * float64(p.Planned-p.Done)), true
}

// SetPhase records the phase of a running run.
func (s *Store) SetPhase(ctx context.Context, portalID, runID int64, ph Phase) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sync_runs SET phase = $3 WHERE portal_id = $1 AND id = $2 AND status = 'running'`,
		portalID, runID, string(ph)); err != nil {
		return fmt.Errorf("set run phase %s: %w", ph, err)
	}
	return nil
}

// StartWrites records that a run writes its planned steps from now on.
func (s *Store) StartWrites(ctx context.Context, portalID, runID int64, planned int) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sync_runs SET phase = 'write', planned = $3, done = 0, write_started_at = now()
		WHERE portal_id = $1 AND id = $2 AND status = 'running'`, portalID, runID, planned); err != nil {
		return fmt.Errorf("start run writes: %w", err)
	}
	return nil
}

// SetDone records how many of a running run's planned steps are done.
func (s *Store) SetDone(ctx context.Context, portalID, runID int64, done int) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sync_runs SET done = $3 WHERE portal_id = $1 AND id = $2 AND status = 'running'`,
		portalID, runID, done); err != nil {
		return fmt.Errorf("set run done count: %w", err)
	}
	return nil
}

// Progress reads a run's progress.
func (s *Store) Progress(ctx context.Context, portalID, runID int64) (RunProgress, error) {
	var p RunProgress
	var phase string
	var secs float64
	err := s.pool.QueryRow(ctx, `SELECT phase, planned, done,
		COALESCE(extract(epoch FROM now() - write_started_at), 0)::float8
		FROM sync_runs WHERE portal_id = $1 AND id = $2`, portalID, runID).Scan(&phase, &p.Planned, &p.Done, &secs)
	if err != nil {
		return p, fmt.Errorf("read run progress: %w", err)
	}
	p.Phase = Phase(phase)
	p.Elapsed = time.Duration(secs * float64(time.Second))
	return p, nil
}
