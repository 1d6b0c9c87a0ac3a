package syncer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/pgtest"
)

// The sync benchmarks measure the app alone: b24sim and learnsim run in a
// child process (this test binary re-run as TestBenchSimulators), so the
// benchmark process holds only the syncer, its Postgres pool and the test
// harness, and its peak RSS and heap are the app's.

// BenchmarkSync1k is the same for 1,000 employees and 40 departments, the
// first row of the cost-as-the-work-grows table (docs/benchmarks.md):
//
//	go test -run '^$' -bench BenchmarkSync1k -benchtime 2x ./internal/syncer
func BenchmarkSync1k(b *testing.B) {
	benchSync(b, 1_000, 40)
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

// simsEnvVar makes TestBenchSimulators serve simulators for a benchmark; its
// value is "employees,departments".
const simsEnvVar = "B24LEARN_BENCH_SIMS"

// simsInfo is what the simulator process tells the benchmark.
type simsInfo struct {
	LearnURL     string
	OAuthURL     string
	ClientID     string
	ClientSecret string
	Token        bitrix24.Token
	Tokens       []bitrix24.Token // of every portal, Token first
	Control      string
}

// simsCounts are the simulators' counters since the last reset.
type simsCounts struct {
	B24Requests int
	LearnReads  int64
	LearnWrites int64
	// Of the capacity layer: 429s answered, most requests in the server.
	Throttled   int64
	MaxInServer int
}

// TestBenchSimulators is not a test: run by benchSync in a child process, it
// serves b24sim (2 req/s, burst 50) with one installed portal of a generated
// org and learnsim with one account, prints their addresses as one JSON line,
// and serves a small control API (reset, latency, counts) until its stdin is
// closed.
func TestBenchSimulators(t *testing.T) {
	spec := os.Getenv(simsEnvVar)
	if spec == "" {
		t.Skip("serves the simulators of the sync benchmarks; run by benchSync")
	}
	var employees, departments, portals int
	if n, err := fmt.Sscanf(spec, "%d,%d,%d", &employees, &departments, &portals); n < 2 {
		t.Fatalf("%s=%q: %v", simsEnvVar, spec, err)
	}
	portals = max(portals, 1)
	lsim := learnsim.New(learnsim.Options{Seed: 1})
	acct := learnsim.AccountOptions{URL: simAccount, Email: simEmail, Password: simPassword, RootName: "Learn"}
	if _, err := lsim.AddAccount(acct); err != nil {
		t.Fatal(err)
	}
	capl := learnsim.NewCapacityLayer(lsim.Handler(), learnsim.Capacity{})
	lsrv := httptest.NewServer(capl)
	defer lsrv.Close()
	bsrv := b24sim.Start(b24sim.Options{Rate: 2, Burst: 50})
	defer bsrv.Close()
	var ps []*b24sim.Portal
	var toks []bitrix24.Token
	for i := range portals {
		org := b24sim.GenerateOrg(42+int64(i), employees, departments)
		for j := range org.Users { // portals of one account have employees of their own
			if i > 0 && org.Users[j].Email != "" {
				org.Users[j].Email = strings.Replace(org.Users[j].Email, "@", "@p"+strconv.Itoa(i)+".", 1)
			}
		}
		pp := bsrv.AddPortal(b24sim.PortalOptions{Org: org})
		toks = append(toks, bitrix24.Token(pp.Install()))
		pp.FinishInstall(context.Background())
		ps = append(ps, pp)
	}
	p := ps[0]

	ctl := http.NewServeMux()
	ctl.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		for _, p := range ps {
			p.ResetCounters()
		}
		lsim.ResetCounts()
		capl.ResetStats()
	})
	ctl.HandleFunc("POST /capacity", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		c := learnsim.Capacity{RetryAfter: time.Second}
		c.Workers, _ = strconv.Atoi(q.Get("workers"))
		c.ConcurrencyCap, _ = strconv.Atoi(q.Get("cap"))
		c.ServiceTime, _ = time.ParseDuration(q.Get("service"))
		capl.Set(c)
	})
	ctl.HandleFunc("POST /latency", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("on") == "1" {
			lsim.SetFaults(learnLatency)
		} else {
			lsim.SetFaults(learnsim.Faults{})
		}
	})
	ctl.HandleFunc("GET /counts", func(w http.ResponseWriter, r *http.Request) {
		c := lsim.Counts(simAccount)
		cs := capl.Stats()
		_ = json.NewEncoder(w).Encode(simsCounts{B24Requests: p.TotalRequests(), LearnReads: c.Reads, LearnWrites: c.Writes,
			Throttled: cs.Throttled, MaxInServer: cs.MaxInServer})
	})
	csrv := httptest.NewServer(ctl)
	defer csrv.Close()

	info, err := json.Marshal(simsInfo{LearnURL: lsrv.URL, OAuthURL: bsrv.URL, ClientID: bsrv.ClientID(),
		ClientSecret: bsrv.ClientSecret(), Token: toks[0], Tokens: toks, Control: csrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("SIMS %s\n", info)
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark closes the pipe
}

// remoteSims is a running simulator process.
type remoteSims struct {
	simsInfo
}

// startSims runs TestBenchSimulators in a child process and waits for its
// addresses; cleanup closes its stdin and waits for it to exit.
func startSims(b *testing.B, employees, departments, portals int) *remoteSims {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchSimulators$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), simsEnvVar+"="+strconv.Itoa(employees)+","+strconv.Itoa(departments)+","+strconv.Itoa(portals))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	b.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	var info *simsInfo
	for info == nil && lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "SIMS "); ok {
			info = new(simsInfo)
			if err := json.Unmarshal([]byte(rest), info); err != nil {
				b.Fatalf("simulator process: %v", err)
			}
		}
	}
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	if info == nil {
		stdin.Close()
		<-exited
		b.Fatalf("simulator process gave no addresses: %s", stderr.String())
	}
	return &remoteSims{*info}
}

