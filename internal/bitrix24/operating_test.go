package bitrix24_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
)

// fakeClock is the clock of the simulator and the client: the client's
// sleeps move it forward at once, so a wait of minutes takes none.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return ctx.Err()
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *fakeClock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// opSetup is a portal whose user.get may run 1 s of operating time per ten
// minutes at 0.1 s a call; department.get costs nothing.
func opSetup(t *testing.T, users int, cfg bitrix24.Config) (*b24sim.Portal, *bitrix24.Client, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	srv := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Rate: -1, Now: clock.Now})
	t.Cleanup(srv.Close)
	p := srv.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(3, users, 4)})
	tok := p.Install()
	p.FinishInstall(context.Background())
	p.SetOperatingLimit(b24sim.OperatingLimit{Limit: time.Second, Cost: map[string]time.Duration{"user.get": 100 * time.Millisecond}})
	oauth := &bitrix24.OAuth{URL: srv.URL, ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret()}
	cfg.Tokens = bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token(tok))
	cfg.Endpoint = tok.ClientEndpoint
	cfg.Now, cfg.Sleep = clock.Now, clock.Sleep
	return p, bitrix24.New(cfg), clock
}

// spend uses up user.get's operating time with plain calls.
func spend(t *testing.T, c *bitrix24.Client, p *b24sim.Portal) {
	t.Helper()
	for range 10 {
		if _, err := c.CallEnvelope(context.Background(), "user.get", map[string]any{"start": -1}); err != nil {
			t.Fatalf("spend user.get: %v", err)
		}
	}
	if p.OperatingRefusals() != 0 {
		t.Fatal("refused before the limit")
	}
}

// A blocked method waits until the reset time its earlier answers named,
// and then works; the wait is the time to the reset, not a fixed backoff.
func TestOperatingLimitWaitsUntilReset(t *testing.T) {
	t.Parallel()
	p, c, clock := opSetup(t, 30, bitrix24.Config{MaxOperatingWait: 15 * time.Minute})
	spend(t, c, p)
	reset := p.OperatingResetAt("user.get")
	start := clock.Now()
	us, err := c.Users(context.Background(), map[string]any{"ACTIVE": true})
	if err != nil {
		t.Fatalf("users after the limit: %v", err)
	}
	if len(us) == 0 || p.OperatingRefusals() != 1 {
		t.Fatalf("users %d, refusals %d; want users after one refusal", len(us), p.OperatingRefusals())
	}
	slept := clock.Now().Sub(start)
	if want := reset.Sub(start); slept < want || slept > want+2*time.Second {
		t.Fatalf("waited %v, want the %v to operating_reset_at", slept, want)
	}
}

// Past MaxOperatingWait the client does not sleep: it reports when the
// method is free again, and other methods go on meanwhile.
func TestOperatingLimitLongBlockReported(t *testing.T) {
	t.Parallel()
	p, c, clock := opSetup(t, 30, bitrix24.Config{})
	spend(t, c, p)
	reset := p.OperatingResetAt("user.get")
	_, err := c.Users(context.Background(), nil)
	var op *bitrix24.OperatingLimitError
	if !errors.As(err, &op) || !errors.Is(err, bitrix24.ErrOperationTimeLimit) {
		t.Fatalf("err = %v, want *OperatingLimitError matching ErrOperationTimeLimit", err)
	}
	if op.ResetAt.Before(reset) || op.ResetAt.After(reset.Add(2*time.Second)) {
		t.Fatalf("reset at %v, want %v", op.ResetAt, reset)
	}
	if _, err := c.Departments(context.Background()); err != nil {
		t.Fatalf("department.get held up by user.get's block: %v", err)
	}
	// A second call does not even ask Bitrix24 before the reset.
	before := p.Requests()["user.get"]
	if _, err := c.Users(context.Background(), nil); !errors.As(err, &op) {
		t.Fatalf("second call: %v", err)
	}
	if p.Requests()["user.get"] != before {
		t.Fatal("a blocked method was called again before its reset")
	}
	if len(clock.Slept()) != 0 {
		t.Fatalf("slept %v", clock.Slept())
	}
	clock.Set(op.ResetAt)
	if _, err := c.Users(context.Background(), nil); err != nil {
		t.Fatalf("after the reset: %v", err)
	}
}

