package server

import (
	"context"
	"net/http"
	"time"

	"b24learn/internal/activation"
	"b24learn/internal/alert"
	"b24learn/internal/secret"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/templates"
)

// bx24JS is Bitrix24's iframe library; the page loads it asynchronously and
// works without it. Always over https: bx24Origin is all the framed pages'
// CSP allows besides this server.
const (
	bx24Origin = "https://api.bitrix24.com"
	bx24JS     = bx24Origin + "/api/v1/"
)

// treeTimeout bounds the Bitrix24 calls of one page render; a slow portal
// gets the page without the picker rather than no page.
const treeTimeout = 20 * time.Second

// settingsView gathers the page's data: stored settings (never the
// password), the department tree from Bitrix24 and the status panel.
// profileEmail is the admin's address from their Bitrix24 profile ("" when
// the profile gives none), offered for alerts until a save sets them.
func (s *Server) settingsView(ctx context.Context, p store.Portal, sess Session, token, profileEmail string) (templates.SettingsView, error) {
	lang := sess.Lang
	// Admins' pages read the Learn account's profile fields, which needs
	// the password; others' pages never decrypt it.
	var kr *secret.Keyring
	if sess.Admin && s.cfg != nil {
		kr = s.cfg.Keyring
	}
	st, err := settings.Load(ctx, s.pool, kr, p.ID)
	if err != nil {
		return templates.SettingsView{}, err
	}
	v := templates.SettingsView{
		Lang: lang, Token: token, Admin: sess.Admin, BX24JS: bx24JS,
		Form: templates.SettingsForm{
			FirstRun: st.Schedule.First(), SecondRun: st.Schedule.Second(), SendLoginEmail: st.SendLoginEmail,
			HeadsAsManagers: st.HeadsAsManagers, ParentHeadsAsSupervisors: st.ParentHeadsAsSupervisors,
			AlertsOn: !st.AlertsOff,
		},
		Scope:  st.Departments,
		Status: s.pagePanel(ctx, p, st, lang, sess.Admin),
	}
	if sess.Admin {
		// The Learn account (its address and admin login) is for admins:
		// the read-only page leaves the fields empty.
		v.Form.LearnURL, v.Form.LearnEmail, v.Form.HasPassword = st.LearnURL, st.LearnEmail, st.HasPassword()
		v.Form.LearnClientID, v.Form.HasClientSecret = st.LearnClientID, st.HasAPIKey()
		v.Form.AlertEmail = st.AlertEmail
		if st.AlertLang == "" && st.AlertEmail == "" {
			// No save has set the alerts yet (every save writes AlertLang);
			// an address the admin cleared later stays cleared.
			v.Form.AlertEmail = profileEmail
		}
		state, err := alert.AddressStateOf(ctx, s.pool, p.ID, st.AlertEmail)
		if err != nil {
			return templates.SettingsView{}, err
		}
		v.Form.AlertState = string(state)
	}
	tctx, cancel := context.WithTimeout(ctx, treeTimeout)
	defer cancel()
	if sess.Admin && st.HasAccount() {
		v.FieldMap, v.FieldMapError = s.fieldMapView(tctx, p, st, lang)
	}
	depts, err := s.org.OrgTree(tctx, p)
	if err != nil {
		s.log.WarnContext(ctx, "load department tree", "portal_id", p.ID, "error", err)
		v.TreeError = msgTreeError.in(lang)
	} else {
		v.Tree = buildTree(depts)
	}
	return v, nil
}

// renderSettings writes the page. The frame headers are set by the caller.
// prefill fills an empty activation form (the admin's Bitrix24 profile).
func (s *Server) renderSettings(w http.ResponseWriter, r *http.Request, p store.Portal, sess Session, token string, prefill activation.Contact) {
	v, err := s.settingsView(r.Context(), p, sess, token, prefill.Email)
	if err != nil {
		s.errorIn(w, r, sess.Lang, err)
		return
	}
	// The activation form belongs to the activation handler; a failure to
	// read its state leaves the form out rather than failing the page.
	if act, err := s.activationForm(r.Context(), sess, token, p.ActivationState, prefill); err != nil {
		s.log.WarnContext(r.Context(), "load activation form", "portal_id", p.ID, "error", err)
	} else {
		v.Activation = act
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := templates.SettingsPage(v).Render(r.Context(), w); err != nil {
		s.log.ErrorContext(r.Context(), "render settings page", "error", err)
	}
}
