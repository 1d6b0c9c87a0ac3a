package b24sim

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

func htmlEscape(s string) string { return html.EscapeString(s) }

// FrameRequest builds the iframe POST Bitrix24 sends when userID opens the app
// (docs/bitrix24-api.md, "Frame POST"): the installer URL while the install is not finished,
// the app URL after. Each open issues a fresh token pair for the user. During
// the install Bitrix24 sends an ordinary user's open nowhere (Open refuses
// it); the fields built for one serve tests that post them as a forgery.
func (p *Portal) FrameRequest(userID int64) (target string, query, body url.Values, err error) {
	s := p.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.state == stateNone {
		return "", nil, nil, fmt.Errorf("app not installed on %s", p.domain)
	}
	target = s.opts.AppPageURL
	if target == "" && s.opts.AppURL != "" {
		target = strings.TrimRight(s.opts.AppURL, "/") + "/b24/app"
	}
	if p.state == stateInstalling {
		target = s.opts.InstallURL
		if target == "" && s.opts.AppURL != "" {
			target = strings.TrimRight(s.opts.AppURL, "/") + "/b24/install"
		}
	}
	if target == "" {
		return "", nil, nil, fmt.Errorf("b24sim: Options.AppURL is not set")
	}
	var tok Token
	if u := p.users[userID]; p.state == stateInstalling && u != nil && u.Admin && p.firstFrame != nil {
		tok, p.firstFrame = *p.firstFrame, nil // the early ONAPPINSTALL's pair
	} else {
		tok = s.issue(p, userID)
	}
	if u := p.users[userID]; p.state == stateInstalling && u != nil && u.Admin {
		p.installer = &tok
	}
	protocol := "1"
	if strings.HasPrefix(p.url, "http://") {
		protocol = "0"
	}
	lang := p.lang
	if u := p.users[userID]; u == nil {
		return "", nil, nil, fmt.Errorf("no user %d", userID)
	}
	query = url.Values{"DOMAIN": {p.domain}, "PROTOCOL": {protocol}, "LANG": {lang}, "APP_SID": {newHex(16)}}
	body = url.Values{
		"AUTH_ID": {tok.AccessToken}, "AUTH_EXPIRES": {strconv.Itoa(int(s.opts.AccessTTL.Seconds()))},
		"REFRESH_ID": {tok.RefreshToken}, "SERVER_ENDPOINT": {tok.ServerEndpoint},
		"APPLICATION_TOKEN": {p.appToken}, "APPLICATION_SCOPE": {tok.Scope},
		"member_id": {p.memberID}, "status": {p.status}, "PLACEMENT": {"DEFAULT"},
		"PLACEMENT_OPTIONS": {`{"any":"28\/"}`},
	}
	switch s.unsettled().FramePlacement {
	case FramePlacementUndefined:
		body.Set("PLACEMENT_OPTIONS", "undefined")
	case FramePlacementMissing:
		body.Del("PLACEMENT_OPTIONS")
	}
	if p.legacy {
		body.Del("APPLICATION_TOKEN")
		body.Del("APPLICATION_SCOPE")
	}
	return target, query, body, nil
}

// notInstalledYet is Bitrix24's notice to an ordinary user who opens an
// app whose installer has not called installFinish.
const notInstalledYet = "The application is not fully installed yet. Please contact your administrator."

// installerClosed reports whether Bitrix24 shows userID its notice instead
// of the app: until installFinish only admins get the installer
// (docs/bitrix24-api.md, "Frame POST"). FrameRequest still builds such a
// user's fields, for tests that post them as a forgery would.
func (p *Portal) installerClosed(userID int64) bool {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	u := p.users[userID]
	return p.state == stateInstalling && (u == nil || !u.Admin)
}

