package syncer

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/learn"
	"b24learn/internal/pgtest"
)

// BenchmarkCapacity10k syncs 10,000 employees into a learnsim account that
// serves 16 requests at once, 20 ms each (800 requests/s), and answers 429
// beyond a cap of requests in the server: how close the write limiter gets
// to the server's capacity, and how many 429s it costs.
//
//	go test -run '^$' -bench BenchmarkCapacity10k -benchtime 2x ./internal/syncer
func BenchmarkCapacity10k(b *testing.B) {
	for _, tc := range []struct {
		name string
		cap  int
	}{{"Cap16", 16}, {"Cap4", 4}} {
		b.Run(tc.name, func(b *testing.B) {
			var tput, share, throttled, lim float64
			n := 0
			for b.Loop() {
				b.StopTimer()
				e := newCapacityEnv(b, 10_000, 400, 1, tc.cap, true)
				b.StartTimer()
				f := e.run(b)
				tput += f.writesPerSec
				share += f.share429
				throttled += float64(f.throttled)
				lim += f.limitMean
				n++
			}
			fn := float64(n)
			b.ReportMetric(tput/fn, "writes/s")
			b.ReportMetric(tput/fn/800*100, "%capacity")
			b.ReportMetric(throttled/fn, "429s/op")
			b.ReportMetric(share/fn*100, "%429")
			b.ReportMetric(lim/fn, "limit-mean")
		})
	}
}

// BenchmarkTwoPortals syncs two portals of 5,000 employees each at once into
// one Learn account capped at 16 requests (Shared: one limiter, as in one
// process), next to one portal of 10,000 alone (One), and two portals that
// do not share a limiter (Apart), which is what sharing prevents.
//
//	go test -run '^$' -bench BenchmarkTwoPortals -benchtime 2x ./internal/syncer
func BenchmarkTwoPortals(b *testing.B) {
	for _, tc := range []struct {
		name            string
		portals, shared int
	}{{"One", 1, 1}, {"Shared", 2, 1}, {"Apart", 2, 0}} {
		b.Run(tc.name, func(b *testing.B) {
			var throttled, share, tput float64
			n := 0
			for b.Loop() {
				b.StopTimer()
				e := newCapacityEnv(b, 10_000/tc.portals, 400/tc.portals, tc.portals, 16, tc.shared == 1)
				b.StartTimer()
				f := e.run(b)
				throttled += float64(f.throttled)
				share += f.share429
				tput += f.writesPerSec
				n++
			}
			fn := float64(n)
			b.ReportMetric(throttled/fn, "429s/op")
			b.ReportMetric(share/fn*100, "%429")
			b.ReportMetric(tput/fn, "writes/s")
		})
	}
}

// capacityEnv is one or more portals syncing into one capped learnsim account.
type capacityEnv struct {
	sims    *remoteSims
	syncers []*Syncer
	portals []int64
}

// memberSettings are the settings of the benchmark's portals, by member id.
type memberSettings map[int64]Settings

func (m memberSettings) Settings(_ context.Context, id int64) (Settings, error) { return m[id], nil }

func newCapacityEnv(b *testing.B, employees, departments, portals, capN int, shared bool) *capacityEnv {
	b.Helper()
	sims := startSims(b, employees, departments, portals)
	sims.post(b, "/capacity?workers=16&service=20ms&cap="+itoa(capN))
	pool := pgtest.NewPool(b)
	oauth := &bitrix24.OAuth{URL: sims.OAuthURL, ClientID: sims.ClientID, ClientSecret: sims.ClientSecret}
	set := memberSettings{}
	b24 := map[int64]*bitrix24.Client{}
	e := &capacityEnv{sims: sims}
	for _, tok := range sims.Tokens {
		id := mustPortal(b, pool, tok.MemberID)
		e.portals = append(e.portals, id)
		set[id] = Settings{MemberID: tok.MemberID, LearnURL: simAccount, LearnEmail: simEmail,
			LearnPassword: simPassword, HeadsAsManagers: true, ParentHeadsAsSupervisors: true,
			Selection: Selection{Selected: []int64{1}}}
		b24[id] = bitrix24.New(bitrix24.Config{Tokens: bitrix24.NewMemoryTokenSource(oauth, tok), RetryWait: 100 * time.Millisecond})
	}
	retry := learn.RetryPolicy{MaxAttempts: 8, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, Timeout: 10 * time.Second}
	lims := learn.NewLimiters(learn.LimiterOptions{})
	for range e.portals {
		cfg := Config{Pool: pool, Settings: set, Limiters: lims,
			NewLearn: newLearnClient(learn.Options{BaseURL: sims.LearnURL, AllowHTTP: true, Retry: retry}),
			NewBitrix24: func(_ context.Context, id int64) (Bitrix24, error) {
				return b24[id], nil
			}}
		if !shared {
			cfg.Limiters = nil // each its own, as in separate processes
		}
		e.syncers = append(e.syncers, New(cfg))
		if shared {
			break
		}
	}
	return e
}

func itoa(n int) string { return strconv.Itoa(n) }

// capacityFigures are one measured run's figures over all portals.
type capacityFigures struct {
	writesPerSec float64 // Learn writes over the longest apply phase
	throttled    int64   // 429s the server answered
	share429     float64 // of all Learn requests, the refused ones included
	limitMean    float64
}

func (e *capacityEnv) run(b *testing.B) capacityFigures {
	b.Helper()
	e.sims.post(b, "/reset")
	reps := make([]*Report, len(e.portals))
	errs := make([]error, len(e.portals))
	var wg sync.WaitGroup
	for i, id := range e.portals {
		s := e.syncers[min(i, len(e.syncers)-1)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = s.Run(context.Background(), id, TriggerScheduled)
		}()
	}
	wg.Wait()
	var f capacityFigures
	var apply time.Duration
	for i, err := range errs {
		if err != nil {
			b.Fatalf("portal %d: %v", i, err)
		}
		// The generated org has employees Learn refuses (partial); a step
		// that failed would be the limiter losing a write.
		if c := reps[i].Counts; c["user."+ItemFailed]+c["department."+ItemFailed] > 0 {
			b.Fatalf("portal %d: run %s, counts %v", i, reps[i].Status, c)
		}
		apply = max(apply, reps[i].Phases["apply"])
		f.limitMean += reps[i].Concurrency.Mean / float64(len(reps))
		b.Logf("portal %d: phases %v, concurrency %+v", i, reps[i].Phases, reps[i].Concurrency)
	}
	c := e.sims.counts(b)
	f.throttled = c.Throttled
	f.writesPerSec = float64(c.LearnWrites) / apply.Seconds()
	f.share429 = float64(c.Throttled) / float64(c.LearnReads+c.LearnWrites+c.Throttled)
	b.Logf("learnsim: %d reads, %d writes, %d answered 429, at most %d in the server", c.LearnReads, c.LearnWrites, c.Throttled, c.MaxInServer)
	return f
}
