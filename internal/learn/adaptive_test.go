package learn

import (
	"context"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func limiter(c *fakeClock, init, max int) *Limiter {
	return NewLimiter(LimiterOptions{Initial: init, Max: max, Now: c.now, ProbeAfter: 2 * time.Second})
}

// round takes every free permit, lets rtt pass and completes them all with
// o; it returns how many went out.
func round(t *testing.T, l *Limiter, c *fakeClock, rtt time.Duration, o Outcome) int {
	t.Helper()
	var ps []*Permit
	for {
		p, _ := l.TryAcquire()
		if p == nil {
			break
		}
		ps = append(ps, p)
	}
	c.add(rtt)
	for _, p := range ps {
		p.Done(o)
	}
	return len(ps)
}

func TestLimiterGrowsWhileLatencyStaysAtItsFloor(t *testing.T) {
	c := newClock()
	l := limiter(c, 4, 64)
	if n := round(t, l, c, 20*time.Millisecond, Outcome{}); n != 4 {
		t.Fatalf("first round sent %d, want the initial 4", n)
	}
	// Slow start: the limit doubles per round trip until the ceiling.
	if got := l.Limit(); got != 8 {
		t.Fatalf("after one round limit %d, want 8", got)
	}
	for range 10 {
		round(t, l, c, 20*time.Millisecond, Outcome{})
	}
	if got := l.Limit(); got != 64 {
		t.Fatalf("limit %d, want the ceiling 64", got)
	}
	if n := round(t, l, c, 20*time.Millisecond, Outcome{}); n != 64 {
		t.Fatalf("a round at the ceiling sent %d, want 64", n)
	}
}

func TestLimiterDoesNotGrowWhenUnused(t *testing.T) {
	c := newClock()
	l := limiter(c, 8, 64)
	for range 20 {
		p, _ := l.TryAcquire() // one request at a time: the limit is not what holds the caller back
		c.add(20 * time.Millisecond)
		p.Done(Outcome{})
	}
	if got := l.Limit(); got != 8 {
		t.Fatalf("limit %d after requests one at a time, want 8", got)
	}
}

func TestLimiterBacksOffOn429AndHoldsUnderIt(t *testing.T) {
	c := newClock()
	l := limiter(c, 16, 64)
	round(t, l, c, 20*time.Millisecond, Outcome{}) // floor 20 ms, the limit grows
	var ps []*Permit
	for {
		p, _ := l.TryAcquire()
		if p == nil {
			break
		}
		ps = append(ps, p)
	}
	c.add(20 * time.Millisecond)
	n := len(ps)
	took := n - 6
	if took <= 16 {
		t.Fatalf("%d in flight after a round from 16, want growth", n)
	}
	// The server took some and refused the rest (its 429s come back first):
	// one decrease for the round, and a hold at what the server took.
	for _, p := range ps[took:] {
		p.Done(Outcome{Dropped: true, Throttled: true, RetryAfter: time.Second})
	}
	for _, p := range ps[:took] {
		p.Done(Outcome{})
	}
	after := l.Limit()
	if after > took || after < took*3/4 {
		t.Fatalf("limit %d after 429s past %d in flight, want one multiplicative decrease, at most %d", after, took, took)
	}
	if st := l.Stats(); st.Throttled != 6 || st.Drops != 6 {
		t.Fatalf("stats %+v, want 6 throttled", st)
	}
	// Within the hold it stays at what the server took, not past it.
	for range 90 {
		round(t, l, c, 20*time.Millisecond, Outcome{})
		if l.Limit() > took {
			t.Fatalf("limit %d passed the %d the server took within the hold", l.Limit(), took)
		}
	}
	// After 2 s the hold is over: it probes above again, one per round trip.
	for range 20 {
		round(t, l, c, 20*time.Millisecond, Outcome{})
	}
	if got := l.Limit(); got <= took {
		t.Fatalf("limit %d, want a probe past the hold after it ended", got)
	}
}

func TestLimiterBacksOffWhenLatencyClimbs(t *testing.T) {
	c := newClock()
	l := limiter(c, 16, 64)
	round(t, l, c, 20*time.Millisecond, Outcome{})
	before := l.Limit()
	for range 5 {
		round(t, l, c, 80*time.Millisecond, Outcome{}) // a queue forms at the server
	}
	if got := l.Limit(); got >= before {
		t.Fatalf("limit %d with latency at 4× its floor, want below %d", got, before)
	}
	if st := l.Stats(); st.Drops != 0 {
		t.Fatalf("slow answers counted as drops: %+v", st)
	}
}

func TestLimiterTimeoutsAnd503BackOff(t *testing.T) {
	c := newClock()
	l := limiter(c, 20, 64)
	round(t, l, c, 20*time.Millisecond, Outcome{})
	before := l.Limit()
	round(t, l, c, 20*time.Millisecond, Outcome{Dropped: true}) // a timeout or a 503
	if got := l.Limit(); got > before*3/4 {
		t.Fatalf("limit %d after a round of timeouts, want at most %d", got, before*3/4)
	}
	if st := l.Stats(); st.Throttled != 0 {
		t.Fatalf("timeouts counted as 429s: %+v", st)
	}
}

func TestLimiterHonoursRetryAfterWhenRefusedAgain(t *testing.T) {
	c := newClock()
	l := limiter(c, 8, 64)
	ra := Outcome{Dropped: true, Throttled: true, RetryAfter: 5 * time.Second}
	round(t, l, c, 20*time.Millisecond, ra)
	if !l.PausedUntil().IsZero() {
		t.Fatal("paused on the first 429: that one is taken as too much concurrency")
	}
	// Refused again under the lowered limit, within the 5 s it named: the
	// server wants a pause, and no permit is given until it is over.
	round(t, l, c, 20*time.Millisecond, ra)
	until := l.PausedUntil()
	if want := c.t.Add(5 * time.Second); !until.Equal(want) {
		t.Fatalf("paused until %v, want %v", until, want)
	}
	if p, wait := l.TryAcquire(); p != nil || wait != 5*time.Second {
		t.Fatalf("TryAcquire during the pause: %v, wait %v", p, wait)
	}
	c.add(5 * time.Second)
	if p, _ := l.TryAcquire(); p == nil {
		t.Fatal("no permit after the pause")
	}
}

func TestLimiterNeverExceedsItsCeilingOrGoesBelowOne(t *testing.T) {
	c := newClock()
	l := limiter(c, 100, 10)
	if got := l.Limit(); got != 10 {
		t.Fatalf("initial limit %d above the ceiling 10", got)
	}
	for range 50 {
		if n := round(t, l, c, time.Millisecond, Outcome{}); n > 10 {
			t.Fatalf("%d in flight, ceiling 10", n)
		}
	}
	for range 50 {
		round(t, l, c, time.Millisecond, Outcome{Dropped: true})
	}
	if got := l.Limit(); got != 1 {
		t.Fatalf("limit %d after drops only, want the floor 1", got)
	}
	if n := round(t, l, c, time.Millisecond, Outcome{}); n != 1 {
		t.Fatalf("%d sent at limit 1", n)
	}
}

func TestLimiterAcquireWaitsForARelease(t *testing.T) {
	l := NewLimiter(LimiterOptions{Initial: 1, Max: 1})
	p, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Permit)
	go func() {
		q, _ := l.Acquire(context.Background())
		got <- q
	}()
	select {
	case <-got:
		t.Fatal("a second permit beyond the limit")
	case <-time.After(50 * time.Millisecond):
	}
	p.Done(Outcome{})
	(<-got).Done(Outcome{})
	ctx, cancel := context.WithCancel(context.Background())
	p, _ = l.Acquire(ctx)
	cancel()
	if _, err := l.Acquire(ctx); err == nil {
		t.Fatal("Acquire with a cancelled context gave a permit")
	}
	p.Done(Outcome{})
}

