package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"b24learn/internal/i18n"
)

// The refusals of the session middleware speak the session's language: a
// read-only user, a session ended by a reinstall and an expired session; a
// token that names no session gets English.
func TestSessionRefusalsInSessionLanguage(t *testing.T) {
	e := newSettingsEnv(t)
	for _, c := range []struct {
		member, b24Lang string
		lang            i18n.Lang
	}{{"lang-ru", "ua", i18n.RU}, {"lang-en", "en", i18n.EN}} {
		p := e.addPortal(c.member, c.b24Lang)

		_, readOnly := e.session(p, 7, false, c.b24Lang)
		r := e.do(http.MethodPost, "/app/sync", readOnly, nil)
		want := i18n.T(c.lang, "msg.admin_only")
		if r.status != http.StatusForbidden || !strings.Contains(r.body, want) {
			t.Errorf("%s read-only sync: %d %q, want 403 %q", c.member, r.status, r.body, want)
		}

		// A token minted longer ago than a session lives.
		clock := e.s.now
		e.s.now = func() time.Time { return clock().Add(-sessionTTL - time.Minute) }
		_, expired := e.session(p, 1, true, c.b24Lang)
		e.s.now = clock
		r = e.do(http.MethodGet, "/app/state", expired, nil)
		want = i18n.T(c.lang, "msg.session_missing")
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, want) {
			t.Errorf("%s expired session: %d %q, want 401 %q", c.member, r.status, r.body, want)
		}

		_, old := e.session(p, 1, true, c.b24Lang)
		e.addPortal(c.member, c.b24Lang) // installed again: older sessions end
		r = e.do(http.MethodGet, "/app/state", old, nil)
		want = i18n.T(c.lang, "msg.reinstalled")
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, want) {
			t.Errorf("%s reinstalled: %d %q, want 401 %q", c.member, r.status, r.body, want)
		}
	}

	r := e.do(http.MethodGet, "/app/state", "garbled", nil)
	if want := i18n.T(i18n.EN, "msg.session_missing"); r.status != http.StatusUnauthorized || !strings.Contains(r.body, want) {
		t.Errorf("garbled token: %d %q, want 401 %q", r.status, r.body, want)
	}
}
