package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/jobs"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
	"b24learn/templates"
)

// GET /app/status is what the status panel shows, as JSON: the page asks
// once when it opens and then every 2 s while a sync or preview is queued or
// running, so progress and the result appear without a reload. The portal
// comes from the session.

// liveStatus is the answer of GET /app/status. Display texts are in the
// session's language; the page puts them in with textContent.
type liveStatus struct {
	Activation     string `json:"activation"`
	ActivationText string `json:"activation_text"`
	ActivationNote string `json:"activation_note"` // what happens next
	Reconnect      bool   `json:"reconnect"`
	// Configured: the settings allow a sync (settings.Syncable names no
	// reason fixed on the form), so Preview (and Sync now, once active) can
	// run and runs are scheduled.
	Configured bool       `json:"configured"`
	NextRuns   []liveTime `json:"next_runs"`
	// Attention is the last sync error while syncs keep failing.
	Attention string   `json:"attention"`
	Job       *liveJob `json:"job"` // the portal's unfinished sync or preview job
	// Busy: a job is queued or running now (or due within a minute); the
	// page asks again in 2 s.
	Busy    bool         `json:"busy"`
	LastRun *liveRun     `json:"last_run"` // the newest sync that is not a preview
	Runs    []liveRun    `json:"runs"`     // newest first, as the panel lists them
	Preview *livePreview `json:"preview"`  // the newest preview, when no sync ran after it
	Held    *liveHeld    `json:"held"`     // a run waiting for approval
	// Reports: the session may open run reports (admins only); other users
	// get no preview rows and no error texts either.
	Reports bool `json:"reports"`
	// LicenceNote and ConflictNote say, in words, how many employees the last
	// run left waiting for a Learn licence or shared with another portal.
	LicenceNote  string `json:"licence_note"`
	ConflictNote string `json:"conflict_note"`
}

type liveTime struct {
	At  time.Time `json:"at"`
	UTC string    `json:"utc"`
}

type liveJob struct {
	Kind        string    `json:"kind"`  // sync, sync_scheduled, sync_preview
	State       string    `json:"state"` // River's: available, running, scheduled, retryable, pending
	ScheduledAt time.Time `json:"scheduled_at"`
	Text        string    `json:"text"`
	attempted   bool      // run before: a scheduled job was snoozed
}

type liveRun struct {
	ID          int64          `json:"id"`
	Trigger     string         `json:"trigger"`
	TriggerText string         `json:"trigger_text"`
	Status      string         `json:"status"`
	StatusText  string         `json:"status_text"`
	StartedAt   time.Time      `json:"started_at"`
	Started     string         `json:"started"` // "2006-01-02 15:04 UTC"
	Duration    string         `json:"duration"`
	Counts      map[string]int `json:"counts"` // so far, while running
	CountsText  string         `json:"counts_text"`
	Error       string         `json:"error"`
	Running     bool           `json:"running"`
}

type livePreview struct {
	liveRun
	Items []reportItem `json:"items"` // the first previewItems rows
	Total int          `json:"total"` // rows in the whole report
}

type liveHeld struct {
	RunID int64 `json:"run_id"`
	Users int   `json:"users"`
}

// previewItems bounds the rows of a preview the panel shows; the whole
// report is one click away.
const previewItems = 50

var (
	msgJobQueuedSync    = msg{"Sync is queued…", "Синхронизация в очереди…"}
	msgJobRunningSync   = msg{"Sync is running…", "Синхронизация выполняется…"}
	msgJobQueuedPreview = msg{"Preview is queued…", "Предпросмотр в очереди…"}
	msgJobRunPreview    = msg{"Preview is running…", "Предпросмотр выполняется…"}
	msgJobRetry         = msg{"The last attempt failed; next attempt at", "Последняя попытка не удалась; следующая в"}
	msgJobWaiting       = msg{"Waiting for another run of this portal to finish…", "Ожидает завершения другого запуска этого портала…"}
)

// syncJobKinds are the job kinds the panel reports on.
var syncJobKinds = []string{jobs.SyncArgs{}.Kind(), jobs.ScheduledSyncArgs{}.Kind(), jobs.PreviewArgs{}.Kind()}

