package connect

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/pgtest"
	"b24learn/internal/store"
)

// TestTokensAgainstUnsettled refreshes a portal's stored tokens against
// every choice b24sim offers where Bitrix24's behaviour is not known
// (docs/bitrix24-api.md, "Unsettled behaviour"): a refresh works and keeps
// the portal's address whatever the answer's domain and scope say; a refused
// one flags the portal by its code alone, whatever the text and status; and
// the app's own wrong secret flags nothing.
func TestTokensAgainstUnsettled(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	kr := apptest.Keyring(t)
	for _, v := range b24sim.Variants() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			sim := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Unsettled: v.Unsettled})
			t.Cleanup(sim.Close)
			portal := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 10, 2)})
			row := apptest.InstallPortal(t, pool, kr, portal)
			factory := func(secret string) *Factory {
				return New(Options{Pool: pool, Keyring: kr, Log: slog.New(slog.DiscardHandler), B24AllowPrivateHosts: true,
					OAuth: &bitrix24.OAuth{URL: sim.URL, ClientID: sim.ClientID(), ClientSecret: secret}})
			}
			profile := func(f *Factory) error {
				c, err := f.Bitrix24(ctx, row.ID)
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.Profile(ctx)
				return err
			}
			flagged := func() store.Portal {
				p, err := store.GetPortal(ctx, pool, row.ID)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}

			portal.ExpireTokens()
			if err := profile(factory(sim.ClientSecret())); err != nil {
				t.Fatalf("after expiry: %v", err)
			}
			if p := flagged(); p.NeedsReconnect || p.Domain != row.Domain || p.ClientEndpoint != row.ClientEndpoint {
				t.Errorf("after a refresh: %+v, want the address of %+v", p, row)
			}
			portal.ExpireTokens()
			if err := profile(factory("not-the-secret")); !errors.Is(err, bitrix24.ErrClientRefused) || flagged().NeedsReconnect {
				t.Errorf("wrong secret: %v (flagged %v)", err, flagged().NeedsReconnect)
			}
			portal.SetLapse(b24sim.LapseUnpaid)
			if err := profile(factory(sim.ClientSecret())); !errors.Is(err, bitrix24.ErrNeedsReconnect) || !flagged().NeedsReconnect {
				t.Errorf("unpaid: %v (flagged %v)", err, flagged().NeedsReconnect)
			}
		})
	}
}
