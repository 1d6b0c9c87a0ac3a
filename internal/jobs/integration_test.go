package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/connect"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
	"b24learn/internal/syncer"
)

const (
	learnEmail    = "admin@acme.test"
	learnPassword = "learn-password"
)

// world is one database, the two simulators, and any number of "processes":
// River clients with their own pool, clients and syncer, working real jobs.
type world struct {
	t        *testing.T
	pool     *pgxpool.Pool
	keyring  *secret.Keyring
	b24      *b24sim.Server
	learn    *learnsim.Sim
	learnURL string
	now      time.Time
	mu       sync.Mutex
	// smtp, when set, is the processes' SMTP_URL.
	smtp *url.URL
	// retry and learnRetry, when set, are the processes' River retry
	// policy and their Learn clients' retry policy.
	retry      river.ClientRetryPolicy
	learnRetry learn.RetryPolicy
}

type process struct {
	client *river.Client[pgx.Tx]
	disp   *Dispatcher
}

func newWorld(t *testing.T, learnLatency time.Duration) *world {
	t.Helper()
	kr := apptest.Keyring(t)
	w := &world{t: t, pool: pgtest.NewPool(t), keyring: kr}
	w.b24 = b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Rate: -1})
	t.Cleanup(w.b24.Close)
	w.learn = learnsim.New(learnsim.Options{Latency: learnLatency, Seed: 1})
	srv := httptest.NewServer(w.learn.Handler())
	t.Cleanup(srv.Close)
	w.learnURL = srv.URL
	return w
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) setClock(t time.Time) {
	w.mu.Lock()
	w.now = t
	w.mu.Unlock()
}

// addPortal installs a generated org's portal, configured and active, with
// its own Learn account.
func (w *world) addPortal(employees int, first, second string) (int64, *b24sim.Portal) {
	w.t.Helper()
	bp := w.b24.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(int64(employees), employees, 1+employees/10)})
	p := apptest.InstallPortal(w.t, w.pool, w.keyring, bp)
	// Each portal feeds its own Learn account on the one simulator.
	acct := w.learnURL
	if p.ID > 1 {
		acct = fmt.Sprintf("http://learn%d.test", p.ID)
	}
	if _, err := w.learn.AddAccount(learnsim.AccountOptions{URL: acct, Email: learnEmail, Password: learnPassword}); err != nil {
		w.t.Fatal(err)
	}
	apptest.Configure(w.t, w.pool, w.keyring, p.ID, apptest.Settings{LearnURL: acct, LearnEmail: learnEmail,
		LearnPassword: learnPassword, FirstRun: first, SecondRun: second, SendLoginEmail: true,
		Selected: []int64{bp.Departments()[0].ID}}, true)
	return p.ID, bp
}

// startProcess starts a River client working jobs, as one `serve` would.
func (w *world) startProcess() *process {
	w.t.Helper()
	pool := pgtest.Reopen(w.t, w.pool)
	log := slog.New(slog.DiscardHandler)
	clients := connect.New(connect.Options{Pool: pool, Keyring: w.keyring, Log: log, AllowPrivateHosts: true, B24AllowPrivateHosts: true,
		OAuth: &bitrix24.OAuth{URL: w.b24.URL, ClientID: w.b24.ClientID(), ClientSecret: w.b24.ClientSecret()}})
	sy := syncer.New(syncer.Config{
		Pool:     pool,
		Settings: syncer.DBSettings{Pool: pool, Keyring: w.keyring},
		NewLearn: func(ctx context.Context, portalID int64, s syncer.Settings) (syncer.Learn, error) {
			// Simulated accounts with made-up URLs are all served by the one simulator.
			return learn.New(learn.Credentials{AccountURL: s.LearnURL, Email: s.LearnEmail, Password: s.LearnPassword},
				learn.Options{BaseURL: w.learnURL, AllowHTTP: true, Retry: w.learnRetry})
		},
		NewBitrix24: func(ctx context.Context, portalID int64) (syncer.Bitrix24, error) {
			return clients.Bitrix24(ctx, portalID)
		},
		Logger: log,
	})
	cfg := &config.Config{CatchUpWindow: 3 * time.Hour, ReportRetention: 90 * 24 * time.Hour, SMTPURL: w.smtp}
	workers, err := NewWorkers(Deps{Log: log, Config: cfg, Pool: pool, Sync: sy, BusySnooze: 200 * time.Millisecond})
	if err != nil {
		w.t.Fatal(err)
	}
	client := apptest.StartRiver(w.t, pool, &river.Config{Logger: log, Workers: workers, Queues: queues.Config(), RetryPolicy: w.retry})
	return &process{client: client, disp: &Dispatcher{Log: log, Pool: pool, CatchUpWindow: 3 * time.Hour, Now: w.clock}}
}

