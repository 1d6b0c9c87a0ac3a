package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/manager"
	"b24learn/internal/pgtest"
	"b24learn/internal/store"
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

// The operator's account commands: password, disable, enable and list, each
// written to the audit trail as "cli"; an unknown e-mail or a short password
// fails and writes nothing.
func TestManagerAccountCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	getenv := func(k string) string { return map[string]string{"DATABASE_URL": url}[k] }
	mgr := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"manager"}, args...), getenv, strings.NewReader(stdin), &out, io.Discard)
		return out.String(), err
	}
	pool, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	now := time.Now()
	signIn := func(email, password, ip string) (*manager.Session, error) {
		return manager.SignIn(ctx, pool, nil, manager.DefaultHasher(), manager.DefaultLimits, now, manager.Credentials{Email: email, Password: password, IP: ip})
	}
	// written is what the commands may change: the accounts and the trail.
	written := func() string {
		t.Helper()
		var s string
		if err := pool.QueryRow(ctx, `SELECT
			(SELECT string_agg(email || ' ' || password_hash || ' ' || disabled::text || ' ' || updated_at::text, ', ' ORDER BY id) FROM managers) ||
			(SELECT count(*)::text FROM manager_audit) ||
			(SELECT count(*)::text FROM manager_sessions WHERE revoked_at IS NULL)`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	audit := func() []string {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT manager_email || ' ' || action || ' ' || note FROM manager_audit
			WHERE action NOT IN ('sign_in', 'sign_out') ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	if out, err := mgr("", "list"); err != nil || out != "no manager accounts\n" {
		t.Fatalf("list with no accounts: %q %v", out, err)
	}
	for _, email := range []string{"anna@ispring.example", "bob@ispring.example"} {
		if _, err := mgr("the first long password\n", "add", email); err != nil {
			t.Fatal(err)
		}
	}
	annaOld, err := signIn("anna@ispring.example", "the first long password", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := signIn("bob@ispring.example", "the first long password", "10.0.0.2")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("RefusedChangeNothing", func(t *testing.T) {
		before := written()
		for _, tc := range []struct {
			name, stdin string
			args        []string
			want        string
		}{
			{"PasswordUnknown", "a new long password\n", []string{"password", "nobody@ispring.example"}, `no manager "nobody@ispring.example"`},
			{"DisableUnknown", "", []string{"disable", "nobody@ispring.example"}, `no manager "nobody@ispring.example"`},
			{"EnableUnknown", "", []string{"enable", "nobody@ispring.example"}, `no manager "nobody@ispring.example"`},
			{"PasswordShort", "short\n", []string{"password", "anna@ispring.example"}, "at least 12 characters"},
			{"PasswordNone", "", []string{"password", "anna@ispring.example"}, "no password on standard input"},
			{"PasswordNoEmail", "a new long password\n", []string{"password"}, "expected one EMAIL"},
			{"DisableFlag", "", []string{"disable", "--all"}, "expected one EMAIL"},
			{"ListArgument", "", []string{"list", "anna@ispring.example"}, "takes no arguments"},
			{"Unknown", "", []string{"delete", "anna@ispring.example"}, "expected add, password"},
		} {
			if out, err := mgr(tc.stdin, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
				t.Errorf("%s: %q, %v; want an error saying %q", tc.name, out, err, tc.want)
			}
		}
		if after := written(); after != before {
			t.Fatalf("refused commands wrote:\nbefore %s\nafter  %s", before, after)
		}
	})

	if out, err := mgr("the second long password\n", "password", "Anna@ispring.example"); err != nil || !strings.Contains(out, "password of Anna@ispring.example changed") {
		t.Fatalf("password: %q %v", out, err)
	}
	if _, err := manager.LookupSession(ctx, pool, annaOld.Token, now); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("anna's session from before the new password: %v, want ErrNotFound", err)
	}
	if _, err := signIn("anna@ispring.example", "the first long password", "10.0.0.3"); !errors.Is(err, manager.ErrBadCredentials) {
		t.Errorf("the old password: %v, want ErrBadCredentials", err)
	}
	annaNew, err := signIn("anna@ispring.example", "the second long password", "10.0.0.1")
	if err != nil {
		t.Fatalf("the new password: %v", err)
	}
	if _, err := manager.LookupSession(ctx, pool, bob.Token, now); err != nil {
		t.Errorf("bob's session after anna's new password: %v", err)
	}

	if out, err := mgr("", "disable", "anna@ispring.example"); err != nil || !strings.Contains(out, "disabled") {
		t.Fatalf("disable: %q %v", out, err)
	}
	if _, err := manager.LookupSession(ctx, pool, annaNew.Token, now); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("anna's session after disable: %v, want ErrNotFound", err)
	}
	if _, err := signIn("anna@ispring.example", "the second long password", "10.0.0.1"); !errors.Is(err, manager.ErrBadCredentials) {
		t.Errorf("a disabled account's right password: %v, want ErrBadCredentials", err)
	}
	if out, err := mgr("", "disable", "anna@ispring.example"); err != nil || !strings.Contains(out, "already disabled") {
		t.Fatalf("disable again: %q %v", out, err)
	}
	if _, err := mgr("", "reset-totp", "bob@ispring.example"); err != nil {
		t.Fatal(err)
	}

	out, err := mgr("", "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "EMAIL ") ||
		!regexp.MustCompile(`^anna@ispring\.example +\d{4}-\d\d-\d\d \d\d:\d\d +\d{4}-\d\d-\d\d \d\d:\d\d +off +yes$`).MatchString(lines[1]) ||
		!regexp.MustCompile(`^bob@ispring\.example +\d{4}-\d\d-\d\d \d\d:\d\d +\d{4}-\d\d-\d\d \d\d:\d\d +off +no$`).MatchString(lines[2]) {
		t.Fatalf("list:\n%s", out)
	}
	if strings.Contains(out, "argon2") || strings.Contains(out, "$") {
		t.Fatalf("list shows a hash:\n%s", out)
	}

	if out, err := mgr("", "enable", "anna@ispring.example"); err != nil || !strings.Contains(out, "enabled") {
		t.Fatalf("enable: %q %v", out, err)
	}
	if _, err := manager.LookupSession(ctx, pool, annaNew.Token, now); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("anna's session from before disable, after enable: %v, want ErrNotFound", err)
	}
	if _, err := signIn("anna@ispring.example", "the second long password", "10.0.0.1"); err != nil {
		t.Errorf("anna after enable: %v", err)
	}
	if out, err := mgr("", "enable", "anna@ispring.example"); err != nil || !strings.Contains(out, "already enabled") {
		t.Fatalf("enable again: %q %v", out, err)
	}
	if out, _ := mgr("", "list"); !regexp.MustCompile(`(?m)^anna@ispring\.example .* no$`).MatchString(out) {
		t.Fatalf("list after enable:\n%s", out)
	}

	want := []string{
		"cli password_set anna@ispring.example; sessions ended: 1",
		"cli disable anna@ispring.example; sessions ended: 1",
		"cli totp_reset bob@ispring.example; sessions ended: 1",
		"cli enable anna@ispring.example; sessions ended: 0",
	}
	if got := audit(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
