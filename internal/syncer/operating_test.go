package syncer

import (
	"context"
	"sync"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
)

// opClock is the clock of b24sim and the Bitrix24 client: a client's sleep
// moves it at once, so waiting for a reset minutes away takes no time.
type opClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

func (c *opClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *opClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now, c.slept = c.now.Add(d), c.slept+d
	c.mu.Unlock()
	return ctx.Err()
}

// listsOnly hides Org, so the syncer lists with plain calls before batches.
type listsOnly struct{ c *bitrix24.Client }

func (l listsOnly) Departments(ctx context.Context) ([]bitrix24.Department, error) {
	return l.c.Departments(ctx)
}

func (l listsOnly) Users(ctx context.Context, f map[string]any) ([]bitrix24.User, error) {
	return l.c.Users(ctx, f)
}

// A sync that meets OPERATION_TIME_LIMIT on user.get, as a plain call and as
// batch commands, waits until the method's reset time and finishes.
func TestSyncWaitsOutTheOperatingLimit(t *testing.T) {
	t.Parallel()
	for name, wrap := range map[string]func(*bitrix24.Client) Bitrix24{
		"batch (org listing)":      func(c *bitrix24.Client) Bitrix24 { return c },
		"plain call, then batches": func(c *bitrix24.Client) Bitrix24 { return listsOnly{c} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clock := &opClock{now: time.Now()}
			e := newSimEnv(t, simOpts{b24: b24sim.Options{Now: clock.Now}})
			id, p := e.addPortal(b24sim.GenerateOrg(11, 400, 12))
			// user.get may run 0.5 s per ten minutes at 0.1 s a call: five
			// pages a window, fewer than the org has.
			p.SetOperatingLimit(b24sim.OperatingLimit{Limit: 500 * time.Millisecond,
				Cost: map[string]time.Duration{"user.get": 100 * time.Millisecond}})
			tok, err := p.Tokens(p.AdminID())
			if err != nil {
				t.Fatal(err)
			}
			oauth := &bitrix24.OAuth{URL: e.bsrv.URL, ClientID: e.bsrv.ClientID(), ClientSecret: e.bsrv.ClientSecret()}
			c := bitrix24.New(bitrix24.Config{Endpoint: p.ClientEndpoint(), Tokens: bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token(tok)),
				Now: clock.Now, Sleep: clock.Sleep, MaxOperatingWait: 15 * time.Minute})
			// Spend the window before the run, so the run's first user.get
			// is refused.
			for range 5 {
				if _, err := c.CallEnvelope(context.Background(), "user.get", map[string]any{"start": -1}); err != nil {
					t.Fatal(err)
				}
			}
			reset := p.OperatingResetAt("user.get")
			start := clock.Now()
			e.mu.Lock()
			e.b24[id] = wrap(c)
			e.mu.Unlock()

			rep := e.run(id, TriggerManual)
			// Partial: the generated org has people Learn refuses on purpose.
			if rep.Status != RunSucceeded && rep.Status != RunPartial {
				t.Fatalf("run %s: %+v", rep.Status, rep)
			}
			checkPortal(t, e.state(), p, e.state().RootID)
			if p.OperatingRefusals() == 0 {
				t.Fatal("user.get was never refused: the test proves nothing")
			}
			if clock.slept < reset.Sub(start) {
				t.Fatalf("waited %v in all, less than the %v to the first reset", clock.slept, reset.Sub(start))
			}
		})
	}
}