// Inside a batch only the refused commands are sent again, after the
// reset: department.get, which ran, is not repeated, and a chain of
// user.get pages goes on where the limit stopped it.
func TestOperatingLimitInsideBatch(t *testing.T) {
	t.Parallel()
	// 700 users: the first batch chains 14 pages of user.get, more than
	// the 10 calls a window allows, so the limit stops the chain midway.
	p, c, clock := opSetup(t, 700, bitrix24.Config{MaxOperatingWait: 15 * time.Minute})
	p.ResetCounters()
	ds, us, err := c.Org(context.Background(), map[string]any{"ACTIVE": true})
	if err != nil {
		t.Fatalf("org: %v", err)
	}
	want := 0
	for _, u := range p.Users() {
		if u.Active && !u.Extranet {
			want++
		}
	}
	if len(us) < want || len(ds) != len(p.Departments()) {
		t.Fatalf("got %d users and %d departments, want %d and %d", len(us), len(ds), want, len(p.Departments()))
	}
	if p.OperatingRefusals() == 0 || len(clock.Slept()) == 0 {
		t.Fatalf("refusals %d, waits %v: the limit was never hit", p.OperatingRefusals(), clock.Slept())
	}
	if n := p.Commands()["department.get"]; n != 1 {
		t.Fatalf("department.get ran %d times, want 1", n)
	}
	// The first batch holds all the 14 pages' chain (49 user.get commands);
	// each ran once: a chain is not restarted from its first page.
	if n := p.Commands()["user.get"]; n != bitrix24.MaxBatch-1 {
		t.Fatalf("user.get ran %d times, want %d", n, bitrix24.MaxBatch-1)
	}
}

// Bitrix24 counts operating time in one-minute buckets over ten minutes,
// and operating_reset_at is when a portion is released: the oldest bucket.
// Time spent three minutes after the first calls still counts after the
// first reset, so the method is blocked again sooner than a fresh window
// would allow; the client waits each block out at the reset its answers
// last named and finishes.
func TestOperatingLimitSlidingBuckets(t *testing.T) {
	t.Parallel()
	p, c, clock := opSetup(t, 30, bitrix24.Config{MaxOperatingWait: 15 * time.Minute})
	clock.Set(clock.Now().Truncate(time.Minute).Add(10 * time.Second))
	t0 := clock.Now()
	call := func(n int) {
		t.Helper()
		for range n {
			if _, err := c.CallEnvelope(context.Background(), "user.get", map[string]any{"start": -1}); err != nil {
				t.Fatalf("user.get: %v", err)
			}
		}
	}
	call(4) // 0.4 s in t0's bucket
	clock.Set(t0.Add(3 * time.Minute))
	call(6) // 0.6 s three minutes later: the limit of 1 s reached
	if got, want := p.OperatingResetAt("user.get"), t0.Truncate(time.Minute).Add(10*time.Minute); !got.Equal(want) {
		t.Errorf("reset %v, want the first bucket's end %v", got, want)
	}
	call(1) // refused, waits for the first bucket to go, then runs: 0.7 s
	call(3) // 1.0 s again, with t0's bucket gone
	call(1) // refused: waits for the second bucket to go
	slept := clock.Slept()
	if p.OperatingRefusals() != 2 || len(slept) != 2 {
		t.Fatalf("refusals %d, waits %v; want two of each", p.OperatingRefusals(), slept)
	}
	first := t0.Truncate(time.Minute).Add(10 * time.Minute).Sub(t0.Add(3 * time.Minute))
	if slept[0] < first || slept[0] > first+2*time.Second {
		t.Errorf("first wait %v, want %v to the first bucket's end", slept[0], first)
	}
	if slept[1] < 3*time.Minute-2*time.Second || slept[1] > 3*time.Minute+2*time.Second {
		t.Errorf("second wait %v, want about 3 minutes to the second bucket's end", slept[1])
	}
}

// A portal whose answers name no operating_reset_at (outside the cloud the
// keys may be missing) still blocks a method past its limit: the client
// waits OperatingFallback and asks again, as often as the block lasts
// within MaxOperatingWait, and then reads the whole listing.
func TestOperatingLimitWithoutResetTimes(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Rate: -1, Now: clock.Now,
		Unsettled: b24sim.Unsettled{NoOperatingKeys: true}})
	t.Cleanup(srv.Close)
	p := srv.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(3, 30, 4)})
	tok := p.Install()
	p.FinishInstall(context.Background())
	p.SetOperatingLimit(b24sim.OperatingLimit{Limit: time.Second, Cost: map[string]time.Duration{"user.get": 100 * time.Millisecond}})
	oauth := &bitrix24.OAuth{URL: srv.URL, ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret()}
	c := bitrix24.New(bitrix24.Config{Endpoint: tok.ClientEndpoint, Tokens: bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token(tok)),
		Now: clock.Now, Sleep: clock.Sleep, MaxOperatingWait: 15 * time.Minute})
	spend(t, c, p)
	us, err := c.Users(context.Background(), nil)
	if err != nil {
		t.Fatalf("users past the limit: %v (slept %v)", err, clock.Slept())
	}
	if len(us) == 0 || p.OperatingRefusals() == 0 {
		t.Fatalf("users %d, refusals %d; want users after a refusal", len(us), p.OperatingRefusals())
	}
	var total time.Duration
	for _, d := range clock.Slept() {
		total += d
		if d > time.Minute+2*time.Second {
			t.Errorf("slept %v at once, want the one-minute fallback steps: %v", d, clock.Slept())
		}
	}
	if total > 11*time.Minute {
		t.Errorf("slept %v in all, more than the ten-minute window: %v", total, clock.Slept())
	}
}