// portalSyncJob returns the portal's unfinished sync or preview job, a
// running one first, or nil. The containment test uses River's GIN index on
// args; unfinished jobs are few.
func portalSyncJob(ctx context.Context, db store.DBTX, portalID int64) (*liveJob, error) {
	var j liveJob
	err := db.QueryRow(ctx, `SELECT kind, state::text, scheduled_at, attempted_at IS NOT NULL FROM river_job
		WHERE args @> jsonb_build_object('portal_id', $1::bigint) AND kind = ANY($2)
		  AND state IN ('available', 'pending', 'scheduled', 'retryable', 'running')
		ORDER BY state = 'running' DESC, scheduled_at, id LIMIT 1`, portalID, syncJobKinds).
		Scan(&j.Kind, &j.State, &j.ScheduledAt, &j.attempted)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read portal jobs: %w", err)
	}
	return &j, nil
}

// jobText says what the job is doing, in lang.
func jobText(j *liveJob, lang string) string {
	preview := j.Kind == jobs.PreviewArgs{}.Kind()
	switch {
	case j.State == "running" && preview:
		return msgJobRunPreview.in(lang)
	case j.State == "running":
		return msgJobRunningSync.in(lang)
	case j.State == "retryable":
		return msgJobRetry.in(lang) + " " + j.ScheduledAt.UTC().Format("15:04:05") + " UTC"
	case j.State == "scheduled" && j.attempted:
		// Snoozed: another sync of the portal holds its lock.
		return msgJobWaiting.in(lang)
	case preview:
		return msgJobQueuedPreview.in(lang)
	default:
		return msgJobQueuedSync.in(lang)
	}
}

