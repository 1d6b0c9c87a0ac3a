package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"b24learn/internal/apperr"
	"b24learn/internal/bitrix24"
	"b24learn/internal/i18n"
	"b24learn/internal/jobs"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
)

var (
	msgBadUserID      = msg("msg.bad_user_id")
	msgProvisionQueue = msg("msg.provision_queued")
	msgNoSuchPerson   = msg("msg.no_such_person")
	msgSearchShort    = msg("msg.search_short")
)

// personHistoryMax bounds the history rows one person page shows.
const personHistoryMax = 200

// userIDParam reads a positive Bitrix24 user id.
func userIDParam(v string) (int64, bool) {
	id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return id, err == nil && id > 0
}

// handleProvision queues "Sync this employee" (POST /app/provision,
// user_id): one person's steps, under the portal's sync lock.
func (s *Server) handleProvision(w http.ResponseWriter, r *http.Request) {
	sess, ok := sessionFrom(r.Context())
	if !ok {
		s.errorJSON(w, r, apperr.New(apperr.EUNAUTHORIZED, msgSessionMissing.in(i18n.EN)))
		return
	}
	id, ok := userIDParam(r.FormValue("user_id"))
	if !ok {
		s.errorJSON(w, r, apperr.New(apperr.EINVALID, msgBadUserID.in(sess.Lang)))
		return
	}
	ctx := r.Context()
	var jobID int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var p store.Portal
		if err := tx.QueryRow(ctx, `SELECT install_state, activation_state, needs_reconnect FROM portals WHERE id = $1 FOR SHARE`,
			sess.PortalID).Scan(&p.InstallState, &p.ActivationState, &p.NeedsReconnect); err != nil {
			return fmt.Errorf("lock portal: %w", err)
		}
		st, err := settings.Load(ctx, tx, nil, sess.PortalID)
		if err != nil {
			return err
		}
		_, why := settings.Syncable(p, st)
		if why.InSettings() {
			return &errRefused{apperr.ECONFLICT, settingsRefusal(why)}
		}
		if why == settings.NotActive {
			return &errRefused{apperr.ECONFLICT, msgNotActive}
		}
		res, err := s.river.InsertTx(ctx, tx, jobs.ProvisionArgs{PortalID: sess.PortalID, UserID: id}, nil)
		if err != nil {
			return fmt.Errorf("queue provision: %w", err)
		}
		jobID = res.Job.ID
		return nil
	})
	var ref *errRefused
	switch {
	case errors.As(err, &ref):
		s.errorJSON(w, r, apperr.New(ref.code, ref.m.in(sess.Lang)))
		return
	case err != nil:
		s.error(w, r, err)
		return
	}
	s.log.InfoContext(ctx, "provision queued", "portal_id", sess.PortalID, "user_id", sess.UserID, "b24_id", id, "job_id", jobID)
	writeJSON(w, http.StatusAccepted, map[string]any{"ok": true, "job_id": jobID, "message": msgProvisionQueue.in(sess.Lang)})
}

// personRow is one employee in the search answer.
type personRow struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Active bool   `json:"active"`
}

// handlePeople searches the portal's Bitrix24 users by name, last name or
// e-mail (GET /app/people?q=): one Bitrix24 request, a batch of three
// user.get calls with a substring filter each, read live so the answer is
// never older than the portal (no copy of the org is stored).
func (s *Server) handlePeople(w http.ResponseWriter, r *http.Request) {
	sess, _ := sessionFrom(r.Context())
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len([]rune(q)) < 2 {
		s.errorJSON(w, r, apperr.New(apperr.EINVALID, msgSearchShort.in(sess.Lang)))
		return
	}
	b24, err := s.clients.Bitrix24(r.Context(), sess.PortalID)
	if err != nil {
		s.error(w, r, fmt.Errorf("bitrix24 client: %w", err))
		return
	}
	rows, err := searchPeople(r.Context(), b24, q)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"q": q, "people": rows})
}

func searchPeople(ctx context.Context, b24 *bitrix24.Client, q string) ([]personRow, error) {
	var cmds []bitrix24.BatchCommand
	for _, f := range []string{"%NAME", "%LAST_NAME", "%EMAIL"} {
		cmds = append(cmds, bitrix24.BatchCommand{Key: f[1:], Method: "user.get",
			Params: map[string]any{"FILTER": map[string]any{f: q}, "SORT": "ID", "ORDER": "ASC", "ADMIN_MODE": true}})
	}
	res, err := b24.Batch(ctx, cmds)
	if err != nil {
		return nil, fmt.Errorf("search bitrix24 users: %w", err)
	}
	seen := map[int64]bool{}
	var out []personRow
	for _, c := range cmds {
		if err := res.Err(c.Key); err != nil {
			return nil, fmt.Errorf("search bitrix24 users: %w", err)
		}
		us, err := bitrix24.DecodeUsers(res.Result[c.Key])
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			if !seen[u.ID] {
				seen[u.ID] = true
				out = append(out, personRow{ID: u.ID, Name: strings.TrimSpace(u.Name + " " + u.LastName), Email: u.Email, Active: u.Active})
			}
		}
	}
	return out, nil
}

// handlePerson answers whether one Bitrix24 user is in Learn's scope and
// why (syncer.Why, the plan's own rules), their Learn user and every action
// any run took on them, newest first (GET /app/people/{user_id}).
func (s *Server) handlePerson(w http.ResponseWriter, r *http.Request) {
	sess, _ := sessionFrom(r.Context())
	ctx := r.Context()
	id, ok := userIDParam(chi.URLParam(r, "user_id"))
	if !ok {
		s.errorJSON(w, r, apperr.New(apperr.EINVALID, msgBadUserID.in(sess.Lang)))
		return
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
		s.error(w, r, err)
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
	v := syncer.Why(d, syncer.Options{Selection: st.Departments}, m, last, id)
	type histRow struct {
		RunID   int64  `json:"run_id"`
		Trigger string `json:"trigger"`
		At      string `json:"at"`
		Action  string `json:"action"`
		Status  string `json:"status"`
		Reason  string `json:"reason"`
		Changes string `json:"changes"`
	}
	rows := make([]histRow, 0, len(hist))
	for _, h := range hist {
		rows = append(rows, histRow{RunID: h.RunID, Trigger: string(h.Trigger), At: h.StartedAt.UTC().Format("2006-01-02 15:04:05"),
			Action: string(h.Action), Status: h.Status, Reason: h.Reason, Changes: itemChanges(h.RunItem)})
	}
	learnID := ""
	if m != nil {
		learnID = m.LearnID
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "in_scope": v.InScope(), "why": v.Code, "why_text": i18n.T(sess.Lang, "why."+v.Code),
		"department": v.Department, "detail": v.Detail, "learn_id": learnID, "history": rows,
	})
}
