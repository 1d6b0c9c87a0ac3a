package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/pgtest"
)

// manager add keeps working as before; --require-totp marks the account,
// and reset-totp removes a lost authenticator.
func TestManagerCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	getenv := func(k string) string { return map[string]string{"DATABASE_URL": url}[k] }
	manager := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"manager"}, args...), getenv, strings.NewReader(stdin), &out, io.Discard)
		return out.String(), err
	}
	if out, err := manager("a long password 1\n", "add", "anna@ispring.example"); err != nil || !strings.Contains(out, "created") {
		t.Fatalf("manager add: %q %v", out, err)
	}
	if out, err := manager("a long password 2\n", "add", "--require-totp", "bob@ispring.example"); err != nil || !strings.Contains(out, "two-step sign-in required") {
		t.Fatalf("manager add --require-totp: %q %v", out, err)
	}
	if _, err := manager("a long password 3\n", "add", "--bogus", "carl@ispring.example"); err == nil {
		t.Fatal("an unknown flag was accepted")
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE managers SET totp_secret = '\x01'::bytea WHERE email = 'bob@ispring.example'`); err != nil {
		t.Fatal(err)
	}
	if out, err := manager("", "reset-totp", "Bob@ispring.example"); err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("reset-totp: %q %v", out, err)
	}
	if _, err := manager("", "reset-totp", "nobody@ispring.example"); err == nil {
		t.Fatal("reset-totp of an unknown manager succeeded")
	}
	rows, err := conn.Query(ctx, `SELECT email || ' ' || totp_required::text || ' ' || (totp_secret IS NOT NULL)::text FROM managers ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ", ") != "anna@ispring.example false false, bob@ispring.example true false" {
		t.Fatalf("managers: %v", got)
	}
}
