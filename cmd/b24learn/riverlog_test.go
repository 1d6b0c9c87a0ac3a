package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// With PostgreSQL gone, River's producers log an error per queue about
// every second (about 19,000 lines an hour in a test outage): River's
// logger keeps the first of each warning or error, then one every interval
// with how many it left out, and every info line.
func TestRiverLogRepeatsLimited(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	h := newRepeatLimit(slog.NewTextHandler(&buf, nil), 30*time.Second, func() time.Time { return now })
	h.afterFun = func(time.Duration, func()) {}
	log := slog.New(h)
	for i := range 100 {
		log.Error("producer: Error fetching jobs", "queue", "default", "err", "connection refused")
		log.With("component", "x").Warn("notifier: Error running listener", "attempt", i)
		log.Info("producer: Producer job counts")
		now = now.Add(time.Second)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	count := func(s string) (n int) {
		for _, l := range lines {
			if strings.Contains(l, s) {
				n++
			}
		}
		return n
	}
	// 100 s: the first line, then one at 30, 60 and 90 s.
	if n := count("Error fetching jobs"); n != 4 {
		t.Errorf("%d fetch errors logged, want 4:\n%s", n, buf.String())
	}
	if n := count("Error running listener"); n != 4 {
		t.Errorf("%d listener errors logged, want 4", n)
	}
	if n := count("repeats_suppressed=29"); n != 6 {
		t.Errorf("%d lines say 29 left out, want 6 (3 of each)", n)
	}
	if n := count("Producer job counts"); n != 100 {
		t.Errorf("%d info lines, want all 100", n)
	}
	if n := count("component=x"); n != 4 {
		t.Errorf("the logger's attributes kept on %d lines, want 4", n)
	}
}

// A worker's panic is logged only as River's "panic recovery" line: another
// job's panic within the interval is logged too, not counted as a repeat.
func TestRiverLogPanicsOfOtherJobsPass(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	h := newRepeatLimit(slog.NewTextHandler(&buf, nil), 30*time.Second, func() time.Time { return now })
	h.afterFun = func(time.Duration, func()) {}
	log := slog.New(h)
	const msg = "jobexecutor.JobExecutor: panic recovery; possible bug with Worker"
	log.Error(msg, "job_id", 1, "kind", "sync", "panic_val", "nil map")
	now = now.Add(time.Second)
	log.Error(msg, "job_id", 2, "kind", "provision", "panic_val", "index out of range")
	now = now.Add(time.Second)
	log.Error(msg, "job_id", 3, "kind", "sync", "panic_val", "nil map")
	for _, want := range []string{"job_id=1", "job_id=2", "job_id=3", "index out of range"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no panic line with %s:\n%s", want, buf.String())
		}
	}
}

// A count left out is logged when its interval is over even if the line
// never comes again, with the job it was about.
func TestRiverLogPendingCountFlushed(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	h := newRepeatLimit(slog.NewTextHandler(&buf, nil), 30*time.Second, func() time.Time { return now })
	var scheduled []func()
	h.afterFun = func(_ time.Duration, f func()) { scheduled = append(scheduled, f) }
	log := slog.New(h)
	for range 3 {
		log.Warn("notifier: Error running listener", "err", "connection refused")
		log.Error("panic recovery; possible bug with Worker", "job_id", 7, "kind", "sync")
		now = now.Add(time.Second)
	}
	if len(scheduled) != 1 {
		t.Fatalf("%d flushes scheduled, want 1", len(scheduled))
	}
	now = now.Add(40 * time.Second)
	scheduled[0]()
	out := buf.String()
	if !strings.Contains(out, `msg="notifier: Error running listener" repeats_suppressed=2`) {
		t.Errorf("the listener's count is lost:\n%s", out)
	}
	if !strings.Contains(out, `msg="panic recovery; possible bug with Worker" job_id=7 kind=sync repeats_suppressed=2`) {
		t.Errorf("the panic's count is lost:\n%s", out)
	}
	if len(scheduled) != 1 {
		t.Errorf("a flush scheduled again with nothing pending")
	}
	if n := strings.Count(out, "\n"); n != 4 {
		t.Errorf("%d lines, want 4 (two firsts, two counts):\n%s", n, out)
	}
}
