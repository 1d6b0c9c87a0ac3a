package learn

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// Learn publishes no rate limits, so the writes in flight to one account are
// not fixed: a Limiter finds how many the account sustains as it goes, the
// way TCP finds a path's window (docs/learn-api.md, "Write concurrency").
// It starts low, grows while answers come back near the fastest latency seen
// and succeed, and backs off multiplicatively on 429, 503, timeouts or when
// latency climbs. A 429 lowers the limit gently, to just under the
// concurrency that met it, and probing above resumes a few round trips later:
// the limit settles in a sawtooth where a small share of writes is refused.
// Holding well under a server's cap costs more than the odd 429, because the
// server counts its cap over requests it holds, while the client's count also
// includes the time each request spends on the way and on the client.

// Limiter defaults.
const (
	DefaultMaxParallel  = 32
	defaultInitialLimit = 4
	// Without a fixed ProbeAfter, growth resumes probeRTTs mean round trips
	// after a drop, within [minProbeAfter, maxProbeAfter].
	probeRTTs     = 10
	minProbeAfter = 100 * time.Millisecond
	maxProbeAfter = 2 * time.Second
	// An answer within growTolerance × the fastest latency is "near the
	// floor"; a running mean past slowTolerance × the floor is a queue
	// forming at the server.
	growTolerance  = 1.5
	slowTolerance  = 2.0
	throttleFactor = 0.9  // on a 429: a cap met, most requests still pass
	dropFactor     = 0.75 // on a 503 or a timeout: the server is overloaded
	slowFactor     = 0.9  // on climbing latency: gentler, it may be noise
	ewmaWeight     = 0.2
	// The floor is the fastest answer of the last floorWindow samples, so
	// that a server that became slower for good is not held to its old best.
	floorWindow = 1000
	minFloor    = 5 * time.Millisecond
)

// LimiterOptions configure a Limiter. Zero fields take the defaults.
type LimiterOptions struct {
	Initial    int           // starting limit, default 4 (clamped to [1, Max])
	Max        int           // ceiling (LEARN_MAX_PARALLEL), default DefaultMaxParallel
	ProbeAfter time.Duration // hold under a refused concurrency this long, default 10 round trips in [100ms, 2s]
	Now        func() time.Time
}

// Outcome is how one request went, for Permit.Done.
type Outcome struct {
	// Dropped: the server refused or could not take the request (429, 503,
	// a timeout). Throttled marks a 429 among them, for the run report.
	Dropped, Throttled bool
	RetryAfter         time.Duration // of a 429 or 503, 0 when absent
	// ServerTime is how long the server says it took (Server-Timing), 0 when
	// it does not say. When given it is the latency sample instead of the
	// round trip: the client's own delays (a busy host, the network) are not
	// a queue at the server and must not shrink the limit.
	ServerTime time.Duration
	// Ignore: no sample (the caller gave up, or a failure that says nothing
	// about the server's load, like a refused connection).
	Ignore bool
}

// LimiterStats are a Limiter's figures since it was made.
type LimiterStats struct {
	Limit     int   // now
	Max       int   // highest limit reached
	Requests  int64 // permits taken
	Throttled int64 // 429s
	Drops     int64 // 429s, 503s and timeouts
}

// Limiter bounds the requests in flight to one Learn account. It is safe for
// concurrent use; share one per account (see Limiters).
type Limiter struct {
	max        int
	probeAfter time.Duration
	now        func() time.Time

	mu        sync.Mutex
	wake      chan struct{} // closed and replaced when a waiter may proceed
	limit     float64
	inflight  int
	epoch     int  // bumped by every decrease; samples of older epochs do not decrease again
	slowStart bool // until the first decrease: +1 per sample, doubling per round trip
	floor     time.Duration
	winMin    time.Duration
	winN      int
	ewma      float64 // of latency, in ns
	// After a drop the limit stays at most hold until holdUntil; hold is
	// also the concurrency WithoutProbe writes stay under, and follows the
	// limit (less one) once it has stood above hold a further probe wait
	// without a refusal (the server's capacity grew).
	hold      int
	holdUntil time.Time
	dropAt    time.Time // last decrease on a drop, and the Retry-After it came with
	dropWait  time.Duration
	// dropInflight: requests in flight when the requests the last drop
	// answered were sent (the fewest among its round's refused ones);
	// dropEpoch is the epoch that drop began, dropSlow whether it ended
	// slow start.
	dropInflight int
	dropEpoch    int
	dropSlow     bool
	// retryAfter is the last Retry-After a 429 or 503 named (ProbeHorizon).
	retryAfter time.Duration
	okEpoch    bool      // a request sent since the last decrease succeeded
	paused     time.Time // no permits before this (the server asked to wait)
	used       time.Time // last asked for a permit, given one back, or got from Limiters
	holds      int       // runs holding it (Limiters.Hold)
	st         LimiterStats
}

