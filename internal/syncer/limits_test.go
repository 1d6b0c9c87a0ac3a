package syncer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
)

// heapGrowth samples the heap (live and not yet collected objects) every
// millisecond while fn runs and returns how far it rose above the level before.
func heapGrowth(t *testing.T, fn func()) uint64 {
	t.Helper()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(stop)
	<-done
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// TestPreviewAgainstHostileLearn plays a portal admin who points the app at a
// Learn server of their own that sends endless pages, cycling page tokens or
// a 1 GiB answer (of many objects, or of one). The preview (which runs before
// activation) fails with an error naming the limit, the run report carries it
// for the status panel, and the heap grows by less than 64 MB. Not parallel:
// the heap is the process's (parallel tests of the package wait until it is
// done).
func TestPreviewAgainstHostileLearn(t *testing.T) {
	e := newSimEnv(t, simOpts{})
	portalID, _ := e.addPortal(b24sim.GenerateOrg(11, 40, 5))
	floor := int64(learn.LimitsFor(0).Objects)
	for _, tc := range []struct {
		name    string
		hostile learnsim.Hostile
		limit   string
		words   string
	}{
		{"EndlessDepartments", learnsim.Hostile{EndlessPages: true, Listing: "departments"}, learn.LimitObjects, "more departments than the limit of"},
		{"EndlessUsers", learnsim.Hostile{EndlessPages: true, Listing: "users"}, learn.LimitObjects, "more users than the limit of"},
		{"RepeatTokens", learnsim.Hostile{RepeatTokens: true, Listing: "users"}, learn.LimitPageToken, "repeated a page token"},
		{"HugeDepartments", learnsim.Hostile{HugeAnswer: 1 << 30, Listing: "departments"}, learn.LimitAnswerBytes, "exceeded the size limit of 16 MiB"},
		{"HugeUsers", learnsim.Hostile{HugeAnswer: 1 << 30, Listing: "users"}, learn.LimitAnswerBytes, "exceeded the size limit of 16 MiB"},
		{"HugeUser", learnsim.Hostile{HugeAnswer: 1 << 30, HugeObject: true, Listing: "users"}, learn.LimitObjectBytes, "exceeded the size limit of 1 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.lsim.SetHostile(tc.hostile)
			defer e.lsim.SetHostile(learnsim.Hostile{})
			var (
				rep *Report
				err error
			)
			grew := heapGrowth(t, func() { rep, err = e.syncer.Preview(context.Background(), portalID) })
			var le *learn.LimitError
			if !errors.As(err, &le) || le.Limit != tc.limit {
				t.Fatalf("err = %v, want a %q limit error", err, tc.limit)
			}
			if le.Limit == learn.LimitObjects && le.Value <= floor {
				t.Errorf("objects limit %d, want it above the floor of %d once the org size is known", le.Value, floor)
			}
			run, rerr := e.syncer.store.Run(context.Background(), portalID, rep.RunID)
			if rerr != nil || run.Status != RunFailed || !strings.Contains(run.Error, tc.words) {
				t.Fatalf("run report %+v, %v: want failed with %q", run, rerr, tc.words)
			}
			if grew > 64<<20 {
				t.Errorf("heap grew by %d MB, budget 64 MB", grew>>20)
			}
			t.Logf("heap grew by %.1f MB; run error: %s", float64(grew)/(1<<20), run.Error)
		})
	}
	// The same portal previews normally once the server behaves.
	if _, err := e.syncer.Preview(context.Background(), portalID); err != nil {
		t.Fatalf("preview after the hostile answers: %v", err)
	}
}

// TestSyncLearnBiggerThanTheFloor: a Learn account that already holds more
// users than the floor of the limits (a shared account, or a CSV import
// before the app) syncs, because the limits grow with the Bitrix24 org that
// is read at the same time.
func TestSyncLearnBiggerThanTheFloor(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	root := e.state().RootID
	extra := learn.LimitsFor(0).Objects + 500
	for i := range extra {
		f := map[string]string{"login": fmt.Sprintf("other%d@example.com", i), "email": fmt.Sprintf("other%d@example.com", i),
			"first_name": "Other", "last_name": fmt.Sprint(i)}
		if _, err := e.lsim.SeedUser(simAccount, root, f, learn.StatusActive); err != nil {
			t.Fatal(err)
		}
	}
	portalID, p := e.addPortal(b24sim.GenerateOrg(12, 200, 10))
	rep := e.run(portalID, TriggerScheduled)
	if rep.Status == RunFailed {
		t.Fatalf("run %+v", rep)
	}
	st := e.state()
	checkPortal(t, st, p, st.RootID)
	if len(st.Users) < extra {
		t.Fatalf("%d Learn users, want the %d seeded ones kept", len(st.Users), extra)
	}
}
