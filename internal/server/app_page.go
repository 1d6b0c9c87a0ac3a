package server

import (
	"encoding/json"
	"net/http"
	"strings"

	"b24learn/internal/activation"
	"b24learn/internal/bitrix24"
	"b24learn/internal/store"
)

// renderApp renders the app page for a verified open: the settings page.
// token is the session token the page's requests carry (header X-Session);
// prof is the opening user's Bitrix24 profile, already fetched to check the
// admin flag, which prefills the activation form. The frame headers are
// already set.
func (s *Server) renderApp(w http.ResponseWriter, r *http.Request, p store.Portal, sess Session, token string, prof bitrix24.Profile) {
	s.renderSettings(w, r, p, sess, token, profileContact(prof))
}

// profileContact is what a Bitrix24 profile says about how to reach the
// user; profile carries no phone.
func profileContact(prof bitrix24.Profile) activation.Contact {
	return activation.Contact{Name: strings.Join(strings.Fields(prof.Name+" "+prof.LastName), " "), Email: strings.TrimSpace(prof.Email)}
}

// appState is what the page asks about its portal (GET /app/state).
type appState struct {
	Domain          string `json:"domain"`
	InstallState    string `json:"install_state"`
	ActivationState string `json:"activation_state"`
	NeedsReconnect  bool   `json:"needs_reconnect"`
	Admin           bool   `json:"admin"`
	UserID          int64  `json:"user_id"`
}

// handleAppState answers with the session's portal state; the portal comes
// from the session alone.
func (s *Server) handleAppState(w http.ResponseWriter, r *http.Request) {
	sess, _ := sessionFrom(r.Context())
	p, _ := sessionPortal(r.Context())
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(appState{
		Domain: p.Domain, InstallState: p.InstallState, ActivationState: p.ActivationState,
		NeedsReconnect: p.NeedsReconnect, Admin: sess.Admin, UserID: sess.UserID,
	})
}