func TestLimitersShareOnePerAccount(t *testing.T) {
	r := NewLimiters(LimiterOptions{Max: 16})
	a := r.Get("acme.ispringlearn.ru", 12)
	if b := r.Get("acme.ispringlearn.ru", 3); a != b {
		t.Fatal("two limiters for one account")
	}
	if a.Limit() != 12 || a.Max() != 16 {
		t.Fatalf("limit %d max %d, want the stored start 12 under 16", a.Limit(), a.Max())
	}
	if r.Get("other.ispringlearn.ru", 0) == a {
		t.Fatal("two accounts share a limiter")
	}
}

// A server on the same host answers in well under a millisecond, give or
// take as much again: that jitter is not a queue, and the limit still grows.
func TestLimiterTakesSubMillisecondJitterForTheFloor(t *testing.T) {
	c := newClock()
	l := limiter(c, 4, 32)
	for i := range 40 {
		rtt := 300 * time.Microsecond
		if i%2 == 1 {
			rtt = 2 * time.Millisecond // almost 7× the floor, still nothing
		}
		round(t, l, c, rtt, Outcome{})
	}
	if got := l.Limit(); got != 32 {
		t.Fatalf("limit %d on a loopback server, want the ceiling 32", got)
	}
}

// capRound takes every free permit, lets rtt pass, and completes the first
// take of them as answered and the rest as 429s with a Retry-After of 1 s,
// as a server with a cap on the requests it holds would; it returns how many
// went out and how many were refused.
func capRound(l *Limiter, c *fakeClock, rtt time.Duration, take int) (sent, refused int) {
	var ps []*Permit
	for {
		p, _ := l.TryAcquire()
		if p == nil {
			break
		}
		ps = append(ps, p)
	}
	c.add(rtt)
	for i, p := range ps {
		if i < take {
			p.Done(Outcome{})
		} else {
			p.Done(Outcome{Dropped: true, Throttled: true, RetryAfter: time.Second})
			refused++
		}
	}
	return len(ps), refused
}

