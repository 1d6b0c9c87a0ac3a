package manager

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/pgtest"
)

func TestManagers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

	if _, err := CreateManager(ctx, pool, DefaultHasher(), "anna@ispring.example", "short"); err == nil {
		t.Fatal("a short password was accepted")
	}
	m, err := CreateManager(ctx, pool, DefaultHasher(), "anna@ispring.example", "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateManager(ctx, pool, DefaultHasher(), "ANNA@ispring.example", "another long password"); !errors.Is(err, ErrManagerExists) {
		t.Fatalf("duplicate (case-insensitive): err = %v", err)
	}
	if _, err := CreateManager(ctx, pool, DefaultHasher(), "bob@ispring.example", "bob's long password"); err != nil {
		t.Fatal(err)
	}

	t.Run("SignInAndOut", func(t *testing.T) {
		s, err := signIn(pool, DefaultLimits, now, "Anna@ispring.example", "long enough password", "10.0.0.1")
		if err != nil {
			t.Fatalf("SignIn: %v", err)
		}
		if s.ManagerID != m.ID || s.CSRF == "" || s.Token == "" {
			t.Fatalf("session %+v", s)
		}
		got, err := LookupSession(ctx, pool, s.Token, now.Add(time.Hour))
		if err != nil || got.CSRF != s.CSRF {
			t.Fatalf("LookupSession: %+v %v", got, err)
		}
		if _, err := LookupSession(ctx, pool, s.Token, now.Add(SessionTTL+time.Second)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired session: err = %v", err)
		}
		if err := SignOut(ctx, pool, s, "10.0.0.1", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := LookupSession(ctx, pool, s.Token, now.Add(2*time.Minute)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("session after sign-out: err = %v", err)
		}
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM manager_sessions WHERE id_hash = $1`, []byte(s.Token)).Scan(&n)
		if n != 0 {
			t.Fatal("the raw token is stored; only its hash may be")
		}
	})

	t.Run("FailedSignInsWaitPerAddress", func(t *testing.T) {
		// The attacker: ten wrong passwords for bob from one address.
		l := DefaultLimits
		var waits []time.Duration
		for i := range 10 {
			_, err := signIn(pool, l, now, "bob@ispring.example", "wrong", "10.0.1.1")
			var rl *RateLimitedError
			switch {
			case i < l.LoginBackoff.Free && errors.Is(err, ErrBadCredentials):
			case i >= l.LoginBackoff.Free && errors.As(err, &rl):
				waits = append(waits, rl.RetryAfter)
			default:
				t.Fatalf("attempt %d: err = %v", i+1, err)
			}
		}
		if waits[0] != 30*time.Second {
			t.Fatalf("wait after %d failures = %s, want 30s", l.LoginBackoff.Free, waits[0])
		}
		// Bob, from another address, signs in at once.
		if _, err := signIn(pool, l, now, "bob@ispring.example", "bob's long password", "10.9.9.9"); err != nil {
			t.Fatalf("bob from another address: %v", err)
		}
		// The guessing address waits, even with the right password...
		if _, err := signIn(pool, l, now.Add(29*time.Second), "bob@ispring.example", "bob's long password", "10.0.1.1"); !isLimited(err) {
			t.Fatalf("guessing address before its wait: err = %v, want rate limited", err)
		}
		// ...and each further failure doubles its wait.
		at := now.Add(31 * time.Second)
		if _, err := signIn(pool, l, at, "bob@ispring.example", "wrong", "10.0.1.1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("after the wait: err = %v", err)
		}
		_, err := signIn(pool, l, at, "bob@ispring.example", "bob's long password", "10.0.1.1")
		var rl *RateLimitedError
		if !errors.As(err, &rl) || rl.RetryAfter != time.Minute {
			t.Fatalf("after a 6th failure: err = %v, want a wait of 1m", err)
		}
		if _, err := signIn(pool, l, at.Add(time.Minute), "bob@ispring.example", "bob's long password", "10.0.1.1"); err != nil {
			t.Fatalf("after the doubled wait: %v", err)
		}
	})

	t.Run("FailedSignInLimitPerIP", func(t *testing.T) {
		l := DefaultLimits
		l.LoginPerIP = Limit{Max: 4, Window: 15 * time.Minute}
		at := now.Add(time.Hour)
		for i, email := range []string{"x1@e.example", "x2@e.example", "x3@e.example", "x4@e.example"} {
			if _, err := signIn(pool, l, at, email, "guess", "203.0.113.5"); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("attempt %d: err = %v", i+1, err)
			}
		}
		_, err := signIn(pool, l, at, "anna@ispring.example", "long enough password", "203.0.113.5")
		var rl *RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("from a spraying IP: err = %v, want rate limited", err)
		}
	})

	// One subscriber holds a whole IPv6 /64: addresses inside it share the
	// address's limits, or the attacker would have 2^64 fresh buckets.
	t.Run("FailedSignInLimitPerIPv6Subnet", func(t *testing.T) {
		l := DefaultLimits
		at := now.Add(2 * time.Hour)
		for i := range l.LoginPerIP.Max {
			email := fmt.Sprintf("v6spray%d@e.example", i)
			ip := fmt.Sprintf("2001:db8:1:2::%x", i+1)
			if _, err := signIn(pool, l, at, email, "guess", ip); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("attempt %d from %s: err = %v", i+1, ip, err)
			}
		}
		_, err := signIn(pool, l, at, "anna@ispring.example", "long enough password", "2001:db8:1:2::ffff")
		if !isLimited(err) {
			t.Fatalf("a fresh address in the spraying /64: err = %v, want rate limited", err)
		}
		// The next /64 is another subscriber.
		if _, err := signIn(pool, l, at, "anna@ispring.example", "long enough password", "2001:db8:1:3::1"); err != nil {
			t.Fatalf("from the neighbouring /64: %v", err)
		}
	})

	t.Run("BackoffPerIPv6Subnet", func(t *testing.T) {
		l := DefaultLimits
		at := now.Add(3 * time.Hour)
		for i := range l.LoginBackoff.Free {
			ip := fmt.Sprintf("2001:db8:5:6::%x", i+1)
			if _, err := signIn(pool, l, at, "bob@ispring.example", "guess", ip); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("guess %d from %s: err = %v", i+1, ip, err)
			}
		}
		_, err := signIn(pool, l, at, "bob@ispring.example", "guess", "2001:db8:5:6::ffff")
		var rl *RateLimitedError
		if !errors.As(err, &rl) || rl.RetryAfter != l.LoginBackoff.Base {
			t.Fatalf("a fresh address in the guessing /64: err = %v, want a wait of %s", err, l.LoginBackoff.Base)
		}
	})

}

// Parallel guesses must not slip past the failed-sign-in limit: each attempt
// takes its place in the count before the password is checked.
func TestSignInLimitHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	if _, err := CreateManager(ctx, pool, DefaultHasher(), "carol@ispring.example", "carol's long password"); err != nil {
		t.Fatal(err)
	}
	l := DefaultLimits
	l.LoginBackoff.Free = 3
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := signIn(pool, l, now, "carol@ispring.example", "guess", "198.51.100.7")
			errs <- err
		}()
	}
	checked := 0
	for range n {
		err := <-errs
		var rl *RateLimitedError
		switch {
		case errors.Is(err, ErrBadCredentials):
			checked++
		case errors.As(err, &rl):
		default:
			t.Fatalf("err = %v", err)
		}
	}
	if checked > l.LoginBackoff.Free {
		t.Fatalf("%d of %d parallel guesses had their password checked; the limit is %d", checked, n, l.LoginBackoff.Free)
	}
	// The right password from the guessing address waits too...
	if _, err := signIn(pool, l, now.Add(time.Second), "carol@ispring.example", "carol's long password", "198.51.100.7"); err == nil {
		t.Fatal("sign-in admitted from the guessing address during its wait")
	}
	// ...and successful sign-ins do not use up any limit.
	for i := range 25 {
		if _, err := signIn(pool, l, now.Add(time.Second), "carol@ispring.example", "carol's long password", "198.51.100.9"); err != nil {
			t.Fatalf("successful sign-in %d: %v", i+1, err)
		}
	}
}

// signIn is SignIn for accounts without a second factor.
func signIn(pool *pgxpool.Pool, l Limits, now time.Time, email, password, ip string) (*Session, error) {
	return SignIn(context.Background(), pool, nil, DefaultHasher(), l, now, Credentials{Email: email, Password: password, IP: ip})
}