func (s *remoteSims) post(b *testing.B, path string) {
	b.Helper()
	resp, err := http.Post(s.Control+path, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("simulator control %s: %s", path, resp.Status)
	}
}

func (s *remoteSims) counts(b *testing.B) simsCounts {
	b.Helper()
	resp, err := http.Get(s.Control + "/counts")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var c simsCounts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		b.Fatal(err)
	}
	return c
}

// fixedSettings is the one portal's settings.
type fixedSettings Settings

func (f fixedSettings) Settings(context.Context, int64) (Settings, error) { return Settings(f), nil }

// benchEnv is a syncer in this process against remote simulators.
type benchEnv struct {
	sims     *remoteSims
	syncer   *Syncer
	portalID int64
}

func newBenchEnv(b *testing.B, employees, departments int) *benchEnv {
	b.Helper()
	sims := startSims(b, employees, departments, 1)
	pool := pgtest.NewPool(b)
	id := mustPortal(b, pool, sims.Token.MemberID)
	oauth := &bitrix24.OAuth{URL: sims.OAuthURL, ClientID: sims.ClientID, ClientSecret: sims.ClientSecret}
	b24 := bitrix24.New(bitrix24.Config{Tokens: bitrix24.NewMemoryTokenSource(oauth, sims.Token), RetryWait: 100 * time.Millisecond})
	retry := learn.RetryPolicy{MaxAttempts: 8, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, Timeout: 10 * time.Second}
	s := New(Config{
		Pool: pool,
		Settings: fixedSettings{MemberID: sims.Token.MemberID, LearnURL: simAccount, LearnEmail: simEmail,
			LearnPassword: simPassword, HeadsAsManagers: true, ParentHeadsAsSupervisors: true,
			Selection: Selection{Selected: []int64{1}}},
		NewLearn: newLearnClient(learn.Options{BaseURL: sims.LearnURL, AllowHTTP: true, Retry: retry}),
		NewBitrix24: func(context.Context, int64) (Bitrix24, error) {
			return b24, nil
		},
		Parallelism: 8,
	})
	return &benchEnv{sims: sims, syncer: s, portalID: id}
}

// heapProfEnvVar names a file peakMem writes a heap profile to whenever the
// heap reaches a new peak (5 % above the last one written).
const heapProfEnvVar = "B24LEARN_BENCH_HEAPPROF"

