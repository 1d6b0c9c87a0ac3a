package bitrix24

import (
	"context"
	"sync"
	"time"

	"b24learn/internal/remote"
)

// Limiter is a leaky bucket like Bitrix24's own (docs/bitrix24-api.md,
// "Request rate"): each request adds 1, the level drains at Rate per second,
// and a request waits while the level would exceed Burst. One Limiter must be
// shared by all clients of one portal in a process (internal/connect keeps
// one per portal while it has not drained).
type Limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu    sync.Mutex
	level float64
	last  time.Time
}

// RateLimiter paces a client's requests; *Limiter is one. Wait blocks until
// one more request fits, Fill says the server's bucket is full.
type RateLimiter interface {
	Wait(ctx context.Context) error
	Fill()
}

// NewLimiter builds a bucket; rate ≤ 0 disables limiting.
func NewLimiter(rate float64, burst int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	return &Limiter{rate: rate, burst: float64(burst), now: time.Now}
}

// DefaultLimiter is the bucket of non-Enterprise plans: 2 per second, burst 50.
func DefaultLimiter() *Limiter { return NewLimiter(2, 50) }

// Wait blocks until one more request fits, or ctx ends. An ended ctx never
// takes a slot: its request will not be sent, and the slot would hold back
// the portal's other requests.
func (l *Limiter) Wait(ctx context.Context) error {
	if l == nil || l.rate <= 0 {
		return ctx.Err()
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := l.reserve()
		if d <= 0 {
			return nil
		}
		if err := remote.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// reserve takes a slot and returns 0, or returns how long to wait for one.
func (l *Limiter) reserve() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() {
		l.level -= now.Sub(l.last).Seconds() * l.rate
		if l.level < 0 {
			l.level = 0
		}
	}
	l.last = now
	if l.level+1 <= l.burst {
		l.level++
		return 0
	}
	return time.Duration((l.level + 1 - l.burst) / l.rate * float64(time.Second))
}

// Fill sets the bucket as full, e.g. after the server answered
// QUERY_LIMIT_EXCEEDED, so that the next requests pace themselves.
func (l *Limiter) Fill() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.level, l.last = l.burst, l.now()
	l.mu.Unlock()
}

// Drained reports whether the bucket has drained empty, so that it paces
// the next requests as a new one would.
func (l *Limiter) Drained() bool {
	if l == nil || l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last.IsZero() || l.level <= l.now().Sub(l.last).Seconds()*l.rate
}
