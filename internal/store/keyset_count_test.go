package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/pgtest"
	"b24learn/internal/store"
)

type keyedRow struct {
	at time.Time
	id int64
}

// A console list counts its rows on every load; a table that only grows
// (the audit trail) must not be read in full for it. The count stops past
// CountMax, the pages still walk the whole list, and each says what it
// knows of its place.
func TestPageOfCountsAtMostCountMax(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE trail (id bigint PRIMARY KEY, created_at timestamptz NOT NULL);
		INSERT INTO trail SELECT g, '2026-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 25) g`); err != nil {
		t.Fatal(err)
	}
	scan := func(r pgx.Row) (keyedRow, error) {
		var k keyedRow
		return k, r.Scan(&k.id, &k.at)
	}
	key := func(k keyedRow) store.Key { return store.Key{At: k.at, ID: k.id} }
	list := store.List{What: "trail", Select: `SELECT id, created_at FROM trail`, CountFrom: "trail", Where: "true",
		At: "created_at", ID: "id", CountMax: 10}

	type want struct {
		first, last, total int
		more, past, older  bool
	}
	wants := []want{
		{1, 5, 10, true, false, true},
		{6, 10, 10, true, false, true},
		{11, 15, 10, true, false, true}, // ten rows before it: still counted
		{0, 0, 10, true, true, true},    // more than ten before it: its place is not known
		{0, 0, 10, true, true, false},   // the last page
	}
	var (
		c    store.Cursor
		seen []int64
		back []store.Cursor
	)
	for i, w := range wants {
		p, err := store.PageOf(ctx, pool, list, c, 5, scan, key)
		if err != nil {
			t.Fatal(err)
		}
		got := want{p.First, p.Last(), p.Total, p.More, p.Past, !p.Older.IsZero()}
		if got != w || len(p.Rows) != 5 {
			t.Fatalf("page %d: %+v with %d rows, want %+v", i+1, got, len(p.Rows), w)
		}
		if (i > 0) == p.Newer.IsZero() {
			t.Fatalf("page %d: newer link %v", i+1, p.Newer)
		}
		for _, r := range p.Rows {
			seen = append(seen, r.id)
		}
		back = append(back, p.Newer)
		c = p.Older
	}
	for i, id := range seen {
		if id != int64(25-i) {
			t.Fatalf("rows %v, want 25 down to 1", seen)
		}
	}
	// Back from the last page: the newer page is the fourth again.
	p, err := store.PageOf(ctx, pool, list, back[4], 5, scan, key)
	if err != nil || p.Rows[0].id != 10 || !p.Past || p.Older.IsZero() {
		t.Fatalf("newer than the last page: %+v, %v", p, err)
	}

	// A list within the bound is counted exactly, as before.
	small := list
	small.Where, small.Args = "id <= $1", []any{8}
	p, err = store.PageOf(ctx, pool, small, store.Cursor{}, 5, scan, key)
	if err != nil || p.Total != 8 || p.More || p.First != 1 || p.Last() != 5 || p.Older.IsZero() {
		t.Fatalf("eight rows: %+v, %v", p, err)
	}
	if p, err = store.PageOf(ctx, pool, small, p.Older, 5, scan, key); err != nil || p.First != 6 || p.Last() != 8 ||
		p.More || !p.Older.IsZero() {
		t.Fatalf("eight rows, second page: %+v, %v", p, err)
	}
	// The count reads no more rows than it counts: rows the list's
	// condition is asked about are counted by a sequence.
	if _, err := pool.Exec(ctx, `CREATE SEQUENCE reads;
		INSERT INTO trail SELECT g, '2026-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(26, 5000) g;
		CREATE INDEX trail_key ON trail (created_at, id); ANALYZE trail`); err != nil {
		t.Fatal(err)
	}
	counted := list
	counted.Where = "nextval('reads') > 0"
	// In a transaction of the test's, which may write: a pool's is read-only.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if p, err = store.PageOf(ctx, tx, counted, store.Cursor{}, 5, scan, key); err != nil || p.Total != 10 || !p.More {
		t.Fatalf("5,000 rows: %+v, %v", p, err)
	}
	var reads int64
	if err := tx.QueryRow(ctx, `SELECT last_value FROM reads`).Scan(&reads); err != nil {
		t.Fatal(err)
	}
	if reads > 100 {
		t.Fatalf("the first page of 5,000 rows read %d of them", reads)
	}

	// Exactly CountMax rows: not "more".
	small.Args = []any{10}
	if p, err = store.PageOf(ctx, pool, small, store.Cursor{}, 5, scan, key); err != nil || p.Total != 10 || p.More {
		t.Fatalf("ten rows: %+v, %v", p, err)
	}
}
