package remote

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// TimeoutError is a request whose deadline ended it after the server took
// the connection: a server that drips its answer ends like one that never
// answers. It matches Cause (the client's ErrTimeout) and
// context.DeadlineExceeded.
type TimeoutError struct {
	Cause error
	After time.Duration // how long the request ran
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%v (no complete answer after %s)", e.Cause, e.After.Round(time.Millisecond))
}

func (e *TimeoutError) Is(target error) bool {
	return target == e.Cause || target == context.DeadlineExceeded
}

// Timeout marks it as a timeout for net.Error checks.
func (e *TimeoutError) Timeout() bool { return true }

// Slowness is what slow answers have cost one client (a run's, a
// preview's, a check's). A server slow on purpose can then hold the client
// for a few deadlines, not until the job's timeout, while a healthy server
// that is slow now and then is not cut off: a request its deadline ended
// costs TimeoutCost, a whole answer that took more than half its deadline 1,
// and the client sends nothing more once DefaultSlowBudget (or its own
// budget) is spent: four timeouts, or twenty slow answers.
type Slowness struct{ cost atomic.Int64 }

const (
	TimeoutCost       = 5
	DefaultSlowBudget = 4 * TimeoutCost
)

// Note records one request: timedOut when its deadline ended it after the
// server took the connection, else how long it took against its deadline.
func (s *Slowness) Note(timedOut bool, took, deadline time.Duration) {
	switch {
	case timedOut:
		s.cost.Add(TimeoutCost)
	case took > deadline/2:
		s.cost.Add(1)
	}
}

// Spent reports whether budget is used up, and how much was spent.
func (s *Slowness) Spent(budget int) (int64, bool) {
	n := s.cost.Load()
	return n, n >= int64(budget)
}