// peakMem samples this process's heap in use until stop is called; stop
// returns the peak heap and the peak RSS (VmHWM, reset at the start where
// the kernel allows it) in MB.
func peakMem() (stop func() (heapMB, rssMB float64)) {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		prof := os.Getenv(heapProfEnvVar)
		var profiled uint64
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			// A heap profile near the peak shows what holds the memory
			// (the profile is of the last GC, so near, not at).
			if prof != "" && ms.HeapAlloc > profiled+profiled/20 {
				profiled = ms.HeapAlloc
				if f, err := os.Create(prof); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() (float64, float64) {
		close(done)
		wg.Wait()
		return float64(peak.Load()) / (1 << 20), float64(vmHWM()) / (1 << 10)
	}
}

// vmHWM is the process's peak resident set in kB, or 0 where /proc is missing.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// runFigures are one measured run's figures.
type runFigures struct {
	b24, learnReq, learnWrites int64
	wall, apply                time.Duration
	heapMB, rssMB              float64
	limitMax                   int
	limitMean                  float64
	throttled                  int64
}

// report reports the mean per run of counts and time, and the highest peaks.
func report(b *testing.B, runs []runFigures) {
	var sum runFigures
	for _, r := range runs {
		sum.b24 += r.b24
		sum.learnReq += r.learnReq
		sum.learnWrites += r.learnWrites
		sum.wall += r.wall
		sum.heapMB = max(sum.heapMB, r.heapMB)
		sum.rssMB = max(sum.rssMB, r.rssMB)
	}
	n := float64(len(runs))
	b.ReportMetric(float64(sum.b24)/n, "b24-req/op")
	b.ReportMetric(float64(sum.learnReq)/n, "learn-req/op")
	b.ReportMetric(float64(sum.learnWrites)/n, "learn-writes/op")
	b.ReportMetric(sum.wall.Seconds()/n, "wall-s/op")
	b.ReportMetric(sum.heapMB, "peak-heap-MB")
	b.ReportMetric(sum.rssMB, "peak-rss-MB")
	// The write concurrency the limiter reached, and how close the run came
	// to the bound it sets: writes × 20 ms / limit.
	var limMax, limMean, throttled, bound, boundMean float64
	for _, r := range runs {
		limMax += float64(r.limitMax) / n
		limMean += r.limitMean / n
		throttled += float64(r.throttled) / n
		if r.limitMax > 0 && r.learnWrites > 0 {
			bound += r.wall.Seconds() / (float64(r.learnWrites) * learnLatency.SlowLatency.Seconds() / float64(r.limitMax)) / n
			boundMean += r.wall.Seconds() / (float64(r.learnWrites) * learnLatency.SlowLatency.Seconds() / r.limitMean) / n
		}
	}
	b.ReportMetric(limMax, "limit-max")
	b.ReportMetric(limMean, "limit-mean")
	b.ReportMetric(throttled, "429s/op")
	if bound > 0 {
		b.ReportMetric(bound, "x-bound-max")
		b.ReportMetric(boundMean, "x-bound-mean")
	}
}

func benchSync(b *testing.B, employees, departments int) {
	measure := func(b *testing.B, e *benchEnv) (*Report, runFigures) {
		e.sims.post(b, "/reset")
		e.sims.post(b, "/latency?on=1")
		// What the set-up (the first sync before an unchanged run, the org's
		// generation) left in the heap is collected and given back to the OS
		// before the peak is reset: the figure is the run's own, as in a
		// worker whose runs are hours apart, where the runtime's scavenger
		// has returned that memory long before the next run starts.
		debug.FreeOSMemory()
		stop := peakMem()
		start := time.Now()
		rep, err := e.syncer.Run(context.Background(), e.portalID, TriggerScheduled)
		wall := time.Since(start)
		heap, rss := stop()
		if err != nil {
			b.Fatal(err)
		}
		c := e.sims.counts(b)
		if target := targetB24Requests(employees, departments); c.B24Requests > target {
			b.Errorf("%d Bitrix24 requests, target ≤ %d", c.B24Requests, target)
		}
		b.Logf("phases %v", rep.Phases)
		return rep, runFigures{b24: int64(c.B24Requests), learnReq: c.LearnReads + c.LearnWrites, learnWrites: c.LearnWrites,
			wall: wall, apply: rep.Phases["apply"], heapMB: heap, rssMB: rss,
			limitMax: rep.Concurrency.Max, limitMean: rep.Concurrency.Mean, throttled: rep.Concurrency.Throttled}
	}
	b.Run("Initial", func(b *testing.B) {
		var runs []runFigures
		for b.Loop() {
			b.StopTimer()
			e := newBenchEnv(b, employees, departments)
			b.StartTimer()
			_, f := measure(b, e)
			runs = append(runs, f)
		}
		report(b, runs)
	})
	b.Run("NoChange", func(b *testing.B) {
		e := newBenchEnv(b, employees, departments)
		e.sims.post(b, "/latency?on=0")
		if _, err := e.syncer.Run(context.Background(), e.portalID, TriggerScheduled); err != nil {
			b.Fatal(err)
		}
		var runs []runFigures
		for b.Loop() {
			rep, f := measure(b, e)
			if rep.Writes != 0 {
				b.Fatalf("no-change run wrote %d times", rep.Writes)
			}
			runs = append(runs, f)
		}
		report(b, runs)
	})
}

// targetB24Requests is issue 4's target, ceil(employees/2500) +
// ceil(departments/2500), plus its 10 %.
func targetB24Requests(employees, departments int) int {
	t := (employees+2499)/2500 + (departments+2499)/2500
	return t + t/10
}
