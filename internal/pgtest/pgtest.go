// Package pgtest gives each test a private PostgreSQL database with every
// migration applied, so tests and test packages run in parallel without ever
// sharing rows.
//
// The server is found as the README's quick start says (TEST_DATABASE_URL
// or DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster). A template
// database is migrated once per schema version; each test's database is a
// cheap copy of it (CREATE DATABASE ... TEMPLATE) dropped at cleanup.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/localpg"
	"b24learn/internal/store"
)

// NewPool returns a pool on a fresh, migrated database of its own, closed and
// dropped when the test ends.
func NewPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	url := NewDatabase(tb)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		tb.Fatalf("pgtest: open pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// NewDatabase creates a fresh migrated database and returns its URL, for
// tests that start a process or need their own connection settings.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	serverURL, err := localpg.Find(ctx, firstNonEmpty(os.Getenv("TEST_DATABASE_URL"), os.Getenv("DATABASE_URL")),
		filepath.Join(os.TempDir(), "b24learn-pgtest"))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		tb.Fatalf("pgtest: connect %s: %v", redact(serverURL), err)
	}
	defer admin.Close(ctx)

	tmpl, err := ensureTemplate(ctx, admin, serverURL)
	if err != nil {
		tb.Fatalf("pgtest: template: %v", err)
	}
	name := "b24learn_test_" + randomHex(6)
	// CREATE DATABASE ... TEMPLATE fails while another session is connected to
	// the template; retry briefly, since template creation may be finishing.
	for attempt := 0; ; attempt++ {
		_, err = admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl))
		if err == nil || attempt == 20 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return withDatabase(serverURL, name)
}

// ensureTemplate creates and migrates the template database for the current
// set of migrations, once across all test processes (advisory lock).
func ensureTemplate(ctx context.Context, admin *pgx.Conn, serverURL string) (string, error) {
	all, err := store.Migrations()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range all {
		io.WriteString(h, m.Version)
		io.WriteString(h, m.SQL)
	}
	name := "b24learn_tmpl_" + hex.EncodeToString(h.Sum(nil))[:12]

	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(72201)"); err != nil {
		return "", err
	}
	defer admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(72201)")

	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_build"
	_, _ = admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", building))
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s", building)); err != nil {
		return "", err
	}
	pool, err := store.Open(ctx, withDatabase(serverURL, building))
	if err != nil {
		return "", err
	}
	_, err = store.Migrate(ctx, pool, slog.New(slog.DiscardHandler))
	pool.Close()
	if err != nil {
		return "", err
	}
	// Renamed only when complete, so a crash never leaves a half-built template.
	if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", building, name)); err != nil {
		return "", err
	}
	return name, nil
}

func withDatabase(serverURL, db string) string {
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		return serverURL
	}
	user := cfg.User
	if user == "" {
		user = "postgres"
	}
	auth := user
	if cfg.Password != "" {
		auth += ":" + cfg.Password
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", auth, cfg.Host, cfg.Port, db)
}

func redact(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "(unparsable URL)"
	}
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// Reopen returns a second, independent pool on the same database as pool,
// standing in for another process.
func Reopen(tb testing.TB, pool *pgxpool.Pool) *pgxpool.Pool {
	tb.Helper()
	p, err := pgxpool.NewWithConfig(context.Background(), pool.Config().Copy())
	if err != nil {
		tb.Fatalf("pgtest: reopen: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}
