package jobs

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"b24learn/internal/config"
	"b24learn/internal/pgtest"
)

// The hourly maintenance drops rate-limit counters nobody will read again
// (an e-mail tried once never comes back to prune its own key).
func TestMaintenancePrunesRateLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO rate_limits (key, window_start, hits) VALUES
			('login:account:once@spray.example', $1, 1), ('login:ip:203.0.113.5', $2, 3)`,
		`INSERT INTO login_failures (account, ip, failures, last_at) VALUES
			('once@spray.example', '203.0.113.5', 1, $1), ('bob@ispring.example', '203.0.113.5', 2, $2)`,
	} {
		if _, err := pool.Exec(ctx, q, now.Add(-72*time.Hour), now.Add(-10*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	w := &MaintenanceWorker{deps: Deps{Log: slog.New(slog.DiscardHandler), Config: &config.Config{ReportRetention: 90 * 24 * time.Hour}, Pool: pool},
		now: func() time.Time { return now }}
	if err := w.Work(ctx, &river.Job[MaintenanceArgs]{}); err != nil {
		t.Fatal(err)
	}
	var old, recent int
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM rate_limits WHERE key LIKE '%once%') + (SELECT count(*) FROM login_failures WHERE account LIKE 'once%'),
		(SELECT count(*) FROM rate_limits WHERE key LIKE '%ip%') + (SELECT count(*) FROM login_failures WHERE account LIKE 'bob%')`).Scan(&old, &recent); err != nil {
		t.Fatal(err)
	}
	if old != 0 || recent != 2 {
		t.Fatalf("after maintenance: %d old counters left (want 0), %d recent (want 2)", old, recent)
	}
}

// The hourly maintenance deletes settings audit rows past the report
// retention, so a portal saving its settings all day does not grow the
// table for ever.
func TestMaintenancePurgesSettingsAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	var portal int64
	if err := pool.QueryRow(ctx, `INSERT INTO portals (member_id, domain) VALUES ('m-audit', 'p.bitrix24.ru') RETURNING id`).Scan(&portal); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO settings_audit (portal_id, user_id, changed_at, changes) VALUES
		($1, 1, $2, '{"alerts_off": {"from": false, "to": true}}'), ($1, 2, $3, '{"alerts_off": {"from": true, "to": false}}')`,
		portal, now.Add(-31*24*time.Hour), now.Add(-29*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	w := &MaintenanceWorker{deps: Deps{Log: slog.New(slog.DiscardHandler), Config: &config.Config{ReportRetention: 30 * 24 * time.Hour}, Pool: pool},
		now: func() time.Time { return now }}
	if err := w.Work(ctx, &river.Job[MaintenanceArgs]{}); err != nil {
		t.Fatal(err)
	}
	rows, _ := pool.Query(ctx, `SELECT user_id FROM settings_audit WHERE portal_id = $1`, portal)
	users, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0] != 2 {
		t.Fatalf("settings audit rows left: users %v, want [2] (the one within retention)", users)
	}
}

// The hourly maintenance ends what would otherwise stay for ever: uninstall
// events anyone who installs the app can send (with their address) past
// their retention, and the alert e-mail counts and confirmation links that
// no longer count, with their addresses, also those an erase detached from
// their portal. What still counts or is still pending stays.
func TestMaintenancePrunesUninstallEventsAndAlertCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	var portal int64
	if err := pool.QueryRow(ctx, `INSERT INTO portals (member_id, domain) VALUES ('m-prune', 'p.bitrix24.ru') RETURNING id`).Scan(&portal); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO uninstall_events (portal_id, clean, source_ip, state, received_at, last_at) VALUES
			($1, true, '203.0.113.1', 'refuted', $2, $2), ($1, true, '203.0.113.2', 'refuted', $3, $3),
			($1, false, '203.0.113.3', 'pending', $2, $2)`, []any{portal, now.Add(-100 * day), now.Add(-10 * day)}},
		{`INSERT INTO alert_confirm_sends (portal_id, address, recipient, sent_at) VALUES
			(NULL, '', 'old@victim.example', $1), ($2, 'new@victim.example', 'new@victim.example', $3)`,
			[]any{now.Add(-3 * day), portal, now.Add(-time.Hour)}},
		{`INSERT INTO alert_confirm_tokens (token_hash, portal_id, address, created_at, expires_at) VALUES
			(sha256('old'), $1, 'old@victim.example', $2, $3), (sha256('new'), $1, 'new@victim.example', $4, $5)`,
			[]any{portal, now.Add(-15 * day), now.Add(-8 * day), now.Add(-time.Hour), now.Add(6 * day)}},
		{`INSERT INTO alert_sends (portal_id, sent_at) VALUES ($1, $2), ($1, $3)`,
			[]any{portal, now.Add(-3 * day), now.Add(-time.Hour)}},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	w := &MaintenanceWorker{deps: Deps{Log: slog.New(slog.DiscardHandler), Config: &config.Config{ReportRetention: 90 * 24 * time.Hour}, Pool: pool},
		now: func() time.Time { return now }}
	if err := w.Work(ctx, &river.Job[MaintenanceArgs]{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, sql string
		want      int
	}{
		{"uninstall events", `SELECT count(*) FROM uninstall_events WHERE source_ip <> '203.0.113.1'`, 2},
		{"old uninstall events", `SELECT count(*) FROM uninstall_events WHERE source_ip = '203.0.113.1'`, 0},
		{"confirmation sends", `SELECT count(*) FROM alert_confirm_sends WHERE recipient = 'new@victim.example'`, 1},
		{"old confirmation sends", `SELECT count(*) FROM alert_confirm_sends WHERE recipient = 'old@victim.example'`, 0},
		{"confirmation links", `SELECT count(*) FROM alert_confirm_tokens WHERE address = 'new@victim.example'`, 1},
		{"old confirmation links", `SELECT count(*) FROM alert_confirm_tokens WHERE address = 'old@victim.example'`, 0},
		{"alert sends", `SELECT count(*) FROM alert_sends`, 1},
	} {
		var n int
		if err := pool.QueryRow(ctx, c.sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != c.want {
			t.Errorf("%s after maintenance: %d, want %d", c.what, n, c.want)
		}
	}
}
