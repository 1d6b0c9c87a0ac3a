package b24sim

import (
	"net/http"
	"strings"
	"time"
)

// OperatingLimit models Bitrix24's limit on a method's execution time
// (docs/bitrix24-api.md): every call of a method adds its cost to the method's
// "operating" time, counted in ten one-minute buckets; once the buckets of
// the last ten minutes reach Limit, further calls of the method, plain or
// inside a batch, get HTTP 429 OPERATION_TIME_LIMIT, while other methods run
// on. Every answer's time block reports the method's operating time and, as
// operating_reset_at, when its oldest bucket leaves the window: a portion of
// the time is released then, which may leave the method still blocked. The
// real limit is configuration (480 s was the documented example).
type OperatingLimit struct {
	Limit  time.Duration            // 0: no limit (operating time is still reported)
	Window time.Duration            // default 10 min, counted in ten buckets
	Cost   map[string]time.Duration // per call of a method (lower case)
	// DefaultCost is the cost of methods not in Cost.
	DefaultCost time.Duration
}

// opState is a method's operating time: the cost in each bucket, by the
// bucket's start.
type opState struct {
	buckets map[int64]time.Duration // unix nanoseconds of a bucket's start → cost
}

// opBuckets is how many buckets a window holds.
const opBuckets = 10

// SetOperatingLimit sets the portal's operating limit and starts every
// method's window afresh.
func (p *Portal) SetOperatingLimit(l OperatingLimit) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if l.Window <= 0 {
		l.Window = 10 * time.Minute
	}
	p.opLimit = l
	p.ops = map[string]*opState{}
}

// OperatingRefusals counts the calls answered OPERATION_TIME_LIMIT.
func (p *Portal) OperatingRefusals() int {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return p.opRefused
}

// OperatingResetAt is when the method's oldest counted bucket leaves the
// window, releasing its part of the time (zero before its first call).
func (p *Portal) OperatingResetAt(method string) time.Time {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if st := p.ops[strings.ToLower(method)]; st != nil {
		_, reset := p.sim.opUsed(p, st)
		return reset
	}
	return time.Time{}
}

// opBucket is the width of one bucket.
func (p *Portal) opBucket() time.Duration {
	w := p.opLimit.Window
	if w <= 0 {
		w = 10 * time.Minute
	}
	return w / opBuckets
}

// opUsed drops the method's buckets that left the window and returns the
// time the others hold and when the oldest of them leaves (whole seconds,
// as operating_reset_at; the current bucket's end when none holds any) (s.mu held).
func (s *Sim) opUsed(p *Portal, st *opState) (used time.Duration, reset time.Time) {
	now := s.now()
	width := p.opBucket()
	current := now.Truncate(width)
	oldest := current
	for start, cost := range st.buckets {
		b := time.Unix(0, start)
		if !b.Add(opBuckets * width).After(now) {
			delete(st.buckets, start)
			continue
		}
		used += cost
		if b.Before(oldest) {
			oldest = b
		}
	}
	reset = oldest.Add(opBuckets * width)
	if t := reset.Truncate(time.Second); t.Before(reset) {
		reset = t.Add(time.Second)
	}
	return used, reset
}

// opState is the method's state, made on its first call (s.mu held).
func (s *Sim) opState(p *Portal, method string) *opState {
	st := p.ops[method]
	if st == nil {
		st = &opState{buckets: map[int64]time.Duration{}}
		p.ops[method] = st
	}
	return st
}

// execTimed runs a method under the operating limit (s.mu held).
func (s *Sim) execTimed(p *Portal, userID int64, webhook bool, method string, params map[string]any) (*restOK, *restErr) {
	st := s.opState(p, method)
	if used, _ := s.opUsed(p, st); p.opLimit.Limit > 0 && used >= p.opLimit.Limit {
		p.opRefused++
		return nil, &restErr{http.StatusTooManyRequests, "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit."}
	}
	ok, e := s.exec(p, userID, webhook, method, params)
	cost, found := p.opLimit.Cost[method]
	if !found {
		cost = p.opLimit.DefaultCost
	}
	if cost > 0 {
		st.buckets[s.now().Truncate(p.opBucket()).UnixNano()] += cost
	}
	return ok, e
}

// methodTime is the time block of an answer of method (s.mu held).
func (s *Sim) methodTime(p *Portal, method string) map[string]any {
	used, reset := s.opUsed(p, s.opState(p, method))
	tb := timeBlock(p.zone())
	tb["operating"] = used.Seconds()
	tb["operating_reset_at"] = reset.Unix()
	return s.unsettled().timeBlock(tb)
}
