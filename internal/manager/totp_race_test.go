package manager

import (
	"context"
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
