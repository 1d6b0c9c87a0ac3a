package store_test

import (
	"context"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"testing"

	"b24learn/internal/pgtest"
	"b24learn/internal/store"
	"b24learn/migrations"
)

// The order the files apply in is their names' order; the numbers must be
// unique so that no two files' order depends on the rest of the name.
func TestMigrationsApplyInNumberOrder(t *testing.T) {
	all, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(migrations.FS, "*")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 || len(all) != len(files) {
		t.Fatalf("%d migrations of %d embedded files", len(all), len(files))
	}
	name := regexp.MustCompile(`^([0-9]{3})_[a-z0-9_]+$`)
	prev := ""
	for _, m := range all {
		g := name.FindStringSubmatch(m.Version)
		if g == nil {
			t.Errorf("migration %q is not NNN_name.up.sql", m.Version)
			continue
		}
		if g[1] <= prev {
			t.Errorf("migration %s does not come after number %s", m.Version, prev)
		}
		prev = g[1]
	}
}

// 005_call_log was written after 050 and reached databases that already had
// 050: applied versions are recorded by name, so a file numbered below the
// last applied one is still applied, once.
func TestMigrateAppliesALaterFileWithALowerNumber(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if _, err := pool.Exec(ctx, `DROP TABLE call_log; DELETE FROM schema_migrations WHERE version = '005_call_log'`); err != nil {
		t.Fatal(err)
	}
	if err := store.Ready(ctx, pool); err == nil {
		t.Fatal("Ready without 005_call_log succeeded")
	}
	applied, err := store.Migrate(ctx, pool, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, []string{"005_call_log"}) {
		t.Fatalf("applied %v, want [005_call_log]", applied)
	}
	if err := store.Ready(ctx, pool); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}
