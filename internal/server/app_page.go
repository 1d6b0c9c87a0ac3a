package server

import (
	"encoding/json"
	"html/template"
	"net/http"

	"b24learn/internal/store"
)

// appPage is a placeholder until the settings page replaces renderApp's body.
var appPage = template.Must(template.New("app").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="b24learn-session" content="{{.Token}}">
<title>iSpring Learn sync</title>
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<main>
<h1>iSpring Learn sync</h1>
<p>Portal: {{.Domain}}</p>
{{if not .Admin}}<p class="notice">Only a Bitrix24 administrator can change these settings. You can look, but not edit.</p>{{end}}
</main>
</body>
</html>
`))

// renderApp renders the app page for a verified open. token is the session
// token the page's forms and requests carry (field "session", header
// X-Session). The frame headers are already set.
func (s *Server) renderApp(w http.ResponseWriter, r *http.Request, p store.Portal, sess Session, token string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err := appPage.Execute(w, map[string]any{
		"Lang": pageLang(sess.Lang), "Token": token, "Domain": p.Domain, "Admin": sess.Admin,
	})
	if err != nil {
		s.log.ErrorContext(r.Context(), "render app page", "error", err)
	}
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
	p, ok := sessionPortal(r.Context())
	if !ok {
		http.Error(w, "Your session has ended. Open the app again from Bitrix24.", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(appState{
		Domain: p.Domain, InstallState: p.InstallState, ActivationState: p.ActivationState,
		NeedsReconnect: p.NeedsReconnect, Admin: sess.Admin, UserID: sess.UserID,
	})
}
