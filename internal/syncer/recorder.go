package syncer

import (
	"context"
	"errors"
	"sync"
	"time"
)

// maxGroup bounds the steps one transaction of the recorder records.
const maxGroup = 500

// recordTimeout bounds one group's transaction.
const recordTimeout = 30 * time.Second

// errRecorderClosed is a record handed over after the run's apply ended.
var errRecorderClosed = errors.New("record step: recorder closed")

// recorder records applied steps in groups (group commit): a worker hands
// its step's record over and waits until the group it joined is committed,
// so a Learn write's mapping is durable before the step counts as done and
// before any step that depends on it starts, while the steps finishing
// meanwhile share one transaction, one round trip and one fsync instead of
// one each (on 10,000 creates the per-step transactions were the workers'
// main wait).
type recorder struct {
	store    *Store
	portalID int64
	runID    int64
	ctx      context.Context // the run's, without its cancellation

	// counted, when set before the first record, hears of the steps
	// recorded (the run's progress).
	counted func(n int)

	mu     sync.Mutex
	queue  []pendingRecord
	closed bool
	kick   chan struct{}
	done   chan struct{}
}

type pendingRecord struct {
	rec  StepRecord
	done chan error
}

// newRecorder starts a recorder; close stops it. A group is committed even
// when the run is cancelled: its Learn writes happened, and their mappings
// spare the next run from finding the objects again.
func newRecorder(ctx context.Context, st *Store, portalID, runID int64) *recorder {
	r := &recorder{store: st, portalID: portalID, runID: runID, ctx: context.WithoutCancel(ctx),
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	go r.loop()
	return r
}

// record stores recs and returns once they are committed (or failed).
func (r *recorder) record(recs ...StepRecord) error {
	waits := make([]chan error, len(recs))
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errRecorderClosed
	}
	for i, rec := range recs {
		waits[i] = make(chan error, 1)
		r.queue = append(r.queue, pendingRecord{rec: rec, done: waits[i]})
	}
	select {
	case r.kick <- struct{}{}:
	default: // a flush is due already
	}
	r.mu.Unlock()
	var first error
	ok := 0
	for _, w := range waits {
		if err := <-w; err != nil && first == nil {
			first = err
		} else if err == nil {
			ok++
		}
	}
	if r.counted != nil && ok > 0 {
		r.counted(ok)
	}
	return first
}

func (r *recorder) loop() {
	defer close(r.done)
	for range r.kick {
		for {
			r.mu.Lock()
			n := min(len(r.queue), maxGroup)
			group := r.queue[:n:n]
			r.queue = r.queue[n:]
			r.mu.Unlock()
			if n == 0 {
				break
			}
			recs := make([]StepRecord, n)
			for i, p := range group {
				recs[i] = p.rec
			}
			ctx, cancel := context.WithTimeout(r.ctx, recordTimeout)
			err := r.store.RecordSteps(ctx, r.portalID, r.runID, recs)
			cancel()
			for _, p := range group {
				p.done <- err
			}
		}
	}
}

// close stops the recorder once what was handed over is recorded.
func (r *recorder) close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.kick)
	}
	r.mu.Unlock()
	<-r.done
}
