package jobs

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/connect"
	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
)

const day = 24 * time.Hour

// fakeClock is the one clock of the simulator and the maintenance, moved by the test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// keepAliveBundle is a database, a simulator whose refresh tokens live 28
// days, the portals' client factory and the maintenance worker on one clock.
type keepAliveBundle struct {
	pool    *pgxpool.Pool
	keyring *secret.Keyring
	sim     *b24sim.Server
	clock   *fakeClock
	clients *connect.Factory
	worker  *MaintenanceWorker
	keep    *keepAlive
}

func setupKeepAlive(t *testing.T) *keepAliveBundle {
	t.Helper()
	b := &keepAliveBundle{pool: pgtest.NewPool(t), keyring: apptest.Keyring(t), clock: &fakeClock{now: time.Now().UTC().Truncate(time.Second)}}
	b.sim = b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Rate: -1, Now: b.clock.Now,
		Unsettled: b24sim.Unsettled{RefreshLifetime: b24sim.RefreshLifetime28Days}})
	t.Cleanup(b.sim.Close)
	log := slog.New(slog.DiscardHandler)
	b.clients = connect.New(connect.Options{Pool: b.pool, Keyring: b.keyring, Log: log, B24AllowPrivateHosts: true,
		OAuth: &bitrix24.OAuth{URL: b.sim.URL, ClientID: b.sim.ClientID(), ClientSecret: b.sim.ClientSecret()}})
	b.keep = &keepAlive{pool: b.pool, clients: b.clients, log: log}
	b.worker = &MaintenanceWorker{deps: Deps{Log: log, Config: &config.Config{ReportRetention: 90 * day}, Pool: b.pool},
		now: b.clock.Now, keep: b.keep}
	return b
}

// addPortal installs a portal with tokens issued now (by the fake clock).
func (b *keepAliveBundle) addPortal(t *testing.T) int64 {
	t.Helper()
	id, _ := b.addSimPortal(t)
	return id
}

func (b *keepAliveBundle) addSimPortal(t *testing.T) (int64, *b24sim.Portal) {
	t.Helper()
	bp := b.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 3, 1)})
	return apptest.InstallPortal(t, b.pool, b.keyring, bp).ID, bp
}

func (b *keepAliveBundle) maintain(t *testing.T) {
	t.Helper()
	if err := b.worker.Work(context.Background(), &river.Job[MaintenanceArgs]{}); err != nil {
		t.Fatal(err)
	}
}

// callBitrix24 is any Bitrix24 call on the portal's stored tokens, as a
// sync makes.
func callBitrix24(clients *connect.Factory, portalID int64) error {
	ctx := context.Background()
	c, err := clients.Bitrix24(ctx, portalID)
	if err != nil {
		return err
	}
	_, err = c.Profile(ctx)
	return err
}

func (b *keepAliveBundle) expires(t *testing.T, portalID int64) time.Time {
	t.Helper()
	var at time.Time
	if err := b.pool.QueryRow(context.Background(), `SELECT token_expires_at FROM portals WHERE id = $1`, portalID).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

func (b *keepAliveBundle) needsReconnect(t *testing.T, portalID int64) bool {
	t.Helper()
	var r bool
	if err := b.pool.QueryRow(context.Background(), `SELECT needs_reconnect FROM portals WHERE id = $1`, portalID).Scan(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// With refresh tokens that live 28 days, a portal that makes no call for 30
// days stays usable without its admin when the hourly maintenance keeps its
// tokens alive (one refresh in those 30 days), and without the keep-alive
// the same idle month leaves it needing reconnect.
func TestTokenKeepAliveKeepsIdlePortalUsable(t *testing.T) {
	t.Parallel()
	for name, keepAlive := range map[string]bool{"KeepAlive": true, "NoKeepAlive": false} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupKeepAlive(t)
			if !keepAlive {
				b.worker.keep = nil
			}
			portal := b.addPortal(t)
			for range 30 * 24 {
				b.clock.advance(time.Hour)
				b.maintain(t)
			}
			refreshes := b.sim.Refreshes()
			err := callBitrix24(b.clients, portal)
			switch {
			case keepAlive && err != nil:
				t.Fatalf("after 30 idle days with the keep-alive: %v", err)
			case keepAlive && refreshes != 1:
				t.Fatalf("the keep-alive refreshed %d times in 30 days, want once", refreshes)
			case keepAlive && b.needsReconnect(t, portal):
				t.Fatal("after 30 idle days with the keep-alive the portal needs reconnect")
			case !keepAlive && !errors.Is(err, bitrix24.ErrNeedsReconnect):
				t.Fatalf("after 30 idle days without the keep-alive: %v, want needs reconnect", err)
			case !keepAlive && !b.needsReconnect(t, portal):
				t.Fatal("after 30 idle days without the keep-alive the portal is not flagged needs reconnect")
			}
		})
	}
}

