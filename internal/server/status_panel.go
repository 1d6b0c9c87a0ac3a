package server

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"time"

	"b24learn/internal/i18n"
	"b24learn/internal/jobs"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
	"b24learn/templates"
)

// The status panel is built here once, as templates.StatusView, and
// rendered by templates.StatusPanel twice: inside the settings page, and
// alone as the answer of GET /app/status, which the page polls while a run
// is queued or running and puts in the panel's place.

// panelProofTimeout bounds the admin proof of one poll of the panel; the
// page polls every 2 s while a run is busy.
const panelProofTimeout = 4 * time.Second

// panelReadTimeout bounds the panel's database reads.
const panelReadTimeout = 10 * time.Second

// statusRuns is how many runs the status panel lists.
const statusRuns = 10

// statusPanel builds the panel's view for a session of the portal. On an
// error the view still has what needs no reading (activation, next runs).
func (s *Server) statusPanel(ctx context.Context, p store.Portal, st settings.Settings, lang i18n.Lang, admin bool) (templates.StatusView, error) {
	v := templates.StatusView{
		Lang: lang, Admin: admin,
		Activation: p.ActivationState,
		Configured: configured(p, st),
		DemoEvery:  s.cfg.DemoSlotEvery,
		Reconnect:  p.NeedsReconnect,
	}
	if v.Configured {
		v.NextRuns = s.upcomingRuns(st)
	}
	full := v
	if p.NeedsAttention {
		full.Attention = p.LastSyncError
	}
	if err := s.readPanel(ctx, p.ID, lang, &full); err != nil {
		return panelFor(v, lang, admin), err
	}
	return panelFor(full, lang, admin), nil
}

// pagePanel is the panel as the settings page shows it: a failure to read
// the runs is said in the panel rather than failing the page.
func (s *Server) pagePanel(ctx context.Context, p store.Portal, st settings.Settings, lang i18n.Lang, admin bool) templates.StatusView {
	v, err := s.statusPanel(ctx, p, st, lang, admin)
	if err != nil {
		s.log.ErrorContext(ctx, "load sync status", "portal_id", p.ID, "error", err)
		v.Error = msgStatusError.in(lang)
	}
	return v
}

// readPanel reads the portal's unfinished job, its latest runs (a running
// one with its counts so far), the preview and the held run.
func (s *Server) readPanel(ctx context.Context, portalID int64, lang i18n.Lang, v *templates.StatusView) error {
	job, err := portalSyncJob(ctx, jobs.NewQueue(s.pool, s.river), portalID)
	if err != nil {
		return err
	}
	rs := syncer.NewStore(s.pool)
	runs, err := rs.Runs(ctx, portalID, statusRuns)
	if err != nil {
		return err
	}
	for _, r := range runs {
		var pv *templates.ProgressView
		// A running run's counts so far are on its row, kept as it
		// records its items.
		if r.Status == syncer.RunRunning {
			pg, err := rs.Progress(ctx, portalID, r.ID)
			if err != nil {
				return err
			}
			pv = progressView(pg)
		}
		rv := runView(r)
		rv.Progress = pv
		v.Runs = append(v.Runs, rv)
	}
	// The last run is the newest real sync; previews are listed but are not
	// runs. A preview newer than it says what the next sync would do.
	for _, r := range v.Runs {
		if r.Trigger != string(syncer.TriggerPreview) {
			lr := r
			v.LastRun = &lr
			break
		}
		if v.Preview == nil {
			v.Preview = &templates.PreviewView{Run: r}
		}
	}
	// Only admins see a preview's rows (panelFor drops the preview for the
	// others), so only their panel reads them.
	if v.Preview != nil && v.Admin {
		items, total, err := rs.FirstRunItems(ctx, portalID, v.Preview.Run.ID, previewItems)
		if err != nil {
			return err
		}
		v.Preview.Total = total
		for _, it := range items {
			v.Preview.Items = append(v.Preview.Items, itemView(lang, it))
		}
	}
	held, err := rs.LatestHeld(ctx, portalID)
	if err != nil {
		return err
	}
	if held != nil {
		hv := runView(*held)
		v.Held = &hv
	}
	if job != nil {
		v.Job = jobText(job, lang)
		v.Busy = job.busy(s.now())
	}
	if len(v.Runs) > 0 && v.Runs[0].Status == syncer.RunRunning {
		v.Busy = true
	}
	return nil
}

