// Package apptest puts a simulated Bitrix24 portal into the app's database
// the way the install handler and the settings page would, for tests of the
// layers behind them (clients, jobs, drills).
package apptest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/secret"
	"b24learn/internal/store"
)

// InstallPortal installs the app on the simulated portal and stores the
// portal with the tokens Bitrix24 issued, encrypted.
func InstallPortal(tb testing.TB, pool *pgxpool.Pool, kr *secret.Keyring, p *b24sim.Portal) store.Portal {
	tb.Helper()
	tok := p.Install()
	row, err := store.UpsertPortal(context.Background(), pool, kr, store.PortalInstall{
		MemberID: tok.MemberID, Domain: tok.Domain, ClientEndpoint: tok.ClientEndpoint, ServerEndpoint: tok.ServerEndpoint,
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
	pw, err := kr.EncryptString(s.LearnPassword)
	if err != nil {
		tb.Fatal(err)
	}
	var second any
	if s.SecondRun != "" {
		second = s.SecondRun
	}
	if _, err := pool.Exec(ctx, `INSERT INTO portal_settings (portal_id, learn_url, learn_email, learn_password,
			first_run, second_run, send_login_email, departments)
		VALUES ($1, $2, $3, $4, $5::time, $6::time, $7, jsonb_build_object('selected', to_jsonb($8::bigint[]), 'excluded', '[]'::jsonb))`,
		portalID, s.LearnURL, s.LearnEmail, pw, s.FirstRun, second, s.SendLoginEmail, s.Selected); err != nil {
		tb.Fatalf("apptest: configure portal: %v", err)
	}
	if active {
		if _, err := pool.Exec(ctx, `UPDATE portals SET activation_state = 'active' WHERE id = $1`, portalID); err != nil {
			tb.Fatalf("apptest: activate portal: %v", err)
		}
	}
}
