package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"
	"github.com/gorilla/securecookie"

	"b24learn/internal/activation"
	"b24learn/internal/apperr"

	"b24learn/internal/manager"

	"b24learn/internal/uninstall"
	"b24learn/templates"
)

// The manager console (/manager) is a first-party page in a normal tab: a
// securecookie session cookie naming a server-side session row (sign-out
// revokes the row, so a kept cookie is dead), and a synchronizer CSRF token
// stored with the session on every form. The sign-in form, before any
// session, uses a double-submit token in a cookie of its own.
const (
	managerCookie      = "b24learn_manager"
	managerLoginCookie = "b24learn_manager_login"
	managerCookiePath  = "/manager"
	managerCookieName  = "manager-session" // securecookie name and key purpose
	managerListLimit   = 200
)

type console struct {
	s      *Server
	codecs []securecookie.Codec
	limits manager.Limits
}

func newConsole(s *Server) *console {
	c := &console{s: s, limits: manager.DefaultLimits}
	if s.cfg.Keyring == nil {
		return c
	}
	pairs := s.cfg.Keyring.CookieKeys(managerCookieName)
	for i := 0; i+1 < len(pairs); i += 2 {
		sc := securecookie.New(pairs[i], pairs[i+1])
		sc.MaxAge(int(manager.SessionTTL.Seconds()))
		sc.SetSerializer(securecookie.JSONEncoder{})
		c.codecs = append(c.codecs, sc)
	}
	return c
}

// handleHome sends a signed-in manager to the requests.
func (c *console) handleHome(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/manager/requests", http.StatusSeeOther)
}

func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// available refuses the console when SECRET_KEYS is not configured.
func (c *console) available(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(c.codecs) == 0 {
			c.s.error(w, r, apperr.New(apperr.EUNAVAILABLE, "The manager console needs SECRET_KEYS."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

type consoleKey struct{}

func managerFrom(ctx context.Context) *manager.Session {
	s, _ := ctx.Value(consoleKey{}).(*manager.Session)
	return s
}

func (c *console) setCookie(w http.ResponseWriter, name string, value any, maxAge time.Duration) error {
	enc, err := securecookie.EncodeMulti(name, value, c.codecs...)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: enc, Path: managerCookiePath, MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	return nil
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: managerCookiePath, MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
}

func (c *console) readCookie(r *http.Request, name string) (string, bool) {
	ck, err := r.Cookie(name)
	if err != nil {
		return "", false
	}
	var v string
	if err := securecookie.DecodeMulti(name, ck.Value, &v, c.codecs...); err != nil || v == "" {
		return "", false
	}
	return v, true
}

// session finds the live session of the request's cookie, or nil.
func (c *console) session(r *http.Request) (*manager.Session, error) {
	tok, ok := c.readCookie(r, managerCookie)
	if !ok {
		return nil, nil
	}
	sess, err := manager.LookupSession(r.Context(), c.s.pool, tok, c.s.now())
	if errors.Is(err, manager.ErrNotFound) {
		return nil, nil
	}
	return sess, err
}

// requireManager admits signed-in managers; state-changing requests must
// also carry the session's CSRF token.
func (c *console) requireManager(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := c.session(r)
		if err != nil {
			c.s.error(w, r, err)
			return
		}
		if sess == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/manager/signin", http.StatusSeeOther)
				return
			}
			c.s.error(w, r, apperr.New(apperr.EUNAUTHORIZED, "You are signed out. Sign in again."))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameToken(r.PostFormValue("csrf"), sess.CSRF) {
				c.s.error(w, r, apperr.New(apperr.EFORBIDDEN, "This form has expired or did not come from the console (CSRF check failed). Reload the page and try again."))
				return
			}
		}
		// An account that must have a second factor uses nothing else
		// until it has one.
		if sess.TOTPRequired && !sess.TOTP && r.URL.Path != "/manager/totp" && r.URL.Path != "/manager/signout" {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/manager/totp", http.StatusSeeOther)
				return
			}
			c.s.error(w, r, apperr.New(apperr.EFORBIDDEN, "Set up your authenticator app first (/manager/totp)."))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), consoleKey{}, sess)))
	})
}

func sameToken(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *console) render(w http.ResponseWriter, r *http.Request, status int, comp templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := comp.Render(r.Context(), w); err != nil {
		c.s.log.Warn("render console page", "error", err, "path", r.URL.Path)
	}
}

// signInPage shows the sign-in form; a failed sign-in (fail) sets the
// status and the message above the form.
func (c *console) signInPage(w http.ResponseWriter, r *http.Request, email string, fail error) {
	tok := newToken()
	if err := c.setCookie(w, managerLoginCookie, tok, time.Hour); err != nil {
		c.s.error(w, r, err)
		return
	}
	c.render(w, r, formStatus(fail), templates.ManagerSignIn(templates.SignInView{Email: email, Error: apperr.ErrorMessage(fail), CSRF: tok}))
}

