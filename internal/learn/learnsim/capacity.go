package learnsim

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Capacity models a server that can do only so much: Workers requests are
// served at once, each taking ServiceTime (the handler's own work included,
// so the capacity is Workers / ServiceTime whatever the host's load), and the
// rest wait in a queue, so
// latency grows with load. Beyond ConcurrencyCap requests in the server
// (queued and served) or RateCap requests per second it answers 429 with
// Retry-After at once. A zero field is no limit of that kind; the zero
// Capacity passes every request straight through.
type Capacity struct {
	Workers        int
	ServiceTime    time.Duration
	ConcurrencyCap int
	RateCap        float64       // requests per second, with a burst of one second's worth
	RetryAfter     time.Duration // sent with a 429, whole seconds, at least 1
	// Throttle is the form of the refusal (Unsettled.Throttle); the zero
	// value is 429 with Retry-After in seconds.
	Throttle Throttle
}

// CapacityStats count what a CapacityLayer did since it was made or reset.
type CapacityStats struct {
	Served      int64 // passed to the handler
	Throttled   int64 // answered 429
	MaxInServer int   // most requests in the server at once
}

// CapacityLayer puts a Capacity in front of a handler (usually Sim.Handler).
type CapacityLayer struct {
	next http.Handler
	now  func() time.Time

	mu       sync.Mutex
	c        Capacity
	workers  chan struct{} // one token per busy worker; nil: no worker limit
	inServer int
	tokens   float64
	refilled time.Time
	st       CapacityStats
}

// NewCapacityLayer returns next behind capacity c.
func NewCapacityLayer(next http.Handler, c Capacity) *CapacityLayer {
	l := &CapacityLayer{next: next, now: time.Now}
	l.Set(c)
	return l
}

// Set changes the capacity; requests already queued finish under the old one.
func (l *CapacityLayer) Set(c Capacity) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.c = c
	l.workers = nil
	if c.Workers > 0 {
		l.workers = make(chan struct{}, c.Workers)
	}
	l.tokens, l.refilled = c.RateCap, l.now()
}

// Stats returns the counts so far.
func (l *CapacityLayer) Stats() CapacityStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

// ResetStats zeroes the counts.
func (l *CapacityLayer) ResetStats() {
	l.mu.Lock()
	l.st = CapacityStats{}
	l.mu.Unlock()
}

// admit takes the request into the server, or says it is refused.
func (l *CapacityLayer) admit() (c Capacity, workers chan struct{}, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c = l.c
	if c.ConcurrencyCap > 0 && l.inServer >= c.ConcurrencyCap {
		l.st.Throttled++
		return c, nil, false
	}
	if c.RateCap > 0 {
		now := l.now()
		l.tokens = min(l.tokens+now.Sub(l.refilled).Seconds()*c.RateCap, max(c.RateCap, 1))
		l.refilled = now
		if l.tokens < 1 {
			l.st.Throttled++
			return c, nil, false
		}
		l.tokens--
	}
	l.inServer++
	l.st.MaxInServer = max(l.st.MaxInServer, l.inServer)
	l.st.Served++
	return c, l.workers, true
}

func (l *CapacityLayer) leave() {
	l.mu.Lock()
	l.inServer--
	l.mu.Unlock()
}

// ServeHTTP queues the request for a worker, holds it for the service time
// and passes it on, or answers 429 when the server is full. The answer says
// how long the request was in the server (Server-Timing, in ms), as a server
// may, so that a client can tell queueing from its own delays.
func (l *CapacityLayer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	c, workers, ok := l.admit()
	if !ok {
		c.Throttle.writeThrottled(w, r, max(c.RetryAfter, time.Second), l.now())
		return
	}
	defer l.leave()
	if workers != nil {
		select {
		case workers <- struct{}{}:
			defer func() { <-workers }()
		case <-r.Context().Done():
			return
		}
	}
	if c.ServiceTime <= 0 {
		l.next.ServeHTTP(w, r)
		return
	}
	started := time.Now()
	rec := &bufferedAnswer{h: http.Header{}, status: http.StatusOK}
	l.next.ServeHTTP(rec, r)
	if rest := c.ServiceTime - time.Since(started); rest > 0 {
		t := time.NewTimer(rest)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	for k, v := range rec.h {
		w.Header()[k] = v
	}
	w.Header().Add("Server-Timing", "capacity;dur="+strconv.FormatFloat(float64(time.Since(arrived).Microseconds())/1000, 'f', 1, 64))
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

// bufferedAnswer keeps a handler's answer until the service time is over.
type bufferedAnswer struct {
	h      http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (b *bufferedAnswer) Header() http.Header { return b.h }

func (b *bufferedAnswer) WriteHeader(status int) {
	if !b.wrote {
		b.status, b.wrote = status, true
	}
}

func (b *bufferedAnswer) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}
