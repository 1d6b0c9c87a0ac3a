package manager

import (
	"context"
	"errors"
	"testing"
	"time"

	"b24learn/internal/pgtest"
)

// Turning the second factor on checks the password before its transaction.
// An operator who meanwhile disables the account or gives it a new password
// (to lock out whoever learnt the old one) ends every session, the
// enrolling one too: the enrolment must then neither bind the account to
// the enroller's authenticator, which would keep the manager out with the
// new password, nor continue the ended session under a new cookie.
func TestTOTPEnrolRacingDisableOrNewPasswordDoesNothing(t *testing.T) {
	t.Parallel()
	for name, lockout := range lockouts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := pgtest.NewPool(t)
			kr := mustKeyring(t)
			now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
			const password = "una's long password"
			m, err := CreateManager(ctx, pool, DefaultHasher(), "una@ispring.example", password)
			if err != nil {
				t.Fatal(err)
			}
			keep := mustSignIn(t, pool, kr, m, password, now)
			enr, err := BeginTOTP(ctx, pool, kr, keep)
			if err != nil {
				t.Fatal(err)
			}
			held := duringPasswordCheck(func() {
				if err := lockout(ctx, pool, m.Email, now); err != nil {
					t.Fatal(err)
				}
			})
			if s, err := ConfirmTOTP(ctx, pool, kr, held, DefaultLimits, Actor{ManagerID: m.ID, Email: m.Email, IP: "198.51.100.7"},
				keep, password, mustCode(t, enr.Secret, now), now); err == nil {
				t.Errorf("the enrolment that checked the password before the change went on: session %v", s.ManagerID)
			}
			var live int
			var factor bool
			if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM manager_sessions WHERE manager_id = $1 AND revoked_at IS NULL),
				(SELECT totp_secret IS NOT NULL FROM managers WHERE id = $1)`, m.ID).Scan(&live, &factor); err != nil {
				t.Fatal(err)
			}
			if live != 0 || factor {
				t.Fatalf("after the change: %d live session(s), second factor set %v; want none", live, factor)
			}
		})
	}
}

// Two sessions opened with the password, the manager's and an attacker's,
// each with its own pending secret, complete the enrolment at once: the
// attacker's has checked the password when the manager's completes. Only
// one may win (the account's row lock, then ErrTOTPEnabled): the second
// factor is the manager's secret, and the attacker's session is ended, not
// continued under a new cookie.
func TestTOTPEnrolRacingAnotherSessionsEnrolmentLoses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := mustKeyring(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	const password = "vera's long password"
	m, err := CreateManager(ctx, pool, DefaultHasher(), "vera@ispring.example", password)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := mustSignIn(t, pool, kr, m, password, now), mustSignIn(t, pool, kr, m, password, now)
	myEnr, err := BeginTOTP(ctx, pool, kr, mine)
	if err != nil {
		t.Fatal(err)
	}
	theirEnr, err := BeginTOTP(ctx, pool, kr, theirs)
	if err != nil {
		t.Fatal(err)
	}
	if myEnr.Secret == theirEnr.Secret {
		t.Fatal("two sessions were shown the same pending secret")
	}
	var next *Session
	held := duringPasswordCheck(func() {
		next, err = ConfirmTOTP(ctx, pool, kr, DefaultHasher(), DefaultLimits, Actor{ManagerID: m.ID, Email: m.Email, IP: "10.0.0.9"},
			mine, password, mustCode(t, myEnr.Secret, now), now)
		if err != nil {
			t.Fatal(err)
		}
	})
	if s, err := ConfirmTOTP(ctx, pool, kr, held, DefaultLimits, Actor{ManagerID: m.ID, Email: m.Email, IP: "203.0.113.9"},
		theirs, password, mustCode(t, theirEnr.Secret, now), now); !errors.Is(err, ErrTOTPEnabled) {
		t.Fatalf("the second enrolment to complete: session %v, %v; want ErrTOTPEnabled", s, err)
	}
	var sealed []byte
	if err := pool.QueryRow(ctx, `SELECT totp_secret FROM managers WHERE id = $1`, m.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	raw, err := kr.Decrypt(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := matchCode(raw, mustCode(t, myEnr.Secret, now.Add(time.Minute)), now.Add(time.Minute)); !ok {
		t.Error("the second factor is not the secret of the session that completed first")
	}
	if _, err := LookupSession(ctx, pool, theirs.Token, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("the losing session outlived the enrolment: %v", err)
	}
	if _, err := LookupSession(ctx, pool, next.Token, now); err != nil {
		t.Errorf("the winning session's successor: %v", err)
	}
}
