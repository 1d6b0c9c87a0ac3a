package server

import (
	"encoding/csv"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"b24learn/internal/apperr"
	"b24learn/internal/i18n"
	"b24learn/internal/jobs"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
	"b24learn/templates"
)

// upcomingRuns is when the portal's next scheduled runs are: its daily UTC
// times, or in the demo the next multiple of the demo's interval, as the
// dispatcher sees them.
func (s *Server) upcomingRuns(st settings.Settings) []time.Time {
	return st.Schedule.Every(s.cfg.DemoSlotEvery).Next(s.now())
}

// configured: nothing the admin sets on the settings form stands in the
// way of a sync, so the panel offers Preview and shows the next runs.
func configured(p store.Portal, st settings.Settings) bool {
	_, why := settings.Syncable(p, st)
	return !why.InSettings()
}

// actionResult is the JSON answer of the status panel's buttons.
type actionResult struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// handleAction queues a preview, a manual sync or an approved sync. The
// portal's state is checked under a row lock in the same transaction as the
// job insert, so a portal suspended meanwhile gets no job.
func (s *Server) handleAction(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, _ := sessionFrom(r.Context())
		ctx := r.Context()
		var dup bool
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			// An uninstalled portal or refused tokens are left to the
			// worker, which cancels the job.
			p, why, err := lockSyncable(ctx, tx, sess.PortalID)
			if err != nil {
				return err
			}
			var args river.JobArgs
			switch kind {
			case "preview":
				// A preview only reads, so the admin may look before the
				// portal is activated (in the trial queue until then).
				args = jobs.PreviewArgs{PortalID: sess.PortalID, Trial: !p.Activated()}
			case "sync":
				if why == settings.NotActive {
					return &errRefused{apperr.ECONFLICT, msgNotActive}
				}
				args = jobs.SyncArgs{PortalID: sess.PortalID, Trigger: syncer.TriggerManual}
			case "approve":
				if why == settings.NotActive {
					return &errRefused{apperr.ECONFLICT, msgNotActive}
				}
				held, err := syncer.NewStore(s.pool).LatestHeld(ctx, sess.PortalID)
				if err != nil {
					return err
				}
				if held == nil {
					return &errRefused{apperr.ECONFLICT, msgNothingHeld}
				}
				// The approval is of the held run the page showed (run), and
				// of no run held after it: the job may start later, after a
				// scheduled run held more people.
				if run := r.PostFormValue("run"); run != "" && run != strconv.FormatInt(held.ID, 10) {
					return &errRefused{apperr.ECONFLICT, msgHeldChanged}
				}
				args = jobs.SyncArgs{PortalID: sess.PortalID, Trigger: syncer.TriggerApproved, HeldRun: held.ID}
			}
			res, err := s.river.InsertTx(ctx, tx, args, nil)
			if err != nil {
				return fmt.Errorf("queue %s: %w", kind, err)
			}
			dup = res.UniqueSkippedAsDuplicate
			return nil
		})
		if err != nil {
			s.answerRefused(w, r, err, sess.Lang)
			return
		}
		s.log.InfoContext(ctx, "action queued", "portal_id", sess.PortalID, "user_id", sess.UserID, "action", kind, "duplicate", dup)
		m := map[string]msg{"preview": msgPreviewQueued, "sync": msgSyncQueued, "approve": msgApproveQueued}[kind]
		if dup {
			m = msgAlreadyQueued
		}
		writeJSON(w, http.StatusAccepted, actionResult{OK: true, Message: m.in(sess.Lang)})
	}
}

// itemView is one run item as the pages (preview, report, people) and the
// CSV show it, its changes in lang.
func itemView(lang i18n.Lang, it syncer.RunItem) templates.PreviewItem {
	return templates.PreviewItem{Kind: string(it.Kind), B24ID: it.B24ID, LearnID: it.LearnID, Name: itemName(it),
		Action: string(it.Action), Status: it.Status, Reason: it.Reason, Changes: itemChanges(lang, it, deptNames{})}
}

// itemName picks a readable name from the before/after fields: a
// department's name, a person's name, else their e-mail or login.
func itemName(it syncer.RunItem) string {
	for _, m := range []map[string]string{it.After, it.Before} {
		for _, k := range []string{"name", "Name"} {
			if v := m[k]; v != "" {
				return v
			}
		}
		if f, l := m["first_name"], m["last_name"]; f != "" || l != "" {
			return strings.TrimSpace(f + " " + l)
		}
		for _, k := range []string{"email", "login"} {
			if v := m[k]; v != "" {
				return v
			}
		}
	}
	return ""
}

