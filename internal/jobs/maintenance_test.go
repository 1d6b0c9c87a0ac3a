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
