package syncer

import (
	"context"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
)

// A run's write limit is kept for the account and is where the next run
// starts, in another process too (a Syncer with a registry of its own); the
// report shows the concurrency and the 429s. The account answers in 10 ms
// and says so (Server-Timing): with answers of no time at all, a loaded
// machine's scheduling delays alone read as a climbing latency, and the
// limit rightly shrinks.
func TestWriteLimitIsKeptForTheAccount(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Latency: 10 * time.Millisecond}})
	id, _ := e.addPortal(b24sim.GenerateOrg(3, 300, 12))
	rep := e.run(id, TriggerManual)
	account := AccountKey(simAccount)
	stored, err := e.syncer.store.WriteLimit(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	if stored <= 4 {
		t.Fatalf("stored limit %d after %d writes to a fast account, want growth past the start of 4", stored, rep.Writes)
	}
	if rep.Counts[CountParallelMax] < stored || rep.Counts[CountParallelMean] < 4 || rep.Concurrency.Attempts == 0 {
		t.Fatalf("report counts %v, concurrency %+v; stored %d", rep.Counts, rep.Concurrency, stored)
	}
	if _, ok := rep.Counts[CountThrottled]; !ok {
		t.Fatalf("report counts %v without the 429s", rep.Counts)
	}

	other := New(Config{Pool: e.pool, Settings: e, MaxParallel: 64})
	lc, err := learn.New(learn.Credentials{AccountURL: simAccount, Email: simEmail, Password: simPassword},
		learn.Options{BaseURL: e.lsrv.URL, AllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	par, lim, release, err := other.writeLimit(context.Background(), account, lc)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if lim == nil || lim.Limit() != stored || lc.WriteLimiter() != lim || par < lim.Max() {
		t.Fatalf("new process: limiter %v at %d, workers %d; want the stored %d", lim, lim.Limit(), par, stored)
	}
	// The same process gives a second client of the account the same limiter.
	lc2, _ := learn.New(learn.Credentials{AccountURL: simAccount, Email: simEmail, Password: simPassword},
		learn.Options{BaseURL: e.lsrv.URL, AllowHTTP: true})
	_, lim2, release2, _ := other.writeLimit(context.Background(), account, lc2)
	defer release2()
	if lim2 != lim {
		t.Fatal("two clients of one account in one process got different limiters")
	}
}
