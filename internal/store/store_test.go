package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/pgtest"
	"b24learn/internal/store"
)

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t) // already migrated once
	ctx := context.Background()
	applied, err := store.Migrate(ctx, pool, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Fatalf("second migrate applied %v, want nothing", applied)
	}
	if err := store.Ready(ctx, pool); err != nil {
		t.Fatalf("Ready after migrate: %v", err)
	}
}

func TestMigrateConcurrentlyOnEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	// An empty database of our own: drop everything the template brought.
	if _, err := pool.Exec(ctx, "DROP SCHEMA public CASCADE; CREATE SCHEMA public"); err != nil {
		t.Fatal(err)
	}
	if err := store.Ready(ctx, pool); err == nil {
		t.Fatal("Ready on an empty database succeeded")
	}
	pools := []*pgxpool.Pool{pool, pgtest.Reopen(t, pool)}
	var wg sync.WaitGroup
	results := make([][]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { results[i], errs[i] = store.Migrate(ctx, pools[i], slog.New(slog.DiscardHandler)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}
	// Exactly one of the two did the work.
	all, _ := store.Migrations()
	total := len(results[0]) + len(results[1])
	if len(results[0]) != 0 && len(results[1]) != 0 {
		t.Fatalf("both runs applied migrations: %v / %v", results[0], results[1])
	}
	if total < len(all) {
		t.Fatalf("applied %d versions, want at least %d", total, len(all))
	}
	for _, m := range all {
		if !slices.Contains(append(results[0], results[1]...), m.Version) {
			t.Errorf("migration %s not applied", m.Version)
		}
	}
	if err := store.Ready(ctx, pool); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

// Several instances started at once on a fresh server (`migrate` or `serve`
// in each) all find the database missing and create it: every one of them
// must go on, not the first alone.
func TestCreateDatabaseConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "b24learn_test_create_" + hex.EncodeToString(b[:])
	u.Path = "/" + name
	t.Cleanup(func() {
		admin := *u
		admin.Path = "/postgres"
		if c, err := pgx.Connect(context.Background(), admin.String()); err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close(context.Background())
		}
	})
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = store.CreateDatabase(ctx, u.String()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
}