// NewLimiter returns a limiter at o.Initial.
func NewLimiter(o LimiterOptions) *Limiter {
	if o.Max <= 0 {
		o.Max = DefaultMaxParallel
	}
	if o.Initial <= 0 {
		o.Initial = defaultInitialLimit
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Limiter{max: o.Max, probeAfter: o.ProbeAfter, now: o.Now, wake: make(chan struct{}),
		limit: float64(min(max(o.Initial, 1), o.Max)), slowStart: true}
	l.st.Max = int(l.limit)
	l.used = o.Now()
	return l
}

func (l *Limiter) touch(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used = now
}

// unusedSince is when l was last used, and false while it must not be
// dropped: a run holding it, a request in flight, or a pause the server
// asked for (a waiter may be waiting it out).
func (l *Limiter) unusedSince(now time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used, l.holds == 0 && l.inflight == 0 && !now.Before(l.paused)
}

// Max is the ceiling.
func (l *Limiter) Max() int { return l.max }

// Limit is the current limit.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

// Stats returns the figures so far.
func (l *Limiter) Stats() LimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.st
	s.Limit = int(l.limit)
	return s
}

// ProbeHorizon is how many writes the limiter expects to send within the
// Retry-After of the last 429 or 503 (a quarter more, for the retries'
// jitter and the last round trips), 0 before any refusal that named one. A
// write refused on a probe above the server's concurrency is repeated only
// after that wait, so a batch with fewer writes left than this would end
// later, not sooner, for probing: its last writes go out WithoutProbe.
func (l *Limiter) ProbeHorizon() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hold == 0 || l.retryAfter <= 0 || l.ewma <= 0 {
		return 0
	}
	return int(math.Ceil(1.25 * l.limit * float64(l.retryAfter) / l.ewma))
}

// Permit is one request's place under the limit; Done gives it back.
type Permit struct {
	l        *Limiter
	start    time.Time
	epoch    int
	inflight int // requests in flight with this one, when it was given
	limit    int
	noProbe  bool // given under WithoutProbe: its answer does not grow the limit past hold
	once     sync.Once
}

// Limit is the limit the permit was given under.
func (p *Permit) Limit() int { return p.limit }

type noProbeKey struct{}

// WithoutProbe marks the writes made with ctx as ones that should not probe
// above the concurrency a refusal last showed the server takes: the last
// writes of a batch, whose refusal would end the batch only after the
// server's Retry-After (see Limiter.ProbeHorizon). Before any refusal it
// changes nothing.
func WithoutProbe(ctx context.Context) context.Context {
	return context.WithValue(ctx, noProbeKey{}, true)
}

func withoutProbe(ctx context.Context) bool {
	v, _ := ctx.Value(noProbeKey{}).(bool)
	return v
}

func (l *Limiter) tryAcquire(noProbe bool) (*Permit, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.used = now
	if now.Before(l.paused) {
		return nil, l.paused.Sub(now)
	}
	if l.inflight >= int(l.limit) || noProbe && l.hold > 0 && l.inflight >= l.hold {
		return nil, 0
	}
	l.inflight++
	l.st.Requests++
	return &Permit{l: l, start: now, epoch: l.epoch, inflight: l.inflight, limit: int(l.limit), noProbe: noProbe}, 0
}

