package server

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"b24learn/internal/activation"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/templates"
)

// bx24JS is Bitrix24's iframe library; the page loads it asynchronously and
// works without it.
const bx24JS = "//api.bitrix24.com/api/v1/"

// treeTimeout bounds the Bitrix24 calls of one page render; a slow portal
// gets the page without the picker rather than no page.
const treeTimeout = 20 * time.Second

// settingsApp builds the settings page's handlers with the production
// dependencies.
func (s *Server) settingsApp() *settingsApp {
	allow := s.cfg != nil && s.cfg.LearnAllowPrivateHosts
	return &settingsApp{s: s, check: newLearnChecker(s.clients, allow), org: bitrix24Org{client: s.portalB24Client}}
}

// mountSettings adds the page's endpoints to the /app router, which admits
// only requests with a valid session. The state-changing ones, and the run
// reports (employees' names and e-mails), are for admins only; the status
// shows other users no names, e-mails or error texts. The portal always
// comes from the session, never from the request.
func (a *settingsApp) mountSettings(r chi.Router) {
	r.Get("/status", a.s.handleStatusPanel) // polled while a run is queued or running
	r.Group(func(r chi.Router) {
		r.Use(a.s.requireAdmin)
		r.Get("/runs/{runID}", a.handleRunReport)
		r.Get("/runs/{runID}/csv", a.handleRunCSV)
		r.Post("/settings", a.handleSaveSettings)
		r.Post("/preview", a.handleAction("preview"))
		r.Post("/sync", a.handleAction("sync"))
		r.Post("/approve", a.handleAction("approve"))
	})
}

// settingsView gathers the page's data: stored settings (never the
// password), the department tree from Bitrix24 and the status panel.
func (a *settingsApp) settingsView(ctx context.Context, p store.Portal, sess Session, token string) (templates.SettingsView, error) {
	lang := sess.Lang
	st, err := settings.Load(ctx, a.s.pool, nil, p.ID)
	if err != nil {
		return templates.SettingsView{}, err
	}
	v := templates.SettingsView{
		Lang: lang, Token: token, Admin: sess.Admin, BX24JS: bx24JS,
		Form: templates.SettingsForm{
			FirstRun: st.Schedule.First(), SecondRun: st.Schedule.Second(), SendLoginEmail: st.SendLoginEmail,
			HeadsAsManagers: st.HeadsAsManagers, ParentHeadsAsSupervisors: st.ParentHeadsAsSupervisors,
		},
		Scope:  st.Departments,
		Status: a.s.pagePanel(ctx, p, st, lang, sess.Admin),
	}
	if sess.Admin {
		// The Learn account (its address and admin login) is for admins:
		// the read-only page leaves the fields empty.
		v.Form.LearnURL, v.Form.LearnEmail, v.Form.HasPassword = st.LearnURL, st.LearnEmail, st.HasPassword()
	}
	tctx, cancel := context.WithTimeout(ctx, treeTimeout)
	defer cancel()
	depts, err := a.org.OrgTree(tctx, p)
	if err != nil {
		a.s.log.WarnContext(ctx, "load department tree", "portal_id", p.ID, "error", err)
		v.TreeError = msgTreeError.in(lang)
	} else {
		v.Tree = buildTree(depts)
	}
	return v, nil
}

var msgTreeError = msg("msg.tree_error")

// renderSettings writes the page. The frame headers are set by the caller.
// prefill fills an empty activation form (the admin's Bitrix24 profile).
func (a *settingsApp) renderSettings(w http.ResponseWriter, r *http.Request, p store.Portal, sess Session, token string, prefill activation.Contact) {
	v, err := a.settingsView(r.Context(), p, sess, token)
	if err != nil {
		a.s.serverError(w, r, err)
		return
	}
	// The activation form belongs to the activation handler; a failure to
	// read its state leaves the form out rather than failing the page.
	if act, err := a.s.activationForm(r.Context(), sess, token, p.ActivationState, prefill); err != nil {
		a.s.log.WarnContext(r.Context(), "load activation form", "portal_id", p.ID, "error", err)
	} else {
		v.Activation = act
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := templates.SettingsPage(v).Render(r.Context(), w); err != nil {
		a.s.log.ErrorContext(r.Context(), "render settings page", "error", err)
	}
}
