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
	"b24learn/internal/config"
	"b24learn/internal/i18n"
	"b24learn/internal/jobs"
	"b24learn/internal/manager"
	"b24learn/internal/store"
	"b24learn/internal/uninstall"
	"b24learn/templates"
)

// The manager console (/manager) is a first-party page in a normal tab: a
// securecookie session cookie naming a server-side session row (sign-out
// revokes the row, so a kept cookie is dead), and a synchronizer CSRF token
// stored with the session on every form. The sign-in form, before any
// session, uses a double-submit token in a cookie of its own. They are
// __Host- cookies (consoleCookie): a sibling subdomain or a page on plain
// http cannot set or shadow them.
const (
	managerCookie      = "__Host-b24learn_manager"
	managerLoginCookie = "__Host-b24learn_manager_login"
	managerCookieName  = "manager-session" // securecookie name and key purpose
)

// newManagerCodecs are the console cookie's codecs, one per key of
// SECRET_KEYS; none without keys, and then the console is refused.
func newManagerCodecs(cfg *config.Config) []securecookie.Codec {
	if cfg.Keyring == nil {
		return nil
	}
	var codecs []securecookie.Codec
	pairs := cfg.Keyring.CookieKeys(managerCookieName)
	for i := 0; i+1 < len(pairs); i += 2 {
		sc := securecookie.New(pairs[i], pairs[i+1])
		sc.MaxAge(int(manager.SessionTTL.Seconds()))
		sc.SetSerializer(securecookie.JSONEncoder{})
		codecs = append(codecs, sc)
	}
	return codecs
}

// handleConsoleHome sends a signed-in manager to the requests.
func (s *Server) handleConsoleHome(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/manager/requests", http.StatusSeeOther)
}

func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// consoleAvailable refuses the console when SECRET_KEYS is not configured.
func (s *Server) consoleAvailable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.managerCodecs) == 0 {
			s.error(w, r, apperr.New(apperr.EUNAVAILABLE, i18n.T(s.consoleLang(r, nil), "mgr.err_no_keys")))
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

func (s *Server) setManagerCookie(w http.ResponseWriter, name string, value any, maxAge time.Duration) error {
	enc, err := securecookie.EncodeMulti(name, value, s.managerCodecs...)
	if err != nil {
		return err
	}
	http.SetCookie(w, consoleCookie(name, enc, int(maxAge.Seconds())))
	return nil
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, consoleCookie(name, "", -1))
}

// consoleCookie is a console cookie as its __Host- name requires: Secure,
// Path=/ and no Domain, or browsers drop it.
func consoleCookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}
}

func (s *Server) readManagerCookie(r *http.Request, name string) (string, bool) {
	ck, err := r.Cookie(name)
	if err != nil {
		return "", false
	}
	var v string
	if err := securecookie.DecodeMulti(name, ck.Value, &v, s.managerCodecs...); err != nil || v == "" {
		return "", false
	}
	return v, true
}

// managerSession finds the live session of the request's cookie, or nil.
func (s *Server) managerSession(r *http.Request) (*manager.Session, error) {
	tok, ok := s.readManagerCookie(r, managerCookie)
	if !ok {
		return nil, nil
	}
	sess, err := manager.LookupSession(r.Context(), s.pool, tok, s.now())
	if errors.Is(err, manager.ErrNotFound) {
		return nil, nil
	}
	return sess, err
}

// requireManager admits signed-in managers; state-changing requests must
// also carry the session's CSRF token in the form.
func (s *Server) requireManager(next http.Handler) http.Handler {
	return s.managerGate(formToken, next)
}

// requireManagerSameOrigin admits signed-in managers to River UI, whose
// script POSTs JSON without the console's form token: a state-changing
// request must come from the console's own origin (Sec-Fetch-Site, else
// Origin against Host), which a cross-site page cannot fake in a browser.
//
// A request without Sec-Fetch-Site or Origin (not a browser) passes: the
// session cookie is SameSite=Lax, so no browser sends it with a
// cross-site POST anyway; the check also refuses same-site pages on other
// origins (another port or subdomain), which do get the cookie.
func (s *Server) requireManagerSameOrigin(next http.Handler) http.Handler {
	return s.managerGate(func(r *http.Request, _ *manager.Session) bool { return s.crossOrigin.Check(r) == nil }, next)
}

// A csrfCheck says whether a state-changing request came from the console.
type csrfCheck func(r *http.Request, sess *manager.Session) bool