func (c *console) handleSignInForm(w http.ResponseWriter, r *http.Request) {
	if sess, err := c.session(r); err == nil && sess != nil {
		http.Redirect(w, r, "/manager/requests", http.StatusSeeOther)
		return
	}
	c.signInPage(w, r, "", nil)
}

func (c *console) handleSignIn(w http.ResponseWriter, r *http.Request) {
	want, ok := c.readCookie(r, managerLoginCookie)
	if !ok || !sameToken(r.PostFormValue("csrf"), want) {
		c.signInPage(w, r, "", apperr.New(apperr.EFORBIDDEN, "The sign-in form expired. Please try again."))
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	ip := clientIP(r)
	sess, err := manager.SignIn(r.Context(), c.s.pool, c.s.cfg.Keyring, c.limits, c.s.now(), manager.Credentials{
		Email: email, Password: r.PostFormValue("password"), Code: r.PostFormValue("code"), IP: ip})
	var rl *manager.RateLimitedError
	switch {
	case errors.As(err, &rl):
		c.s.log.Warn("console sign-in limited", "ip", ip)
		w.Header().Set("Retry-After", strconv.Itoa(int(rl.RetryAfter.Seconds())+1))
		c.signInPage(w, r, email, apperr.New(apperr.ETOOMANY,
			"Too many failed sign-ins. Try again in "+waitText(rl.RetryAfter)+
				"; if you use an authenticator app, enter its code with your password."))
		return
	case errors.Is(err, manager.ErrBadCredentials):
		c.s.log.Info("console sign-in failed", "ip", ip)
		c.signInPage(w, r, email, apperr.New(apperr.EUNAUTHORIZED, "Wrong e-mail, password or authenticator code."))
		return
	case err != nil:
		c.s.error(w, r, err)
		return
	}
	if err := c.setCookie(w, managerCookie, sess.Token, manager.SessionTTL); err != nil {
		c.s.error(w, r, err)
		return
	}
	clearCookie(w, managerLoginCookie)
	c.s.log.Info("console sign-in", "manager_id", sess.ManagerID, "ip", ip)
	next := "/manager/requests"
	if sess.TOTPRequired && !sess.TOTP {
		next = "/manager/totp"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// waitText is a wait as the sign-in page says it.
func waitText(d time.Duration) string {
	if d < time.Minute {
		return strconv.Itoa(int(d.Seconds())+1) + " s"
	}
	return strconv.Itoa(int((d+time.Minute-1)/time.Minute)) + " min"
}

// handleTOTPForm shows the manager's second factor: enabled, or the secret
// to add to an authenticator app and a field for its first code.
func (c *console) handleTOTPForm(w http.ResponseWriter, r *http.Request) {
	c.totpPage(w, r, nil)
}

// totpPage shows the second factor's page; a refused code (fail) sets the
// status and the message.
func (c *console) totpPage(w http.ResponseWriter, r *http.Request, fail error) {
	sess := managerFrom(r.Context())
	v := templates.TOTPView{Nav: c.nav(r, "totp"), Enabled: sess.TOTP, Required: sess.TOTPRequired, Error: apperr.ErrorMessage(fail)}
	if r.URL.Query().Get("done") == "totp" {
		v.Nav.Flash = "Two-step sign-in is on: sign in with your password and a code from the app from now on."
	}
	if !sess.TOTP {
		enr, err := manager.BeginTOTP(r.Context(), c.s.pool, c.s.cfg.Keyring, sess.ManagerID)
		if err != nil {
			c.s.error(w, r, err)
			return
		}
		v.Secret, v.URI = enr.Secret, enr.URI
	}
	c.render(w, r, formStatus(fail), templates.ManagerTOTP(v))
}

func (c *console) handleTOTPConfirm(w http.ResponseWriter, r *http.Request) {
	err := manager.ConfirmTOTP(r.Context(), c.s.pool, c.s.cfg.Keyring, c.actor(r), r.PostFormValue("code"), c.s.now())
	switch {
	case errors.Is(err, manager.ErrBadCode):
		c.totpPage(w, r, apperr.New(apperr.EINVALID, "That code does not match. Check the app shows codes for this account and try the current one."))
		return
	case errors.Is(err, manager.ErrTOTPEnabled):
		http.Redirect(w, r, "/manager/totp", http.StatusSeeOther)
		return
	case err != nil:
		c.s.error(w, r, err)
		return
	}
	c.s.log.Info("console totp enabled", "manager_id", managerFrom(r.Context()).ManagerID)
	http.Redirect(w, r, "/manager/totp?done=totp", http.StatusSeeOther)
}

func (c *console) handleSignOut(w http.ResponseWriter, r *http.Request) {
	sess := managerFrom(r.Context())
	if err := manager.SignOut(r.Context(), c.s.pool, sess, clientIP(r), c.s.now()); err != nil {
		c.s.error(w, r, err)
		return
	}
	clearCookie(w, managerCookie)
	http.Redirect(w, r, "/manager/signin", http.StatusSeeOther)
}

func (c *console) nav(r *http.Request, section string) templates.ConsoleNav {
	sess := managerFrom(r.Context())
	n := templates.ConsoleNav{Email: sess.Email, CSRF: sess.CSRF, Section: section}
	switch r.URL.Query().Get("done") {
	case "saved":
		n.Flash = "Saved."
	case "active":
		n.Flash = "The portal is active: syncs run from its next slot."
	case "suspended":
		n.Flash = "The portal is suspended: no more syncs."
	}
	return n
}

func (c *console) actor(r *http.Request) manager.Actor {
	sess := managerFrom(r.Context())
	return manager.Actor{ManagerID: sess.ManagerID, Email: sess.Email, IP: clientIP(r)}
}

func (c *console) handleRequests(w http.ResponseWriter, r *http.Request) {
	filter := r.URL.Query().Get("status")
	if filter != "" && !activation.ValidStatus(filter) {
		filter = ""
	}
	reqs, err := activation.ListRequests(r.Context(), c.s.pool, filter, 0, managerListLimit)
	if err != nil {
		c.s.error(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, templates.ManagerRequests(templates.RequestsView{Nav: c.nav(r, "requests"), Filter: filter, Requests: reqs}))
}

func pathID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	return id, err == nil && id > 0
}

func (c *console) handleUpdateRequest(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		c.s.error(w, r, errNotFound)
		return
	}
	status, notes := r.PostFormValue("status"), strings.TrimSpace(r.PostFormValue("notes"))
	if !activation.ValidStatus(status) || len(notes) > 4000 {
		c.s.error(w, r, apperr.New(apperr.EMALFORMED, "Unknown status or notes too long (4000 characters at most)."))
		return
	}
	err := activation.UpdateRequest(r.Context(), c.s.pool, c.actor(r), id, status, notes, c.s.now())
	switch {
	case errors.Is(err, activation.ErrNotFound):
		c.s.error(w, r, errNotFound)
		return
	case errors.Is(err, activation.ErrOpenRequestExists):
		c.s.error(w, r, apperr.New(apperr.ECONFLICT, "This portal has another open request; close that one first."))
		return
	case err != nil:
		c.s.error(w, r, err)
		return
	}
	http.Redirect(w, r, "/manager/requests?done=saved#request-"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

func (c *console) handlePortals(w http.ResponseWriter, r *http.Request) {
	ps, err := manager.ListPortals(r.Context(), c.s.pool, managerListLimit)
	if err != nil {
		c.s.error(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, templates.ManagerPortals(templates.PortalsView{Nav: c.nav(r, "portals"), Portals: ps}))
}

func (c *console) handlePortal(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		c.s.error(w, r, errNotFound)
		return
	}
	ctx := r.Context()
	p, err := manager.GetPortal(ctx, c.s.pool, id)
	if errors.Is(err, manager.ErrNotFound) {
		c.s.error(w, r, errNotFound)
		return
	}
	if err != nil {
		c.s.error(w, r, err)
		return
	}
	v := templates.PortalView{Nav: c.nav(r, "portals"), Portal: p}
	if err := c.portalOps(ctx, &v); err != nil {
		c.s.error(w, r, err)
		return
	}
	if v.Requests, err = activation.ListRequests(ctx, c.s.pool, "", id, 20); err != nil {
		c.s.error(w, r, err)
		return
	}
	if v.Audit, err = manager.ListAudit(ctx, c.s.pool, id, 50); err != nil {
		c.s.error(w, r, err)
		return
	}
	if v.Uninstalls, err = uninstall.List(ctx, c.s.pool, id, 50); err != nil {
		c.s.error(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, templates.ManagerPortal(v))
}

func (c *console) handleSetActivation(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		c.s.error(w, r, errNotFound)
		return
	}
	state, note := activation.State(r.PostFormValue("state")), strings.TrimSpace(r.PostFormValue("note"))
	if (state != activation.StateActive && state != activation.StateSuspended) || len(note) > 2000 {
		c.s.error(w, r, apperr.New(apperr.EMALFORMED, "Choose Activate or Suspend; the note may have 2000 characters at most."))
		return
	}
	err := activation.SetActivation(r.Context(), c.s.pool, c.actor(r), id, state, note, c.s.now())
	if errors.Is(err, activation.ErrNotFound) {
		c.s.error(w, r, errNotFound)
		return
	}
	if err != nil {
		c.s.error(w, r, err)
		return
	}
	c.s.log.Info("portal activation changed", "portal_id", id, "state", state, "manager_id", managerFrom(r.Context()).ManagerID)
	http.Redirect(w, r, "/manager/portals/"+strconv.FormatInt(id, 10)+"?done="+string(state), http.StatusSeeOther)
}

func (c *console) handleAudit(w http.ResponseWriter, r *http.Request) {
	entries, err := manager.ListAudit(r.Context(), c.s.pool, 0, 500)
	if err != nil {
		c.s.error(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, templates.ManagerAudit(templates.AuditView{Nav: c.nav(r, "audit"), Entries: entries}))
}
