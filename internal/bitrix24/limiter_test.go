package bitrix24

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A request whose context has ended is not sent, so it must not take one of
// the portal's slots: each would hold back the portal's live requests (the
// level drains at 2 per second). An empty bucket, whose first slot is free at
// once, shows it.
func TestLimiterRefusesAnEndedContext(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	l := NewLimiter(2, 3)
	l.now = func() time.Time { return now }
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 5 {
		if err := l.Wait(ended); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait %d on an ended context = %v, want context.Canceled", i+1, err)
		}
	}
	// The bucket is as full as before: the burst is all there.
	for i := range 3 {
		if d := l.reserve(); d != 0 {
			t.Fatalf("slot %d of the burst waits %v after the refused Waits; they took slots", i+1, d)
		}
	}
	// A full bucket refuses an ended context too, without waiting for a slot.
	start := time.Now()
	if err := l.Wait(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on an ended context, full bucket = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Wait on an ended context took %v", d)
	}
}
