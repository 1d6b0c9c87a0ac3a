package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/apperr"
	"b24learn/internal/bitrix24"
	"b24learn/internal/i18n"
	"b24learn/internal/jobs"
	"b24learn/internal/settings"
	"b24learn/internal/syncer"
	"b24learn/templates"
)

// personHistoryMax bounds the history rows one person page shows.
const personHistoryMax = 200

// provisionMaxQueued caps a portal's unfinished "Sync this employee" jobs:
// they are unique per person only, and the workers are shared by every
// portal.
const provisionMaxQueued = 5

// userIDParam reads a positive Bitrix24 user id.
func userIDParam(v string) (int64, bool) {
	id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return id, err == nil && id > 0
}

// handleProvision queues "Sync this employee" (POST /app/provision,
// user_id): one person's steps, under the portal's sync lock.
func (s *Server) handleProvision(w http.ResponseWriter, r *http.Request) {
	sess, _ := sessionFrom(r.Context())
	id, ok := userIDParam(r.FormValue("user_id"))
	if !ok {
		s.errorJSON(w, r, apperr.New(apperr.EINVALID, msgBadUserID.in(sess.Lang)))
		return
	}
	ctx := r.Context()
	var jobID int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// One provision of the portal at a time counts its queued jobs, so
		// two at once cannot both see room for one more. NO KEY UPDATE: it
		// excludes this very lock but not the rows that reference the portal.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM portals WHERE id = $1 FOR NO KEY UPDATE`, sess.PortalID); err != nil {
			return fmt.Errorf("lock portal: %w", err)
		}
		_, why, err := lockSyncable(ctx, tx, sess.PortalID)
		if err != nil {
			return err
		}
		if why == settings.NotActive {
			return &errRefused{apperr.ECONFLICT, msgNotActive}
		}
		kind := jobs.ProvisionArgs{}.Kind()
		q := jobs.NewQueue(s.pool, s.river)
		n, err := q.CountPortalJobs(ctx, tx, sess.PortalID, kind)
		if err != nil {
			return err
		}
		if n >= provisionMaxQueued {
			return &errRefused{apperr.ECONFLICT, msgProvisionBusy}
		}
		n, err = q.CountPortalJobsSince(ctx, tx, sess.PortalID, kind, provisionBudget.Window)
		if err != nil {
			return err
		}
		if n >= provisionBudget.Max {
			return &errRefused{apperr.ETOOMANY, msgProvisionSpent}
		}
		res, err := s.river.InsertTx(ctx, tx, jobs.ProvisionArgs{PortalID: sess.PortalID, UserID: id}, nil)
		if err != nil {
			return fmt.Errorf("queue provision: %w", err)
		}
		jobID = res.Job.ID
		return nil
	})
	if err != nil {
		s.answerRefused(w, r, err, sess.Lang)
		return
	}
	s.log.InfoContext(ctx, "provision queued", "portal_id", sess.PortalID, "user_id", sess.UserID, "b24_id", id, "job_id", jobID)
	writeJSON(w, http.StatusAccepted, map[string]any{"ok": true, "job_id": jobID, "message": msgProvisionQueue.in(sess.Lang)})
}

