package main

// Fault drills: the real binary (this test binary re-executed as b24learn)
// syncing a generated org from b24sim into learnsim while something goes
// wrong, then the checks that the Learn account ended right.

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/jobs"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
	"b24learn/internal/syncer"
)

// TestMain lets the drills start this test binary as `b24learn`.
func TestMain(m *testing.M) {
	if os.Getenv("B24LEARN_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type drill struct {
	t        *testing.T
	dbURL    string
	pool     *pgxpool.Pool
	b24      *b24sim.Server
	portal   *b24sim.Portal
	learn    *learnsim.Sim
	learnURL string
	portalID int64
	inserter *river.Client[pgx.Tx]
}

type drillOptions struct {
	employees    int
	learnLatency time.Duration
	learnFaults  learnsim.Faults
	b24Rate      float64
	b24Burst     int
	// dbURL, when set, is the address serve uses for the database (a proxy).
	dbURL func(direct string) string
}

func newDrill(t *testing.T, o drillOptions) *drill {
	t.Helper()
	d := &drill{t: t, dbURL: pgtest.NewDatabase(t)}
	ctx := context.Background()
	var err error
	if d.pool, err = pgxpool.New(ctx, d.dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.pool.Close)
	kr, _ := secret.NewKeyring(testKey)

	d.b24 = b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Rate: o.b24Rate, Burst: o.b24Burst})
	t.Cleanup(d.b24.Close)
	d.portal = d.b24.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(7, o.employees, max(5, o.employees/50))})
	d.learn = learnsim.New(learnsim.Options{Latency: o.learnLatency, Faults: o.learnFaults, Seed: 3,
		Mount: learnsim.MountAccountHost}) // the API under the account URL's /api/v2
	lsrv := httptest.NewServer(d.learn.Handler())
	t.Cleanup(lsrv.Close)
	d.learnURL = lsrv.URL
	if _, err := d.learn.AddAccount(learnsim.AccountOptions{URL: d.learnURL, Email: "admin@learn.test", Password: "pw"}); err != nil {
		t.Fatal(err)
	}

	d.portalID = apptest.InstallPortal(t, d.pool, kr, d.portal).ID
	apptest.Configure(t, d.pool, kr, d.portalID, apptest.Settings{LearnURL: d.learnURL, LearnEmail: "admin@learn.test",
		LearnPassword: "pw", FirstRun: "06:00", Selected: []int64{d.portal.Departments()[0].ID}}, true)
	if d.inserter, err = river.NewClient(riverpgxv5.New(d.pool), &river.Config{}); err != nil {
		t.Fatal(err)
	}
	return d
}

// serve starts `b24learn serve --no-http` as its own process.
func (d *drill) serve(dbURL string, env ...string) *exec.Cmd {
	d.t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--no-http", "--no-migrate")
	cmd.Env = append(os.Environ(), "B24LEARN_AS_MAIN=1",
		"DATABASE_URL="+dbURL, "B24_CLIENT_ID="+d.b24.ClientID(), "B24_CLIENT_SECRET="+d.b24.ClientSecret(),
		"B24_OAUTH_URL="+d.b24.URL, "PUBLIC_URL=http://127.0.0.1:1", "SECRET_KEYS="+testKey,
		"LEARN_ALLOW_PRIVATE_HOSTS=true", "B24_ALLOW_PRIVATE_HOSTS=true", "LOG_LEVEL="+cmp.Or(os.Getenv("DRILL_LOG_LEVEL"), "warn"), "B24_RATE_LIMIT=100", "B24_BURST=100")
	cmd.Env = append(cmd.Env, env...)
	var logs bytes.Buffer
	cmd.Stderr = &syncWriter{w: &logs}
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
			}
		}
		if d.t.Failed() {
			d.t.Logf("serve log:\n%s", logs.String())
		}
	})
	return cmd
}

