package jobs

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/alert"
	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/connect"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/pgtest"
	"b24learn/internal/uninstall"
)

// hangingBitrix24 is a self-hosted portal's REST address whose server takes
// every request and answers none until the test ends, as an owner who
// wants the app's workers held can make it.
type hangingBitrix24 struct {
	srv     *httptest.Server
	started chan string
	release chan struct{}
}

func startHangingBitrix24(t *testing.T) *hangingBitrix24 {
	h := &hangingBitrix24{started: make(chan string, 64), release: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.started <- r.URL.Path
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(h.srv.Close) // after River's stop, registered later
	return h
}

// Portals whose Bitrix24 hangs, each with an uninstall event to check and
// tokens due for the keep-alive, as many as the system and portal-call
// queues have workers together, hold up neither an alert e-mail nor the
// hourly maintenance: the checks wait in a queue of their own, and the
// maintenance queues its calls there, one job per portal.
func TestHangingPortalsStarveNoSystemJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := apptest.Keyring(t)
	sim := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Rate: -1})
	t.Cleanup(sim.Close)
	hang := startHangingBitrix24(t)
	log := slog.New(slog.DiscardHandler)
	clients := connect.New(connect.Options{Pool: pool, Keyring: kr, Log: log, B24AllowPrivateHosts: true,
		OAuth: &bitrix24.OAuth{URL: sim.URL, ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret()}})

	cfg := queues.Config()
	n := cfg[queues.System].MaxWorkers + cfg[queues.PortalCalls].MaxWorkers
	var events []int64
	for range n {
		bp := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 3, 1)})
		id := apptest.InstallPortal(t, pool, kr, bp).ID
		// The owner points the portal's address at a server of theirs; its
		// tokens were issued long ago, so the keep-alive calls it too.
		if _, err := pool.Exec(ctx, `UPDATE portals SET client_endpoint = $2, token_expires_at = now() - interval '30 days'
			WHERE id = $1`, id, hang.srv.URL+"/rest/"); err != nil {
			t.Fatal(err)
		}
		ev, err := uninstall.Record(ctx, pool, id, true, "203.0.113.7", uninstall.StatePending, "bitrix24 did not answer")
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	served := apptest.InstallPortal(t, pool, kr, sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 3, 1)})).ID

	workers, err := NewWorkers(Deps{Log: log, Config: &config.Config{ReportRetention: 90 * day}, Pool: pool, Clients: clients})
	if err != nil {
		t.Fatal(err)
	}
	client := apptest.StartRiver(t, pool, &river.Config{Logger: log, Workers: workers, Queues: cfg, TestOnly: true})
	t.Cleanup(func() { close(hang.release) }) // before River's stop, so no check waits for its deadline

	for _, ev := range events {
		if _, err := client.Insert(ctx, UninstallCheckArgs{EventID: ev}, nil); err != nil {
			t.Fatal(err)
		}
	}
	busy := cfg[queues.PortalCalls].MaxWorkers
	for range busy {
		select {
		case <-hang.started:
		case <-time.After(15 * time.Second):
			t.Fatalf("fewer than %d uninstall checks reached the hanging portals", busy)
		}
	}

	start := time.Now()
	mail, err := client.Insert(ctx, alert.Args{PortalID: served, State: alert.EraseScheduled, Active: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	maint, err := client.Insert(ctx, MaintenanceArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Well below the calls' deadlines (uninstall.AskTimeout,
	// keepAliveCallTimeout).
	const bound = 5 * time.Second
	for _, id := range []int64{mail.Job.ID, maint.Job.ID} {
		for {
			j, err := client.JobGet(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if j.State == rivertype.JobStateCompleted {
				t.Logf("%s job completed in %s while %d portals hang", j.Kind, time.Since(start).Round(time.Millisecond), n)
				break
			}
			if time.Since(start) > bound {
				t.Fatalf("%s job still %s after %s while %d portals hang: a system job waits on a portal's server", j.Kind, j.State, bound, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var checks int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'portal_check' AND queue = $1`,
		queues.PortalCalls).Scan(&checks); err != nil {
		t.Fatal(err)
	}
	if checks != n {
		t.Fatalf("the maintenance queued %d portal checks, want one for each of the %d portals", checks, n)
	}
}

// Jobs of the kinds now in queues.PortalCalls that an earlier version queued
// in the system queue still run there: River stores a job's queue in its
// row, and a worker registered for a kind works it in any queue.
func TestMovedKindsStillRunInSystemQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := apptest.Keyring(t)
	sim := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Rate: -1})
	t.Cleanup(sim.Close)
	log := slog.New(slog.DiscardHandler)
	clients := connect.New(connect.Options{Pool: pool, Keyring: kr, Log: log, B24AllowPrivateHosts: true,
		OAuth: &bitrix24.OAuth{URL: sim.URL, ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret()}})
	bp := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 3, 1)})
	id := apptest.InstallPortal(t, pool, kr, bp).ID
	bp.FinishInstall(ctx)
	ev, err := uninstall.Record(ctx, pool, id, false, "203.0.113.7", uninstall.StatePending, "bitrix24 did not answer")
	if err != nil {
		t.Fatal(err)
	}
	// Queued as the previous version queued it.
	old, err := apptest.Inserter(t, pool).Insert(ctx, UninstallCheckArgs{EventID: ev}, &river.InsertOpts{Queue: queues.System})
	if err != nil {
		t.Fatal(err)
	}
	if old.Job.Queue != queues.System {
		t.Fatalf("job queued in %q", old.Job.Queue)
	}
	workers, err := NewWorkers(Deps{Log: log, Config: &config.Config{ReportRetention: 90 * day}, Pool: pool, Clients: clients})
	if err != nil {
		t.Fatal(err)
	}
	client := apptest.StartRiver(t, pool, &river.Config{Logger: log, Workers: workers, TestOnly: true})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		j, err := client.JobGet(ctx, old.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == rivertype.JobStateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the check queued in the system queue is still %s", j.State)
		}
	}
	var state string
	if err := pool.QueryRow(ctx, `SELECT state FROM uninstall_events WHERE id = $1`, ev).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != uninstall.StateRefuted {
		t.Fatalf("event %s, want %s: Bitrix24 says the app is installed", state, uninstall.StateRefuted)
	}
}
