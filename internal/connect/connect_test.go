package connect

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/pgtest"
	"b24learn/internal/store"
)

type bundle struct {
	sim      *b24sim.Server
	portal   *b24sim.Portal
	factory  *Factory
	other    *Factory // a second "process": its own pool and limiters
	portalID int64
}

func setup(t *testing.T) *bundle {
	t.Helper()
	pool := pgtest.NewPool(t)
	kr := apptest.Keyring(t)
	sim := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1"})
	t.Cleanup(sim.Close)
	portal := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 40, 5)})
	p := apptest.InstallPortal(t, pool, kr, portal)
	oauth := &bitrix24.OAuth{URL: sim.URL, ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret()}
	mk := func() *Factory {
		return New(Options{Pool: pgtest.Reopen(t, pool), Keyring: kr, OAuth: oauth, Log: slog.New(slog.DiscardHandler),
			B24AllowPrivateHosts: true})
	}
	return &bundle{sim: sim, portal: portal, factory: mk(), other: mk(), portalID: p.ID}
}

// Two goroutines in each of two "processes" find the token expired at once:
// Bitrix24 sees exactly one refresh, and every call succeeds.
func TestExpiredTokenRefreshedOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.portal.ExpireTokens()
	before := b.sim.Refreshes()

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, f := range []*Factory{b.factory, b.factory, b.other, b.other} {
		wg.Go(func() {
			c, err := f.Bitrix24(ctx, b.portalID)
			if err != nil {
				errs <- err
				return
			}
			_, err = c.Profile(ctx)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("call after expiry: %v", err)
		}
	}
	if got := b.sim.Refreshes() - before; got != 1 {
		t.Fatalf("refreshes = %d, want exactly 1", got)
	}
	// The portal keeps working on the stored new pair.
	c, _ := b.other.Bitrix24(ctx, b.portalID)
	if _, err := c.Departments(ctx); err != nil {
		t.Fatalf("after refresh: %v", err)
	}
}

// A refresh token Bitrix24 no longer accepts marks the portal "needs
// reconnect" instead of retrying forever.
func TestPermanentRefreshFailureMarksReconnect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// Someone else used the stored refresh token (Bitrix24 rotates it), so
	// the pair we hold can never be refreshed again.
	stored, err := (&Tokens{Pool: b.factory.pool, Keyring: b.factory.keyring, PortalID: b.portalID}).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.factory.oauth.Default().Refresh(ctx, stored.RefreshToken); err != nil {
		t.Fatal(err)
	}
	b.portal.ExpireTokens()

	c, err := b.factory.Bitrix24(ctx, b.portalID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Profile(ctx)
	if !errors.Is(err, bitrix24.ErrNeedsReconnect) {
		t.Fatalf("err = %v, want needs reconnect", err)
	}
	p, err := store.GetPortal(ctx, b.factory.pool, b.portalID)
	if err != nil {
		t.Fatal(err)
	}
	if !p.NeedsReconnect {
		t.Fatal("portal not marked needs_reconnect")
	}
	refreshes := b.sim.Refreshes()
	if _, err := c.Profile(ctx); !errors.Is(err, bitrix24.ErrNeedsReconnect) {
		t.Fatalf("second call: %v", err)
	}
	if b.sim.Refreshes() != refreshes {
		t.Fatal("a portal needing reconnect was refreshed again")
	}
}

// A refresh the OAuth server answers with no error code (a bare 401, an
// HTML 503 or 404) is no refusal of the portal's tokens: the portal is
// not flagged "needs reconnect", and the next call refreshes and works.
func TestBareOAuthAnswerKeepsThePortal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, status := range []int{401, 503, 404} {
		b.portal.ExpireTokens()
		b.sim.InjectOAuthFault(status, map[bool]string{true: "", false: "<html><body>error</body></html>"}[status == 401])
		c, err := b.factory.Bitrix24(ctx, b.portalID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Profile(ctx)
		if err == nil || errors.Is(err, bitrix24.ErrNeedsReconnect) || errors.Is(err, bitrix24.ErrQueryLimitExceeded) {
			t.Fatalf("OAuth %d: %v, want a plain failure", status, err)
		}
		p, err := store.GetPortal(ctx, b.factory.pool, b.portalID)
		if err != nil {
			t.Fatal(err)
		}
		if p.NeedsReconnect {
			t.Fatalf("OAuth %d: portal marked needs_reconnect", status)
		}
		if _, err := c.Profile(ctx); err != nil {
			t.Fatalf("OAuth %d, then answering: %v", status, err)
		}
	}
}

// A renamed portal's redirect names its new host. A host outside the rule
// the frame's DOMAIN is held to is not stored: the portal keeps its old
// domain and endpoint. A conforming one is stored, in lower case.
func TestEndpointChangeKeepsOnlyValidHosts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	before, err := store.GetPortal(ctx, b.factory.pool, b.portalID)
	if err != nil {
		t.Fatal(err)
	}
	for _, endpoint := range []string{
		"https://évil.example/rest/",
		"https://a'b.example/rest/",
		`https://a;b.example/rest/`,
		"https://x..example/rest/",
		"https:///rest/",
		"https://x.example:/rest/",
	} {
		b.factory.storeEndpoint(ctx, b.portalID, endpoint)
		got, err := store.GetPortal(ctx, b.factory.pool, b.portalID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Domain != before.Domain || got.ClientEndpoint != before.ClientEndpoint {
			t.Errorf("after a move to %q: domain %q, endpoint %q; want the old %q, %q",
				endpoint, got.Domain, got.ClientEndpoint, before.Domain, before.ClientEndpoint)
		}
	}
	b.factory.storeEndpoint(ctx, b.portalID, "https://New-Name.bitrix24.ru/rest/")
	got, err := store.GetPortal(ctx, b.factory.pool, b.portalID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Domain != "new-name.bitrix24.ru" || got.ClientEndpoint != "https://New-Name.bitrix24.ru/rest/" {
		t.Errorf("after a valid move: domain %q, endpoint %q", got.Domain, got.ClientEndpoint)
	}
}