type syncWriter struct {
	mu sync.Mutex
	w  interface {
		io.Writer
		String() string
	}
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (d *drill) syncNow() int64 {
	d.t.Helper()
	res, err := d.inserter.Insert(context.Background(), jobs.SyncArgs{PortalID: d.portalID, Trigger: syncer.TriggerManual}, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	return res.Job.ID
}

func (d *drill) waitFor(what string, timeout time.Duration, ok func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: not reached in %s\n%s", what, timeout, d.queueState())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// queueState describes River's jobs, its leader and the advisory locks
// held, so that a drill that times out says where the hand-over stopped.
func (d *drill) queueState() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	for _, q := range []struct{ what, sql string }{
		{"jobs", `SELECT id || ' ' || kind || ' ' || state || ' attempt ' || attempt || ' attempted ' || coalesce(attempted_at::text, '-') ||
			' by ' || coalesce(array_to_string(attempted_by, ','), '-') || ' errors ' || coalesce(array_length(errors, 1), 0) FROM river_job ORDER BY id`},
		{"leader", `SELECT leader_id || ' until ' || expires_at::text FROM river_leader`},
		{"advisory locks", `SELECT pid || ' ' || classid || ' ' || objid || ' ' || objsubid || ' granted ' || granted FROM pg_locks WHERE locktype = 'advisory'`},
		{"now", `SELECT now()::text`},
	} {
		fmt.Fprintf(&b, "%s:\n", q.what)
		rows, err := d.pool.Query(ctx, q.sql)
		if err != nil {
			fmt.Fprintf(&b, "  (%v)\n", err)
			continue
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err == nil {
				fmt.Fprintf(&b, "  %s\n", line)
			}
		}
		rows.Close()
	}
	return b.String()
}

func (d *drill) jobState(id int64) rivertype.JobState {
	job, err := d.inserter.JobGet(context.Background(), id)
	if err != nil {
		d.t.Fatal(err)
	}
	return job.State
}

// checkLearn compares the Learn account with the Bitrix24 org it was fed
// from — what one uninterrupted run produces: every department once, under
// its parent; every active employee with an e-mail exactly once, active, in
// the first of their departments; nobody else but the account's owner.
func (d *drill) checkLearn() {
	d.t.Helper()
	st, err := d.learn.Snapshot(d.learnURL)
	if err != nil {
		d.t.Fatal(err)
	}
	member := d.portal.MemberID()
	byCode := map[string]learnsim.Department{}
	for _, dep := range st.Departments {
		if dep.Code == "" {
			continue
		}
		if _, dup := byCode[dep.Code]; dup {
			d.t.Errorf("department code %s appears twice", dep.Code)
		}
		byCode[dep.Code] = dep
	}
	depts := d.portal.Departments()
	learnDept := map[int64]string{}
	for _, b := range depts {
		if b.Parent == 0 {
			learnDept[b.ID] = st.RootID // the portal's root is the Learn root
			continue
		}
		dep, ok := byCode[syncer.DepartmentCode(member, b.ID)]
		if !ok {
			d.t.Errorf("department %d %q missing in Learn", b.ID, b.Name)
			continue
		}
		learnDept[b.ID] = dep.ID
		if dep.Name != b.Name {
			d.t.Errorf("department %d named %q in Learn, want %q", b.ID, dep.Name, b.Name)
		}
	}
	for _, b := range depts {
		if b.Parent != 0 {
			if dep, ok := byCode[syncer.DepartmentCode(member, b.ID)]; ok && dep.ParentID != learnDept[b.Parent] {
				d.t.Errorf("department %q under %s, want %s", b.Name, dep.ParentID, learnDept[b.Parent])
			}
		}
	}
	users := map[string]learnsim.User{}
	for _, u := range st.Users {
		if u.ID == st.OwnerID {
			continue
		}
		login := strings.ToLower(u.Fields["login"])
		if _, dup := users[login]; dup {
			d.t.Errorf("user %s appears twice", login)
		}
		users[login] = u
	}
	want := 0
	for _, e := range d.portal.Users() {
		if !e.Active || e.Extranet || e.Email == "" {
			continue
		}
		want++
		u, ok := users[strings.ToLower(e.Email)]
		if !ok {
			d.t.Errorf("employee %d %s missing in Learn", e.ID, e.Email)
			continue
		}
		if u.Status != 1 || u.DepartmentID != learnDept[e.Departments[0]] {
			d.t.Errorf("employee %s: status %d in %s, want 1 in %s", e.Email, u.Status, u.DepartmentID, learnDept[e.Departments[0]])
		}
	}
	if len(users) != want {
		d.t.Errorf("Learn has %d users besides the owner, want %d", len(users), want)
	}
}

// runAgainWritesNothing runs one more sync in process B and checks that it
// wrote nothing: the account already equals what Bitrix24 says.
func (d *drill) runAgainWritesNothing() {
	d.t.Helper()
	before := d.learn.Counts(d.learnURL).Writes
	id := d.syncNow()
	d.waitFor("second sync", 2*time.Minute, func() bool { return d.jobState(id) == rivertype.JobStateCompleted })
	if w := d.learn.Counts(d.learnURL).Writes - before; w != 0 {
		d.t.Errorf("a sync after convergence wrote %d times to Learn", w)
	}
}

// SIGKILL of serve in the middle of a sync of 5,000 employees; another
// process takes the job over and the account ends as one run would leave it.
func TestDrillKillDuringSync(t *testing.T) {
	if testing.Short() {
		t.Skip("drill")
	}
	t.Parallel()
	d := newDrill(t, drillOptions{employees: 5000, learnLatency: 2 * time.Millisecond})
	a := d.serve(d.dbURL)
	id := d.syncNow()
	d.waitFor("a third of the writes", 3*time.Minute, func() bool { return d.learn.Counts(d.learnURL).Writes > 1500 })
	if err := a.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	a.Wait()
	written := d.learn.Counts(d.learnURL).Writes
	if st := d.jobState(id); st != rivertype.JobStateRunning {
		t.Fatalf("killed job is %s, want still running", st)
	}
	// Process B's dispatcher finds the job running with its portal's lock
	// released by the dead process, and hands it back within a minute or two.
	d.serve(d.dbURL)
	d.waitFor("the job finished by process B", 4*time.Minute, func() bool { return d.jobState(id) == rivertype.JobStateCompleted })
	if d.learn.Counts(d.learnURL).Writes <= written {
		t.Fatal("process B wrote nothing: the job was not resumed")
	}
	d.checkLearn()
	d.runAgainWritesNothing()
}

// Learn answering 20 % errors and slowly: the sync converges.
func TestDrillLearnFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("drill")
	}
	t.Parallel()
	d := newDrill(t, drillOptions{employees: 800, learnLatency: 5 * time.Millisecond,
		learnFaults: learnsim.Faults{ErrorRate: 0.1, RateLimitRate: 0.05, AfterWriteErrorRate: 0.05, RetryAfter: 0}})
	d.serve(d.dbURL)
	id := d.syncNow()
	d.waitFor("sync under faults", 4*time.Minute, func() bool {
		st := d.jobState(id)
		return st == rivertype.JobStateCompleted || st == rivertype.JobStateDiscarded
	})
	if st := d.jobState(id); st != rivertype.JobStateCompleted {
		t.Fatalf("job %s", st)
	}
	d.learn.SetFaults(learnsim.Faults{})
	d.checkLearn()
	d.runAgainWritesNothing()
}

