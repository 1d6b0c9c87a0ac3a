package jobs

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/syncer"
)

// firstEmployee is an active employee with an e-mail in the selected
// department (the portal's first), not its admin.
func firstEmployee(t *testing.T, bp *b24sim.Portal) b24sim.User {
	t.Helper()
	root := bp.Departments()[0].ID
	for _, u := range bp.Users() {
		if u.Active && !u.Extranet && !u.Admin && u.Email != "" && len(u.Departments) > 0 && u.Departments[0] != root {
			return u
		}
	}
	t.Fatal("no employee to use")
	return b24sim.User{}
}

func learnUserByEmail(t *testing.T, w *world, email string) learnsim.User {
	t.Helper()
	st, err := w.learn.Snapshot(w.learnURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range st.Users {
		if u.Fields["email"] == email {
			return u
		}
	}
	t.Fatalf("no Learn user %s", email)
	return learnsim.User{}
}

// sync_person after a firing: the job completes, records its run (on
// demand) as its output, and that run deactivates exactly the fired user.
// The person's history then has three rows across three runs, newest
// first: created by the full sync, updated by the next one, deactivated on
// demand.
// provisionBound is how soon an on-demand sync must have its effect in Learn.
const provisionBound = 10 * time.Second

func TestProvisionJobDeactivatesFiredEmployee(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	portal, bp := w.addPortal(60, "06:00", "")
	p := w.startProcess()
	ctx := context.Background()
	u := firstEmployee(t, bp)

	if _, err := p.client.Insert(ctx, SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual}, nil); err != nil {
		t.Fatal(err)
	}
	w.waitJobsDone("sync")
	if err := bp.UpdateUser(u.ID, func(x *b24sim.User) { x.WorkPosition = "Chief tester" }); err != nil {
		t.Fatal(err)
	}
	if _, err := p.client.Insert(ctx, SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual}, nil); err != nil {
		t.Fatal(err)
	}
	w.waitJobsDone("sync")
	before := learnUserByEmail(t, w, u.Email)
	if before.Status != 1 {
		t.Fatalf("Learn user %+v not active after the full syncs", before)
	}

	if err := bp.FireUser(u.ID); err != nil {
		t.Fatal(err)
	}
	w.learn.ResetCounts()
	bp.ResetCounters()
	start := time.Now()
	res, err := p.client.Insert(ctx, ProvisionArgs{PortalID: portal, UserID: u.ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The on-demand bound: the Learn user is deactivated within 10 s of the
	// request, polled in Learn's own state rather than inferred from the job.
	for learnUserByEmail(t, w, u.Email).Status == 1 {
		if time.Since(start) > provisionBound {
			t.Fatalf("the Learn user is still active %s after the on-demand request", provisionBound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("fired employee deactivated in Learn %s after the request", time.Since(start).Round(time.Millisecond))
	w.waitJobsDone("sync_person")
	job, err := p.client.JobGet(ctx, res.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if job.State != rivertype.JobStateCompleted {
		t.Fatalf("sync_person job %s: %v", job.State, job.Errors)
	}
	var out ProvisionOutput
	if err := json.Unmarshal(job.Output(), &out); err != nil || out.RunID == 0 {
		t.Fatalf("job output %s: %v", job.Output(), err)
	}
	run, err := syncer.NewStore(w.pool).Run(ctx, portal, out.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Trigger != syncer.TriggerOnDemand || run.Status != syncer.RunSucceeded {
		t.Fatalf("run %+v, want a succeeded on-demand run", run)
	}
	if after := learnUserByEmail(t, w, u.Email); after.Status == 1 || after.ID != before.ID {
		t.Fatalf("Learn user after the on-demand sync: %+v, want %s deactivated", after, before.ID)
	}
	if n := bp.TotalRequests(); n > 3 {
		t.Errorf("%d Bitrix24 requests, want at most 3", n)
	}
	if c := w.learn.Counts(w.learnURL); c.Writes != 1 {
		t.Errorf("%d Learn writes, want 1 (the deactivation): %+v", c.Writes, c)
	}

	hist, err := syncer.NewStore(w.pool).PersonHistory(ctx, portal, u.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hist {
		got = append(got, string(h.Trigger)+":"+string(h.Action))
	}
	want := []string{"on_demand:deactivate", "manual:update", "manual:create"}
	if len(got) != len(want) {
		t.Fatalf("history %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("history %q, want %q", got, want)
		}
	}
	if hist[1].Before == nil || hist[1].After == nil {
		t.Errorf("the update row has no before → after: %+v", hist[1].RunItem)
	}
	if !hist[0].StartedAt.After(hist[1].StartedAt) || !hist[1].StartedAt.After(hist[2].StartedAt) {
		t.Errorf("history not newest first: %v, %v, %v", hist[0].StartedAt, hist[1].StartedAt, hist[2].StartedAt)
	}
}

// A scheduled sync queued while RunPerson holds the portal's lock snoozes
// and runs after it: the two runs never overlap.
func TestScheduledSyncWaitsForPersonRun(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 150*time.Millisecond) // slow Learn: the person's run lasts a while
	portal, bp := w.addPortal(40, "06:00", "")
	p := w.startProcess()
	ctx := context.Background()
	u := firstEmployee(t, bp)

	sy := syncerFor(w, w.pool)
	done := make(chan error, 1)
	go func() {
		_, err := sy.RunPerson(ctx, portal, u.ID)
		done <- err
	}()
	w.waitRunning(portal, "the person's run")
	res, err := p.client.Insert(ctx, ScheduledSyncArgs{PortalID: portal, Slot: "2026-11-25T06:00Z"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("RunPerson: %v", err)
	}
	w.waitJobsDone("sync_scheduled")

	runs := w.runs(portal)
	if len(runs) != 2 || runs[0].trigger != "on_demand" || runs[1].trigger != "scheduled" {
		t.Fatalf("runs = %+v, want the on-demand run then the scheduled one", runs)
	}
	assertNoOverlap(t, runs)
	job, err := p.client.JobGet(ctx, res.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Snoozes int `json:"snoozes"`
	}
	if err := json.Unmarshal(job.Metadata, &meta); err != nil || meta.Snoozes == 0 {
		t.Fatalf("scheduled job was never held back: metadata %s", job.Metadata)
	}
}
