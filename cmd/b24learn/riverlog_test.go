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
	log := slog.New(newRepeatLimit(slog.NewTextHandler(&buf, nil), 30*time.Second, func() time.Time { return now }))
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
