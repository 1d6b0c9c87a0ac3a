package connect

import (
	"context"
	"sync"

	"b24learn/internal/bitrix24"
)

// buckets are the portals' Bitrix24 buckets in this process, one per
// portal. A bucket that has drained paces the next requests as a new one
// would, so it is dropped: without that every portal that ever had a
// client would keep one for the life of the process.
type buckets struct {
	rate  float64
	burst int

	mu sync.Mutex
	m  map[int64]*bitrix24.Limiter
	// sweepAt is the count of buckets that starts the next sweep: twice
	// the ones a sweep left, so its cost is spread over the buckets added
	// since, with no goroutine of its own.
	sweepAt int
}

// minSweep is the fewest buckets worth a sweep.
const minSweep = 64

func newBuckets(rate float64, burst int) *buckets {
	return &buckets{rate: rate, burst: burst, m: map[int64]*bitrix24.Limiter{}, sweepAt: minSweep}
}

// get returns the portal's bucket, a new one when it has none.
func (b *buckets) get(portalID int64) *bitrix24.Limiter {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.m[portalID]; ok {
		return l
	}
	if len(b.m) >= b.sweepAt {
		for id, l := range b.m {
			if l.Drained() {
				delete(b.m, id)
			}
		}
		b.sweepAt = max(2*len(b.m), minSweep)
	}
	l := bitrix24.NewLimiter(b.rate, b.burst)
	b.m[portalID] = l
	return l
}

// portalLimiter is what a portal's clients pace themselves by. It finds
// the portal's bucket at each request rather than holding one, so a client
// that outlives its bucket's drop uses the same new bucket as the others.
type portalLimiter struct {
	b        *buckets
	portalID int64
}

func (p portalLimiter) Wait(ctx context.Context) error { return p.b.get(p.portalID).Wait(ctx) }

func (p portalLimiter) Fill() { p.b.get(p.portalID).Fill() }
