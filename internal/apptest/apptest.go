// Package apptest puts a simulated Bitrix24 portal into the app's database
// the way the install handler and the settings page would, for tests of the
// layers behind them (clients, jobs, drills).
package apptest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/schedule"
	"b24learn/internal/secret"
	"b24learn/internal/settings"
	"b24learn/internal/store"
)

// InstallPortal installs the app on the simulated portal and stores the
// portal with the tokens Bitrix24 issued, encrypted.
func InstallPortal(tb testing.TB, pool *pgxpool.Pool, kr *secret.Keyring, p *b24sim.Portal) store.Portal {
	tb.Helper()
	tok := p.Install()
	row, err := store.UpsertPortal(context.Background(), pool, kr, store.PortalInstall{
		PortalInfo:  store.PortalInfo{MemberID: tok.MemberID, Domain: tok.Domain, ClientEndpoint: tok.ClientEndpoint, ServerEndpoint: tok.ServerEndpoint},
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenExpiresAt: tok.Expires,
	})
	if err != nil {
		tb.Fatalf("apptest: install portal: %v", err)
	}
	return row
}

// Settings are what an admin saves on the settings page.
type Settings struct {
	LearnURL, LearnEmail, LearnPassword string
	FirstRun, SecondRun                 string // "HH:MM" UTC; SecondRun may be ""
	SendLoginEmail                      bool
	Selected                            []int64 // Bitrix24 department ids whose subtrees sync
}

// Configure stores the portal's settings (the password encrypted) and, with
// active set, activates the portal as a manager would.
func Configure(tb testing.TB, pool *pgxpool.Pool, kr *secret.Keyring, portalID int64, s Settings, active bool) {
	tb.Helper()
	ctx := context.Background()
	runs, err := schedule.Parse(s.FirstRun, s.SecondRun)
	if err != nil {
		tb.Fatalf("apptest: configure portal: %v", err)
	}
	if _, err := settings.Save(ctx, pool, kr, portalID, 0, func(st *settings.Settings) {
		st.LearnURL, st.LearnEmail, st.Password, st.Schedule = s.LearnURL, s.LearnEmail, s.LearnPassword, runs
		st.SendLoginEmail = s.SendLoginEmail
		st.Departments = settings.Scope{Selected: append([]int64{}, s.Selected...), Excluded: []int64{}}
	}); err != nil {
		tb.Fatalf("apptest: configure portal: %v", err)
	}
	if active {
		if _, err := pool.Exec(ctx, `UPDATE portals SET activation_state = 'active' WHERE id = $1`, portalID); err != nil {
			tb.Fatalf("apptest: activate portal: %v", err)
		}
	}
}

// Keyring is a keyring of one random key, as SECRET_KEYS makes, for a test.
func Keyring(tb testing.TB) *secret.Keyring {
	tb.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	kr, err := secret.NewKeyring(base64.StdEncoding.EncodeToString(key))
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}
