package connect

import (
	"context"
	"errors"
	"testing"
	"time"
)

func (b *buckets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// Every portal that ever had a client got a bucket that stayed for the
// life of the process. A drained bucket is the same as a new one, so the
// factory keeps only those that have not drained.
func TestBucketsForgetDrainedPortals(t *testing.T) {
	t.Parallel()
	// A bucket drains a microsecond after its request.
	f := New(Options{Rate: 1e6, Burst: 1})
	ctx := context.Background()
	for id := range int64(10_000) {
		if err := f.limiter(id + 1).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.buckets.len(); n > 100 {
		t.Fatalf("%d buckets after 10,000 portals one request each, want only undrained ones", n)
	}
}

// A portal whose clients keep its bucket full keeps that bucket while the
// factory sweeps the drained ones around it: a fresh one would let a burst
// through that Bitrix24 would refuse.
func TestBucketsKeepABusyPortal(t *testing.T) {
	t.Parallel()
	// A full bucket drains in 1.5 s.
	f := New(Options{Rate: 2, Burst: 3})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	busy := f.limiter(1)
	for range 3 {
		if err := busy.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	bucket := f.buckets.get(1)
	done := make(chan struct{})
	go func() { // the portal's client, always waiting for the next slot
		defer close(done)
		for busy.Wait(ctx) == nil {
		}
	}()
	// Another portal's one request drains in half a second; then enough
	// portals come for the next sweep. Waiting for the drain, rather than
	// counting on a busy loop to pass a sweep after it, keeps the test
	// true on a loaded machine.
	if err := f.limiter(2).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !f.buckets.get(2).Drained(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("portal 2's bucket did not drain in 10 s")
		}
	}
	f.buckets.mu.Lock()
	more := f.buckets.sweepAt - len(f.buckets.m) + 1
	f.buckets.mu.Unlock()
	for id := int64(3); id < 3+int64(more); id++ {
		if err := f.limiter(id).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.buckets.mu.Lock()
	_, kept := f.buckets.m[2]
	f.buckets.mu.Unlock()
	if kept {
		t.Fatal("the first drained bucket is still kept: no sweep came")
	}
	f.buckets.mu.Lock()
	still := f.buckets.m[1]
	f.buckets.mu.Unlock()
	if still != bucket {
		t.Fatal("the full bucket of the busy portal was dropped")
	}
	cancel()
	<-done
}

// A client made before its portal's bucket was dropped paces itself by the
// same new bucket as the clients made after.
func TestBucketsOneForAClientThatOutlivesIt(t *testing.T) {
	t.Parallel()
	// A request drains in 250 ms.
	f := New(Options{Rate: 4, Burst: 1})
	ctx := context.Background()
	old := f.limiter(1)
	if err := old.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for id := int64(2); id < 2+2*minSweep; id++ {
		if err := f.limiter(id).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.buckets.mu.Lock()
	_, kept := f.buckets.m[1]
	f.buckets.mu.Unlock()
	if kept {
		t.Fatal("the drained bucket of portal 1 was not swept")
	}
	old.Fill() // the old client hears that Bitrix24's bucket is full
	short, stop := context.WithTimeout(ctx, 30*time.Millisecond)
	defer stop()
	if err := f.limiter(1).Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a new client went on at once (%v), as if the old one's bucket were another", err)
	}
}