func runView(r syncer.RunRecord) templates.RunView {
	v := templates.RunView{ID: r.ID, Trigger: string(r.Trigger), Status: r.Status, StartedAt: r.StartedAt,
		Error: r.Error, HeldUsers: len(r.Held)}
	if r.FinishedAt != nil {
		v.Duration = r.FinishedAt.Sub(r.StartedAt)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Counts)) {
		if r.Counts[k] != 0 {
			v.Counts = append(v.Counts, templates.Count{Key: k, N: r.Counts[k]})
		}
	}
	return v
}

// progressView is a running run's progress as the panel shows it; nil
// before the run marked its first phase.
func progressView(p syncer.RunProgress) *templates.ProgressView {
	if p.Phase == "" {
		return nil
	}
	v := &templates.ProgressView{Phase: string(p.Phase), Planned: p.Planned, Done: min(p.Done, p.Planned)}
	v.Left, v.LeftKnown = p.Left()
	return v
}

// panelFor gives admins the run reports. Other users get no texts that may
// carry the Learn address or employees' names and e-mails: no sync errors
// and no preview rows (the preview is an admin's tool).
func panelFor(v templates.StatusView, lang i18n.Lang, admin bool) templates.StatusView {
	if admin {
		v.Reports = true
		return v
	}
	if v.Attention != "" {
		v.Attention = msgAdminsOnlyDetail.in(lang)
	}
	redact := func(r *templates.RunView) {
		if r != nil {
			r.Error = ""
		}
	}
	redact(v.LastRun)
	redact(v.Held)
	v.Runs = slices.Clone(v.Runs)
	for i := range v.Runs {
		redact(&v.Runs[i])
	}
	v.Preview = nil
	v.Reports = false
	return v
}

// handleStatusPanel answers GET /app/status: the status panel alone, as
// HTML, for the page to put in the panel's place.
func (s *Server) handleStatusPanel(w http.ResponseWriter, r *http.Request) {
	sess, _ := sessionFrom(r.Context())
	p, _ := sessionPortal(r.Context())
	lang := sess.Lang
	// An admin's panel shows the preview's rows and the runs' errors (names,
	// e-mails): proven with Bitrix24 as every admin request is
	// (admin_proof.go). Only a definite answer (not an admin, or the tokens
	// refused) gives the tab the read-only panel; when Bitrix24 cannot be
	// asked the poll answers 503 and the page keeps the panel it has.
	// The proof has its own short limit and the database reads theirs: a
	// slow Bitrix24 (its quota spent by the sync the panel shows) cannot eat
	// the time of the reads.
	admin := sess.Admin
	if admin {
		pctx, cancel := context.WithTimeout(r.Context(), panelProofTimeout)
		err := s.proveAdmin(pctx, p, sess, r)
		cancel()
		if err != nil && !definiteNo(err) {
			s.error(w, r, err)
			return
		}
		admin = err == nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), panelReadTimeout)
	defer cancel()
	st, err := settings.Load(ctx, s.pool, nil, p.ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	// Unlike the page, a failure answers 500: the page keeps the panel it
	// has and asks again later (settings.js).
	v, err := s.statusPanel(ctx, p, st, lang, admin)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := templates.StatusPanel(v).Render(r.Context(), w); err != nil {
		s.log.ErrorContext(r.Context(), "render status panel", "error", err)
	}
}