// handlePeople searches the portal's Bitrix24 users by name, last name or
// e-mail (GET /app/people?q=) and says for each whether they are in scope:
// the list as HTML the page puts in place of its results. Bitrix24 is read
// live (docs/bitrix24-api.md, "One user and a people search"), so the answer is never older
// than the portal: no copy of the org is stored.
func (s *Server) handlePeople(w http.ResponseWriter, r *http.Request) {
	sess, _ := sessionFrom(r.Context())
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	switch n := len([]rune(q)); {
	case n < 2:
		s.errorJSON(w, r, apperr.New(apperr.EINVALID, msgSearchShort.in(sess.Lang)))
		return
	case n > maxSearch:
		s.errorJSON(w, r, apperr.New(apperr.EINVALID, i18n.T(sess.Lang, "msg.search_long", maxSearch)))
		return
	}
	b24, err := s.clients.Bitrix24(ctx, sess.PortalID)
	if err != nil {
		s.error(w, r, fmt.Errorf("bitrix24 client: %w", err))
		return
	}
	v, err := s.peopleResults(ctx, b24, sess, q)
	if err != nil {
		s.peopleError(w, r, sess.Lang, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := templates.PeopleResultsList(v).Render(ctx, w); err != nil {
		s.log.ErrorContext(ctx, "render people results", "error", err)
	}
}

// peopleError answers a failed read of the people section. An org whose
// answers pass the client's bounds (a self-hosted portal's owner writes
// them) is the portal's data, not the app's failure: the admin is told so
// in their language, as a run that reads it says.
func (s *Server) peopleError(w http.ResponseWriter, r *http.Request, lang i18n.Lang, err error) {
	if errors.Is(err, bitrix24.ErrOrgTooLarge) {
		s.log.WarnContext(r.Context(), "bitrix24 org too large", "error", err, "request_id", requestID(r))
		s.errorJSON(w, r, apperr.New(apperr.EUPSTREAM, msgOrgTooLarge.in(lang)))
		return
	}
	s.error(w, r, err)
}

// maxSearch bounds the search text (runes).
const maxSearch = 100

// peopleResults finds the users and gives each their verdict by the
// portal's settings, mappings and last report rows.
func (s *Server) peopleResults(ctx context.Context, b24 *bitrix24.Client, sess Session, q string) (templates.PeopleResults, error) {
	v := templates.PeopleResults{Lang: sess.Lang}
	us, ds, more, err := searchPeople(ctx, b24, q)
	if err != nil {
		return v, err
	}
	v.More = more
	if len(us) == 0 {
		return v, nil
	}
	st, err := settings.Load(ctx, s.pool, nil, sess.PortalID)
	if err != nil {
		return v, err
	}
	ids := make([]int64, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	ss := syncer.NewStore(s.pool)
	ms, err := ss.UserMappings(ctx, sess.PortalID, ids)
	if err != nil {
		return v, err
	}
	lasts, err := ss.LastPersonItems(ctx, sess.PortalID, ids)
	if err != nil {
		return v, err
	}
	verdicts := syncer.Verdicts(ds, us, syncer.Options{Selection: st.Departments}, ms, lasts)
	for _, u := range us {
		vd := verdicts[u.ID]
		v.People = append(v.People, templates.PersonRow{ID: u.ID, Name: strings.TrimSpace(u.Name + " " + u.LastName),
			Email: u.Email, Active: u.Active, InScope: vd.InScope(), Why: vd.Code})
	}
	return v, nil
}

// searchPeople is one Bitrix24 batch: user.get with a substring filter on
// the name, the last name and the e-mail (one page each), and the first
// page of departments; a tree longer than that page is read in full after.
// more: some filter matched more users than its page holds.
func searchPeople(ctx context.Context, b24 *bitrix24.Client, q string) (us []bitrix24.User, ds []bitrix24.Department, more bool, err error) {
	var cmds []bitrix24.BatchCommand
	for _, f := range []string{"%NAME", "%LAST_NAME", "%EMAIL"} {
		cmds = append(cmds, bitrix24.BatchCommand{Key: f[1:], Method: "user.get",
			Params: map[string]any{"FILTER": map[string]any{f: q}, "SORT": "ID", "ORDER": "ASC", "ADMIN_MODE": true}})
	}
	cmds = append(cmds, bitrix24.BatchCommand{Key: "depts", Method: "department.get", Params: map[string]any{"start": 0}})
	res, err := b24.Batch(ctx, cmds)
	if err != nil {
		return nil, nil, false, fmt.Errorf("search bitrix24 users: %w", err)
	}
	seen := map[int64]bool{}
	for _, c := range cmds[:3] {
		if err := res.Err(c.Key); err != nil {
			return nil, nil, false, fmt.Errorf("search bitrix24 users: %w", err)
		}
		page, err := bitrix24.DecodeUsers(res.Result[c.Key])
		if err != nil {
			return nil, nil, false, err
		}
		if res.Total[c.Key] > len(page) {
			more = true
		}
		for _, u := range page {
			if !seen[u.ID] {
				seen[u.ID] = true
				us = append(us, u)
			}
		}
	}
	if err := res.Err("depts"); err != nil {
		return nil, nil, false, fmt.Errorf("read bitrix24 departments: %w", err)
	}
	if ds, err = bitrix24.DecodeDepartments(res.Result["depts"]); err != nil {
		return nil, nil, false, err
	}
	if res.Total["depts"] > len(ds) && len(us) > 0 {
		if ds, err = b24.Departments(ctx); err != nil {
			return nil, nil, false, fmt.Errorf("read bitrix24 departments: %w", err)
		}
	}
	return us, ds, more, nil
}

// handlePerson answers whether one Bitrix24 user is in Learn's scope and
// why (syncer.Why, the plan's own rules), their Learn user and every action
// any run took on them, newest first (GET /app/people/{user_id}): HTML the
// page puts in place of the person's box. With ?job= (a "Sync this
// employee" job of this person) it adds the job's state and, once done, its
// run's steps; the page asks again while the job waits or runs.
func (s *Server) handlePerson(w http.ResponseWriter, r *http.Request) {
	sess, _ := sessionFrom(r.Context())
	ctx := r.Context()
	id, ok := userIDParam(chi.URLParam(r, "user_id"))
	if !ok {
		s.errorJSON(w, r, apperr.New(apperr.EINVALID, msgBadUserID.in(sess.Lang)))
		return
	}
	var jobID int64
	if j := r.URL.Query().Get("job"); j != "" {
		if jobID, ok = userIDParam(j); !ok {
			s.errorJSON(w, r, apperr.New(apperr.ENOTFOUND, msgNoSuchJob.in(sess.Lang)))
			return
		}
	}
	st, err := settings.Load(ctx, s.pool, nil, sess.PortalID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	b24, err := s.clients.Bitrix24(ctx, sess.PortalID)
	if err != nil {
		s.error(w, r, fmt.Errorf("bitrix24 client: %w", err))
		return
	}
	d, err := syncer.ReadPerson(ctx, b24, id)
	if errors.Is(err, syncer.ErrNoSuchEmployee) {
		s.errorJSON(w, r, apperr.New(apperr.ENOTFOUND, msgNoSuchPerson.in(sess.Lang)))
		return
	}
	if err != nil {
		s.peopleError(w, r, sess.Lang, err)
		return
	}
	ss := syncer.NewStore(s.pool)
	m, err := ss.PersonMapping(ctx, sess.PortalID, id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	hist, err := ss.PersonHistory(ctx, sess.PortalID, id, personHistoryMax)
	if err != nil {
		s.error(w, r, err)
		return
	}
	var last *syncer.RunItem
	if len(hist) > 0 {
		last = &hist[0].RunItem
	}
	vd := syncer.Why(d, syncer.Options{Selection: st.Departments}, m, last, id)
	v := templates.PersonView{Lang: sess.Lang, ID: id, InScope: vd.InScope(), Why: vd.Code, Detail: vd.Detail}
	for _, e := range d.Employees {
		if e.ID == id {
			v.Name, v.Email = strings.TrimSpace(e.FirstName+" "+e.LastName), e.Email
		}
	}
	if vd.Department != 0 {
		v.Department = "#" + strconv.FormatInt(vd.Department, 10)
		for _, x := range d.Departments {
			if x.ID == vd.Department && x.Name != "" {
				v.Department = x.Name
			}
		}
	}
	if m != nil {
		v.LearnID = m.LearnID
	}
	depts, err := s.historyDepartments(ctx, sess.PortalID, d, hist)
	if err != nil {
		s.error(w, r, err)
		return
	}
	for _, h := range hist {
		v.History = append(v.History, templates.HistoryRow{RunID: h.RunID, Trigger: string(h.Trigger), At: h.StartedAt,
			Action: string(h.Action), Status: h.Status, Reason: h.Reason, Changes: itemChanges(sess.Lang, h.RunItem, depts)})
	}
	if jobID != 0 {
		job, err := s.personJob(ctx, sess.Lang, sess.PortalID, id, jobID)
		if err != nil {
			var ae *apperr.Error
			if errors.As(err, &ae) {
				s.errorJSON(w, r, ae)
				return
			}
			s.error(w, r, err)
			return
		}
		v.Job = job
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := templates.PersonPanel(v).Render(ctx, w); err != nil {
		s.log.ErrorContext(ctx, "render person", "error", err)
	}
}

// historyDepartments names the departments of a person's history: the
// Learn ids its rows hold by the portal's mapping, and the Bitrix24 ids by
// the tree the person's read brought.
func (s *Server) historyDepartments(ctx context.Context, portalID int64, d syncer.Desired, hist []syncer.PersonHistoryItem) (deptNames, error) {
	seen := map[string]bool{}
	var ids []string
	for _, h := range hist {
		for _, v := range []string{h.Before["department"], h.After["department"]} {
			if v != "" && !strings.HasPrefix(v, "b24:") && !seen[v] {
				seen[v] = true
				ids = append(ids, v)
			}
		}
	}
	learn, err := syncer.NewStore(s.pool).DepartmentIDs(ctx, portalID, ids)
	if err != nil {
		return deptNames{}, err
	}
	names := make(map[int64]string, len(d.Departments))
	for _, x := range d.Departments {
		names[x.ID] = x.Name
	}
	return deptNames{learn: learn, names: names}, nil
}

// personSteps bounds the run steps the person view lists (a person's run
// has their department path, their own steps and their manager links).
const personSteps = 100

// personJob reads a sync_person job of this portal and person: its state,
// and once completed its run (the job's output) with the run's steps. A job
// of another portal or person is not found.
func (s *Server) personJob(ctx context.Context, lang i18n.Lang, portalID, b24ID, jobID int64) (*templates.PersonJob, error) {
	row, err := s.river.JobGet(ctx, jobID)
	if errors.Is(err, river.ErrNotFound) {
		return nil, apperr.New(apperr.ENOTFOUND, msgNoSuchJob.in(lang))
	}
	if err != nil {
		return nil, fmt.Errorf("read job %d: %w", jobID, err)
	}
	var args jobs.ProvisionArgs
	if row.Kind != (jobs.ProvisionArgs{}).Kind() || json.Unmarshal(row.EncodedArgs, &args) != nil ||
		args.PortalID != portalID || args.UserID != b24ID {
		return nil, apperr.New(apperr.ENOTFOUND, msgNoSuchJob.in(lang))
	}
	pj := &templates.PersonJob{ID: jobID}
	lastErr := ""
	if n := len(row.Errors); n > 0 {
		lastErr = row.Errors[n-1].Error
	}
	switch row.State {
	case rivertype.JobStateRunning:
		pj.State = "running"
	case rivertype.JobStateRetryable:
		pj.State, pj.Error = "retry", lastErr
	case rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
		pj.State, pj.Error = "failed", lastErr
	case rivertype.JobStateCompleted:
		pj.State = "done"
		var out jobs.ProvisionOutput
		if raw := row.Output(); len(raw) > 0 {
			if err := json.Unmarshal(raw, &out); err != nil {
				return nil, fmt.Errorf("decode job %d output: %w", jobID, err)
			}
		}
		if out.RunID == 0 {
			break
		}
		rs := syncer.NewStore(s.pool)
		run, err := rs.Run(ctx, portalID, out.RunID)
		if err != nil {
			return nil, err
		}
		rv := runView(run)
		pj.Run = &rv
		items, _, err := rs.FirstRunItems(ctx, portalID, out.RunID, personSteps)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			pj.Steps = append(pj.Steps, itemView(lang, it))
		}
	default: // available, scheduled (a snooze), pending
		pj.State = "waiting"
	}
	return pj, nil
}