func formToken(r *http.Request, sess *manager.Session) bool {
	return sameToken(r.PostFormValue("csrf"), sess.CSRF)
}

func (s *Server) managerGate(csrfOK csrfCheck, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.managerSession(r)
		if err != nil {
			s.error(w, r, err)
			return
		}
		if sess == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/manager/signin", http.StatusSeeOther)
				return
			}
			s.error(w, r, apperr.New(apperr.EUNAUTHORIZED, i18n.T(s.consoleLang(r, nil), "mgr.err_signed_out")))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !csrfOK(r, sess) {
				s.error(w, r, apperr.New(apperr.EFORBIDDEN, i18n.T(s.consoleLang(r, sess), "mgr.err_csrf")))
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
			s.error(w, r, apperr.New(apperr.EFORBIDDEN, i18n.T(s.consoleLang(r, sess), "mgr.err_totp_first")))
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

func (s *Server) renderConsole(w http.ResponseWriter, r *http.Request, status int, comp templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := comp.Render(r.Context(), w); err != nil {
		s.log.Warn("render console page", "error", err, "path", r.URL.Path)
	}
}

// signInPage shows the sign-in form; a failed sign-in (fail) sets the
// status and the message above the form.
func (s *Server) signInPage(w http.ResponseWriter, r *http.Request, email string, fail error) {
	tok := newToken()
	if err := s.setManagerCookie(w, managerLoginCookie, tok, time.Hour); err != nil {
		s.error(w, r, err)
		return
	}
	lang, chosen := s.signInLang(r)
	s.renderConsole(w, r, formStatus(fail), templates.ManagerSignIn(templates.SignInView{Lang: lang, Chosen: chosen,
		Email: email, Error: apperr.ErrorMessage(fail), CSRF: tok}))
}

// signInLang is the sign-in page's language: the one its own switch named
// (in the address, then posted on by its form), else the console's.
func (s *Server) signInLang(r *http.Request) (i18n.Lang, bool) {
	q := r.URL.Query().Get("lang")
	if q == "" && r.Method == http.MethodPost {
		q = r.PostFormValue("lang")
	}
	if q == "ru" || q == "en" {
		return i18n.Lang(q), true
	}
	return s.consoleLang(r, nil), false
}

func (s *Server) handleSignInForm(w http.ResponseWriter, r *http.Request) {
	if sess, err := s.managerSession(r); err == nil && sess != nil {
		http.Redirect(w, r, "/manager/requests", http.StatusSeeOther)
		return
	}
	s.signInPage(w, r, "", nil)
}

func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	want, ok := s.readManagerCookie(r, managerLoginCookie)
	if !ok || !sameToken(r.PostFormValue("csrf"), want) {
		lang, _ := s.signInLang(r)
		s.signInPage(w, r, "", apperr.New(apperr.EFORBIDDEN, i18n.T(lang, "mgr.err_signin_expired")))
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	ip := clientIP(r)
	sess, err := manager.SignIn(r.Context(), s.pool, s.cfg.Keyring, s.hasher, s.managerLimits, s.now(), manager.Credentials{
		Email: email, Password: r.PostFormValue("password"), Code: r.PostFormValue("code"), IP: ip})
	var rl *manager.RateLimitedError
	switch {
	case errors.As(err, &rl):
		s.log.Warn("console sign-in limited", "ip", ip, "busy", rl.Busy)
		setRetryAfter(w, rl)
		lang, _ := s.signInLang(r)
		s.signInPage(w, r, email, apperr.New(apperr.ETOOMANY, limitedText(lang, rl, "mgr.err_too_many")))
		return
	case errors.Is(err, manager.ErrBadCredentials):
		s.log.Info("console sign-in failed", "ip", ip)
		lang, _ := s.signInLang(r)
		s.signInPage(w, r, email, apperr.New(apperr.EUNAUTHORIZED, i18n.T(lang, "mgr.err_bad_credentials")))
		return
	case err != nil:
		s.error(w, r, err)
		return
	}
	if err := s.setManagerCookie(w, managerCookie, sess.Token, manager.SessionTTL); err != nil {
		s.error(w, r, err)
		return
	}
	clearCookie(w, managerLoginCookie)
	// A language picked with the sign-in page's switch is a choice, as the
	// console's switch is: the account's (its console and e-mails) and this
	// browser's.
	if lang, chosen := s.signInLang(r); chosen {
		if err := manager.SetLang(r.Context(), s.pool, sess.ManagerID, lang); err != nil {
			s.error(w, r, err)
			return
		}
		s.setLangCookie(w, lang)
	}
	s.log.Info("console sign-in", "manager_id", sess.ManagerID, "ip", ip)
	next := "/manager/requests"
	if sess.TOTPRequired && !sess.TOTP {
		next = "/manager/totp"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// setRetryAfter tells a client refused over a limit when to try again: the
// wait in whole seconds, one more so that it is over by then.
func setRetryAfter(w http.ResponseWriter, rl *manager.RateLimitedError) {
	w.Header().Set("Retry-After", strconv.Itoa(int(rl.RetryAfter.Seconds())+1))
}

// limitedText is the message of a refusal over a limit: key (with the
// wait) for the caller's own limit, a general "try again shortly" when the
// server was busy checking other passwords.
func limitedText(lang i18n.Lang, rl *manager.RateLimitedError, key string) string {
	if rl.Busy {
		return i18n.T(lang, "msg.too_many_requests")
	}
	return i18n.T(lang, key, waitText(lang, rl.RetryAfter))
}

// waitText is a wait as the sign-in page says it.
func waitText(lang i18n.Lang, d time.Duration) string {
	if d < time.Minute {
		return i18n.T(lang, "mgr.wait_s", int(d.Seconds())+1)
	}
	return i18n.T(lang, "mgr.wait_min", int((d+time.Minute-1)/time.Minute))
}

// handleTOTPForm shows the manager's second factor: enabled, or the secret
// to add to an authenticator app and a field for its first code.
func (s *Server) handleTOTPForm(w http.ResponseWriter, r *http.Request) {
	s.totpPage(w, r, nil)
}

// totpPage shows the second factor's page; a refused code (fail) sets the
// status and the message.
func (s *Server) totpPage(w http.ResponseWriter, r *http.Request, fail error) {
	sess := managerFrom(r.Context())
	v := templates.TOTPView{Nav: s.consoleNav(r, "totp"), Enabled: sess.TOTP, Required: sess.TOTPRequired, Error: apperr.ErrorMessage(fail)}
	if r.URL.Query().Get("done") == "totp" {
		v.Nav.Flash = i18n.T(v.Nav.Lang, "mgr.flash_totp")
	}
	if !sess.TOTP {
		enr, err := manager.BeginTOTP(r.Context(), s.pool, s.cfg.Keyring, sess)
		if err != nil {
			s.error(w, r, err)
			return
		}
		v.Secret, v.URI = enr.Secret, enr.URI
	}
	s.renderConsole(w, r, formStatus(fail), templates.ManagerTOTP(v))
}

func (s *Server) handleTOTPConfirm(w http.ResponseWriter, r *http.Request) {
	sess := managerFrom(r.Context())
	next, err := manager.ConfirmTOTP(r.Context(), s.pool, s.cfg.Keyring, s.hasher, s.managerLimits, s.managerActor(r), sess,
		r.PostFormValue("password"), r.PostFormValue("code"), s.now())
	var rl *manager.RateLimitedError
	switch {
	case errors.As(err, &rl):
		s.log.Warn("console totp enrolment limited", "manager_id", sess.ManagerID, "ip", clientIP(r), "busy", rl.Busy)
		setRetryAfter(w, rl)
		lang := s.consoleLang(r, sess)
		s.totpPage(w, r, apperr.New(apperr.ETOOMANY, limitedText(lang, rl, "mgr.err_totp_too_many")))
		return
	case errors.Is(err, manager.ErrBadPassword):
		s.log.Info("console totp enrolment with a wrong password", "manager_id", sess.ManagerID, "ip", clientIP(r))
		s.totpPage(w, r, apperr.New(apperr.EINVALID, i18n.T(s.consoleLang(r, sess), "mgr.err_totp_password")))
		return
	case errors.Is(err, manager.ErrBadCode):
		s.totpPage(w, r, apperr.New(apperr.EINVALID, i18n.T(s.consoleLang(r, sess), "mgr.err_bad_code")))
		return
	case errors.Is(err, manager.ErrTOTPEnabled):
		http.Redirect(w, r, "/manager/totp", http.StatusSeeOther)
		return
	case err != nil:
		s.error(w, r, err)
		return
	}
	// The session goes on under a new token: a copy of the old cookie,
	// taken while the password alone let it in, signs in no more.
	if err := s.setManagerCookie(w, managerCookie, next.Token, manager.SessionTTL); err != nil {
		s.error(w, r, err)
		return
	}
	s.log.Info("console totp enabled", "manager_id", next.ManagerID)
	http.Redirect(w, r, "/manager/totp?done=totp", http.StatusSeeOther)
}

func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	sess := managerFrom(r.Context())
	if err := manager.SignOut(r.Context(), s.pool, sess, clientIP(r), s.now()); err != nil {
		s.error(w, r, err)
		return
	}
	clearCookie(w, managerCookie)
	http.Redirect(w, r, "/manager/signin", http.StatusSeeOther)
}

func (s *Server) consoleNav(r *http.Request, section string) templates.ConsoleNav {
	sess := managerFrom(r.Context())
	lang := s.consoleLang(r, sess)
	n := templates.ConsoleNav{Lang: lang, Email: sess.Email, CSRF: sess.CSRF, Section: section, Path: r.URL.Path}
	switch r.URL.Query().Get("done") {
	case "saved":
		n.Flash = i18n.T(lang, "mgr.flash_saved")
	case "active":
		n.Flash = i18n.T(lang, "mgr.flash_active")
	case "suspended":
		n.Flash = i18n.T(lang, "mgr.flash_suspended")
	}
	return n
}

func (s *Server) managerActor(r *http.Request) manager.Actor {
	sess := managerFrom(r.Context())
	return manager.Actor{ManagerID: sess.ManagerID, Email: sess.Email, IP: clientIP(r)}
}

func (s *Server) handleRequests(w http.ResponseWriter, r *http.Request) {
	lang := s.sessionLang(r)
	lq, err := parseListQuery(r.URL.RawQuery, lang, "status")
	if err != nil {
		s.error(w, r, err)
		return
	}
	status, ok := activation.ParseStatus(lq.filter)
	if !ok {
		lq.filter, status = "", ""
	}
	page, err := activation.PageRequests(r.Context(), s.pool, activation.RequestQuery{Status: status, Search: lq.search}, lq.cursor, consolePageSize)
	if err != nil {
		s.error(w, r, err)
		return
	}
	links := listLinks{path: "/manager/requests", filterParam: "status", filter: lq.filter, search: lq.search}
	// The rows' forms bring the manager back to this page once saved.
	back := strings.TrimPrefix(strings.TrimPrefix(links.href(lq.filter, lq.cursor), links.path), "?")
	s.renderConsole(w, r, http.StatusOK, templates.ManagerRequests(templates.RequestsView{Nav: s.consoleNav(r, "requests"),
		Filter: lq.filter, Search: lq.search, Requests: page.Rows, Pager: pager(links, page), Back: back}))
}

func pathID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	return id, err == nil && id > 0
}

func (s *Server) handleUpdateRequest(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.error(w, r, errNotFound)
		return
	}
	status, valid := activation.ParseStatus(r.PostFormValue("status"))
	notes := strings.TrimSpace(r.PostFormValue("notes"))
	if !valid || activation.NoteLen(notes) > 4000 {
		s.error(w, r, apperr.New(apperr.EMALFORMED, i18n.T(s.sessionLang(r), "mgr.err_bad_status")))
		return
	}
	if !activation.NoteText(notes) {
		s.error(w, r, apperr.New(apperr.EMALFORMED, i18n.T(s.sessionLang(r), "mgr.err_bad_note")))
		return
	}
	err := activation.UpdateRequest(r.Context(), s.pool, s.managerActor(r), id, status, notes, s.now())
	switch {
	case errors.Is(err, activation.ErrNotFound):
		s.error(w, r, errNotFound)
		return
	case errors.Is(err, activation.ErrOpenRequestExists):
		s.error(w, r, apperr.New(apperr.ECONFLICT, i18n.T(s.sessionLang(r), "mgr.err_open_request")))
		return
	case err != nil:
		s.error(w, r, err)
		return
	}
	http.Redirect(w, r, requestsBack(r.PostFormValue("back"))+"done=saved#request-"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

func (s *Server) handlePortals(w http.ResponseWriter, r *http.Request) {
	lang := s.sessionLang(r)
	lq, err := parseListQuery(r.URL.RawQuery, lang, "state")
	if err != nil {
		s.error(w, r, err)
		return
	}
	page, err := manager.PagePortals(r.Context(), s.pool, manager.PortalQuery{Filter: lq.filter, Search: lq.search}, lq.cursor, consolePageSize)
	if errors.Is(err, manager.ErrBadFilter) {
		s.error(w, r, apperr.New(apperr.EINVALID, i18n.T(lang, "mgr.err_bad_filter")))
		return
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	// The failed jobs are River's table, read without an index on the
	// failure time: when that read fails or times out, the portal list,
	// which a manager needs to activate portals, still shows.
	failed, err := failedJobs(r.Context(), s.pool, jobs.NewQueue(s.pool, s.river), consoleFailedJobs)
	if err != nil {
		s.log.Warn("console: read failed jobs", "error", err)
	}
	links := listLinks{path: "/manager/portals", filterParam: "state", filter: lq.filter, search: lq.search}
	s.renderConsole(w, r, http.StatusOK, templates.ManagerPortals(templates.PortalsView{Nav: s.consoleNav(r, "portals"),
		Filter: lq.filter, Search: lq.search, Portals: page.Rows, Pager: pager(links, page), FailedJobs: failed,
		FailedJobsUnread: err != nil}))
}

func (s *Server) handlePortal(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.error(w, r, errNotFound)
		return
	}
	ctx := r.Context()
	p, err := manager.GetPortal(ctx, s.pool, id)
	if err != nil {
		s.error(w, r, notFoundAs(err, manager.ErrNotFound))
		return
	}
	v := templates.PortalView{Nav: s.consoleNav(r, "portals"), Portal: *p}
	if err := s.portalOps(ctx, &v); err != nil {
		s.error(w, r, err)
		return
	}
	if v.Requests, err = activation.ListRequests(ctx, s.pool, "", id, 20); err != nil {
		s.error(w, r, err)
		return
	}
	if v.Audit, err = manager.ListAudit(ctx, s.pool, id, portalAuditLimit); err != nil {
		s.error(w, r, err)
		return
	}
	if v.Uninstalls, err = uninstall.List(ctx, s.pool, id, 50); err != nil {
		s.error(w, r, err)
		return
	}
	s.renderConsole(w, r, http.StatusOK, templates.ManagerPortal(v))
}

// portalAuditLimit is how much of its audit trail a portal's page shows;
// the rest is a page of the audit trail filtered to the portal.
const portalAuditLimit = 50

func (s *Server) handleSetActivation(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.error(w, r, errNotFound)
		return
	}
	state, note := r.PostFormValue("state"), strings.TrimSpace(r.PostFormValue("note"))
	if (state != store.ActivationActive && state != store.ActivationSuspended) || activation.NoteLen(note) > 2000 {
		s.error(w, r, apperr.New(apperr.EMALFORMED, i18n.T(s.sessionLang(r), "mgr.err_bad_activation")))
		return
	}
	if !activation.NoteText(note) {
		s.error(w, r, apperr.New(apperr.EMALFORMED, i18n.T(s.sessionLang(r), "mgr.err_bad_note")))
		return
	}
	err := activation.SetActivation(r.Context(), s.pool, s.managerActor(r), id, state, note, s.now())
	if err != nil {
		s.error(w, r, notFoundAs(err, activation.ErrNotFound))
		return
	}
	s.log.Info("portal activation changed", "portal_id", id, "state", state, "manager_id", managerFrom(r.Context()).ManagerID)
	http.Redirect(w, r, "/manager/portals/"+strconv.FormatInt(id, 10)+"?done="+string(state), http.StatusSeeOther)
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	lang := s.sessionLang(r)
	lq, err := parseListQuery(r.URL.RawQuery, lang, "portal")
	if err != nil {
		s.error(w, r, err)
		return
	}
	v := templates.AuditView{Nav: s.consoleNav(r, "audit")}
	var portalID int64
	if lq.filter != "" {
		// Only the form the portal page links to: a canonical id above 0.
		id, err := strconv.ParseInt(lq.filter, 10, 64)
		if err != nil || id <= 0 || strconv.FormatInt(id, 10) != lq.filter {
			s.error(w, r, apperr.New(apperr.EMALFORMED, i18n.T(lang, "mgr.err_bad_page")))
			return
		}
		p, err := manager.GetPortal(r.Context(), s.pool, id)
		if err != nil {
			s.error(w, r, notFoundAs(err, manager.ErrNotFound))
			return
		}
		portalID, v.Portal = id, p
	}
	page, err := manager.PageAudit(r.Context(), s.pool, portalID, lq.cursor, consolePageSize)
	if err != nil {
		s.error(w, r, err)
		return
	}
	links := listLinks{path: "/manager/audit", filterParam: "portal", filter: lq.filter}
	v.Entries, v.Pager = page.Rows, pager(links, page)
	s.renderConsole(w, r, http.StatusOK, templates.ManagerAudit(v))
}
