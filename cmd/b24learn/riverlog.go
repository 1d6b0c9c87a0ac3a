package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// riverLogEvery is how often River's logger lets the same warning or error
// through while it repeats.
const riverLogEvery = 30 * time.Second

// repeatLimit is River's log handler. With PostgreSQL gone River's producers,
// notifier and elector log an error per queue about every second until it is
// back; the first line of each says what is wrong, and then one every
// interval, with the number left out, says it still is. Info lines pass.
type repeatLimit struct {
	next  slog.Handler
	every time.Duration
	now   func() time.Time
	st    *repeatState
}

type repeatState struct {
	mu   sync.Mutex
	seen map[string]*repeatEntry // by message: River's are a fixed set
}

type repeatEntry struct {
	last    time.Time
	dropped int
}

func newRepeatLimit(next slog.Handler, every time.Duration, now func() time.Time) *repeatLimit {
	return &repeatLimit{next: next, every: every, now: now, st: &repeatState{seen: map[string]*repeatEntry{}}}
}

func (h *repeatLimit) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *repeatLimit) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	now := h.now()
	h.st.mu.Lock()
	e := h.st.seen[r.Message]
	if e != nil && now.Sub(e.last) < h.every {
		e.dropped++
		h.st.mu.Unlock()
		return nil
	}
	dropped := 0
	if e != nil {
		dropped = e.dropped
	}
	if len(h.st.seen) >= 1000 {
		clear(h.st.seen) // a bound, should messages ever carry variable text
	}
	h.st.seen[r.Message] = &repeatEntry{last: now}
	h.st.mu.Unlock()
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeats_suppressed", dropped))
	}
	return h.next.Handle(ctx, r)
}

func (h *repeatLimit) WithAttrs(as []slog.Attr) slog.Handler {
	return &repeatLimit{next: h.next.WithAttrs(as), every: h.every, now: h.now, st: h.st}
}

func (h *repeatLimit) WithGroup(name string) slog.Handler {
	return &repeatLimit{next: h.next.WithGroup(name), every: h.every, now: h.now, st: h.st}
}
