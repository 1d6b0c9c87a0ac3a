package manager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"b24learn/internal/pgtest"
)

// With the one hashing slot taken by a sign-in in progress, a second
// sign-in is answered busy (its address's place given back), and so is a
// password check for TOTP enrolment; once the first is done, sign-in
// works again.
func TestSignInBusyWhileHashing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := mustKeyring(t)
	h := NewHasher(1, 0)
	m, err := CreateManager(ctx, pool, h, "hana@ispring.example", "hana's long password")
	if err != nil {
		t.Fatal(err)
	}
	entered, finish := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	h.key = func(password, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
		if held.CompareAndSwap(false, true) { // only the first hash is held
			close(entered)
			<-finish
		}
		return argon2.IDKey(password, salt, t, m, p, keyLen)
	}
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	first := make(chan error, 1)
	go func() {
		_, err := SignIn(ctx, pool, kr, h, DefaultLimits, now, Credentials{Email: m.Email, Password: "hana's long password", IP: "203.0.113.1"})
		first <- err
	}()
	<-entered // the first sign-in is hashing now

	_, err = SignIn(ctx, pool, kr, h, DefaultLimits, now, Credentials{Email: "nobody@ispring.example", Password: "guess", IP: "203.0.113.2"})
	var rl *RateLimitedError
	if !errors.As(err, &rl) || !rl.Busy || rl.RetryAfter <= 0 {
		t.Fatalf("second sign-in while the only slot hashes: got %v, want a busy *RateLimitedError", err)
	}
	var hits int
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(hits), 0) FROM rate_limits WHERE key = 'login:ip:203.0.113.2'`).Scan(&hits); err != nil {
		t.Fatal(err)
	}
	if hits != 0 {
		t.Fatalf("a busy answer kept %d place(s) in the address's count", hits)
	}
	_, err = checkOwnPassword(ctx, pool, h, DefaultLimits.EnrolPasswordPerAccount, m.ID, "hana's long password", now)
	if !errors.As(err, &rl) || !rl.Busy {
		t.Fatalf("enrolment password check while the only slot hashes: got %v, want busy", err)
	}
	if _, err := h.Hash(ctx, "another long password"); !errors.As(err, &rl) || !rl.Busy {
		t.Fatalf("hashing a new password while the only slot hashes: got %v, want busy", err)
	}

	close(finish)
	if err := <-first; err != nil {
		t.Fatalf("first sign-in: %v", err)
	}
	_, err = SignIn(ctx, pool, kr, h, DefaultLimits, now, Credentials{Email: m.Email, Password: "hana's long password", IP: "203.0.113.2"})
	if err != nil {
		t.Fatalf("sign-in after the slot came free: %v", err)
	}
}

// A caller waiting for a slot stops when its request is gone.
func TestHasherWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	h := NewHasher(1, time.Hour)
	h.slots <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Check(ctx, dummyHash, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// However many sign-ins arrive at once, no more than the hasher's slots
// hash at the same time; the others wait their turn and are answered.
func TestSignInHashingBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	const bound, callers = 2, 16
	h := NewHasher(bound, time.Hour) // wait as long as it takes: no busy answers here
	var running, peak atomic.Int64
	h.key = func(password, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
		n := running.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond) // lets the callers overlap
		running.Add(-1)
		return make([]byte, keyLen)
	}
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			_, err := SignIn(ctx, pool, nil, h, DefaultLimits, now, Credentials{
				Email: fmt.Sprintf("guess%d@ispring.example", i), Password: "guess", IP: fmt.Sprintf("198.51.100.%d", i+1)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("sign-in with an unknown e-mail: got %v, want ErrBadCredentials", err)
		}
	}
	if p := peak.Load(); p > bound {
		t.Fatalf("%d passwords hashed at once, bound %d", p, bound)
	}
}

// countHashes counts the hashes h computes from now on.
func countHashes(h *Hasher) *atomic.Int64 {
	hashes := new(atomic.Int64)
	h.key = func(password, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
		hashes.Add(1)
		return argon2.IDKey(password, salt, t, m, p, keyLen)
	}
	return hashes
}
