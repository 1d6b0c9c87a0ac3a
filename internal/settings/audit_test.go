package settings

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A save that changes 20,000 departments writes an audit row of a few
// kilobytes, not both whole lists; the row still says what changed.
func TestAuditOfLargeSelectionIsBounded(t *testing.T) {
	ctx, pool, kr, newPortal := setup(t)
	id := newPortal()
	ids := func(from, n int) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(1_000_000 + from + i)
		}
		return out
	}
	if _, err := Save(ctx, pool, kr, id, 7, func(s *Settings) { s.Departments = Scope{Selected: ids(0, 20_000), Excluded: []int64{}} }); err != nil {
		t.Fatal(err)
	}
	if _, err := Save(ctx, pool, kr, id, 7, func(s *Settings) { s.Departments = Scope{Selected: ids(20_000, 20_000), Excluded: []int64{}} }); err != nil {
		t.Fatal(err)
	}
	var size int
	var raw []byte
	if err := pool.QueryRow(ctx, `SELECT octet_length(changes::text), changes->'departments' FROM settings_audit
		WHERE portal_id = $1 ORDER BY id DESC LIMIT 1`, id).Scan(&size, &raw); err != nil {
		t.Fatal(err)
	}
	if size >= 16<<10 {
		t.Fatalf("audit row of a 20,000-department change is %d bytes", size)
	}
	var got DepartmentsChange
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("departments change %s: %v", raw, err)
	}
	sel := got.Selected
	if sel.AddedCount != 20_000 || sel.RemovedCount != 20_000 || len(sel.Added) != auditIDs || len(sel.Removed) != 0 ||
		sel.Added[0] != 1_020_000 {
		t.Fatalf("selection change: %d added (%d named, first %v), %d removed (%d named)",
			sel.AddedCount, len(sel.Added), sel.Added[:1], sel.RemovedCount, len(sel.Removed))
	}
}

// A small change of the selection names every id added and removed.
func TestAuditNamesChangedDepartments(t *testing.T) {
	ctx, pool, kr, newPortal := setup(t)
	id := newPortal()
	if _, err := Save(ctx, pool, kr, id, 7, func(s *Settings) { s.Departments = Scope{Selected: []int64{1, 7}, Excluded: []int64{9}} }); err != nil {
		t.Fatal(err)
	}
	ch, err := Save(ctx, pool, kr, id, 8, func(s *Settings) { s.Departments = Scope{Selected: []int64{7, 3, 5}, Excluded: []int64{}} })
	if err != nil {
		t.Fatal(err)
	}
	want := `{"selected":{"added":[3,5],"added_count":2,"removed":[1],"removed_count":1},` +
		`"excluded":{"added":[],"added_count":0,"removed":[9],"removed_count":1}}`
	if b, _ := json.Marshal(ch[FieldDepartments]); string(b) != want {
		t.Fatalf("returned change %s, want %s", b, want)
	}
	var stored string
	if err := pool.QueryRow(ctx, `SELECT (changes->'departments')::text FROM settings_audit WHERE portal_id = $1 AND user_id = 8`, id).
		Scan(&stored); err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal([]byte(stored), &a)
	_ = json.Unmarshal([]byte(want), &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("stored change %s, want %s", stored, want)
	}
}

// PurgeAudit deletes rows past the retention and keeps the others.
func TestPurgeAudit(t *testing.T) {
	ctx, pool, _, newPortal := setup(t)
	id := newPortal()
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	if _, err := pool.Exec(ctx, `INSERT INTO settings_audit (portal_id, user_id, changed_at, changes) VALUES
		($1, 1, $2, '{"alerts_off": {"from": false, "to": true}}'), ($1, 2, $3, '{"alerts_off": {"from": true, "to": false}}')`,
		id, now.Add(-91*24*time.Hour), now.Add(-89*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := PurgeAudit(ctx, pool, 90*24*time.Hour, now)
	if err != nil || n != 1 {
		t.Fatalf("purged %d rows (%v), want 1", n, err)
	}
	rows, _ := pool.Query(ctx, `SELECT user_id FROM settings_audit WHERE portal_id = $1`, id)
	left, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != 2 {
		t.Fatalf("rows left: users %v, want [2]", left)
	}
}
