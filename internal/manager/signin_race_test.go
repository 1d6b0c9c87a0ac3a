package manager

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/argon2"

	"b24learn/internal/pgtest"
)

// A sign-in with the password alone that read the account before the
// manager turned the second factor on, and stores its session after, must
// not get a session: turning the factor on ends every session opened with
// the password, and a live one would count as signed in with both.
func TestSignInRacingTOTPEnableGetsNoSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := mustKeyring(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	const password = "rita's long password"
	m, err := CreateManager(ctx, pool, DefaultHasher(), "rita@ispring.example", password)
	if err != nil {
		t.Fatal(err)
	}
	mine := mustSignIn(t, pool, kr, m, password, now)
	enr, err := BeginTOTP(ctx, pool, kr, mine)
	if err != nil {
		t.Fatal(err)
	}

	// The other sign-in has read the account (no second factor yet) and
	// not stored its session when the manager turns the factor on.
	a := Actor{ManagerID: m.ID, Email: m.Email, IP: "10.255.0.1"}
	held := duringPasswordCheck(func() {
		if _, err := ConfirmTOTP(ctx, pool, kr, DefaultHasher(), DefaultLimits, a, mine, password, mustCode(t, enr.Secret, now), now); err != nil {
			t.Fatal(err)
		}
	})
	other, err := SignIn(ctx, pool, kr, held, DefaultLimits, now, Credentials{Email: m.Email, Password: password, IP: "198.51.100.9"})
	if err != nil {
		if !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("the racing sign-in failed with %v, want ErrBadCredentials or no live session", err)
		}
		return
	}
	if s, err := LookupSession(ctx, pool, other.Token, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("a session opened with the password alone outlived turning the second factor on: %+v, %v", s, err)
	}
}

// duringPasswordCheck is the real hasher, except that its first password
// check runs act first: a test acts while a sign-in (or an enrolment) has
// read the account and not yet stored what it read.
func duringPasswordCheck(act func()) *Hasher {
	h := DefaultHasher()
	var once sync.Once
	h.key = func(password, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
		once.Do(act)
		return argon2.IDKey(password, salt, t, m, p, keyLen)
	}
	return h
}

// lockouts are the operator's two ways to shut an account's holder out:
// each ends every session of the account.
var lockouts = map[string]func(ctx context.Context, pool *pgxpool.Pool, email string, now time.Time) error{
	"Disable": func(ctx context.Context, pool *pgxpool.Pool, email string, now time.Time) error {
		_, err := SetDisabled(ctx, pool, email, true, now)
		return err
	},
	"NewPassword": func(ctx context.Context, pool *pgxpool.Pool, email string, now time.Time) error {
		return ChangePassword(ctx, pool, DefaultHasher(), email, "the operator's new password", now)
	},
}
