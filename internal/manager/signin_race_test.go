package manager

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

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

	// The other sign-in is held while it checks the password: it has read
	// the account (no second factor yet) and not stored its session.
	slow, entered, finish := holdingHasher()
	type result struct {
		s   *Session
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := SignIn(ctx, pool, kr, slow, DefaultLimits, now, Credentials{Email: m.Email, Password: password, IP: "198.51.100.9"})
		done <- result{s, err}
	}()
	<-entered

	a := Actor{ManagerID: m.ID, Email: m.Email, IP: "10.255.0.1"}
	if _, err := ConfirmTOTP(ctx, pool, kr, DefaultHasher(), DefaultLimits, a, mine, password, mustCode(t, enr.Secret, now), now); err != nil {
		t.Fatal(err)
	}
	close(finish)
	r := <-done
	if r.err != nil {
		if !errors.Is(r.err, ErrBadCredentials) {
			t.Fatalf("the racing sign-in failed with %v, want ErrBadCredentials or no live session", r.err)
		}
		return
	}
	if s, err := LookupSession(ctx, pool, r.s.Token, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("a session opened with the password alone outlived turning the second factor on: %+v, %v", s, err)
	}
}

// holdingHasher is the real hasher, except that its first password check
// closes entered and waits for finish to be closed: a test can act while a
// sign-in has read the account and not yet stored its session.
func holdingHasher() (h *Hasher, entered, finish chan struct{}) {
	h = DefaultHasher()
	entered, finish = make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	h.key = func(password, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
		if held.CompareAndSwap(false, true) {
			close(entered)
			<-finish
		}
		return argon2.IDKey(password, salt, t, m, p, keyLen)
	}
	return h, entered, finish
}
