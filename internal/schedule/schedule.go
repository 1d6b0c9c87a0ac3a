// Package schedule owns a portal's run times: the "HH:MM" the settings form
// sends and the page shows, the SQL time it is stored as, the next runs the
// page lists and the due slots the dispatcher turns into sync jobs. All
// times are UTC.
package schedule

import (
	"fmt"
	"slices"
	"time"
)

// Clock is a time of day in UTC, to the minute.
type Clock struct{ min int }

// ParseClock accepts "H:MM", "HH:MM" and "HH:MM:SS" (browsers send seconds
// when the input has a step); seconds are dropped.
func ParseClock(s string) (Clock, error) {
	for _, layout := range []string{"15:04", "15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return Clock{t.Hour()*60 + t.Minute()}, nil
		}
	}
	return Clock{}, fmt.Errorf("time of day %q is not HH:MM", s)
}

// String is "HH:MM", the form's and the database's text.
func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", c.min/60, c.min%60) }

// Offset is the time after midnight.
func (c Clock) Offset() time.Duration { return time.Duration(c.min) * time.Minute }

// Schedule is a portal's daily run times (none, or a first and an optional
// second), or, in the demo, a slot at every multiple of an interval.
type Schedule struct {
	times []Clock // in the order saved: first, second
	every time.Duration
}

// Parse builds a schedule from the stored or submitted texts; "" is no
// time. A second time without a first, or equal to it, is refused, as the
// database's check does.
func Parse(first, second string) (Schedule, error) {
	var s Schedule
	if first == "" {
		if second != "" {
			return s, fmt.Errorf("second run %q without a first", second)
		}
		return s, nil
	}
	f, err := ParseClock(first)
	if err != nil {
		return s, fmt.Errorf("first run: %w", err)
	}
	s.times = []Clock{f}
	if second == "" {
		return s, nil
	}
	sec, err := ParseClock(second)
	if err != nil {
		return s, fmt.Errorf("second run: %w", err)
	}
	if sec == f {
		return s, fmt.Errorf("second run %s equals the first", sec)
	}
	s.times = append(s.times, sec)
	return s, nil
}

// Daily is a schedule of the given times; tests and code that already
// hold clocks use it.
func Daily(first Clock, second ...Clock) Schedule {
	return Schedule{times: append([]Clock{first}, second...)}
}

// Empty: no run time is set.
func (s Schedule) Empty() bool { return len(s.times) == 0 && s.every == 0 }

// First is the first run time as "HH:MM", or "".
func (s Schedule) First() string { return s.text(0) }

// Second is the second run time as "HH:MM", or "".
func (s Schedule) Second() string { return s.text(1) }

func (s Schedule) text(i int) string {
	if i < len(s.times) {
		return s.times[i].String()
	}
	return ""
}

// Equal reports whether both have the same times in the same order.
func (s Schedule) Equal(o Schedule) bool { return slices.Equal(s.times, o.times) && s.every == o.every }

// Every is the demo's override: every multiple of d after midnight is a
// slot, whatever times the portal saved. d <= 0 leaves s as it is.
func (s Schedule) Every(d time.Duration) Schedule {
	if d <= 0 {
		return s
	}
	return Schedule{every: d}
}

// offsets are the slots of a day, as times after midnight.
func (s Schedule) offsets() []time.Duration {
	if s.every > 0 {
		var out []time.Duration
		for t := time.Duration(0); t < 24*time.Hour; t += s.every {
			out = append(out, t)
		}
		return out
	}
	out := make([]time.Duration, 0, len(s.times))
	for _, c := range s.times {
		out = append(out, c.Offset())
	}
	return out
}

// Next is the next run after now of each daily time, earliest first; a time
// equal to now is tomorrow's. With the demo's interval it is the one next
// slot.
func (s Schedule) Next(now time.Time) []time.Time {
	day := truncDay(now)
	now = now.UTC()
	var out []time.Time
	for _, off := range s.offsets() {
		at := day.Add(off)
		if !at.After(now) {
			at = day.AddDate(0, 0, 1).Add(off)
		}
		out = append(out, at)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	if s.every > 0 && len(out) > 1 {
		out = out[:1]
	}
	return out
}

// Due returns the slot instants in (from, to] that are no older than window
// at to: what the dispatcher runs after a tick at to whose previous tick was
// at from, so a slot missed while the service was down runs late, but only
// within window.
func (s Schedule) Due(from, to time.Time, window time.Duration) []time.Time {
	if !to.After(from) {
		return nil
	}
	earliest := from
	if w := to.Add(-window); w.After(earliest) {
		earliest = w.Add(-time.Nanosecond) // a slot exactly window old still runs
	}
	offs := s.offsets()
	var due []time.Time
	for day := truncDay(earliest); !day.After(to); day = day.AddDate(0, 0, 1) {
		for _, off := range offs {
			at := day.Add(off)
			if at.After(earliest) && at.After(from) && !at.After(to) {
				due = append(due, at)
			}
		}
	}
	slices.SortFunc(due, func(a, b time.Time) int { return a.Compare(b) })
	return due
}

func truncDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