// Acquire waits for a permit (under the last refusal's concurrency when ctx
// comes from WithoutProbe).
func (l *Limiter) Acquire(ctx context.Context) (*Permit, error) {
	noProbe := withoutProbe(ctx)
	for {
		l.mu.Lock()
		wake := l.wake
		l.mu.Unlock()
		p, wait := l.tryAcquire(noProbe)
		if p != nil {
			return p, nil
		}
		var (
			timer <-chan time.Time
			t     *time.Timer
		)
		if wait > 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// Done gives the permit back with how the request went; later calls do nothing.
func (p *Permit) Done(o Outcome) {
	p.once.Do(func() { p.l.done(p, o) })
}

func (l *Limiter) done(p *Permit, o Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.signal()
	now := l.now()
	l.used = now
	switch {
	case o.Dropped:
		l.dropped(p, o, now)
	case !o.Ignore && o.ServerTime > 0:
		l.sample(p, o.ServerTime)
	case !o.Ignore:
		l.sample(p, now.Sub(p.start))
	}
	l.inflight--
	l.st.Max = max(l.st.Max, int(l.limit))
}

// signal wakes the waiters.
func (l *Limiter) signal() {
	close(l.wake)
	l.wake = make(chan struct{})
}

func (l *Limiter) dropped(p *Permit, o Outcome, now time.Time) {
	l.st.Drops++
	if o.Throttled {
		l.st.Throttled++
	}
	if p.epoch != l.epoch {
		// Sent before the last decrease, which already answered it. When it
		// is another refusal of the requests that decrease answered, the
		// fewest in flight among them is the concurrency refused (in slow
		// start, one more than the server took).
		if p.epoch == l.dropEpoch-1 {
			l.dropInflight = min(l.dropInflight, p.inflight)
			if l.dropSlow {
				l.hold = min(l.hold, max(p.inflight-1, 1))
				l.limit = min(l.limit, float64(l.hold))
			}
		}
		return
	}
	// Refused again within the wait the server named, with fewer requests
	// in flight than the refusal before (or alone), and nothing sent under
	// the lowered limit got through: it is not the concurrency (under a cap
	// most requests pass), the server wants a pause. A refusal with as many
	// in flight or more says only that the lowered limit is still above the
	// cap (right after a burst, or a limit that grew past what was used).
	fewer := p.inflight < l.dropInflight || p.inflight == 1
	if !l.dropAt.IsZero() && now.Before(l.dropAt.Add(max(l.dropWait, o.RetryAfter))) && o.RetryAfter > 0 && !l.okEpoch && fewer {
		l.paused = now.Add(o.RetryAfter)
	}
	l.dropInflight = p.inflight
	// In slow start the requests of a round went out together, so the place
	// of the refused one among them is how many the server took; later the
	// limit it was sent under is what met the cap (its place among the
	// requests in flight says little: answers and new requests interleave).
	l.dropSlow = l.slowStart
	if l.slowStart {
		l.hold = max(p.inflight-1, 1)
	} else {
		l.hold = max(p.limit-1, 1)
	}
	l.holdUntil = now.Add(l.probeWait())
	l.dropAt, l.dropWait = now, o.RetryAfter
	if o.RetryAfter > 0 {
		l.retryAfter = o.RetryAfter
	}
	f := dropFactor
	if o.Throttled {
		f = throttleFactor
	}
	l.decrease(f)
	l.dropEpoch = l.epoch
	// Never above what the server was seen to refuse (slow start may have
	// overshot it by far more than the gentle factor takes back).
	l.limit = min(l.limit, float64(l.hold))
}

// probeWait is how long growth stays under the hold after a drop.
func (l *Limiter) probeWait() time.Duration {
	if l.probeAfter > 0 {
		return l.probeAfter
	}
	return min(max(probeRTTs*time.Duration(l.ewma), minProbeAfter), maxProbeAfter)
}

func (l *Limiter) decrease(f float64) {
	l.limit = max(math.Floor(l.limit*f), 1)
	l.epoch++
	l.okEpoch = false
	l.slowStart = false
}

func (l *Limiter) sample(p *Permit, rtt time.Duration) {
	if rtt <= 0 {
		rtt = 1
	}
	if p.epoch == l.epoch {
		l.okEpoch = true
	}
	if l.floor == 0 || rtt < l.floor {
		l.floor = rtt
	}
	if l.winMin == 0 || rtt < l.winMin {
		l.winMin = rtt
	}
	if l.winN++; l.winN >= floorWindow {
		l.floor, l.winMin, l.winN = l.winMin, 0, 0
	}
	if l.ewma == 0 {
		l.ewma = float64(rtt)
	} else {
		l.ewma += ewmaWeight * (float64(rtt) - l.ewma)
	}
	if l.hold > 0 && int(l.limit)-1 > l.hold && l.now().After(l.holdUntil.Add(l.probeWait())) {
		l.hold = int(l.limit) - 1
	}
	// Below minFloor latency is scheduling noise (a server on the same
	// host), not a queue: a fraction of a millisecond more is not "twice".
	floor := float64(max(l.floor, minFloor))
	switch {
	case float64(rtt) > slowTolerance*floor && l.ewma > slowTolerance*floor:
		if p.epoch == l.epoch {
			l.decrease(slowFactor)
		}
	case float64(rtt) <= growTolerance*floor && 2*max(p.inflight, l.inflight) >= int(l.limit) &&
		!(p.noProbe && l.hold > 0 && int(l.limit) >= l.hold):
		// Only a limit that is used grows: a caller that keeps few requests
		// in flight learns nothing about more, and one held under the last
		// refusal (WithoutProbe) nothing about more than that.
		if l.slowStart {
			l.limit++
		} else {
			l.limit += 1 / l.limit
		}
		if l.limit > float64(l.hold) && l.hold > 0 && l.now().Before(l.holdUntil) {
			l.limit = float64(l.hold)
		}
		l.limit = min(l.limit, float64(l.max))
	}
}

// How long the registry keeps limiters. Anyone who can save a portal's
// settings can make the app write to a new Learn account, so the registry
// must not keep every account it ever saw. A limiter unused for
// limitersIdle is dropped: the account's next run starts from the limit its
// last run stored (the syncer keeps it), so dropping it loses only what a
// few round trips relearn; any hold or probe wait (maxProbeAfter) has long
// run out by then. limitersMax bounds the registry when many accounts come
// at once; at the cap the longest unused limiters go first.
const (
	limitersIdle = 10 * time.Minute
	limitersMax  = 4096
)

// Limiters share one Limiter per Learn account within a process, so that
// portals syncing into the same account share its limit. A limiter a run
// holds (Hold), with a request in flight, or with a pause the server asked
// for still running, is never dropped: another run of the account would get a second one and the
// account twice the writes.
type Limiters struct {
	opts  LimiterOptions
	mu    sync.Mutex
	m     map[string]*Limiter
	swept time.Time // of the last sweep for idle limiters
}

// NewLimiters returns a registry whose limiters take o (Initial aside).
func NewLimiters(o LimiterOptions) *Limiters {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Limiters{opts: o, m: map[string]*Limiter{}, swept: o.Now()}
}

// Max is the ceiling of the registry's limiters.
func (r *Limiters) Max() int {
	if r.opts.Max <= 0 {
		return DefaultMaxParallel
	}
	return r.opts.Max
}

// Get returns the account's limiter; a new one starts at initial (a limit
// stored by an earlier run, or 0 for the default).
func (r *Limiters) Get(account string, initial int) *Limiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.get(account, initial)
}

// get is Get with r.mu held.
func (r *Limiters) get(account string, initial int) *Limiter {
	now := r.opts.Now()
	if l, ok := r.m[account]; ok {
		l.touch(now)
		return l
	}
	r.prune(now)
	o := r.opts
	o.Initial = initial
	l := NewLimiter(o)
	r.m[account] = l
	return l
}

// Hold is Get for a run that writes through the limiter until it calls
// release: until then the registry keeps it, even between writes and at
// the cap, so that the account's other runs share it.
func (r *Limiters) Hold(account string, initial int) (l *Limiter, release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l = r.get(account, initial)
	l.mu.Lock()
	l.holds++
	l.mu.Unlock()
	var once sync.Once
	return l, func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.holds--
			l.used = l.now()
		})
	}
}

