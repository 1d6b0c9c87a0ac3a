package uninstall

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/connect"
	"b24learn/internal/pgtest"
	"b24learn/internal/store"
)

// TestAskAgainstUnsettled asks Bitrix24 about an installed and then an
// uninstalled app under every choice b24sim offers where Bitrix24's answer
// is not known: which error the dead tokens get (PortalOptions.AfterUninstall)
// and, through Variants, the errors' texts and statuses (docs/bitrix24-api.md,
// "Unsettled behaviour"). The installed app is always Refuted, the
// uninstalled one never is, nor left Unknown.
func TestAskAgainstUnsettled(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	kr := apptest.Keyring(t)
	for _, v := range b24sim.Variants() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			sim := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Unsettled: v.Unsettled})
			t.Cleanup(sim.Close)
			clients := connect.New(connect.Options{Pool: pool, Keyring: kr, Log: slog.New(slog.DiscardHandler), B24AllowPrivateHosts: true,
				OAuth: &bitrix24.OAuth{URL: sim.URL, ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret()}})
			for i, mode := range b24sim.AfterUninstalls {
				t.Run(mode.String(), func(t *testing.T) {
					ctx := context.Background()
					p := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(int64(i+1), 5, 1), AfterUninstall: mode})
					row := apptest.InstallPortal(t, pool, kr, p)
					p.FinishInstall(ctx)
					if got, reason := Ask(ctx, clients, row.ID); got != Refuted {
						t.Fatalf("installed: %v (%s)", got, reason)
					}
					p.Uninstall(ctx, true)
					if got, reason := Ask(ctx, clients, row.ID); got != Confirmed && got != TokensRefused {
						t.Errorf("uninstalled: %v (%s)", got, reason)
					}
				})
			}
		})
	}
}

// The uninstall check meets the OAuth server failing the refresh of the
// portal's expired tokens with no error code: a 404 page (a proxy, a moved
// endpoint), a bare 401 or a bare 503. None of them is news of the portal:
// not a deleted portal (the portal REST's 404 rule), not refused tokens
// (the portal is not flagged "needs reconnect"), so the verdict is Unknown,
// and once the OAuth server answers again the check sees the app installed.
func TestUninstallCheckOAuthNotFoundIsNoDeletedPortal(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	kr := apptest.Keyring(t)
	sim := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1"})
	t.Cleanup(sim.Close)
	clients := connect.New(connect.Options{Pool: pool, Keyring: kr, Log: slog.New(slog.DiscardHandler), B24AllowPrivateHosts: true,
		OAuth: &bitrix24.OAuth{URL: sim.URL, ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret()}})
	ctx := context.Background()
	p := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(3, 5, 1)})
	row := apptest.InstallPortal(t, pool, kr, p)
	p.FinishInstall(ctx)
	for _, fault := range []struct {
		status int
		body   string
	}{{404, "<html><body><h1>404 Not Found</h1></body></html>"}, {401, ""}, {503, "<html><body>Service Unavailable</body></html>"}} {
		p.ExpireTokens()
		sim.InjectOAuthFault(fault.status, fault.body)
		got, reason := Ask(ctx, clients, row.ID)
		if got != Unknown || reason != fmt.Sprintf("HTTP_%d", fault.status) {
			t.Errorf("OAuth %d: %v (%s), want %v", fault.status, got, reason, Unknown)
		}
		portal, err := store.GetPortal(ctx, pool, row.ID)
		if err != nil {
			t.Fatal(err)
		}
		if portal.NeedsReconnect || !portal.Installed() {
			t.Fatalf("OAuth %d: the portal is now needs reconnect %v, %s", fault.status, portal.NeedsReconnect, portal.InstallState)
		}
		if got, reason := Ask(ctx, clients, row.ID); got != Refuted {
			t.Errorf("OAuth %d, then answering: %v (%s), want %v", fault.status, got, reason, Refuted)
		}
	}
}
