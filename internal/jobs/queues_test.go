package jobs

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"b24learn/internal/apptest"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/config"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/pgtest"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
)

// Every job kind the workers register names its queue: a new kind must be
// added here, with the queue it belongs in.
func TestJobKindsNameTheirQueue(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"dispatch":        queues.System,
		"maintenance":     queues.System,
		"uninstall_check": queues.PortalCalls,
		"uninstall_erase": queues.PortalCalls,
		"portal_check":    queues.PortalCalls,
		"lead_forward":    queues.System,
		"portal_alert":    queues.System,
		"alert_confirm":   queues.System,
		"sync":            queues.Sync,
		"sync_scheduled":  queues.Sync,
		"sync_person":     queues.Sync,
		"sync_preview":    queues.Preview,
	}
	r, err := register(Deps{Log: slog.New(slog.DiscardHandler), Config: &config.Config{}, Sync: personSyncer{}})
	if err != nil {
		t.Fatal(err)
	}
	configured := queues.Config()
	seen := map[string]bool{}
	for _, args := range r.kinds {
		kind, queue := args.Kind(), args.InsertOpts().Queue
		seen[kind] = true
		w, ok := want[kind]
		switch {
		case !ok:
			t.Errorf("job kind %q is not in this test: add it with its queue", kind)
		case queue == "":
			t.Errorf("job kind %q names no queue in its InsertOpts", kind)
		case queue != w:
			t.Errorf("job kind %q goes to queue %q, want %q", kind, queue, w)
		}
		if _, ok := configured[queue]; !ok && queue != "" {
			t.Errorf("job kind %q goes to queue %q, which no worker works", kind, queue)
		}
	}
	for kind := range want {
		if !seen[kind] {
			t.Errorf("job kind %q is not registered by NewWorkers", kind)
		}
	}
}

// personSyncer registers every sync worker, provision included.
type personSyncer struct{}

func (personSyncer) Run(context.Context, int64, syncer.Trigger) (*syncer.Report, error) {
	return nil, nil
}

func (personSyncer) RunApproved(context.Context, int64, int64) (*syncer.Report, error) {
	return nil, nil
}

func (personSyncer) RunPerson(context.Context, int64, int64) (*syncer.Report, error) {
	return nil, nil
}

// stuckPreviews is a Syncer whose previews hang until released, as against
// a Learn server that drips its pages, except those of the portal free;
// other runs succeed at once.
type stuckPreviews struct {
	started chan int64
	release chan struct{}
	free    int64
}

func (s *stuckPreviews) Run(ctx context.Context, portalID int64, trigger syncer.Trigger) (*syncer.Report, error) {
	if trigger != syncer.TriggerPreview || portalID == s.free {
		return &syncer.Report{Status: syncer.RunSucceeded}, nil
	}
	s.started <- portalID
	select {
	case <-s.release:
		return &syncer.Report{Status: syncer.RunSucceeded}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *stuckPreviews) RunApproved(context.Context, int64, int64) (*syncer.Report, error) {
	return &syncer.Report{Status: syncer.RunSucceeded}, nil
}

// Previews of portals not activated (anyone's installs) hanging on every
// worker of their queue, as many as all the queues' workers together, hold
// up neither the system jobs, nor the syncs nor the previews of activated
// portals.
func TestStuckPreviewsStarveNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	cfg := queues.Config()
	total := 0
	for _, q := range cfg {
		total += q.MaxWorkers
	}
	portals := make([]int64, total+1)
	for i := range portals {
		portals[i], _ = w.addPortal(1, "06:00", "")
	}
	stuck := &stuckPreviews{started: make(chan int64, total), release: make(chan struct{}), free: portals[total]}
	log := slog.New(slog.DiscardHandler)
	workers, err := NewWorkers(Deps{Log: log, Config: &config.Config{ReportRetention: 90 * 24 * time.Hour},
		Pool: w.pool, Sync: stuck})
	if err != nil {
		t.Fatal(err)
	}
	client := apptest.StartRiver(t, w.pool, &river.Config{Logger: log, Workers: workers, Queues: cfg, TestOnly: true})
	ctx := context.Background()
	t.Cleanup(func() { close(stuck.release) }) // runs before the Stop above

	for _, id := range portals[:total] {
		if _, err := client.Insert(ctx, PreviewArgs{PortalID: id, Trial: true}, nil); err != nil {
			t.Fatal(err)
		}
	}
	busy := cfg[queues.TrialPreview].MaxWorkers
	for range busy {
		select {
		case <-stuck.started:
		case <-time.After(15 * time.Second):
			t.Fatalf("fewer than %d previews started", busy)
		}
	}

	maint, err := client.Insert(ctx, MaintenanceArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sync, err := client.Insert(ctx, SyncArgs{PortalID: portals[total], Trigger: syncer.TriggerManual}, nil)
	if err != nil {
		t.Fatal(err)
	}
	preview, err := client.Insert(ctx, PreviewArgs{PortalID: portals[total]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{maint.Job.ID, sync.Job.ID, preview.Job.ID} {
		waitCompleted(t, client, id)
	}
}

// waitCompleted waits up to ten seconds for the job to complete.
func waitCompleted(t *testing.T, client *river.Client[pgx.Tx], id int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := client.JobGet(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == rivertype.JobStateCompleted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s job still %s while previews hang: starved", j.Kind, j.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Every sync and preview holds a pooled connection for its portal's lock
// for the whole run, so the pool the app opens must outnumber the workers
// with room left for River and the pages. pgx's own default on a 2-core
// machine was 4: four running syncs stopped everything else.
func TestPoolOutlastsTheWorkers(t *testing.T) {
	t.Parallel()
	workers := 0
	for _, q := range queues.Config() {
		workers += q.MaxWorkers
	}
	pool, err := store.Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if n := int(pool.Config().MaxConns); n < workers+8 {
		t.Fatalf("the pool holds %d connections for %d workers", n, workers)
	}
}
