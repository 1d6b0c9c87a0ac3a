package syncer

import (
	"container/heap"
	"context"
	"errors"
	"sync"

	"b24learn/internal/learn"
	"b24learn/internal/safe"
)

// errStuck is a schedule whose remaining steps wait for steps that cannot
// run: a fault in the dependencies given, reported instead of hanging.
var errStuck = errors.New("apply: steps wait for steps that never run")

// gate opens when the steps it counts are done; the steps behind it become
// ready then.
type gate struct {
	left    int
	waiters []int
}

// schedule runs steps with at most n at once (n <= 0 means 1). A step waits
// for its gate (nil: none) to open, without taking one of the n places
// meanwhile, so steps that wait for a refused write to be repeated do not
// keep ready ones from going out. Among the ready steps the one earliest in
// the list goes first: with the plan's order (departments before users,
// parents before children) the steps that others wait for go out first, and
// with n = 1 the steps run in list order. When step i is done, opens(i)
// lists the gates it counts towards.
//
// The first error cancels the context given to the steps running and is
// returned; steps not started by then are skipped. The last steps, fewer
// than lim's ProbeHorizon (lim may be nil), go out learn.WithoutProbe: a
// probe refused now would be repeated only after the server's Retry-After,
// when the rest is done.
func schedule(ctx context.Context, n int, lim *learn.Limiter, steps []Step, waitOn func(i int) *gate, opens func(i int) []*gate, fn func(context.Context, Step) error) error {
	if len(steps) == 0 {
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &scheduler{total: len(steps), opens: opens}
	s.cond = sync.NewCond(&s.mu)
	for i := range steps {
		if g := waitOn(i); g != nil && g.left > 0 {
			g.waiters = append(g.waiters, i)
		} else {
			s.ready = append(s.ready, i) // in order: a heap already
		}
	}
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	var wg sync.WaitGroup
	for range max(n, 1) {
		wg.Go(func() {
			for {
				i, ok := s.next(ctx)
				if !ok {
					return
				}
				sctx := ctx
				if lim != nil && s.total-s.startedNow() < lim.ProbeHorizon() {
					sctx = learn.WithoutProbe(ctx)
				}
				err := safe.Call(func() error { return fn(sctx, steps[i]) })
				if err != nil {
					s.fail(err)
					cancel()
				}
				s.done(i)
			}
		})
	}
	wg.Wait()
	if s.err != nil {
		return s.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.started < s.total {
		return errStuck
	}
	return nil
}

type scheduler struct {
	opens func(int) []*gate

	mu      sync.Mutex
	cond    *sync.Cond
	ready   readyHeap
	total   int
	started int
	running int
	err     error
}

// next waits for a ready step; false when there is none to wait for.
func (s *scheduler) next(ctx context.Context) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.err != nil || ctx.Err() != nil || s.started == s.total {
			return 0, false
		}
		if len(s.ready) > 0 {
			s.started++
			s.running++
			return heap.Pop(&s.ready).(int), true
		}
		if s.running == 0 {
			return 0, false // nothing running can open a gate: stuck
		}
		s.cond.Wait()
	}
}

func (s *scheduler) startedNow() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

func (s *scheduler) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// done counts step i towards its gates and wakes a worker per step that
// became ready (every worker once there is nothing left to wait for).
func (s *scheduler) done(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	for _, g := range s.opens(i) {
		if g.left--; g.left == 0 {
			for _, w := range g.waiters {
				heap.Push(&s.ready, w)
				s.cond.Signal()
			}
			g.waiters = nil
		}
	}
	if s.started == s.total || s.running == 0 || s.err != nil {
		s.cond.Broadcast()
	}
}

// readyHeap is a min-heap of step indexes.
type readyHeap []int

func (h readyHeap) Len() int           { return len(h) }
func (h readyHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h readyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *readyHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *readyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