// runScheduledSync queues the portal's scheduled sync for the slot and
// returns its job once no scheduled sync is left unfinished.
func (w *world) runScheduledSync(p *process, portal int64, slot string) *rivertype.JobRow {
	w.t.Helper()
	ctx := context.Background()
	res, err := p.client.Insert(ctx, ScheduledSyncArgs{PortalID: portal, Slot: slot}, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	w.waitJobsDone("sync_scheduled")
	job, err := p.client.JobGet(ctx, res.Job.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return job
}

// waitJobsDone waits until no job of the kinds is unfinished.
func (w *world) waitJobsDone(kinds ...string) {
	w.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var open int
		if err := w.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = ANY($1)
			AND state NOT IN ('completed', 'cancelled', 'discarded')`, kinds).Scan(&open); err != nil {
			w.t.Fatal(err)
		}
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%d jobs still open after 2 minutes", open)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type runRow struct {
	trigger, status string
	start, end      time.Time
}

// waitRunning waits up to a minute until the portal's one run, what, is
// under way.
func (w *world) waitRunning(portalID int64, what string) {
	w.t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		runs := w.runs(portalID)
		if len(runs) == 1 && runs[0].status == syncer.RunRunning {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s did not start: %+v", what, runs)
		}
	}
}

func (w *world) runs(portalID int64) []runRow {
	w.t.Helper()
	rows, err := w.pool.Query(context.Background(), `SELECT trigger, status, started_at, coalesce(finished_at, now() + interval '1 day')
		FROM sync_runs WHERE portal_id = $1 ORDER BY started_at`, portalID)
	if err != nil {
		w.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (runRow, error) {
		var x runRow
		return x, r.Scan(&x.trigger, &x.status, &x.start, &x.end)
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// assertNoOverlap checks that no two runs of the portal were running at once.
func assertNoOverlap(t *testing.T, runs []runRow) {
	t.Helper()
	for i := 1; i < len(runs); i++ {
		if runs[i].start.Before(runs[i-1].end) {
			t.Fatalf("runs overlap: %+v and %+v", runs[i-1], runs[i])
		}
	}
}

// Two processes share one database for a simulated day: every slot of every
// portal runs exactly once, and no portal has two syncs running at once.
func TestTwoProcessesSimulatedDay(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	a, _ := w.addPortal(30, "06:00", "18:00")
	b, _ := w.addPortal(40, "06:00", "12:30")
	procs := []*process{w.startProcess(), w.startProcess()}

	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for m := 0; m < 24*60; m++ {
		w.setClock(day.Add(time.Duration(m) * time.Minute))
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Go(func() {
				if _, err := p.disp.Tick(context.Background(), p.client); err != nil {
					t.Errorf("tick: %v", err)
				}
			})
		}
		wg.Wait()
	}
	w.waitJobsDone("sync_scheduled")

	for portal, want := range map[int64][]string{a: {"2026-11-25T06:00Z", "2026-11-25T18:00Z"}, b: {"2026-11-25T06:00Z", "2026-11-25T12:30Z"}} {
		var slots []string
		rows, _ := w.pool.Query(context.Background(), `SELECT args->>'slot' FROM river_job WHERE kind = 'sync_scheduled'
			AND (args->>'portal_id')::bigint = $1 AND state = 'completed' ORDER BY args->>'slot'`, portal)
		slots, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		if fmt.Sprint(slots) != fmt.Sprint(want) {
			t.Errorf("portal %d completed slots %v, want %v", portal, slots, want)
		}
		runs := w.runs(portal)
		if len(runs) != 2 {
			t.Errorf("portal %d has %d runs, want 2", portal, len(runs))
		}
		for _, r := range runs {
			// partial: users Learn refuses (no e-mail in the generated org) are reported.
			if r.status != syncer.RunSucceeded && r.status != syncer.RunPartial {
				t.Errorf("portal %d run %+v", portal, r)
			}
		}
		assertNoOverlap(t, runs)
	}
}

// "Sync now" pressed while a scheduled sync runs waits for it instead of
// running beside it.
func TestSyncNowWhileScheduledRuns(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 15*time.Millisecond) // slow Learn: the first sync takes a while
	portal, _ := w.addPortal(150, "06:00", "")
	p := w.startProcess()
	ctx := context.Background()
	if _, err := p.client.Insert(ctx, ScheduledSyncArgs{PortalID: portal, Slot: "2026-11-25T06:00Z"}, nil); err != nil {
		t.Fatal(err)
	}
	w.waitRunning(portal, "scheduled run")
	res, err := p.client.Insert(ctx, SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A second press while the first waits is the same job.
	again, err := p.client.Insert(ctx, SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.UniqueSkippedAsDuplicate || again.Job.ID != res.Job.ID {
		t.Fatalf("second Sync now made another job: %+v", again.Job)
	}
	w.waitJobsDone("sync_scheduled", "sync")

	runs := w.runs(portal)
	if len(runs) != 2 || runs[0].trigger != "scheduled" || runs[1].trigger != "manual" {
		t.Fatalf("runs = %+v, want the scheduled run then the manual one", runs)
	}
	assertNoOverlap(t, runs)
	job, err := p.client.JobGet(ctx, res.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if job.State != rivertype.JobStateCompleted {
		t.Fatalf("manual job %s", job.State)
	}
	var meta struct {
		Snoozes int `json:"snoozes"`
	}
	if err := json.Unmarshal(job.Metadata, &meta); err != nil || meta.Snoozes == 0 {
		t.Fatalf("manual job was never held back: metadata %s", job.Metadata)
	}
}

// A job queued for a portal that was suspended meanwhile is cancelled
// without a run.
func TestSyncOfSuspendedPortalIsCancelled(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	portal, _ := w.addPortal(10, "06:00", "")
	if _, err := w.pool.Exec(context.Background(), `UPDATE portals SET activation_state = 'suspended' WHERE id = $1`, portal); err != nil {
		t.Fatal(err)
	}
	p := w.startProcess()
	res, err := p.client.Insert(context.Background(), SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.waitJobsDone("sync")
	job, _ := p.client.JobGet(context.Background(), res.Job.ID)
	if job.State != rivertype.JobStateCancelled {
		t.Fatalf("job state %s, want cancelled", job.State)
	}
	if runs := w.runs(portal); len(runs) != 0 {
		t.Fatalf("a suspended portal ran: %+v", runs)
	}
}

// healthWorld is a portal whose Learn can be switched to answer 503, and
// one sync attempt at a time through the workers' run, which keeps the
// portal's health; state reads it.
type healthWorld struct {
	*world
	portal int64
	down   *atomic.Bool
	sw     *syncWorkers
}

func newHealthWorld(t *testing.T) *healthWorld {
	w := newWorld(t, 0)
	down, _ := w.learnOutage()
	portal, _ := w.addPortal(10, "06:00", "")
	retry := learn.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
	sy := syncerWithLearn(w, w.pool, func(s syncer.Settings) (syncer.Learn, error) {
		return learn.New(learn.Credentials{AccountURL: s.LearnURL, Email: s.LearnEmail, Password: s.LearnPassword},
			learn.Options{BaseURL: w.learnURL, AllowHTTP: true, Retry: retry})
	})
	return &healthWorld{world: w, portal: portal, down: down,
		sw: &syncWorkers{deps: Deps{Log: slog.New(slog.DiscardHandler), Pool: w.pool, Sync: sy}}}
}

func (h *healthWorld) sync() error {
	return h.sw.run(context.Background(), h.portal, func(ctx context.Context) (*syncer.Report, error) {
		return h.sw.sync(ctx, h.portal, syncer.TriggerManual, 0)
	}, false)
}

func (h *healthWorld) state() (failures int, attention bool, last string) {
	h.t.Helper()
	if err := h.pool.QueryRow(context.Background(), `SELECT sync_failures, needs_attention, last_sync_error FROM portals WHERE id = $1`,
		h.portal).Scan(&failures, &attention, &last); err != nil {
		h.t.Fatal(err)
	}
	return failures, attention, last
}

// Failures that may pass by themselves (Learn answering 503) mark the
// portal "needs attention" with the last error at the third in a row; the
// next success clears it.
func TestFailuresMarkNeedsAttention(t *testing.T) {
	t.Parallel()
	h := newHealthWorld(t)
	h.down.Store(true)
	for i := 1; i <= 3; i++ {
		if err := h.sync(); err == nil {
			t.Fatal("sync with Learn down succeeded")
		}
		n, attention, last := h.state()
		if n != i || attention != (i >= 3) || last == "" {
			t.Fatalf("after failure %d: failures=%d attention=%v last=%q", i, n, attention, last)
		}
	}
	h.down.Store(false)
	if err := h.sync(); err != nil {
		t.Fatalf("sync with Learn back: %v", err)
	}
	if n, attention, last := h.state(); n != 0 || attention || last != "" {
		t.Fatalf("after success: failures=%d attention=%v last=%q", n, attention, last)
	}
}

// A run Learn refused the stored password for marks the portal "needs
// attention" at once: the password will not fix itself, and the job is not
// retried. A 503 after it, below the count of three, keeps the mark; the
// first run after the admin saves the right password clears it.
func TestRefusedPasswordMarksNeedsAttentionAtOnce(t *testing.T) {
	t.Parallel()
	h := newHealthWorld(t)
	setLearnPassword(t, h.world, h.portal, "wrong password")
	if err := h.sync(); err == nil {
		t.Fatal("sync with a wrong Learn password succeeded")
	}
	if n, attention, last := h.state(); n != 1 || !attention {
		t.Fatalf("after the refused password: failures=%d attention=%v last=%q, want marked at once", n, attention, last)
	} else if key, _ := syncer.RunErrorKey(last); key != "check."+learn.CheckBadCredentials {
		t.Fatalf("last error %q (%s), want the refused password", last, key)
	}
	setLearnPassword(t, h.world, h.portal, learnPassword)
	h.down.Store(true)
	if err := h.sync(); err == nil {
		t.Fatal("sync with Learn down succeeded")
	}
	if n, attention, _ := h.state(); n != 2 || !attention {
		t.Fatalf("after a 503: failures=%d attention=%v, want the mark kept", n, attention)
	}
	h.down.Store(false)
	if err := h.sync(); err != nil {
		t.Fatalf("sync after fixing the password: %v", err)
	}
	if n, attention, last := h.state(); n != 0 || attention || last != "" {
		t.Fatalf("after success: failures=%d attention=%v last=%q", n, attention, last)
	}
}

func syncerFor(w *world, pool *pgxpool.Pool) *syncer.Syncer {
	return syncerWithLearn(w, pool, func(s syncer.Settings) (syncer.Learn, error) {
		return learn.New(learn.Credentials{AccountURL: s.LearnURL, Email: s.LearnEmail, Password: s.LearnPassword},
			learn.Options{BaseURL: w.learnURL, AllowHTTP: true})
	})
}

// syncerWithLearn is syncerFor with the runs' Learn clients built by newLearn.
func syncerWithLearn(w *world, pool *pgxpool.Pool, newLearn func(syncer.Settings) (syncer.Learn, error)) *syncer.Syncer {
	clients := connect.New(connect.Options{Pool: pool, Keyring: w.keyring, Log: slog.New(slog.DiscardHandler), AllowPrivateHosts: true, B24AllowPrivateHosts: true,
		OAuth: &bitrix24.OAuth{URL: w.b24.URL, ClientID: w.b24.ClientID(), ClientSecret: w.b24.ClientSecret()}})
	return syncer.New(syncer.Config{
		Pool:     pool,
		Settings: syncer.DBSettings{Pool: pool, Keyring: w.keyring},
		NewLearn: func(ctx context.Context, portalID int64, s syncer.Settings) (syncer.Learn, error) {
			return newLearn(s)
		},
		NewBitrix24: func(ctx context.Context, portalID int64) (syncer.Bitrix24, error) {
			return clients.Bitrix24(ctx, portalID)
		},
	})
}

// A preview runs before activation (it only reads) and writes nothing.
func TestPreviewBeforeActivation(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	portal, _ := w.addPortal(20, "06:00", "")
	ctx := context.Background()
	if _, err := w.pool.Exec(ctx, `UPDATE portals SET activation_state = 'requested' WHERE id = $1`, portal); err != nil {
		t.Fatal(err)
	}
	p := w.startProcess()
	if _, err := p.client.Insert(ctx, PreviewArgs{PortalID: portal}, nil); err != nil {
		t.Fatal(err)
	}
	w.waitJobsDone("sync_preview")
	runs := w.runs(portal)
	if len(runs) != 1 || runs[0].trigger != "preview" || runs[0].status != syncer.RunPreviewed {
		t.Fatalf("runs = %+v, want one finished preview", runs)
	}
	if writes := w.learn.Counts(w.learnURL).Writes; writes != 0 {
		t.Fatalf("a preview wrote %d times to Learn", writes)
	}
}
