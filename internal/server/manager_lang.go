package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"b24learn/internal/apperr"
	"b24learn/internal/i18n"
	"b24learn/internal/manager"
)

// The console speaks Russian or English: the language the signed-in
// manager chose (kept on the account), else the one last chosen in this
// browser (a plain cookie, so that the sign-in page after signing out
// speaks it too), else the browser's Accept-Language.
const (
	managerLangCookie = "__Host-b24learn_manager_lang"
	managerLangMaxAge = 365 * 24 * time.Hour
)

// consoleLang is the language of a console answer; sess may be nil.
func (s *Server) consoleLang(r *http.Request, sess *manager.Session) i18n.Lang {
	if sess != nil && (sess.Lang == i18n.RU || sess.Lang == i18n.EN) {
		return sess.Lang
	}
	if ck, err := r.Cookie(managerLangCookie); err == nil && (ck.Value == "ru" || ck.Value == "en") {
		return i18n.Lang(ck.Value)
	}
	return acceptLang(r.Header.Get("Accept-Language"))
}

// sessionLang is the console's language for a request the console's
// middleware let through (signed in or not).
func (s *Server) sessionLang(r *http.Request) i18n.Lang {
	return s.consoleLang(r, managerFrom(r.Context()))
}

// acceptLang picks Russian or English from an Accept-Language header: the
// one of highest weight, earlier first on a tie. Languages whose readers
// take Russian more readily than English (uk, be, kk) count as Russian, as
// they do for Bitrix24 portals; no header or neither language: English.
func acceptLang(header string) i18n.Lang {
	best, bestQ := i18n.EN, 0.0
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				continue
			}
			q = f
		}
		base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		var l i18n.Lang
		switch base {
		case "ru", "uk", "be", "kk":
			l = i18n.RU
		case "en":
			l = i18n.EN
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = l, q
		}
	}
	return best
}

// handleConsoleLang keeps the manager's language and goes back to the page
// the switch was on.
func (s *Server) handleConsoleLang(w http.ResponseWriter, r *http.Request) {
	sess := managerFrom(r.Context())
	lang := r.PostFormValue("lang")
	if lang != "ru" && lang != "en" {
		s.error(w, r, apperr.New(apperr.EMALFORMED, i18n.T(s.consoleLang(r, sess), "mgr.err_bad_lang")))
		return
	}
	err := manager.SetLang(r.Context(), s.pool, sess.ManagerID, i18n.Lang(lang))
	if err != nil {
		s.error(w, r, notFoundAs(err, manager.ErrNotFound))
		return
	}
	s.setLangCookie(w, i18n.Lang(lang))
	back := r.PostFormValue("back")
	// Only a console page: an open redirect would be a phishing aid. No
	// control character (a NUL, a line break) may reach the Location header.
	if !strings.HasPrefix(back, "/manager/") || strings.HasPrefix(back, "//") || strings.Contains(back, "\\") ||
		strings.ContainsFunc(back, unicode.IsControl) {
		back = "/manager/requests"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// setLangCookie keeps the browser's console language (consoleLang).
func (s *Server) setLangCookie(w http.ResponseWriter, lang i18n.Lang) {
	http.SetCookie(w, consoleCookie(managerLangCookie, lang.String(), int(managerLangMaxAge.Seconds())))
}
