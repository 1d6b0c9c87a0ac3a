package syncer

import (
	"context"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
)

// TestPreviewKeepsOnlyTheLatest: a portal's new preview deletes its older
// previews and their rows (each holds a row per planned step), while its
// sync runs and the held run that approval needs stay; approving still
// applies what was held.
func TestPreviewKeepsOnlyTheLatest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(41, 120, 8))
	otherID, _ := e.addPortal(b24sim.GenerateOrg(42, 30, 3))
	e.run(portalID, TriggerScheduled)
	fired := fireSynced(t, p, expected(p))
	if rep := e.run(portalID, TriggerScheduled); rep.Status != RunHeld {
		t.Fatalf("safeguard run %s, want held", rep.Status)
	}
	otherPreview := e.run(otherID, TriggerPreview)
	first := e.run(portalID, TriggerPreview)
	if n := e.itemCount(first.RunID); n == 0 {
		t.Fatal("the first preview recorded no rows")
	}
	second := e.run(portalID, TriggerPreview)

	if _, err := e.syncer.store.Run(ctx, portalID, first.RunID); err != ErrRunNotFound {
		t.Errorf("the older preview is still there: %v", err)
	}
	if n := e.itemCount(first.RunID); n != 0 {
		t.Errorf("the older preview kept %d rows", n)
	}
	latest, err := e.syncer.store.Run(ctx, portalID, second.RunID)
	if err != nil || latest.Status != RunPreviewed {
		t.Fatalf("latest preview %+v %v", latest, err)
	}
	if n := e.itemCount(second.RunID); n == 0 || latest.Items != n {
		t.Errorf("latest preview has %d rows, its run says %d", n, latest.Items)
	}
	// Another portal's preview is its own.
	if _, err := e.syncer.store.Run(ctx, otherID, otherPreview.RunID); err != nil {
		t.Errorf("another portal's preview went: %v", err)
	}
	runs, err := e.syncer.store.Runs(ctx, portalID, 10)
	if err != nil {
		t.Fatal(err)
	}
	var syncs, previews int
	for _, r := range runs {
		if r.Trigger == TriggerPreview {
			previews++
		} else {
			syncs++
		}
	}
	if syncs != 2 || previews != 1 {
		t.Errorf("runs kept: %d syncs, %d previews; want 2 and 1", syncs, previews)
	}
	held, err := e.syncer.store.LatestHeld(ctx, portalID)
	if err != nil || held == nil || len(held.Held) != len(fired) {
		t.Fatalf("held run after the previews: %+v %v", held, err)
	}
	rep := e.run(portalID, TriggerApproved)
	if rep.Counts["user.deactivate"] != len(fired) || rep.Status == RunHeld {
		t.Fatalf("approved run: %s %v", rep.Status, rep.Counts)
	}
}

// TestRunCountsKeptAsItemsAreRecorded: a run's row carries its item total
// and, while it runs, its counts so far, so the status panel reads them
// without counting rows; the finished run's counts are the run's own.
func TestRunCountsKeptAsItemsAreRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSimEnv(t, simOpts{})
	s := e.syncer.store
	portalID := mustPortal(t, e.pool, "counts")
	run, err := s.StartRun(ctx, portalID, TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	recs := []StepRecord{
		{Item: RunItem{Kind: KindUser, B24ID: 1, Action: ActionCreate, Status: ItemApplied}},
		{Item: RunItem{Kind: KindUser, B24ID: 2, Action: ActionCreate, Status: ItemApplied}},
		{Item: RunItem{Kind: KindDepartment, B24ID: 3, Action: ActionUpdate, Status: ItemApplied}},
	}
	if err := s.RecordSteps(ctx, portalID, run, recs); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordSteps(ctx, portalID, run, recs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordItems(ctx, portalID, run, []RunItem{{Kind: KindUser, B24ID: 4, Action: ActionRefuse, Status: ItemRefused}}); err != nil {
		t.Fatal(err)
	}
	rr, err := s.Run(ctx, portalID, run)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"user.create": 3, "department.update": 1, "user.refused": 1}
	if rr.Items != 5 || len(rr.Counts) != len(want) {
		t.Fatalf("running run: items %d counts %v, want 5 and %v", rr.Items, rr.Counts, want)
	}
	for k, n := range want {
		if rr.Counts[k] != n {
			t.Errorf("counts[%s] = %d, want %d", k, rr.Counts[k], n)
		}
	}
	if err := s.FinishRun(ctx, portalID, run, RunPartial, map[string]int{"user.create": 2}, "", nil); err != nil {
		t.Fatal(err)
	}
	if rr, _ := s.Run(ctx, portalID, run); rr.Items != 5 || len(rr.Counts) != 1 || rr.Counts["user.create"] != 2 {
		t.Errorf("finished run: items %d counts %v", rr.Items, rr.Counts)
	}
}

func (e *simEnv) itemCount(runID int64) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM sync_run_items WHERE run_id = $1`, runID).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}
