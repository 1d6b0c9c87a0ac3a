package syncer

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// peakHeap samples the heap until stop is called and returns the peak in MB.
// The simulators run in the same process, so the figure is an upper bound;
// sync-heap-MB subtracts the heap held before the run (mostly their data).
func peakHeap() (stop func() float64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(done)
		wg.Wait()
		return float64(peak.Load()) / (1 << 20)
	}
}

// BenchmarkSync10k syncs a generated org of 10,000 employees and 400
// departments with Bitrix24's 2 req/s bucket and 20 ms Learn latency:
//
//	go test -run '^$' -bench BenchmarkSync10k -benchtime 1x ./internal/syncer
func BenchmarkSync10k(b *testing.B) {
	benchSync(b, 10_000, 400)
}

// BenchmarkSync100k is the same for 100,000 employees and 2,000 departments
// (the initial run takes minutes):
//
//	go test -run '^$' -bench BenchmarkSync100k/NoChange -benchtime 1x -timeout 30m ./internal/syncer
func BenchmarkSync100k(b *testing.B) {
	benchSync(b, 100_000, 2_000)
}

// learnLatency is applied through the slow-answer fault at rate 1, so that
// the set-up run of NoChange can go without it.
var learnLatency = learnsim.Faults{SlowRate: 1, SlowLatency: 20 * time.Millisecond}

func benchSync(b *testing.B, employees, departments int) {
	org := b24sim.GenerateOrg(42, employees, departments)
	setup := func(b *testing.B) (*simEnv, int64, *b24sim.Portal) {
		e := newSimEnv(b, simOpts{par: 8, b24: b24sim.Options{Rate: 2, Burst: 50}})
		id, p := e.addPortal(org)
		e.setSettings(id, func(s *Settings) { s.HeadsAsManagers, s.ParentHeadsAsSupervisors = true, true })
		return e, id, p
	}
	measure := func(b *testing.B, e *simEnv, id int64, p *b24sim.Portal) *Report {
		p.ResetCounters()
		e.lsim.ResetCounts()
		e.lsim.SetFaults(learnLatency)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := float64(ms.HeapAlloc) / (1 << 20)
		stop := peakHeap()
		start := time.Now()
		rep, err := e.syncer.Run(context.Background(), id, TriggerScheduled)
		wall := time.Since(start)
		peak := stop()
		if err != nil {
			b.Fatal(err)
		}
		c := e.lsim.Counts(simAccount)
		b.ReportMetric(float64(p.TotalRequests()), "b24-req/op")
		b.ReportMetric(float64(c.Reads+c.Writes), "learn-req/op")
		b.ReportMetric(float64(c.Writes), "learn-writes/op")
		b.ReportMetric(wall.Seconds(), "wall-s/op")
		b.ReportMetric(peak, "peak-heap-MB")
		b.ReportMetric(peak-base, "sync-heap-MB") // above the simulators' own data
		b.Logf("phases %v", rep.Phases)
		return rep
	}
	b.Run("Initial", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			e, id, p := setup(b)
			b.StartTimer()
			measure(b, e, id, p)
		}
	})
	b.Run("NoChange", func(b *testing.B) {
		e, id, p := setup(b)
		if _, err := e.syncer.Run(context.Background(), id, TriggerScheduled); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if rep := measure(b, e, id, p); rep.Writes != 0 {
				b.Fatalf("no-change run wrote %d times", rep.Writes)
			}
		}
	})
}
