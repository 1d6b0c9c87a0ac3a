package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"b24learn/internal/i18n"
	"b24learn/internal/syncer"
)

func (e *settingsEnv) liveStatus(token string) (int, liveStatus) {
	e.t.Helper()
	r := e.do(http.MethodGet, "/app/status", token, nil)
	var v liveStatus
	if r.status == http.StatusOK {
		if err := json.Unmarshal([]byte(r.body), &v); err != nil {
			e.t.Fatalf("decode %q: %v", r.body, err)
		}
	}
	return r.status, v
}

func (e *settingsEnv) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.pool.Exec(context.Background(), q, args...); err != nil {
		e.t.Fatal(err)
	}
}

// The status panel's JSON follows a sync from queued through running (with
// counts so far) to done, shows a preview's planned changes, and never shows
// another portal's jobs.
func TestLiveStatus(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	ctx := context.Background()
	p := e.addPortal("live", "ru")
	other := e.addPortal("other", "en")
	_, tok := e.session(p, 1, true, "ru")
	_, otherTok := e.session(other, 1, true, "en")
	rs := syncer.NewStore(e.pool)

	if st, _ := e.liveStatus(""); st != http.StatusUnauthorized {
		t.Errorf("without a session: %d", st)
	}
	st, v := e.liveStatus(tok)
	if st != http.StatusOK || v.Job != nil || v.Busy || len(v.Runs) != 0 || v.LastRun != nil || v.Activation != "inactive" {
		t.Fatalf("fresh portal: %d %+v", st, v)
	}

	// Sync now: queued.
	if r, _ := e.save(tok, validForm()); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	e.exec(`UPDATE portals SET activation_state = 'active' WHERE id = $1`, p.ID)
	if r := e.do(http.MethodPost, "/app/sync", tok, url.Values{}); r.status != http.StatusAccepted {
		t.Fatalf("sync: %d %s", r.status, r.body)
	}
	_, v = e.liveStatus(tok)
	if v.Job == nil || v.Job.Kind != "sync" || v.Job.State != "available" || !v.Busy || v.Job.Text != msgJobQueuedSync.in(i18n.RU) ||
		v.Activation != "active" || v.ActivationText != "активна" {
		t.Fatalf("queued: %+v job %+v", v, v.Job)
	}
	if _, ov := e.liveStatus(otherTok); ov.Job != nil || ov.Busy {
		t.Fatalf("another portal sees the job: %+v", ov.Job)
	}

	// Running, with three objects done so far.
	e.exec(`UPDATE river_job SET state = 'running', attempted_at = now(), attempt = 1 WHERE kind = 'sync'`)
	run, err := rs.StartRun(ctx, p.ID, syncer.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	items := []syncer.RunItem{
		{Kind: syncer.KindDepartment, B24ID: 1, Action: syncer.ActionCreate, Status: syncer.ItemApplied},
		{Kind: syncer.KindUser, B24ID: 10, Action: syncer.ActionCreate, Status: syncer.ItemApplied},
		{Kind: syncer.KindUser, B24ID: 11, Action: syncer.ActionCreate, Status: syncer.ItemApplied},
		{Kind: syncer.KindUser, B24ID: 12, Action: syncer.ActionCreate, Status: syncer.ItemRefused, Reason: "plan limit"},
	}
	if err := rs.RecordItems(ctx, p.ID, run, items); err != nil {
		t.Fatal(err)
	}
	_, v = e.liveStatus(tok)
	if v.Job == nil || v.Job.State != "running" || v.Job.Text != msgJobRunningSync.in(i18n.RU) || !v.Busy || v.LastRun == nil ||
		v.LastRun.ID != run || !v.LastRun.Running || v.LastRun.StatusText != "выполняется" ||
		v.LastRun.Counts["department.create"] != 1 || v.LastRun.Counts["user.create"] != 2 || v.LastRun.Counts["user.refused"] != 1 {
		t.Fatalf("running: job %+v last %+v", v.Job, v.LastRun)
	}

	// Done: the job is gone, the run has its result.
	if err := rs.FinishRun(ctx, p.ID, run, syncer.RunPartial, map[string]int{"department.create": 1, "user.create": 2, "user.refused": 1}, "", nil); err != nil {
		t.Fatal(err)
	}
	e.exec(`UPDATE river_job SET state = 'completed', finalized_at = now() WHERE kind = 'sync'`)
	_, v = e.liveStatus(tok)
	if v.Job != nil || v.Busy || v.LastRun == nil || v.LastRun.Status != "partial" || v.LastRun.StatusText != "частично" ||
		v.LastRun.CountsText != "создано подразделений: 1, создано пользователей: 2, отклонено пользователей: 1" || v.Preview != nil || len(v.Runs) != 1 {
		t.Fatalf("done: job %+v last %+v preview %+v", v.Job, v.LastRun, v.Preview)
	}

	// A preview newer than the last sync lists what the next sync would do;
	// names are data, sent as they are for the page to put in as text.
	pv, err := rs.StartRun(ctx, p.ID, syncer.TriggerPreview)
	if err != nil {
		t.Fatal(err)
	}
	var planned []syncer.RunItem
	for i := range previewItems + 5 {
		planned = append(planned, syncer.RunItem{Kind: syncer.KindUser, B24ID: int64(100 + i), Action: syncer.ActionCreate,
			After: map[string]string{"first_name": "<b>Анна</b>", "last_name": "Ли"}, Status: syncer.ItemPlanned})
	}
	if err := rs.RecordItems(ctx, p.ID, pv, planned); err != nil {
		t.Fatal(err)
	}
	if err := rs.FinishRun(ctx, p.ID, pv, syncer.RunPreviewed, map[string]int{"user.create": len(planned)}, "", nil); err != nil {
		t.Fatal(err)
	}
	_, v = e.liveStatus(tok)
	if v.Preview == nil || v.Preview.ID != pv || v.Preview.Total != len(planned) || len(v.Preview.Items) != previewItems ||
		v.Preview.Items[0].Name != "<b>Анна</b> Ли" || v.Preview.Items[0].Action != "create" || v.LastRun == nil || v.LastRun.ID != run {
		t.Fatalf("preview: %+v last %+v", v.Preview, v.LastRun)
	}
	// Another portal's session never sees these runs.
	if _, ov := e.liveStatus(otherTok); len(ov.Runs) != 0 || ov.Preview != nil {
		t.Fatalf("another portal sees runs: %+v", ov.Runs)
	}
	// A retry waiting an hour is shown, but does not make the page poll fast.
	e.exec(`INSERT INTO river_job (args, kind, max_attempts, queue, state, scheduled_at, attempt, attempted_at, priority)
		VALUES (jsonb_build_object('portal_id', $1::bigint, 'trigger', 'manual'), 'sync', 5, 'default', 'retryable', now() + interval '1 hour', 1, now(), 1)`, p.ID)
	_, v = e.liveStatus(tok)
	if v.Job == nil || v.Job.State != "retryable" || v.Busy {
		t.Fatalf("retry in an hour: %+v busy %v", v.Job, v.Busy)
	}
}