// progressCounts counts a running run's report rows the way the finished
// run's counts are keyed: kind.action for applied (or planned) steps,
// kind.status for the others.
func progressCounts(ctx context.Context, db store.DBTX, portalID, runID int64) (map[string]int, error) {
	rows, err := db.Query(ctx, `SELECT kind, action, status, count(*) FROM sync_run_items
		WHERE portal_id = $1 AND run_id = $2 GROUP BY kind, action, status`, portalID, runID)
	if err != nil {
		return nil, fmt.Errorf("count run items: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var kind, action, status string
		var n int
		if err := rows.Scan(&kind, &action, &status, &n); err != nil {
			return nil, fmt.Errorf("count run items: %w", err)
		}
		switch status {
		case syncer.ItemApplied, syncer.ItemPlanned:
			out[kind+"."+action] += n
		default:
			out[kind+"."+status] += n
		}
	}
	return out, rows.Err()
}

func toLiveRun(r syncer.RunRecord, lang string) liveRun {
	rv := runView(r)
	l := templates.LabelRun(lang, rv)
	return liveRun{ID: r.ID, Trigger: r.Trigger, TriggerText: l.Trigger, Status: r.Status, StatusText: l.Status,
		StartedAt: r.StartedAt, Started: l.Started, Duration: l.Duration, Counts: r.Counts, CountsText: l.Counts,
		Error: r.Error, Running: r.Status == syncer.RunRunning}
}

// loadLiveStatus gathers the answer of GET /app/status.
func (s *Server) loadLiveStatus(ctx context.Context, p store.Portal, lang string) (liveStatus, error) {
	v := liveStatus{Activation: p.ActivationState, ActivationText: templates.Text(lang, "act_"+p.ActivationState),
		ActivationNote: templates.ActivationNote(lang, p.ActivationState), Reconnect: p.NeedsReconnect,
		NextRuns: []liveTime{}, Runs: []liveRun{}}
	st, err := settings.Load(ctx, s.pool, nil, p.ID)
	if err != nil {
		return v, err
	}
	v.Configured = configured(p, st)
	if v.Configured {
		for _, at := range s.upcomingRuns(st) {
			v.NextRuns = append(v.NextRuns, liveTime{At: at, UTC: templates.FmtUTC(at)})
		}
	}
	var attention bool
	var lastErr string
	if err := s.pool.QueryRow(ctx, `SELECT needs_attention, last_sync_error FROM portals WHERE id = $1`, p.ID).
		Scan(&attention, &lastErr); err != nil {
		return v, fmt.Errorf("read portal health: %w", err)
	}
	if attention {
		v.Attention = lastErr
	}
	job, err := portalSyncJob(ctx, s.pool, p.ID)
	if err != nil {
		return v, err
	}
	rs := syncer.NewStore(s.pool)
	runs, err := rs.Runs(ctx, p.ID, statusRuns)
	if err != nil {
		return v, err
	}
	for i := range runs {
		if runs[i].Status == syncer.RunRunning {
			if runs[i].Counts, err = progressCounts(ctx, s.pool, p.ID, runs[i].ID); err != nil {
				return v, err
			}
		}
		v.Runs = append(v.Runs, toLiveRun(runs[i], lang))
	}
	for i, r := range v.Runs {
		if r.Trigger != syncer.TriggerPreview {
			v.LastRun = &v.Runs[i]
			break
		}
		if v.Preview == nil {
			// Newer than any sync: it still says what the next sync would do.
			v.Preview = &livePreview{liveRun: r, Items: []reportItem{}}
		}
	}
	if v.Preview != nil {
		if v.Preview.Items, v.Preview.Total, err = firstItems(ctx, s.pool, p.ID, v.Preview.ID, previewItems); err != nil {
			return v, err
		}
	}
	if v.LastRun != nil {
		v.LicenceNote = templates.LicenceNote(lang, v.LastRun.Counts["user."+syncer.ItemWaiting])
		v.ConflictNote = templates.ConflictNote(lang, v.LastRun.Counts["user."+syncer.ItemConflict])
	}
	held, err := rs.LatestHeld(ctx, p.ID)
	if err != nil {
		return v, err
	}
	if held != nil {
		v.Held = &liveHeld{RunID: held.ID, Users: len(held.Held)}
	}
	now := s.now()
	if job != nil {
		job.Text = jobText(job, lang)
		v.Job = job
		switch job.State {
		case "running", "available", "pending":
			v.Busy = true
		default:
			v.Busy = job.ScheduledAt.Before(now.Add(time.Minute))
		}
	}
	if len(v.Runs) > 0 && v.Runs[0].Running {
		v.Busy = true
	}
	return v, nil
}

// firstItems reads the first n report rows of a run and the number of all.
func firstItems(ctx context.Context, db store.DBTX, portalID, runID int64, n int) ([]reportItem, int, error) {
	var total int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM sync_run_items WHERE portal_id = $1 AND run_id = $2`, portalID, runID).
		Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count run items: %w", err)
	}
	rows, err := db.Query(ctx, `SELECT kind, b24_id, learn_id, action, before, after, reason, status
		FROM sync_run_items WHERE portal_id = $1 AND run_id = $2 ORDER BY id LIMIT $3`, portalID, runID, n)
	if err != nil {
		return nil, 0, fmt.Errorf("read run items: %w", err)
	}
	defer rows.Close()
	out := []reportItem{}
	for rows.Next() {
		var it syncer.RunItem
		var kind, action string
		var before, after []byte
		if err := rows.Scan(&kind, &it.B24ID, &it.LearnID, &action, &before, &after, &it.Reason, &it.Status); err != nil {
			return nil, 0, fmt.Errorf("read run items: %w", err)
		}
		it.Kind, it.Action = syncer.Kind(kind), syncer.Action(action)
		// Unreadable before/after leave the name empty rather than fail the panel.
		_ = json.Unmarshal(before, &it.Before)
		_ = json.Unmarshal(after, &it.After)
		out = append(out, reportItem{Kind: kind, B24ID: it.B24ID, LearnID: it.LearnID, Name: itemName(it),
			Action: action, Status: it.Status, Reason: it.Reason, Changes: itemChanges(it)})
	}
	return out, total, rows.Err()
}

// handleLiveStatus answers GET /app/status.
func (s *Server) handleLiveStatus(w http.ResponseWriter, r *http.Request) {
	sess, _ := sessionFrom(r.Context())
	p, ok := sessionPortal(r.Context())
	if !ok {
		writeJSON(w, http.StatusUnauthorized, actionResult{Message: msgSessionMissing.en})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	lang := templates.PageLang(sess.Lang)
	v, err := s.loadLiveStatus(ctx, p, lang)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if sess.Admin {
		v.Reports = true
	} else {
		v = redactLiveStatus(v, lang)
	}
	writeJSON(w, http.StatusOK, v)
}

// redactLiveStatus takes out of a non-admin's answer what may carry the
// Learn address or employees' names and e-mails: error texts and the
// preview's rows (the preview is an admin's tool).
func redactLiveStatus(v liveStatus, lang string) liveStatus {
	if v.Attention != "" {
		v.Attention = msgAdminsOnlyDetail.in(lang)
	}
	for i := range v.Runs {
		v.Runs[i].Error = ""
	}
	if v.LastRun != nil {
		lr := *v.LastRun
		lr.Error = ""
		v.LastRun = &lr
	}
	v.Preview = nil
	v.Reports = false
	return v
}
