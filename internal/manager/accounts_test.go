package manager

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/argon2"

	"b24learn/internal/pgtest"
)

// signInState is what one sign-in attempt left behind for its account and
// address: the limits' counts and whether the account's code was spent.
func signInState(t *testing.T, pool *pgxpool.Pool, email, ip string) string {
	t.Helper()
	var s string
	err := pool.QueryRow(context.Background(), `SELECT
		(SELECT coalesce(string_agg(failures::text || ' ' || (blocked_until IS NOT NULL)::text, ','), '-') FROM login_failures WHERE account = lower($1) AND ip = $2) || ' ' ||
		(SELECT coalesce(sum(hits), 0)::text FROM rate_limits WHERE key = 'login:account:' || lower($1)) || ' ' ||
		(SELECT coalesce(sum(hits), 0)::text FROM rate_limits WHERE key = 'login:code:' || lower($1)) || ' ' ||
		(SELECT coalesce(sum(hits), 0)::text FROM rate_limits WHERE key = 'login:ip:' || $2)`,
		email, ip).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A disabled account's right password and valid code do exactly the work
// of a wrong password (one argon2id of the account's own hash, no code
// checked or spent) and leave the same counts behind, so neither the
// answer, its time nor the limits that follow tell the account apart.
func TestDisabledSignInDoesAWrongPasswordsWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := mustKeyring(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	const password = "a long enough password"
	dis, err := CreateManager(ctx, pool, DefaultHasher(), "dis@ispring.example", password)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := CreateManager(ctx, pool, DefaultHasher(), "ctl@ispring.example", password)
	if err != nil {
		t.Fatal(err)
	}
	disTOTP, ctlTOTP := turnOnTOTP(t, pool, kr, dis, password, now), turnOnTOTP(t, pool, kr, ctl, password, now)
	if changed, err := SetDisabled(ctx, pool, dis.Email, true, now); err != nil || !changed {
		t.Fatalf("disable: %v %v", changed, err)
	}
	var lastStep int64
	if err := pool.QueryRow(ctx, `SELECT totp_last_step FROM managers WHERE id = $1`, dis.ID).Scan(&lastStep); err != nil {
		t.Fatal(err)
	}

	var hashes atomic.Int32
	h := DefaultHasher()
	h.key = func(password, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
		hashes.Add(1)
		return argon2.IDKey(password, salt, t, m, p, keyLen)
	}
	// Past the enrolment's time step: valid codes neither was shown yet.
	// The clock stands still, so the address's wait is not over.
	at := now.Add(30 * time.Second)
	for i := range DefaultLimits.LoginBackoff.Free + 1 {
		hashes.Store(0)
		_, disErr := SignIn(ctx, pool, kr, h, DefaultLimits, at, Credentials{Email: dis.Email, Password: password,
			Code: mustCode(t, disTOTP.Secret, at), IP: "198.51.100.1"})
		disHashes := hashes.Swap(0)
		_, ctlErr := SignIn(ctx, pool, kr, h, DefaultLimits, at, Credentials{Email: ctl.Email, Password: "a wrong password",
			Code: mustCode(t, ctlTOTP.Secret, at), IP: "198.51.100.2"})
		ctlHashes := hashes.Load()
		var disRL, ctlRL *RateLimitedError
		switch {
		case i < DefaultLimits.LoginBackoff.Free:
			if !errors.Is(disErr, ErrBadCredentials) || !errors.Is(ctlErr, ErrBadCredentials) {
				t.Fatalf("attempt %d: disabled account %v, wrong password %v; want ErrBadCredentials for both", i+1, disErr, ctlErr)
			}
			if disHashes != 1 || ctlHashes != 1 {
				t.Fatalf("attempt %d: the disabled account's sign-in hashed %d times, a wrong password's %d; want 1 and 1", i+1, disHashes, ctlHashes)
			}
		case !errors.As(disErr, &disRL) || !errors.As(ctlErr, &ctlRL) || disRL.RetryAfter != ctlRL.RetryAfter:
			t.Fatalf("attempt %d: disabled account %v, wrong password %v; want the same wait", i+1, disErr, ctlErr)
		}
		if got, want := signInState(t, pool, dis.Email, "198.51.100.1"), signInState(t, pool, ctl.Email, "198.51.100.2"); got != want {
			t.Fatalf("attempt %d left behind %q for the disabled account, %q for a wrong password", i+1, got, want)
		}
	}
	var step int64
	if err := pool.QueryRow(ctx, `SELECT totp_last_step FROM managers WHERE id = $1`, dis.ID).Scan(&step); err != nil {
		t.Fatal(err)
	}
	if step != lastStep {
		t.Fatal("a disabled account's code was checked and spent")
	}
	var live int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM manager_sessions WHERE manager_id = $1 AND revoked_at IS NULL`, dis.ID).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if live != 0 {
		t.Fatalf("the disabled account has %d live session(s)", live)
	}
}

// A sign-in that checked the password before the operator disabled the
// account, or gave it a new password, stores no session after: the change
// ends every session in a transaction that holds the account's row, and a
// session stored after it would outlive it.
func TestSignInRacingDisableOrNewPasswordGetsNoSession(t *testing.T) {
	t.Parallel()
	for name, lockout := range lockouts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := pgtest.NewPool(t)
			now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
			const password = "tom's long password"
			m, err := CreateManager(ctx, pool, DefaultHasher(), "tom@ispring.example", password)
			if err != nil {
				t.Fatal(err)
			}
			held := duringPasswordCheck(func() {
				if err := lockout(ctx, pool, m.Email, now); err != nil {
					t.Fatal(err)
				}
			})
			_, err = SignIn(ctx, pool, nil, held, DefaultLimits, now, Credentials{Email: m.Email, Password: password, IP: "198.51.100.9"})
			if !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("the sign-in that checked the password before the change: %v, want ErrBadCredentials", err)
			}
			var live int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM manager_sessions WHERE manager_id = $1 AND revoked_at IS NULL`, m.ID).Scan(&live); err != nil {
				t.Fatal(err)
			}
			if live != 0 {
				t.Fatalf("%d live session(s) after the change", live)
			}
		})
	}
}

