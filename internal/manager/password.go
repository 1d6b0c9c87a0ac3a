package manager

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters: OWASP's 19 MiB, 2 passes, 1 lane; the values are
// stored in each hash so they can be raised later.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// MinPasswordLen is the shortest password `manager add` accepts.
const MinPasswordLen = 12

// Hasher runs every argon2id of the process, at most a fixed number at
// once: each takes 19 MiB and ~0.1 s of a core, and the per-address
// sign-in limits alone let a few hundred addresses start thousands at
// once. Over the bound a caller waits briefly, then gets a busy
// *RateLimitedError instead of more memory.
type Hasher struct {
	slots chan struct{}
	wait  time.Duration // how long a caller waits for a slot
	// key is argon2.IDKey; tests put a counting or blocking one in its place.
	key func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
}

// busyRetry is the Retry-After of a busy answer: hashes take ~0.1 s, so
// slots come free within a second or two.
const busyRetry = 2 * time.Second

// NewHasher bounds hashing to slots at once (at least 1); a caller waits up
// to wait for a slot.
func NewHasher(slots int, wait time.Duration) *Hasher {
	return &Hasher{slots: make(chan struct{}, max(slots, 1)), wait: wait, key: argon2.IDKey}
}

// DefaultHasher allows a hash on half the cores at once (at least one) and
// a wait of 2 s: the other half stays free for the pages and River's
// workers of the same process, however many guesses arrive.
func DefaultHasher() *Hasher {
	return NewHasher(runtime.GOMAXPROCS(0)/2, 2*time.Second)
}

// acquire takes a hashing slot, waiting up to h.wait; the returned func
// gives it back and may be called more than once.
func (h *Hasher) acquire(ctx context.Context) (func(), error) {
	select {
	case h.slots <- struct{}{}:
	default:
		t := time.NewTimer(h.wait)
		defer t.Stop()
		select {
		case h.slots <- struct{}{}:
		case <-t.C:
			return nil, &RateLimitedError{RetryAfter: busyRetry, Busy: true}
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for password hashing: %w", ctx.Err())
		}
	}
	var once sync.Once
	return func() { once.Do(func() { <-h.slots }) }, nil
}

// Hash returns an argon2id hash of password in the PHC string format.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	done, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer done()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := h.key([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Check compares password with a hash from Hash in constant time.
func (h *Hasher) Check(ctx context.Context, hash, password string) (bool, error) {
	done, err := h.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer done()
	return h.check(hash, password)
}

var errBadHash = errors.New("unsupported password hash")

// check is Check for a caller already holding a slot.
func (h *Hasher) check(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<21 {
		return false, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := h.key([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
