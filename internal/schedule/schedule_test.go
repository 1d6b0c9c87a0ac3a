package schedule

import (
	"fmt"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func must(t *testing.T, first, second string) Schedule {
	t.Helper()
	s, err := Parse(first, second)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fmtTimes(ts []time.Time) string {
	out := make([]string, 0, len(ts))
	for _, x := range ts {
		out = append(out, x.Format("2006-01-02T15:04Z"))
	}
	return fmt.Sprint(out)
}

func TestParse(t *testing.T) {
	cases := []struct {
		first, second string
		want          string // "first|second", or "error"
	}{
		{"", "", "|"},
		{"03:00", "", "03:00|"},
		{"3:05", "", "03:05|"},
		{"23:59:59", "", "23:59|"},
		{"00:00", "12:30", "00:00|12:30"},
		{"24:00", "", "error"},
		{"7", "", "error"},
		{"03:00", "03:00", "error"},
		{"03:00", "03:00:30", "error"}, // the same minute
		{"", "04:00", "error"},
		{"03:00", "nope", "error"},
	}
	for _, c := range cases {
		s, err := Parse(c.first, c.second)
		got := s.First() + "|" + s.Second()
		if err != nil {
			got = "error"
		}
		if got != c.want {
			t.Errorf("Parse(%q, %q) = %s (%v), want %s", c.first, c.second, got, err, c.want)
		}
	}
}

func TestNext(t *testing.T) {
	cases := []struct {
		name          string
		first, second string
		every         time.Duration
		now           string
		want          string
	}{
		{"none", "", "", 0, "2026-11-25 10:00", "[]"},
		{"one later today", "15:30", "", 0, "2026-11-25 10:00", "[2026-11-25T15:30Z]"},
		{"one passed: tomorrow", "03:00", "", 0, "2026-11-25 10:00", "[2026-11-26T03:00Z]"},
		{"a slot at now is tomorrow's", "10:00", "", 0, "2026-11-25 10:00", "[2026-11-26T10:00Z]"},
		{"two, earliest first", "15:30", "03:00", 0, "2026-11-25 10:00", "[2026-11-25T15:30Z 2026-11-26T03:00Z]"},
		{"midnight wrap", "00:00", "23:59", 0, "2026-11-25 23:59", "[2026-11-26T00:00Z 2026-11-26T23:59Z]"},
		{"across the year", "00:10", "", 0, "2026-12-31 23:00", "[2027-01-01T00:10Z]"},
		{"demo interval", "03:00", "", 5 * time.Minute, "2026-11-25 10:02", "[2026-11-25T10:05Z]"},
		{"demo interval on a slot", "03:00", "", 5 * time.Minute, "2026-11-25 10:05", "[2026-11-25T10:10Z]"},
		{"demo interval at midnight", "", "", 5 * time.Minute, "2026-11-25 23:57", "[2026-11-26T00:00Z]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := must(t, c.first, c.second).Every(c.every).Next(at(c.now))
			if fmtTimes(got) != c.want {
				t.Fatalf("Next = %s, want %s", fmtTimes(got), c.want)
			}
		})
	}
}

// The demo's next slot is the next multiple of its interval, as the page
// showed it before the dispatcher and the page shared this type.
func TestNextDemoMatchesTruncate(t *testing.T) {
	for _, every := range []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour} {
		for m := 0; m < 24*60; m += 7 {
			now := at("2026-11-25 00:00").Add(time.Duration(m)*time.Minute + 13*time.Second)
			got := Schedule{}.Every(every).Next(now)
			if want := now.Truncate(every).Add(every); len(got) != 1 || !got[0].Equal(want) {
				t.Fatalf("every %s at %s: %v, want %s", every, now, got, want)
			}
		}
	}
}

func TestDue(t *testing.T) {
	cases := []struct {
		name          string
		first, second string
		every         time.Duration
		from, to      string
		window        time.Duration
		want          string
	}{
		{"before slot", "06:00", "18:00", 0, "2026-11-25 05:58", "2026-11-25 05:59", time.Hour, "[]"},
		{"slot reached", "06:00", "18:00", 0, "2026-11-25 05:59", "2026-11-25 06:00", time.Hour, "[2026-11-25T06:00Z]"},
		{"just after", "06:00", "18:00", 0, "2026-11-25 06:00", "2026-11-25 06:01", time.Hour, "[]"},
		{"no time going back", "06:00", "", 0, "2026-11-25 06:01", "2026-11-25 06:00", time.Hour, "[]"},
		{"downtime catch-up", "06:00", "18:00", 0, "2026-11-25 05:50", "2026-11-25 07:30", 3 * time.Hour, "[2026-11-25T06:00Z]"},
		{"too late to catch up", "06:00", "18:00", 0, "2026-11-25 05:50", "2026-11-25 10:30", 3 * time.Hour, "[]"},
		{"exactly window old", "06:00", "18:00", 0, "2026-11-25 05:00", "2026-11-25 09:00", 3 * time.Hour, "[2026-11-25T06:00Z]"},
		{"across midnight", "06:00", "18:00", 0, "2026-11-24 17:00", "2026-11-25 06:30", 24 * time.Hour, "[2026-11-24T18:00Z 2026-11-25T06:00Z]"},
		{"midnight slot", "00:00", "", 0, "2026-11-24 23:59", "2026-11-25 00:00", time.Hour, "[2026-11-25T00:00Z]"},
		{"second before first, in time order", "18:00", "06:00", 0, "2026-11-25 05:00", "2026-11-25 19:00", 24 * time.Hour, "[2026-11-25T06:00Z 2026-11-25T18:00Z]"},
		{"one time over two days", "06:00", "", 0, "2026-11-24 05:00", "2026-11-25 07:00", 48 * time.Hour, "[2026-11-24T06:00Z 2026-11-25T06:00Z]"},
		{"none", "", "", 0, "2026-11-25 00:00", "2026-11-25 23:00", 24 * time.Hour, "[]"},
		{"demo interval", "06:00", "", 5 * time.Minute, "2026-11-25 10:02", "2026-11-25 10:16", time.Hour, "[2026-11-25T10:05Z 2026-11-25T10:10Z 2026-11-25T10:15Z]"},
		{"demo interval replaces the times", "10:03", "", 5 * time.Minute, "2026-11-25 10:02", "2026-11-25 10:04", time.Hour, "[]"},
		{"demo interval across midnight", "", "", 5 * time.Minute, "2026-11-25 23:56", "2026-11-26 00:01", time.Hour, "[2026-11-26T00:00Z]"},
		{"demo interval catch-up window", "", "", 5 * time.Minute, "2026-11-25 09:00", "2026-11-25 10:00", 10 * time.Minute, "[2026-11-25T09:50Z 2026-11-25T09:55Z 2026-11-25T10:00Z]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := must(t, c.first, c.second).Every(c.every).Due(at(c.from), at(c.to), c.window)
			if fmtTimes(got) != c.want {
				t.Fatalf("Due = %s, want %s", fmtTimes(got), c.want)
			}
		})
	}
}