// A pair refreshed 5 days ago (by a call, 15 days after the install) is not
// refreshed again, though the install is 20 days old.
func TestTokenKeepAliveLeavesRecentPairs(t *testing.T) {
	t.Parallel()
	b := setupKeepAlive(t)
	portal := b.addPortal(t)
	b.clock.advance(15 * day)
	if err := callBitrix24(b.clients, portal); err != nil {
		t.Fatal(err)
	}
	before := b.expires(t, portal)
	b.clock.advance(5*day + 2*time.Hour)
	b.maintain(t)
	if n := b.sim.Refreshes(); n != 1 {
		t.Fatalf("refreshes: %d, want 1 (the call's); the keep-alive touched a 5-day-old pair", n)
	}
	if after := b.expires(t, portal); !after.Equal(before) {
		t.Fatalf("token expiry moved from %v to %v", before, after)
	}
}

// A pass calls at most its bound of portals, oldest pairs first; the next
// pass takes the rest, and none is refreshed twice.
func TestTokenKeepAliveBoundsEachPass(t *testing.T) {
	t.Parallel()
	b := setupKeepAlive(t)
	b.keep.perPass = 2
	var portals []int64
	for range 3 {
		portals = append(portals, b.addPortal(t))
		b.clock.advance(time.Hour)
	}
	b.clock.advance(21 * day)
	issued := make([]time.Time, len(portals))
	for i, p := range portals {
		issued[i] = b.expires(t, p)
	}
	refreshed := func() []bool {
		out := make([]bool, len(portals))
		for i, p := range portals {
			out[i] = !b.expires(t, p).Equal(issued[i])
		}
		return out
	}
	b.maintain(t)
	if got := refreshed(); b.sim.Refreshes() != 2 || !got[0] || !got[1] || got[2] {
		t.Fatalf("first pass: %d refreshes, refreshed %v; want the two oldest", b.sim.Refreshes(), got)
	}
	b.clock.advance(time.Hour)
	b.maintain(t)
	b.clock.advance(time.Hour)
	b.maintain(t)
	if got := refreshed(); b.sim.Refreshes() != 3 || !got[2] {
		t.Fatalf("after two more passes: %d refreshes, refreshed %v; want the third once", b.sim.Refreshes(), got)
	}
}

// Portals flagged "needs reconnect" wait for their admin: the keep-alive
// does not call for them.
func TestTokenKeepAliveSkipsNeedsReconnect(t *testing.T) {
	t.Parallel()
	b := setupKeepAlive(t)
	flagged, healthy := b.addPortal(t), b.addPortal(t)
	if _, err := b.pool.Exec(context.Background(), `UPDATE portals SET needs_reconnect = true WHERE id = $1`, flagged); err != nil {
		t.Fatal(err)
	}
	issued := b.expires(t, flagged)
	b.clock.advance(21 * day)
	b.maintain(t)
	if n := b.sim.Refreshes(); n != 1 {
		t.Fatalf("refreshes: %d, want 1 (the healthy portal's)", n)
	}
	if !b.expires(t, flagged).Equal(issued) || b.expires(t, healthy).Equal(issued) {
		t.Fatal("the keep-alive refreshed the flagged portal, or not the healthy one")
	}
}

// A refresh Bitrix24 refuses (the refresh token died before the keep-alive
// came) flags the portal "needs reconnect", as a sync's would; the pass goes
// on. A call that fails otherwise (a 500 before any refresh) is tried again
// only a day later.
func TestTokenKeepAliveFailures(t *testing.T) {
	t.Parallel()
	b := setupKeepAlive(t)
	dead := b.addPortal(t)
	b.clock.advance(29 * day) // past the refresh token's 28 days
	failing, bp := b.addSimPortal(t)
	bp.InjectFault(b24sim.Fault{Method: "app.info", Status: 500, Code: "INTERNAL_SERVER_ERROR", Count: 1})
	b.clock.advance(21 * day)
	b.maintain(t)
	if !b.needsReconnect(t, dead) {
		t.Fatal("a refused refresh did not flag the portal needs reconnect")
	}
	if b.needsReconnect(t, failing) || b.sim.Refreshes() != 0 {
		t.Fatalf("the failing portal: needs reconnect %v, refreshes %d; want false, 0", b.needsReconnect(t, failing), b.sim.Refreshes())
	}
	issued := b.expires(t, failing)
	b.clock.advance(23 * time.Hour)
	b.maintain(t)
	if !b.expires(t, failing).Equal(issued) {
		t.Fatal("a failed portal was tried again within a day")
	}
	b.clock.advance(2 * time.Hour)
	b.maintain(t)
	if b.expires(t, failing).Equal(issued) {
		t.Fatal("a failed portal was not tried again after a day")
	}
}