// The operator's account changes: each ends the account's sessions as it
// says, writes one line to the trail as CLIActor, and an unknown e-mail
// writes nothing.
func TestAccountChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	m, err := CreateManager(ctx, pool, DefaultHasher(), "uma@ispring.example", "uma's long password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateManager(ctx, pool, DefaultHasher(), "vic@ispring.example", "vic's long password"); err != nil {
		t.Fatal(err)
	}
	trail := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM manager_audit WHERE manager_email = $1`, CLIActor).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if err := ChangePassword(ctx, pool, DefaultHasher(), "nobody@ispring.example", "a long enough password", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("new password of an unknown account: %v", err)
	}
	if _, err := SetDisabled(ctx, pool, "nobody@ispring.example", true, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("disable of an unknown account: %v", err)
	}
	if err := ChangePassword(ctx, pool, DefaultHasher(), m.Email, "short", now); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Fatalf("a short new password: %v", err)
	}
	if n := trail(); n != 0 {
		t.Fatalf("refused changes wrote %d line(s) to the trail", n)
	}

	// An account already enabled keeps its sessions at "enable".
	s := mustSignIn(t, pool, nil, m, "uma's long password", now)
	if changed, err := SetDisabled(ctx, pool, m.Email, false, now); err != nil || changed {
		t.Fatalf("enable of an enabled account: %v %v, want nothing changed", changed, err)
	}
	if _, err := LookupSession(ctx, pool, s.Token, now); err != nil {
		t.Fatalf("session after enabling an enabled account: %v", err)
	}
	if n := trail(); n != 0 {
		t.Fatalf("an enable that changed nothing wrote %d line(s) to the trail", n)
	}

	// An account disabled before this command existed (the column is older)
	// has sessions the flag alone refuses: enabling it ends them.
	if _, err := pool.Exec(ctx, `UPDATE managers SET disabled = true WHERE id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	if changed, err := SetDisabled(ctx, pool, "UMA@ispring.example", false, now); err != nil || !changed {
		t.Fatalf("enable: %v %v", changed, err)
	}
	if _, err := LookupSession(ctx, pool, s.Token, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a session from before the account was disabled, after enable: %v, want ErrNotFound", err)
	}

	accounts, err := ListAccounts(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(accounts) != 2 || accounts[0].Email != "uma@ispring.example" || accounts[0].Disabled || !accounts[0].LastSignIn.Equal(now) ||
		accounts[1].Email != "vic@ispring.example" || !accounts[1].LastSignIn.IsZero() {
		t.Fatalf("accounts: %+v", accounts)
	}
	entries, err := ListAudit(ctx, pool, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if e := entries[0]; e.ManagerEmail != CLIActor || e.ManagerID != 0 || e.Action != "enable" || e.Note != "uma@ispring.example; sessions ended: 1" {
		t.Fatalf("trail: %+v", e)
	}
}