// itemChanges describes the fields that changed as "field: old → new",
// departments named by depts.
func itemChanges(lang i18n.Lang, it syncer.RunItem, depts deptNames) string {
	keys := map[string]bool{}
	for k := range it.Before {
		keys[k] = true
	}
	for k := range it.After {
		keys[k] = true
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		b, a := it.Before[k], it.After[k]
		if b == a {
			continue
		}
		if it.Kind == syncer.KindUser && k == "department" || it.Kind == syncer.KindDepartment && k == "parent" {
			b, a = depts.label(lang, b), depts.label(lang, a)
		} else {
			b, a = changeValue(lang, k, b), changeValue(lang, k, a)
		}
		parts = append(parts, changeText(lang, "chg.", k)+": "+b+" → "+a)
	}
	return strings.Join(parts, "; ")
}

// deptNames names the departments in a run item's changes: a user's
// "department" and a department's "parent" hold a Learn department id, or
// "b24:" and the Bitrix24 id of one the same run creates (syncer's
// specState and parentLabel). The admin knows neither form. The zero value
// knows no names.
type deptNames struct {
	learn map[string]int64 // Learn id → Bitrix24 id, by the portal's mapping
	names map[int64]string // Bitrix24 id → name
}

// label is the department's Bitrix24 name, else "department #id". A Learn
// id no mapping holds stays as it is: it is Learn's own, and nothing here
// names it better.
func (n deptNames) label(lang i18n.Lang, v string) string {
	id, ok := int64(0), false
	if s, cut := strings.CutPrefix(v, "b24:"); cut {
		x, err := strconv.ParseInt(s, 10, 64)
		id, ok = x, err == nil && x > 0
	} else if v != "" {
		id, ok = n.learn[v]
	}
	if !ok {
		return v
	}
	if s := n.names[id]; s != "" {
		return s
	}
	return i18n.T(lang, "chg.dept_id", id)
}

// changeText is a changed field's name in lang (the catalogue's
// prefix+field); a field the catalogue lacks (a custom Learn profile
// field) keeps its own name.
func changeText(lang i18n.Lang, prefix, field string) string {
	if i18n.Has(prefix + field) {
		return i18n.T(lang, prefix+field)
	}
	return field
}

// changeValue says a Learn user's status (1, 3, 5) and the owner of a
// contested user in lang; other values (names, ids) are shown as they are.
func changeValue(lang i18n.Lang, field, v string) string {
	switch {
	case field == "status" && v != "":
		return changeText(lang, "chg.status_", v)
	case field == "owner" && v == syncer.OwnerThisPortal:
		return i18n.T(lang, "chg.owner_this_portal")
	}
	return v
}

// reportPage bounds the rows one answer of the report page shows: a
// preview of a large portal has hundreds of thousands. The CSV has them all.
const reportPage = 500

// csvChunk is how many report rows the CSV reads per query. Each chunk is
// read, the connection given back, then written: a slow download holds no
// database connection while the client reads.
const csvChunk = 1000

// csvWriteWindow is how long the CSV may take to write one chunk: the
// server's write timeout would otherwise cut off a large report.
const csvWriteWindow = time.Minute

// loadRun reads the run the request names; a refusal is an *apperr.Error
// with "Report not found." in the session's language.
func (s *Server) loadRun(r *http.Request) (syncer.RunRecord, error) {
	sess, _ := sessionFrom(r.Context())
	notFound := apperr.New(apperr.ENOTFOUND, msgRunNotFound.in(sess.Lang))
	id, err := strconv.ParseInt(chi.URLParam(r, "runID"), 10, 64)
	if err != nil || id <= 0 {
		return syncer.RunRecord{}, notFound
	}
	// The portal comes from the session: another portal's run id is "not found".
	run, err := syncer.NewStore(s.pool).Run(r.Context(), sess.PortalID, id)
	if errors.Is(err, syncer.ErrRunNotFound) {
		return syncer.RunRecord{}, notFound
	}
	return run, err
}

// loadReport reads the report page the request names: the run and at most
// reportPage of its rows after the row ?after= names (from the first
// without it).
func (s *Server) loadReport(r *http.Request) (templates.RunView, []templates.PreviewItem, templates.ReportPage, error) {
	var page templates.ReportPage
	run, err := s.loadRun(r)
	if err != nil {
		return templates.RunView{}, nil, page, err
	}
	sess, _ := sessionFrom(r.Context())
	if a := r.URL.Query().Get("after"); a != "" {
		if page.After, err = strconv.ParseInt(a, 10, 64); err != nil || page.After < 0 {
			return templates.RunView{}, nil, page, apperr.New(apperr.ENOTFOUND, msgRunNotFound.in(sess.Lang))
		}
	}
	// One row beyond the page says whether there is a next one.
	items, err := syncer.NewStore(s.pool).RunItemsAfter(r.Context(), sess.PortalID, run.ID, page.After, reportPage+1)
	if err != nil {
		return templates.RunView{}, nil, page, err
	}
	if len(items) > reportPage {
		items = items[:reportPage]
		page.Next = items[len(items)-1].ID
	}
	page.Total = run.Items
	rows := make([]templates.PreviewItem, 0, len(items))
	for _, it := range items {
		rows = append(rows, itemView(sess.Lang, it))
	}
	return runView(run), rows, page, nil
}