// Open posts the iframe form as the browser would and returns the app's
// answer; an ordinary user's open during the install posts nothing.
func (p *Portal) Open(ctx context.Context, hc *http.Client, userID int64) (*http.Response, error) {
	if p.installerClosed(userID) {
		return nil, fmt.Errorf("b24sim: user %d: %s", userID, notInstalledYet)
	}
	target, q, body, err := p.FrameRequest(userID)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"?"+q.Encode(), strings.NewReader(body.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", strings.TrimSuffix(p.PageURL(), "/"))
	if hc == nil {
		hc = http.DefaultClient
	}
	return hc.Do(req)
}

// servePage is the portal page: GET shows the app in an iframe, POST
// install / install-finish / uninstall act as the admin would.
func (s *Sim) servePage(w http.ResponseWriter, r *http.Request, p *Portal, action string) {
	if r.Method == http.MethodPost {
		_ = r.ParseForm()
		switch action {
		case "install":
			p.Install()
		case "install-finish":
			p.FinishInstall(r.Context())
		case "uninstall":
			p.Uninstall(r.Context(), r.Form.Get("clean") == "1")
		default:
			http.NotFound(w, r)
			return
		}
		if action == "install-finish" && r.Header.Get("X-Requested-With") != "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Redirect(w, r, p.PageURL(), http.StatusSeeOther)
		return
	}
	if action != "" {
		http.NotFound(w, r)
		return
	}
	userID := p.AdminID()
	if u, err := strconv.ParseInt(r.URL.Query().Get("user"), 10, 64); err == nil && u > 0 {
		userID = u
	}
	s.mu.Lock()
	state, name, lang := p.state, p.name, p.lang
	user := p.users[userID]
	s.mu.Unlock()
	page := p.PageURL()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	fmt.Fprintf(&b, `<!doctype html><html lang="%s"><head><meta charset="utf-8"><title>%s — Bitrix24 (simulated)</title>
<style>body{margin:0;font-family:"Open Sans","Helvetica Neue",Arial,sans-serif;background:#eef2f4;color:#333}
header{background:#2fc6f6;color:#fff;padding:10px 20px;display:flex;gap:16px;align-items:center}
header h1{font-size:18px;margin:0;flex:1} header form{margin:0} header a{color:#fff}
button{background:#fff;border:0;border-radius:2px;padding:6px 12px;cursor:pointer;color:#333}
main{padding:20px} iframe{width:100%%;height:80vh;border:0;background:#fff;border-radius:4px}
.note{background:#fff;padding:20px;border-radius:4px}</style></head><body>
<header><h1>%s</h1>`, htmlEscape(lang), htmlEscape(name), htmlEscape(name))
	if user != nil {
		fmt.Fprintf(&b, `<span>%s %s%s</span>`, htmlEscape(user.Name), htmlEscape(user.LastName), map[bool]string{true: " (admin)", false: ""}[user.Admin])
	}
	if na := p.NonAdminID(); na != 0 && na != userID {
		fmt.Fprintf(&b, `<a href="%s?user=%d">Open as non-admin</a>`, htmlEscape(page), na)
	}
	if user != nil && !user.Admin {
		fmt.Fprintf(&b, `<a href="%s">Open as admin</a>`, htmlEscape(page))
	}
	switch state {
	case stateNone:
		fmt.Fprintf(&b, `<form method="post" action="%sinstall"><button>Install the app</button></form>`, htmlEscape(page))
	default:
		if state == stateInstalling {
			fmt.Fprintf(&b, `<form method="post" action="%sinstall-finish"><button>installFinish()</button></form>`, htmlEscape(page))
		}
		fmt.Fprintf(&b, `<form method="post" action="%suninstall"><input type="hidden" name="clean" value="0"><button>Uninstall</button></form>`, htmlEscape(page))
		fmt.Fprintf(&b, `<form method="post" action="%suninstall"><input type="hidden" name="clean" value="1"><button>Uninstall and delete data</button></form>`, htmlEscape(page))
	}
	b.WriteString(`</header><main>`)
	if state == stateNone {
		b.WriteString(`<div class="note">The app is not installed on this portal.</div></main></body></html>`)
		_, _ = io.WriteString(w, b.String())
		return
	}
	if p.installerClosed(userID) {
		fmt.Fprintf(&b, `<div class="note">%s</div></main></body></html>`, htmlEscape(notInstalledYet))
		_, _ = io.WriteString(w, b.String())
		return
	}
	target, q, body, err := p.FrameRequest(userID)
	if err != nil {
		fmt.Fprintf(&b, `<div class="note">%s</div></main></body></html>`, htmlEscape(err.Error()))
		_, _ = io.WriteString(w, b.String())
		return
	}
	// window.name of the app frame is "DOMAIN|PROTOCOL|APP_SID", as BX24.js expects.
	frame := q.Get("DOMAIN") + "|" + q.Get("PROTOCOL") + "|" + q.Get("APP_SID")
	fmt.Fprintf(&b, `<form id="appform" method="post" target="%s" action="%s">`, htmlEscape(frame), htmlEscape(target+"?"+q.Encode()))
	for _, k := range sortedKeys(body) {
		fmt.Fprintf(&b, `<input type="hidden" name="%s" value="%s">`, htmlEscape(k), htmlEscape(body.Get(k)))
	}
	fmt.Fprintf(&b, `</form><iframe name="%s" id="appframe" title="app"></iframe></main>
<script>
document.getElementById("appform").submit();
// BX24.installFinish() posts a message to the parent; any message naming
// installFinish completes the install, as Bitrix24 does, and reopens the app.
window.addEventListener("message", function (e) {
  var d = typeof e.data === "string" ? e.data : JSON.stringify(e.data || "");
  if (/installfinish/i.test(d)) {
    fetch(%q, {method: "POST", headers: {"X-Requested-With": "fetch"}}).then(function () { location.reload(); });
  }
});
</script></body></html>`, htmlEscape(frame), page+"install-finish")
	_, _ = io.WriteString(w, b.String())
}

func sortedKeys(v url.Values) []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
