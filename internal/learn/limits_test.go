package learn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/learn/learnsim"
)

// heapPeak samples the heap (live and not yet collected objects) every
// millisecond while fn runs and returns how far it rose above the level before.
func heapPeak(t *testing.T, fn func()) uint64 {
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

const heapBudget = 64 << 20

// TestListingsOfAHostileServer plays a Learn server that tries to exhaust the
// worker: endless pages, page tokens that cycle, and a 1 GiB answer (of
// many objects, or of one). Each
// listing fails with a *LimitError naming the limit, after one attempt at the
// bad answer, and the heap never grows by more than 64 MB. Not parallel: the
// heap is the process's.
func TestListingsOfAHostileServer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hostile learnsim.Hostile
		limit   string
		words   string
		reads   int64 // at most
	}{
		{"EndlessPages", learnsim.Hostile{EndlessPages: true}, LimitObjects, "than the limit of 10000", 11},
		{"RepeatTokens", learnsim.Hostile{RepeatTokens: true}, LimitPageToken, "repeated a page token", 3},
		{"HugeAnswer", learnsim.Hostile{HugeAnswer: 1 << 30}, LimitAnswerBytes, "exceeded the size limit of 16 MiB", 1},
		{"HugeObject", learnsim.Hostile{HugeAnswer: 1 << 30, HugeObject: true}, LimitObjectBytes, "exceeded the size limit of 1 MiB", 1},
	} {
		for _, what := range []string{"users", "departments"} {
			t.Run(tc.name+"/"+what, func(t *testing.T) {
				env := newSimEnv(t, learnsim.Options{Hostile: tc.hostile}, learnsim.AccountOptions{})
				// The production per-attempt timeout: under -race on a loaded
				// machine, generating 16 MiB can outlast the tests' 5 s, and a
				// timed-out read is rightly asked again.
				slow := fastRetry
				slow.Timeout = time.Minute
				c, err := New(Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword},
					Options{BaseURL: env.srv.URL, AllowHTTP: true, Retry: slow})
				if err != nil {
					t.Fatal(err)
				}
				grew := heapPeak(t, func() {
					if what == "users" {
						err = c.ListUsers(context.Background(), UserFilter{}, func([]User) error { return nil })
					} else {
						_, err = c.ListDepartments(context.Background())
					}
				})
				var le *LimitError
				if !errors.As(err, &le) || le.Limit != tc.limit {
					t.Fatalf("err = %v, want a %q LimitError", err, tc.limit)
				}
				if !strings.Contains(err.Error(), tc.words) || !errors.Is(err, ErrUnexpected) {
					t.Errorf("err = %q, want it to say %q", err, tc.words)
				}
				if n := env.sim.Counts(testAccount).Reads; n > tc.reads {
					t.Errorf("%d reads, want at most %d (a refused answer is not asked again)", n, tc.reads)
				}
				if grew > heapBudget {
					t.Errorf("heap grew by %d MB, budget %d MB", grew>>20, heapBudget>>20)
				}
				t.Logf("heap grew by %.1f MB; %v", float64(grew)/(1<<20), err)
			})
		}
	}
}

// TestListingLimitsScale lists 2,100 departments: fine under the floor, refused
// under a tighter allowance, and fine again when Raise (the org size arriving
// later) widens it before the page that would cross it.
func TestListingLimitsScale(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, learnsim.Options{}, learnsim.AccountOptions{})
	for i := range 2100 {
		if _, err := env.sim.SeedDepartment(testAccount, fmt.Sprintf("D%d", i), env.root, fmt.Sprintf("c%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	c := env.client(t, Credentials{})
	ctx := context.Background()
	if deps, err := c.ListDepartments(ctx); err != nil || len(deps) != 2101 {
		t.Fatalf("floor: %d departments, %v", len(deps), err)
	}
	tight := Limits{Objects: 1500, Pages: 10, Bytes: 10 << 20}
	_, err := c.ListDepartmentsWithin(ctx, tight)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitObjects || le.Value != 1500 {
		t.Fatalf("tight: err = %v, want the objects limit of 1500", err)
	}
	raised := 0
	tight.Raise = func(context.Context) (Limits, error) { raised++; return LimitsFor(1000), nil }
	if deps, err := c.ListDepartmentsWithin(ctx, tight); err != nil || len(deps) != 2101 || raised != 1 {
		t.Fatalf("raised: %d departments, %v, Raise called %d times", len(deps), err, raised)
	}
	big := LimitsFor(102_000) // 100,000 employees in 2,000 departments
	if big.Objects < 10*102_000 || big.Pages < big.Objects/pageSize || big.Bytes < int64(big.Objects)*1024 {
		t.Errorf("LimitsFor(102000) = %+v, too tight for a large org", big)
	}
}

// TestAnswerLimits bounds the answers that are not listings: a create whose
// answer never ends fails at 1 MiB without a retry, and an error answer is
// read only in part.
func TestAnswerLimits(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method == http.MethodGet {
			w.WriteHeader(http.StatusBadRequest)
		}
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 1 << 14 { // 1 GiB unless the client hangs up
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword},
		Options{BaseURL: srv.URL, AllowHTTP: true, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	grew := heapPeak(t, func() {
		_, err = c.CreateDepartment(context.Background(), NewDepartment{Name: "D", ParentID: "root", Code: "c"})
	})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitAnswerBytes || le.Value != 1<<20 {
		t.Fatalf("create: err = %v, want the answer limit of 1 MiB", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("create sent %d times, want 1", n)
	}
	if grew > heapBudget {
		t.Errorf("heap grew by %d MB", grew>>20)
	}
	_, err = c.GetDepartment(context.Background(), "x")
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Message) > 300 {
		t.Fatalf("error answer: %v", err)
	}
}

// TestCheckConnectionHugeAnswer: the settings page's check reads at most
// 1 MiB of a never-ending answer and calls the host "not Learn".
func TestCheckConnectionHugeAnswer(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, learnsim.Options{Hostile: learnsim.Hostile{HugeAnswer: 1 << 30}}, learnsim.AccountOptions{})
	err := CheckConnection(context.Background(), Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword},
		Options{BaseURL: env.srv.URL, AllowHTTP: true})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitAnswerBytes {
		t.Fatalf("err = %v, want the answer limit", err)
	}
	checkCode(t, err, CheckNotLearn)
}

// Learn documents the default page size (1000), not a maximum: a server that
// sends smaller pages must still be read whole, within the listing's bounds.
func TestListingOfSmallPages(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, learnsim.Options{Unsettled: learnsim.Unsettled{MaxPageSize: 10}}, learnsim.AccountOptions{})
	for i := range 2100 {
		if _, err := env.sim.SeedDepartment(testAccount, fmt.Sprintf("D%d", i), env.root, fmt.Sprintf("c%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	deps, err := env.client(t, Credentials{}).ListDepartments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) != 2101 {
		t.Errorf("got %d departments, want 2101 (root + 2100)", len(deps))
	}
	if got := env.sim.Counts(testAccount).ByRoute["GET /departments"]; got != 211 {
		t.Errorf("GET /departments calls = %d, want 211 pages of 10", got)
	}
}