// handleRunReport answers one page of a run's report as HTML in the
// session's language; the page puts it in its report box.
func (s *Server) handleRunReport(w http.ResponseWriter, r *http.Request) {
	run, rows, page, err := s.loadReport(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	sess, _ := sessionFrom(r.Context())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := templates.RunReport(sess.Lang, run, rows, page).Render(r.Context(), w); err != nil {
		s.log.ErrorContext(r.Context(), "render run report", "error", err)
	}
}

// handleRunCSV answers one run's whole report as CSV: kinds, actions and
// statuses as codes for spreadsheets and scripts, the reason in the
// session's language. It is written a chunk of rows at a time, never held
// whole.
func (s *Server) handleRunCSV(w http.ResponseWriter, r *http.Request) {
	run, err := s.loadRun(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	sess, _ := sessionFrom(r.Context())
	rs := syncer.NewStore(s.pool)
	// The first chunk is read before the answer starts, so a failing read
	// still answers an error.
	items, err := rs.RunItemsAfter(r.Context(), sess.PortalID, run.ID, 0, csvChunk)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="run-%d.csv"`, run.ID))
	w.Header().Set("Cache-Control", "no-store")
	// A BOM makes Excel read the file as UTF-8 (Cyrillic names).
	_, _ = w.Write([]byte("\uFEFF"))
	rc := http.NewResponseController(w)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"kind", "bitrix24_id", "learn_id", "name", "action", "status", "reason", "changes"})
	for len(items) > 0 {
		_ = rc.SetWriteDeadline(time.Now().Add(csvWriteWindow))
		for _, it := range items {
			writeCSVRow(cw, sess.Lang, itemView(sess.Lang, it))
		}
		if cw.Flush(); cw.Error() != nil {
			return // the client left
		}
		if len(items) < csvChunk {
			return
		}
		if items, err = rs.RunItemsAfter(r.Context(), sess.PortalID, run.ID, items[len(items)-1].ID, csvChunk); err != nil {
			// The answer has started: the cut-off file is all the client
			// gets, and the log says why.
			s.log.ErrorContext(r.Context(), "read run items for csv", "portal_id", sess.PortalID, "run_id", run.ID, "error", err)
			return
		}
	}
}

// writeCSVRow writes one report row, its outside text defused (csvSafe).
func writeCSVRow(cw *csv.Writer, lang i18n.Lang, it templates.PreviewItem) {
	_ = cw.Write([]string{it.Kind, strconv.FormatInt(it.B24ID, 10), csvSafe(it.LearnID), csvSafe(it.Name), it.Action,
		it.Status, csvSafe(templates.ReasonsText(lang, it.Reason)), csvSafe(it.Changes)})
}

// csvSafe defuses spreadsheet formulas in attacker-controlled text (a
// department named "=HYPERLINK(…)"): the cell, and each piece of it that a
// spreadsheet may read as a cell of its own, gets a leading apostrophe when
// it starts like a formula, after any quotes (which the spreadsheet may
// take for the cell's own) and spaces (which it trims). Excel splits a CSV at the locale's list
// separator, ";" in Russian and most European locales, not at the file's
// comma, and then a quote inside the row is text, so a line break ends the
// row: "Ivanov;=1+1;x" is three cells there, the middle one a formula.
func csvSafe(s string) string {
	var b strings.Builder
	done := 0 // s[:done] is in b
	for i := 0; i < len(s); i++ {
		if i > 0 && strings.IndexByte(";\t\r\n", s[i-1]) < 0 {
			continue // not the start of a piece
		}
		j := i
		for j < len(s) && (s[j] == '"' || s[j] == ' ') {
			j++
		}
		if j < len(s) && strings.IndexByte("=+-@\t\r", s[j]) >= 0 {
			b.WriteString(s[done:i])
			b.WriteByte('\'')
			done = i
		}
	}
	if b.Len() == 0 {
		return s // nothing to defuse: no copy
	}
	b.WriteString(s[done:])
	return b.String()
}