// Bitrix24 rate-limiting hard (one request every 10 s, no burst, so even
// the slower requests of a -race build come too fast): the sync
// is slower but converges; the client waits out every 503.
func TestDrillBitrix24RateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("drill")
	}
	t.Parallel()
	d := newDrill(t, drillOptions{employees: 6000, b24Rate: 0.1, b24Burst: 1, learnLatency: time.Millisecond})
	d.serve(d.dbURL)
	id := d.syncNow()
	d.waitFor("sync under Bitrix24 limits", 4*time.Minute, func() bool { return d.jobState(id) == rivertype.JobStateCompleted })
	// serve's own bucket is set wide open here, so the portal's limit is
	// what paced the reads.
	if d.portal.Throttled() == 0 {
		t.Fatal("b24sim never refused a request: the drill did not test the limit")
	}
	d.checkLearn()
}

// PostgreSQL going away in the middle of a sync (every connection cut and
// refused for a while): nothing is lost and the next attempt converges.
func TestDrillDatabaseRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("drill")
	}
	t.Parallel()
	d := newDrill(t, drillOptions{employees: 2000, learnLatency: 2 * time.Millisecond})
	cfg, _ := pgx.ParseConfig(d.dbURL)
	proxy := startProxy(t, fmt.Sprintf("%s:%d", cfg.Host, cfg.Port))
	proxied := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", cfg.User, proxy.addr, cfg.Database)
	d.serve(proxied, "JOB_RESCUE_AFTER=5s")
	id := d.syncNow()
	d.waitFor("writes under way", 3*time.Minute, func() bool { return d.learn.Counts(d.learnURL).Writes > 300 })
	proxy.down()
	if st := d.jobState(id); st != rivertype.JobStateRunning {
		t.Fatalf("the sync was %s when the database went away, want running", st)
	}
	time.Sleep(3 * time.Second)
	proxy.up()
	d.waitFor("the job finished after the outage", 4*time.Minute, func() bool {
		st := d.jobState(id)
		if st == rivertype.JobStateRetryable || st == rivertype.JobStateAvailable || st == rivertype.JobStateScheduled {
			// Make the retry due now: the default backoff would wait.
			d.pool.Exec(context.Background(), `UPDATE river_job SET scheduled_at = now() WHERE id = $1 AND state IN ('retryable','scheduled')`, id)
		}
		return st == rivertype.JobStateCompleted
	})
	d.checkLearn()
	d.runAgainWritesNothing()
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// SIGTERM in the middle of a sync: the process stops within its bound, the
// job goes back to the queue without counting as a failure, and another
// process finishes it.
func TestDrillGracefulShutdownHandsSyncBack(t *testing.T) {
	if testing.Short() {
		t.Skip("drill")
	}
	t.Parallel()
	// 40 ms per Learn answer: the ~2,700 writes left after the first 300 take
	// seconds even at the write ceiling, so the sync is still running when the
	// 1 s shutdown timeout ends (at 3 ms it could finish inside it).
	d := newDrill(t, drillOptions{employees: 3000, learnLatency: 40 * time.Millisecond})
	a := d.serve(d.dbURL, "SHUTDOWN_TIMEOUT=1s")
	id := d.syncNow()
	d.waitFor("writes under way", 3*time.Minute, func() bool { return d.learn.Counts(d.learnURL).Writes > 300 })
	start := time.Now()
	if err := a.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGINT", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("shutdown took %s with SHUTDOWN_TIMEOUT=1s", took)
	}
	if st := d.jobState(id); st == rivertype.JobStateRunning || st == rivertype.JobStateCompleted {
		t.Fatalf("after shutdown the job is %s, want handed back to the queue", st)
	}
	d.serve(d.dbURL)
	d.waitFor("the job finished by process B", 3*time.Minute, func() bool { return d.jobState(id) == rivertype.JobStateCompleted })
	var failures int
	if err := d.pool.QueryRow(context.Background(), `SELECT sync_failures FROM portals WHERE id = $1`, d.portalID).Scan(&failures); err != nil {
		t.Fatal(err)
	}
	if failures != 0 {
		t.Errorf("a shutdown counted as %d sync failures", failures)
	}
	d.checkLearn()
}
