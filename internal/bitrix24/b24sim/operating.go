package b24sim

import (
	"net/http"
	"strings"
	"time"
)

// OperatingLimit models Bitrix24's limit on a method's execution time
// (docs/bitrix24-api.md): every call of a method adds its cost to the method's
// "operating" time; once that reaches Limit, further calls of the method,
// plain or inside a batch, get HTTP 429 OPERATION_TIME_LIMIT until the
// window ends at operating_reset_at. Other methods run on. Every answer's
// time block reports the method's operating time and reset time, as the
// cloud does. The real limit is configuration (480 s was the documented
// example), and Bitrix24 counts it in one-minute buckets over ten minutes;
// the simulator keeps one window per method that starts at its first call.
type OperatingLimit struct {
	Limit  time.Duration            // 0: no limit (operating time is still reported)
	Window time.Duration            // default 10 min
	Cost   map[string]time.Duration // per call of a method (lower case)
	// DefaultCost is the cost of methods not in Cost.
	DefaultCost time.Duration
}

type opState struct {
	used    time.Duration
	resetAt time.Time // whole seconds, as operating_reset_at
}

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

// OperatingResetAt is when the method's current window ends (zero before
// its first call).
func (p *Portal) OperatingResetAt(method string) time.Time {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if st := p.ops[strings.ToLower(method)]; st != nil {
		return st.resetAt
	}
	return time.Time{}
}

// opWindow is the method's current window, a new one once the last ended (s.mu held).
func (s *Sim) opWindow(p *Portal, method string) *opState {
	now := s.now()
	st := p.ops[method]
	if st == nil || !now.Before(st.resetAt) {
		window := p.opLimit.Window
		if window <= 0 {
			window = 10 * time.Minute
		}
		reset := now.Add(window)
		if t := reset.Truncate(time.Second); t.Before(reset) {
			reset = t.Add(time.Second) // operating_reset_at is whole seconds
		}
		st = &opState{resetAt: reset}
		p.ops[method] = st
	}
	return st
}

// execTimed runs a method under the operating limit (s.mu held).
func (s *Sim) execTimed(p *Portal, userID int64, webhook bool, method string, params map[string]any) (*restOK, *restErr) {
	st := s.opWindow(p, method)
	if l := p.opLimit.Limit; l > 0 && st.used >= l {
		p.opRefused++
		return nil, &restErr{http.StatusTooManyRequests, "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit."}
	}
	ok, e := s.exec(p, userID, webhook, method, params)
	cost, found := p.opLimit.Cost[method]
	if !found {
		cost = p.opLimit.DefaultCost
	}
	st.used += cost
	return ok, e
}

// methodTime is the time block of an answer of method (s.mu held).
func (s *Sim) methodTime(p *Portal, method string) map[string]any {
	st := s.opWindow(p, method)
	tb := timeBlock()
	tb["operating"] = st.used.Seconds()
	tb["operating_reset_at"] = st.resetAt.Unix()
	return tb
}
