package syncer

import (
	"context"
	"log/slog"
	"math"

	"b24learn/internal/learn"
)

// writeLimited is a Learn client that can bound its writes with a limiter
// that finds the account's concurrency (*learn.Client).
type writeLimited interface {
	LimitWrites(*learn.Limiter)
	WriteLimiter() *learn.Limiter
	WriteConcurrency() learn.WriteConcurrency
}

// Counts of the run report on the Learn writes' concurrency.
const (
	CountParallelMax  = "learn.parallel_max"  // highest writes-in-flight limit reached
	CountParallelMean = "learn.parallel_mean" // mean limit per write, rounded
	CountThrottled    = "learn.throttled"     // 429s Learn answered
)

// writeLimit gives a client that can take one the account's shared limiter,
// started where the account's last run (in any process) left it, and
// returns how many steps the applier runs at once: enough to keep the
// limiter's ceiling busy while some workers record their steps. A client
// without a limiter runs at the fixed Parallelism. The caller calls release
// after its last write: until then the registry keeps the limiter, so the
// account's other runs share it.
func (s *Syncer) writeLimit(ctx context.Context, account string, lc Learn) (par int, lim *learn.Limiter, release func(), err error) {
	release = func() {}
	wl, ok := lc.(writeLimited)
	if !ok || account == "" {
		return s.cfg.Parallelism, nil, release, nil
	}
	lim = wl.WriteLimiter()
	if lim == nil {
		start := 0
		if !s.cfg.Limiters.Has(account) {
			if start, err = s.store.WriteLimit(ctx, account); err != nil {
				return 0, nil, release, err
			}
		}
		lim, release = s.cfg.Limiters.Hold(account, start)
		wl.LimitWrites(lim)
	}
	return 2 * lim.Max(), lim, release, nil
}

// reportConcurrency puts the run's write concurrency into the report and
// keeps the limit found for the account's next run. Failing to keep it costs
// only a slower start, so it is logged, not fatal.
func (s *Syncer) reportConcurrency(ctx context.Context, account string, lc Learn, lim *learn.Limiter, rep *Report) {
	wl, ok := lc.(writeLimited)
	if !ok {
		return
	}
	w := wl.WriteConcurrency()
	if w.Attempts == 0 {
		return // no writes: nothing was learnt about the account
	}
	// The client sees the limit as each write starts; the answers of the
	// last writes may still raise it, and that limit is the one kept.
	kept := lim.Limit()
	w.Max = max(w.Max, kept)
	rep.Counts[CountParallelMax] = w.Max
	rep.Counts[CountParallelMean] = int(math.Round(w.Mean))
	rep.Counts[CountThrottled] = int(w.Throttled)
	rep.Concurrency = w
	if err := s.store.SetWriteLimit(context.WithoutCancel(ctx), account, kept); err != nil {
		s.log.Warn("keep learn write limit", slog.String("account", account), slog.Any("error", err))
	}
}