// Has reports whether the account has a limiter in this process. It counts
// as a use: the syncer asks it just before Get, and the limiter must not be
// dropped in between.
func (r *Limiters) Has(account string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.m[account]
	if ok {
		l.touch(r.opts.Now())
	}
	return ok
}

// prune drops limiters as a new one comes in, rather than from a goroutine
// of its own: those unused for limitersIdle, looked for once per
// limitersIdle, and at limitersMax the longest unused down to three
// quarters of it, so the sweeps' cost is spread over the accounts added
// between them.
func (r *Limiters) prune(now time.Time) {
	if len(r.m) < limitersMax && now.Sub(r.swept) < limitersIdle {
		return
	}
	r.swept = now
	type unused struct {
		account string
		since   time.Time
	}
	var free []unused
	for a, l := range r.m {
		since, ok := l.unusedSince(now)
		switch {
		case !ok:
		case now.Sub(since) >= limitersIdle:
			delete(r.m, a)
		default:
			free = append(free, unused{a, since})
		}
	}
	if len(r.m) < limitersMax {
		return
	}
	slices.SortFunc(free, func(a, b unused) int { return a.since.Compare(b.since) })
	for _, u := range free {
		if len(r.m) < limitersMax*3/4 {
			break
		}
		delete(r.m, u.account)
	}
}
