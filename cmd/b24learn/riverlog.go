package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// riverLogEvery is how often River's logger lets the same warning or error
// through while it repeats.
const riverLogEvery = 30 * time.Second

// maxRepeatKeys bounds the lines repeatLimit tracks; past it a line passes
// untracked rather than evict a pending count.
const maxRepeatKeys = 1000

// repeatLimit is River's log handler. With PostgreSQL gone River's producers,
// notifier and elector log an error per queue about every second until it is
// back; the first line of each says what is wrong, and then one every
// interval, with the number left out, says it still is. Info lines pass.
// Lines are told apart by message and by the job they name (job_id, kind):
// a worker's panic is logged only as River's "panic recovery" line, so a
// second job's panic must not be taken for a repeat of the first. A count
// left out that no later line carries is logged on its own once its
// interval is over.
type repeatLimit struct {
	next     slog.Handler
	every    time.Duration
	now      func() time.Time
	afterFun func(time.Duration, func()) // time.AfterFunc, replaced in tests
	st       *repeatState
}

type repeatState struct {
	mu    sync.Mutex
	seen  map[string]*repeatEntry
	armed bool // a flush is scheduled
}

type repeatEntry struct {
	last    time.Time
	dropped int
	// What a line of its own says for the count: the logger that logged
	// it, its level, message and job.
	next  slog.Handler
	level slog.Level
	msg   string
	job   []slog.Attr
}

func newRepeatLimit(next slog.Handler, every time.Duration, now func() time.Time) *repeatLimit {
	return &repeatLimit{next: next, every: every, now: now,
		afterFun: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
		st:       &repeatState{seen: map[string]*repeatEntry{}}}
}

func (h *repeatLimit) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// repeatJobKeys are the attributes of River's job lines that name the job.
var repeatJobKeys = []string{"job_id", "kind", "job_kind"}

func (h *repeatLimit) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	var job []slog.Attr
	var key strings.Builder
	key.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		for _, k := range repeatJobKeys {
			if a.Key == k {
				job = append(job, a)
				key.WriteString("\x00" + a.Key + "=" + a.Value.String())
			}
		}
		return true
	})
	now := h.now()
	h.st.mu.Lock()
	e := h.st.seen[key.String()]
	if e != nil && now.Sub(e.last) < h.every {
		e.dropped++
		h.armLocked(e.last.Add(h.every).Sub(now))
		h.st.mu.Unlock()
		return nil
	}
	dropped := 0
	if e != nil {
		dropped = e.dropped
		delete(h.st.seen, key.String())
	}
	var due []*repeatEntry
	if len(h.st.seen) >= maxRepeatKeys {
		due = h.expiredLocked(now)
	}
	if len(h.st.seen) < maxRepeatKeys {
		h.st.seen[key.String()] = &repeatEntry{last: now, next: h.next, level: r.Level, msg: r.Message, job: job}
	}
	h.st.mu.Unlock()
	h.emit(due)
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeats_suppressed", dropped))
	}
	return h.next.Handle(ctx, r)
}

// armLocked schedules a flush shortly after d, unless one is scheduled: the
// slack lets a line that keeps repeating carry its own count.
func (h *repeatLimit) armLocked(d time.Duration) {
	if h.st.armed {
		return
	}
	h.st.armed = true
	h.afterFun(d+h.every/10, h.flush)
}

// flush logs the counts whose interval is over and no line carried, and
// schedules itself again while counts are pending.
func (h *repeatLimit) flush() {
	now := h.now()
	h.st.mu.Lock()
	h.st.armed = false
	due := h.expiredLocked(now)
	var next time.Duration
	for _, e := range h.st.seen {
		if d := e.last.Add(h.every).Sub(now); e.dropped > 0 && (next == 0 || d < next) {
			next = max(d, time.Millisecond)
		}
	}
	if next > 0 {
		h.armLocked(next)
	}
	h.st.mu.Unlock()
	h.emit(due)
}

// expiredLocked forgets the lines whose interval is over and returns those
// with a count left out.
func (h *repeatLimit) expiredLocked(now time.Time) []*repeatEntry {
	var due []*repeatEntry
	for k, e := range h.st.seen {
		if now.Sub(e.last) < h.every {
			continue
		}
		delete(h.st.seen, k)
		if e.dropped > 0 {
			due = append(due, e)
		}
	}
	return due
}

func (h *repeatLimit) emit(due []*repeatEntry) {
	for _, e := range due {
		r := slog.NewRecord(h.now(), e.level, e.msg, 0)
		r.AddAttrs(e.job...)
		r.AddAttrs(slog.Int("repeats_suppressed", e.dropped))
		_ = e.next.Handle(context.Background(), r)
	}
}

func (h *repeatLimit) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	return &c
}

func (h *repeatLimit) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}