// After a 429 the limit goes just under the concurrency refused and probes
// above it again a few round trips later, not after seconds: a server whose
// cap the client meets now and then is kept full.
func TestLimiterProbesAgainSoonAfterA429(t *testing.T) {
	c := newClock()
	l := NewLimiter(LimiterOptions{Initial: 16, Max: 64, Now: c.now})
	refusedAt := 0
	for i := range 20 {
		if _, r := capRound(l, c, 20*time.Millisecond, 20); r > 0 {
			refusedAt = i
			break
		}
	}
	if refusedAt == 0 {
		t.Fatal("no 429 in 20 rounds past a cap of 20")
	}
	if got := l.Limit(); got > 20 || got < 18 {
		t.Fatalf("limit %d after a 429 past 20 in flight, want a gentle decrease to 18–20", got)
	}
	for i := range 20 { // 400 ms
		capRound(l, c, 20*time.Millisecond, 64)
		if l.Limit() > 20 {
			if i < 5 {
				t.Fatalf("probed past the refused 20 after %d round trips, want a hold of a few", i+1)
			}
			return
		}
	}
	t.Fatalf("limit %d 20 round trips after a 429, want a probe past 20", l.Limit())
}

// Against a cap the limit settles in a sawtooth just under it: the server is
// kept nearly full and few requests are refused.
func TestLimiterSettlesJustUnderACap(t *testing.T) {
	c := newClock()
	l := NewLimiter(LimiterOptions{Initial: 4, Max: 64, Now: c.now})
	var sent, refused, taken int
	for i := range 1000 { // 20 s
		s, r := capRound(l, c, 20*time.Millisecond, 20)
		if i >= 100 {
			sent, refused, taken = sent+s, refused+r, taken+s-r
		}
	}
	if !l.PausedUntil().IsZero() {
		t.Fatal("paused although most requests passed")
	}
	if share := float64(refused) / float64(sent); share > 0.02 || refused < 10 {
		t.Fatalf("%d of %d refused (%.1f %%), want some probes and at most 2 %%", refused, sent, share*100)
	}
	if mean := float64(taken) / 900; mean < 0.9*20 {
		t.Fatalf("the server held %.1f on average, want at least 90 %% of its 20", mean)
	}
}

// When the server says how long it took, that is the latency the limit
// follows: round trips stretched by the client's own host are not a queue
// at the server.
func TestLimiterFollowsTheServersOwnTime(t *testing.T) {
	c := newClock()
	l := limiter(c, 16, 64)
	round(t, l, c, 20*time.Millisecond, Outcome{ServerTime: 20 * time.Millisecond})
	before := l.Limit()
	for range 5 {
		round(t, l, c, 80*time.Millisecond, Outcome{ServerTime: 20 * time.Millisecond})
	}
	if got := l.Limit(); got < before {
		t.Fatalf("limit %d after slow round trips the server took 20 ms of, want at least %d", got, before)
	}
	for range 5 {
		round(t, l, c, 80*time.Millisecond, Outcome{ServerTime: 80 * time.Millisecond})
	}
	if got := l.Limit(); got >= 64 {
		t.Fatalf("limit %d with the server's own time at 4× its floor, want a decrease", got)
	}
}

func TestServerTimingIsTheLongestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want time.Duration
	}{
		{nil, 0},
		{[]string{"capacity;dur=21.5"}, 21500 * time.Microsecond},
		{[]string{`db;dur=3, app;desc="all";dur=25`, "latency;dur=20.0"}, 25 * time.Millisecond},
		{[]string{"cache;desc=hit", "app;dur=abc", "x;dur=-4"}, 0},
	} {
		if got := serverTime(tc.in); got != tc.want {
			t.Errorf("serverTime(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// The last writes of a batch (WithoutProbe) stay under the concurrency the
// last 429 showed the server takes, and their answers do not grow the limit:
// a probe refused then would be repeated only after the Retry-After, when
// the batch would be done otherwise.
func TestLimiterWithoutProbeStaysUnderTheLastRefusal(t *testing.T) {
	c := newClock()
	l := NewLimiter(LimiterOptions{Initial: 16, Max: 64, Now: c.now, ProbeAfter: 100 * time.Millisecond})
	if h := l.ProbeHorizon(); h != 0 {
		t.Fatalf("horizon %d before any refusal, want 0", h)
	}
	for i := 0; ; i++ {
		if _, r := capRound(l, c, 20*time.Millisecond, 20); r > 0 {
			break
		}
		if i == 20 {
			t.Fatal("no 429 past a cap of 20")
		}
	}
	// 20 at 20 ms for the 1 s Retry-After, and a quarter more.
	if h := l.ProbeHorizon(); h < 1100 || h > 1400 {
		t.Fatalf("horizon %d after a 429 with Retry-After 1 s at 20 in flight, want about 1,250", h)
	}
	c.add(time.Second) // the hold is over: the limit may probe past 20
	ctx := WithoutProbe(context.Background())
	for range 20 {
		var ps []*Permit
		for {
			ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			p, err := l.Acquire(ctx)
			cancel()
			if err != nil {
				break
			}
			ps = append(ps, p)
		}
		if len(ps) != 20 {
			t.Fatalf("%d permits without probing, want the 20 the server took", len(ps))
		}
		c.add(20 * time.Millisecond)
		for _, p := range ps {
			p.Done(Outcome{})
		}
	}
	if got := l.Limit(); got != 20 {
		t.Fatalf("limit %d after rounds without probing, want it kept at 20", got)
	}
	// Other writes probe as before.
	for range 3 {
		capRound(l, c, 20*time.Millisecond, 64)
	}
	if l.Limit() <= 20 {
		t.Fatalf("limit %d after a probing round, want above 20", l.Limit())
	}
}

// A burst past a cap (slow start, or a limit grown past what was in use) has
// its refusals answered in any order, and requests sent under the limit the
// first one lowered may meet the cap too, with as many in flight: that is
// still the concurrency, not the server asking for a pause.
func TestLimiterDoesNotPauseOnTheRestOfABurst(t *testing.T) {
	c := newClock()
	l := limiter(c, 32, 64)
	retry := Outcome{Dropped: true, Throttled: true, RetryAfter: time.Second}
	var burst []*Permit
	for {
		p, _ := l.TryAcquire()
		if p == nil {
			break
		}
		burst = append(burst, p)
	}
	c.add(20 * time.Millisecond)
	for _, p := range burst[:16] { // the server takes 16
		p.Done(Outcome{})
	}
	burst[31].Done(retry) // the refusal with the most in flight is answered first
	var next []*Permit
	for {
		p, _ := l.TryAcquire()
		if p == nil {
			break
		}
		next = append(next, p)
	}
	if len(next) == 0 {
		t.Fatal("no permit under the limit the first refusal lowered")
	}
	for _, p := range burst[16:31] {
		p.Done(retry)
	}
	if got := l.Limit(); got != 16 {
		t.Fatalf("limit %d once the burst's refusals are in, want 16 (the fewest refused in flight less one)", got)
	}
	next[len(next)-1].Done(retry)
	if !l.PausedUntil().IsZero() {
		t.Fatal("paused on a refusal sent with more in flight than the burst's first refused")
	}
}
