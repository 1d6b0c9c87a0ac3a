package lead

import (
	"context"
	"errors"
	"testing"
	"time"

	"b24learn/internal/pgtest"
)

func TestManagers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

	if _, err := CreateManager(ctx, pool, "anna@ispring.example", "short"); err == nil {
		t.Fatal("a short password was accepted")
	}
	m, err := CreateManager(ctx, pool, "anna@ispring.example", "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateManager(ctx, pool, "ANNA@ispring.example", "another long password"); !errors.Is(err, ErrManagerExists) {
		t.Fatalf("duplicate (case-insensitive): err = %v", err)
	}
	if _, err := CreateManager(ctx, pool, "bob@ispring.example", "bob's long password"); err != nil {
		t.Fatal(err)
	}

	t.Run("SignInAndOut", func(t *testing.T) {
		s, err := SignIn(ctx, pool, DefaultLimits, now, "Anna@ispring.example", "long enough password", "10.0.0.1")
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

	t.Run("FailedSignInLimitPerAccount", func(t *testing.T) {
		l := DefaultLimits
		l.LoginPerAccount = Limit{Max: 3, Window: 15 * time.Minute}
		for i := range 3 {
			if _, err := SignIn(ctx, pool, l, now, "bob@ispring.example", "wrong", "10.0.1.1"); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("attempt %d: err = %v", i+1, err)
			}
		}
		// Even the right password is refused now, from any IP.
		_, err := SignIn(ctx, pool, l, now.Add(time.Minute), "bob@ispring.example", "bob's long password", "10.9.9.9")
		var rl *RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("after 3 failures: err = %v, want rate limited", err)
		}
		// Other accounts are not affected...
		if _, err := SignIn(ctx, pool, l, now.Add(time.Minute), "anna@ispring.example", "long enough password", "10.9.9.9"); err != nil {
			t.Fatalf("other account: %v", err)
		}
		// ...and the next window admits again.
		if _, err := SignIn(ctx, pool, l, now.Add(15*time.Minute), "bob@ispring.example", "bob's long password", "10.9.9.9"); err != nil {
			t.Fatalf("next window: %v", err)
		}
	})

	t.Run("FailedSignInLimitPerIP", func(t *testing.T) {
		l := DefaultLimits
		l.LoginPerIP = Limit{Max: 4, Window: 15 * time.Minute}
		at := now.Add(time.Hour)
		for i, email := range []string{"x1@e.example", "x2@e.example", "x3@e.example", "x4@e.example"} {
			if _, err := SignIn(ctx, pool, l, at, email, "guess", "203.0.113.5"); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("attempt %d: err = %v", i+1, err)
			}
		}
		_, err := SignIn(ctx, pool, l, at, "anna@ispring.example", "long enough password", "203.0.113.5")
		var rl *RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("from a spraying IP: err = %v, want rate limited", err)
		}
	})

	t.Run("ActivateSuspendAudit", func(t *testing.T) {
		pid := mustPortal(t, pool, "act.bitrix24.ru")
		res, err := Submit(ctx, pool, DefaultLimits, now, Submission{PortalID: pid, Lang: "en", Contact: contact},
			enqueueInto(t, pool))
		if err != nil {
			t.Fatal(err)
		}
		a := Actor{ManagerID: m.ID, Email: m.Email, IP: "10.0.0.1"}
		if err := SetActivation(ctx, pool, a, pid, StateActive, "paid, contract 17", now); err != nil {
			t.Fatal(err)
		}
		if st := activationState(t, pool, pid); st != "active" {
			t.Fatalf("state %q", st)
		}
		r, _ := GetRequest(ctx, pool, pid, res.RequestID)
		if r.Status != StatusActivated {
			t.Fatalf("request status %q, want activated", r.Status)
		}
		if err := SetActivation(ctx, pool, a, pid, StateSuspended, "unpaid", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if st := activationState(t, pool, pid); st != "suspended" {
			t.Fatalf("state %q", st)
		}
		if err := SetActivation(ctx, pool, a, pid, "inactive", "", now); err == nil {
			t.Fatal("an unknown state was accepted")
		}
		if err := SetActivation(ctx, pool, a, 999999, StateActive, "", now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown portal: %v", err)
		}
		entries, err := ListAudit(ctx, pool, pid, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 || entries[0].Action != "suspend" || entries[0].Note != "unpaid" ||
			entries[1].Action != "activate" || entries[1].ManagerEmail != m.Email || entries[1].RequestID != res.RequestID {
			t.Fatalf("audit %+v", entries)
		}
	})

	t.Run("UpdateRequest", func(t *testing.T) {
		pid := mustPortal(t, pool, "upd.bitrix24.ru")
		res, err := Submit(ctx, pool, DefaultLimits, now, Submission{PortalID: pid, Lang: "en", Contact: contact}, enqueueInto(t, pool))
		if err != nil {
			t.Fatal(err)
		}
		a := Actor{ManagerID: m.ID, Email: m.Email}
		if err := UpdateRequest(ctx, pool, a, res.RequestID, StatusContacted, "called, wants a demo", now); err != nil {
			t.Fatal(err)
		}
		if err := UpdateRequest(ctx, pool, a, res.RequestID, "bogus", "", now); err == nil {
			t.Fatal("bogus status accepted")
		}
		r, _ := GetRequest(ctx, pool, pid, res.RequestID)
		if r.Status != StatusContacted || r.Notes != "called, wants a demo" {
			t.Fatalf("request %+v", r)
		}
		entries, _ := ListAudit(ctx, pool, pid, 10)
		if len(entries) != 2 {
			t.Fatalf("audit entries = %d, want status and notes", len(entries))
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
	if _, err := CreateManager(ctx, pool, "carol@ispring.example", "carol's long password"); err != nil {
		t.Fatal(err)
	}
	l := DefaultLimits
	l.LoginPerAccount = Limit{Max: 3, Window: 15 * time.Minute}
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := SignIn(ctx, pool, l, now, "carol@ispring.example", "guess", "198.51.100.7")
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
	if checked > l.LoginPerAccount.Max {
		t.Fatalf("%d of %d parallel guesses had their password checked; the limit is %d", checked, n, l.LoginPerAccount.Max)
	}
	// The right password, after the limit is used up, is refused too...
	if _, err := SignIn(ctx, pool, l, now.Add(time.Minute), "carol@ispring.example", "carol's long password", "198.51.100.8"); err == nil {
		t.Fatal("sign-in admitted after the limit was used up")
	}
	// ...and a successful sign-in in a fresh window does not use up the limit.
	later := now.Add(time.Hour)
	for i := range 5 {
		if _, err := SignIn(ctx, pool, l, later, "carol@ispring.example", "carol's long password", "198.51.100.9"); err != nil {
			t.Fatalf("successful sign-in %d: %v", i+1, err)
		}
	}
}
