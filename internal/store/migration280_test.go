package store_test

import (
	"context"
	"strings"
	"testing"

	"b24learn/internal/pgtest"
	"b24learn/migrations"
)

// Migration 280 cuts the River UI audit lines written before it to what
// new ones keep: the method, a known path and the job ids; whatever else a
// request body held (free text tied to no portal) goes.
func TestMigration280CutsRiverUINotes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	sql, err := migrations.FS.ReadFile("280_data_lifetime.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(sql), "DO $$")
	if i < 0 {
		t.Fatal("no DO block in 280_data_lifetime.up.sql")
	}
	old := map[string]string{
		`POST /api/jobs/cancel {"ids":["12","34"],"why":"Ivan Petrov asked"}`: "POST /api/jobs/cancel ids=12,34",
		`PUT /api/queues/system/pause `:                                       "PUT /api/queues/system/pause",
		`POST /api/jobs/delete {"ids":["5"], "x": "Petrov`:                    "POST /api/jobs/delete",
		`PUT /api/queues/Ivan Petrov/pause {}`:                                "",
	}
	for note := range old {
		if _, err := pool.Exec(ctx, `INSERT INTO manager_audit (manager_email, action, note) VALUES ('olga@ispring.example', 'river_ui', $1)`, note); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO manager_audit (manager_email, action, note) VALUES ('olga@ispring.example', 'activate', 'Petrov paid')`); err != nil {
		t.Fatal(err)
	}
	// The block as the migration ran it on databases with such lines.
	if _, err := pool.Exec(ctx, string(sql[i:])); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT note FROM manager_audit WHERE action = 'river_ui' ORDER BY note`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got[n] = true
	}
	for note, want := range old {
		if !got[want] {
			t.Errorf("%q: no line %q after the migration; lines %v", note, want, got)
		}
	}
	var untouched string
	if err := pool.QueryRow(ctx, `SELECT note FROM manager_audit WHERE action = 'activate'`).Scan(&untouched); err != nil || untouched != "Petrov paid" {
		t.Errorf("another action's note: %q, %v; want it untouched (an erase blanks it)", untouched, err)
	}
}
