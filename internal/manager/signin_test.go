package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pquerna/otp/totp"

	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
)

func mustKeyring(t *testing.T) *secret.Keyring {
	t.Helper()
	kr, err := secret.NewKeyring("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func mustCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// mustSignIn opens a session of m with the password alone (before a second
// factor), from an address the tests use for nothing else.
func mustSignIn(t *testing.T, pool *pgxpool.Pool, kr *secret.Keyring, m *Manager, password string, now time.Time) *Session {
	t.Helper()
	s, err := SignIn(context.Background(), pool, kr, DefaultHasher(), DefaultLimits, now, Credentials{Email: m.Email, Password: password, IP: "10.255.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// turnOnTOTP gives m a second factor as the enrol page does, in a session of
// its own, and returns its secret.
func turnOnTOTP(t *testing.T, pool *pgxpool.Pool, kr *secret.Keyring, m *Manager, password string, now time.Time) *Enrolment {
	t.Helper()
	ctx := context.Background()
	s := mustSignIn(t, pool, kr, m, password, now)
	enr, err := BeginTOTP(ctx, pool, kr, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ConfirmTOTP(ctx, pool, kr, DefaultHasher(), DefaultLimits, Actor{ManagerID: m.ID, Email: m.Email}, s, password, mustCode(t, enr.Secret, now), now); err != nil {
		t.Fatal(err)
	}
	return enr
}

func TestTOTP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := mustKeyring(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	m, err := CreateManager(ctx, pool, DefaultHasher(), "dora@ispring.example", "dora's long password")
	if err != nil {
		t.Fatal(err)
	}
	a := Actor{ManagerID: m.ID, Email: m.Email, IP: "10.0.0.1"}
	signInWith := func(code string, at time.Time, ip string) error {
		_, err := SignIn(ctx, pool, kr, DefaultHasher(), DefaultLimits, at, Credentials{Email: m.Email, Password: "dora's long password", Code: code, IP: ip})
		return err
	}

	sess := mustSignIn(t, pool, kr, m, "dora's long password", now)
	enr, err := BeginTOTP(ctx, pool, kr, sess)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enr.URI, "otpauth://totp/") || !strings.Contains(enr.URI, "secret="+enr.Secret) {
		t.Fatalf("enrolment %+v", enr)
	}
	again, err := BeginTOTP(ctx, pool, kr, sess)
	if err != nil || again.Secret != enr.Secret {
		t.Fatalf("reloading the enrol page changed the secret: %v", err)
	}
	// Another session (whoever else has the password) is shown a secret of
	// its own, and cannot confirm the one this session was shown.
	other := mustSignIn(t, pool, kr, m, "dora's long password", now)
	if theirs, err := BeginTOTP(ctx, pool, kr, other); err != nil || theirs.Secret == enr.Secret {
		t.Fatalf("another session was shown this session's secret: %v", err)
	}
	if _, err := ConfirmTOTP(ctx, pool, kr, DefaultHasher(), DefaultLimits, a, other, "dora's long password", mustCode(t, enr.Secret, now), now); !errors.Is(err, ErrBadCode) {
		t.Fatalf("another session confirmed this session's secret: err = %v", err)
	}
	// Until confirmed, the password alone signs in.
	if err := signInWith("", now, "10.0.0.1"); err != nil {
		t.Fatalf("before confirmation: %v", err)
	}
	if _, err := ConfirmTOTP(ctx, pool, kr, DefaultHasher(), DefaultLimits, a, sess, "", mustCode(t, enr.Secret, now), now); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("right code without the password: err = %v", err)
	}
	if _, err := ConfirmTOTP(ctx, pool, kr, DefaultHasher(), DefaultLimits, a, sess, "dora's long password", "000000", now); !errors.Is(err, ErrBadCode) {
		t.Fatalf("wrong code: err = %v", err)
	}
	sess, err = ConfirmTOTP(ctx, pool, kr, DefaultHasher(), DefaultLimits, a, sess, "dora's long password", mustCode(t, enr.Secret, now), now)
	if err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if _, err := BeginTOTP(ctx, pool, kr, sess); !errors.Is(err, ErrTOTPEnabled) {
		t.Fatalf("enrol twice: err = %v", err)
	}

	// Encrypted at rest: neither the base32 nor the raw secret is in the row.
	var stored []byte
	if err := pool.QueryRow(ctx, `SELECT totp_secret FROM managers WHERE id = $1`, m.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	raw, err := kr.Decrypt(stored)
	if err != nil {
		t.Fatalf("stored secret does not open with the keyring: %v", err)
	}
	if bytes.Contains(stored, []byte(enr.Secret)) || bytes.Contains(stored, raw) {
		t.Fatal("the TOTP secret is stored in the clear")
	}

	// The code of the confirmation is spent; the password alone or with a
	// wrong code gets the same answer as a wrong password.
	later := now.Add(time.Minute)
	for name, code := range map[string]string{"NoCode": "", "WrongCode": "123456", "SpentCode": mustCode(t, enr.Secret, now)} {
		if err := signInWith(code, now.Add(20*time.Second), "10.0.0.2"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("%s: err = %v, want ErrBadCredentials", name, err)
		}
	}
	if err := signInWith(mustCode(t, enr.Secret, later), later, "10.0.0.3"); err != nil {
		t.Fatalf("password and code: %v", err)
	}
	if err := signInWith(mustCode(t, enr.Secret, later), later, "10.0.0.4"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("the same code twice: err = %v", err)
	}
	_, err = SignIn(ctx, pool, kr, DefaultHasher(), DefaultLimits, later, Credentials{Email: m.Email, Password: "wrong", Code: mustCode(t, enr.Secret, later.Add(30*time.Second)), IP: "10.0.0.5"})
	if !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password, right code: err = %v", err)
	}
}

// A distributed campaign (one guess per address) hits the account-wide cap;
// over it, the campaign gets no answers, while the manager still gets in
// with password and code, or from an address used before.
func TestSignInAccountCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := mustKeyring(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	l := DefaultLimits
	l.LoginPerAccount = Limit{Max: 6, Window: time.Hour}

	plain, err := CreateManager(ctx, pool, DefaultHasher(), "erik@ispring.example", "erik's long password")
	if err != nil {
		t.Fatal(err)
	}
	withCode, err := CreateManager(ctx, pool, DefaultHasher(), "fay@ispring.example", "fay's long password")
	if err != nil {
		t.Fatal(err)
	}
	enr := turnOnTOTP(t, pool, kr, withCode, "fay's long password", now)
	// Erik signed in from his office before the campaign.
	if _, err := signIn(pool, l, now, plain.Email, "erik's long password", "192.0.2.10"); err != nil {
		t.Fatal(err)
	}

	at := now.Add(time.Minute)
	for _, m := range []*Manager{plain, withCode} {
		for i := range l.LoginPerAccount.Max {
			ip := "203.0.113." + string(rune('1'+i))
			if _, err := signIn(pool, l, at, m.Email, "guess", ip); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("%s guess %d: err = %v", m.Email, i+1, err)
			}
		}
	}
	// Over the cap, even the right password from a new address gets no answer.
	if _, err := signIn(pool, l, at, plain.Email, "erik's long password", "198.51.100.1"); !isLimited(err) {
		t.Fatalf("over the cap, new address: err = %v, want rate limited", err)
	}
	if _, err := signIn(pool, l, at, plain.Email, "erik's long password", "192.0.2.10"); err != nil {
		t.Fatalf("over the cap, known address: %v", err)
	}
	code := mustCode(t, enr.Secret, at)
	for name, c := range map[string]Credentials{
		"PasswordOnly": {Password: "fay's long password"},
		"WrongCode":    {Password: "fay's long password", Code: "000000"},
		"WrongPass":    {Password: "guess", Code: code},
	} {
		c.Email, c.IP = withCode.Email, "198.51.100.2"
		if _, err := SignIn(ctx, pool, kr, DefaultHasher(), l, at, c); !isLimited(err) {
			t.Fatalf("over the cap, %s: err = %v, want rate limited", name, err)
		}
	}
	_, err = SignIn(ctx, pool, kr, DefaultHasher(), l, at, Credentials{Email: withCode.Email, Password: "fay's long password", Code: code, IP: "198.51.100.3"})
	if err != nil {
		t.Fatalf("over the cap, password and code from a new address: %v", err)
	}
}

// A limited address adds no rows for the e-mails it goes on trying, and
// counters that limit nothing any more are pruned.
func TestSignInRowsBoundedAndPruned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	l := DefaultLimits
	l.LoginPerIP = Limit{Max: 4, Window: 15 * time.Minute}
	// rowsSince counts counters last written at or after since.
	rowsSince := func(since time.Time) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM rate_limits WHERE window_start >= $1)
			+ (SELECT count(*) FROM login_failures WHERE last_at >= $1)`, since).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rows := func() int { return rowsSince(time.Time{}) }
	spray := func(from, to int, at time.Time) {
		for i := from; i < to; i++ {
			_, _ = signIn(pool, l, at, "x"+string(rune('a'+i))+"@spray.example", "guess", "203.0.113.5")
		}
	}
	spray(0, 4, now)
	limited := rows()
	spray(4, 20, now)
	if n := rows(); n != limited {
		t.Fatalf("attempts while limited added %d rows", n-limited)
	}

	// An hour later the address tries again (new counters); when two more
	// days have passed the old counters go and the recent ones stay.
	later := now.Add(time.Hour)
	spray(20, 22, later)
	recent := rowsSince(later)
	old := rows() - recent
	if recent == 0 || old == 0 {
		t.Fatalf("counters: %d old, %d recent", old, recent)
	}
	deleted, err := PruneLimits(ctx, pool, now.Add(limitsKept+30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if deleted != int64(old) || rows() != recent {
		t.Fatalf("pruned %d rows, %d left; want %d pruned, %d left", deleted, rows(), old, recent)
	}
}

// Someone who has a manager's password but not the phone guesses codes, one
// or a few per address from many addresses, so neither the address limits
// nor the account's failure cap (over which password and code still get in)
// stop the guessing. Wrong codes after the right password are capped per
// account: past the cap no code from a new address is even checked, while
// the manager still gets in from an address used before.
func TestSignInCodeGuessesCapped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := mustKeyring(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	m, err := CreateManager(ctx, pool, DefaultHasher(), "gus@ispring.example", "gus's long password")
	if err != nil {
		t.Fatal(err)
	}
	enr := turnOnTOTP(t, pool, kr, m, "gus's long password", now)
	office := now.Add(30 * time.Second)
	if _, err := SignIn(ctx, pool, kr, DefaultHasher(), DefaultLimits, office, Credentials{Email: m.Email, Password: "gus's long password",
		Code: mustCode(t, enr.Secret, office), IP: "192.0.2.20"}); err != nil {
		t.Fatal(err)
	}

	at := now.Add(2 * time.Minute)
	right := mustCode(t, enr.Secret, at)
	wrong := "000000"
	if wrong == right {
		wrong = "000001"
	}
	const guesses = 30
	for i := range guesses {
		c := Credentials{Email: m.Email, Password: "gus's long password", Code: wrong, IP: fmt.Sprintf("203.0.113.%d", i+1)}
		if _, err := SignIn(ctx, pool, kr, DefaultHasher(), DefaultLimits, at, c); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("guess %d: err = %v, want ErrBadCredentials", i+1, err)
		}
	}
	// The attacker's next guess is the right code: it must not get in.
	_, err = SignIn(ctx, pool, kr, DefaultHasher(), DefaultLimits, at, Credentials{Email: m.Email, Password: "gus's long password",
		Code: right, IP: "198.51.100.30"})
	if err == nil {
		t.Fatalf("after %d wrong codes from %d addresses the right code still signs in from a new one", guesses, guesses)
	}
	if !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("over the code cap: err = %v, want the answer of a wrong password", err)
	}
	// Gus, from his office, still gets in.
	later := at.Add(30 * time.Second)
	if _, err := SignIn(ctx, pool, kr, DefaultHasher(), DefaultLimits, later, Credentials{Email: m.Email, Password: "gus's long password",
		Code: mustCode(t, enr.Secret, later), IP: "192.0.2.20"}); err != nil {
		t.Fatalf("the manager from a known address: %v", err)
	}
}

// A manager turns the second factor on because the password alone may be
// known: a session someone opened with it elsewhere ends then, and the one
// that confirmed stays.
func TestTurningTOTPOnEndsOtherSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := mustKeyring(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	m, err := CreateManager(ctx, pool, DefaultHasher(), "ivo@ispring.example", "ivo's long password")
	if err != nil {
		t.Fatal(err)
	}
	signIn := func(ip string) *Session {
		t.Helper()
		s, err := SignIn(ctx, pool, kr, DefaultHasher(), DefaultLimits, now, Credentials{Email: m.Email, Password: "ivo's long password", IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mine, theirs := signIn("10.0.0.1"), signIn("198.51.100.7")
	enr, err := BeginTOTP(ctx, pool, kr, mine)
	if err != nil {
		t.Fatal(err)
	}
	a := Actor{ManagerID: m.ID, Email: m.Email, IP: "10.0.0.1"}
	next, err := ConfirmTOTP(ctx, pool, kr, DefaultHasher(), DefaultLimits, a, mine, "ivo's long password", mustCode(t, enr.Secret, now), now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LookupSession(ctx, pool, theirs.Token, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("the other session after the second factor was turned on: %v, want ErrNotFound", err)
	}
	// The confirming session goes on under a new token; a copy of its old
	// cookie, taken while the password alone let it in, is let in no more.
	if _, err := LookupSession(ctx, pool, mine.Token, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("the confirming session's old token: %v, want ErrNotFound", err)
	}
	if s, err := LookupSession(ctx, pool, next.Token, now); err != nil || !s.TOTP || next.Token == mine.Token || next.CSRF == mine.CSRF {
		t.Errorf("the confirming session's successor: %+v, %v; want it live with TOTP on, under a new token and form token", s, err)
	}
	var note string
	if err := pool.QueryRow(ctx, `SELECT note FROM manager_audit WHERE action = 'totp_enable' AND manager_id = $1`, m.ID).Scan(&note); err != nil || note != "other sessions ended: 1" {
		t.Errorf("audit note %q, %v", note, err)
	}
}

// The operator removes a second factor for a manager who lost the phone; a
// console session open on that phone (or opened with the password before)
// must not outlive it, or whoever holds the phone keeps the console.
func TestResetTOTPEndsTheAccountsSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := mustKeyring(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	m, err := CreateManager(ctx, pool, DefaultHasher(), "lena@ispring.example", "lena's long password")
	if err != nil {
		t.Fatal(err)
	}
	other, err := CreateManager(ctx, pool, DefaultHasher(), "oleg@ispring.example", "oleg's long password")
	if err != nil {
		t.Fatal(err)
	}
	enr := turnOnTOTP(t, pool, kr, m, "lena's long password", now)
	later := now.Add(time.Minute)
	phone, err := SignIn(ctx, pool, kr, DefaultHasher(), DefaultLimits, later, Credentials{Email: m.Email,
		Password: "lena's long password", Code: mustCode(t, enr.Secret, later), IP: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	colleague, err := SignIn(ctx, pool, kr, DefaultHasher(), DefaultLimits, later, Credentials{Email: other.Email,
		Password: "oleg's long password", IP: "10.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ResetTOTP(ctx, pool, "Lena@ispring.example", later.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if s, err := LookupSession(ctx, pool, phone.Token, later.Add(2*time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Errorf("the account's session after its second factor was reset: %+v, %v; want ErrNotFound", s, err)
	}
	if _, err := LookupSession(ctx, pool, colleague.Token, later.Add(2*time.Minute)); err != nil {
		t.Errorf("another manager's session ended too: %v", err)
	}
	// The trail names the account as stored, as the other operator
	// changes do, not as the operator typed it.
	var note string
	if err := pool.QueryRow(ctx, `SELECT note FROM manager_audit WHERE action = 'totp_reset'`).Scan(&note); err != nil ||
		!strings.HasPrefix(note, "lena@ispring.example;") {
		t.Errorf("audit note %q, %v; want it to start with lena@ispring.example;", note, err)
	}
}
