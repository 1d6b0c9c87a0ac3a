package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/pgtest"
	"b24learn/migrations"
)

// Migration 350 marks erase_pending on the portals whose CLEAN uninstall
// Bitrix24 confirmed and whose data is still there, so the maintenance
// queues the erase a lost job never did; it leaves the erased ones, the
// uninstalls without CLEAN, the rechecks, those too old for the events that
// could keep their data, and installed portals.
func TestMigration350MarksLostErases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	sql, err := migrations.FS.ReadFile("350_erase_pending.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(sql), "UPDATE portals p SET erase_pending")
	if i < 0 {
		t.Fatal("no backfill in 350_erase_pending.up.sql")
	}
	portal := func(name, state, ago string, token, recheck bool, clean *bool) {
		t.Helper()
		var id int64
		if err := pool.QueryRow(ctx, `INSERT INTO portals (member_id, domain, install_state, uninstalled_at, application_token, uninstall_recheck)
			VALUES ($1, $1 || '.bitrix24.ru', $2, CASE WHEN $2 = 'uninstalled' THEN now() - $3::interval END,
				CASE WHEN $4 THEN '\x01'::bytea END, $5) RETURNING id`, name, state, ago, token, recheck).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if clean != nil {
			if _, err := pool.Exec(ctx, `INSERT INTO uninstall_events (portal_id, clean, state, resolved_at)
				SELECT id, $2, 'confirmed', uninstalled_at FROM portals WHERE id = $1`, id, *clean); err != nil {
				t.Fatal(err)
			}
		}
	}
	yes, no := true, false
	portal("lost", "uninstalled", "1 hour", true, false, &yes)
	portal("erased", "uninstalled", "1 hour", false, false, &yes)
	portal("kept", "uninstalled", "1 hour", true, false, &no)
	portal("recheck", "uninstalled", "1 hour", true, true, &yes)
	portal("old", "uninstalled", "85 days", true, false, &yes)
	portal("noevent", "uninstalled", "1 hour", true, false, nil)
	portal("installed", "installed", "0", true, false, nil)
	if _, err := pool.Exec(ctx, string(sql[i:])); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT member_id FROM portals WHERE erase_pending ORDER BY member_id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"lost"}; !slices.Equal(got, want) {
		t.Fatalf("marked erase_pending: %v, want %v", got, want)
	}
}
