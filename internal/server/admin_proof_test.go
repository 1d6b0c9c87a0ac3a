package server

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/store"
)

// An admin opens the app, keeps the tab and is demoted in Bitrix24 (or
// dismissed as admin on the way out) without opening the app again. The tab's
// session says "admin" for its whole two hours; what it asks to change must
// be proven with Bitrix24 on the user's own token first, as every open is
// (a proof stands for adminProofTTL).
func TestDemotedAdminsOpenTabChangesNothing(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, u, tab := e.promotedTab(41)
	if pg := e.send(tab, "/app/preview", nil); pg.status != http.StatusAccepted {
		t.Fatalf("admin's preview: %d %.300s", pg.status, pg.body)
	}

	if err := p.UpdateUser(u, func(x *b24sim.User) { x.Admin = false }); err != nil {
		t.Fatal(err)
	}
	e.advance(adminProofTTL) // the last proof no longer stands
	for _, path := range []string{"/app/preview", "/app/sync", "/app/approve", "/app/provision"} {
		if pg := e.send(tab, path, url.Values{"user_id": {"1"}}); pg.status != http.StatusForbidden {
			t.Errorf("demoted admin's tab POST %s: %d %.200s, want 403", path, pg.status, pg.body)
		}
	}
	// Bitrix24's answer is kept: the tab is read-only from now on.
	if pg, st := e.state(tab); pg.status != http.StatusOK || st.Admin {
		t.Errorf("demoted admin's tab after the refusal: %d %+v, want read-only", pg.status, st)
	}
}

// The fresher token a page may send (X-B24-Auth, from BX24.js) is tried when
// the session's own no longer works, and proves only its own user: a
// demoted admin who got hold of a real admin's access token cannot lend
// their session the other's rights.
func TestAdminProofIsTheSessionUsersOwn(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, u, tab := e.promotedTab(42)
	p.ExpireTokens() // the session's token has lived its hour
	withToken := func(userID int64) page {
		t.Helper()
		_, _, body, err := p.FrameRequest(userID)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, e.app.URL+"/app/preview", nil)
		req.Header.Set(sessionHeader, tab)
		req.Header.Set(b24AuthHeader, body.Get("AUTH_ID"))
		resp, err := http.DefaultClient.Do(req)
		return readPage(t, resp, err)
	}
	if pg := e.send(tab, "/app/preview", nil); pg.status != http.StatusUnauthorized {
		t.Errorf("tab with only its expired token: %d %.200s, want 401", pg.status, pg.body)
	}
	if pg := withToken(u); pg.status != http.StatusAccepted {
		t.Errorf("admin's tab with their own fresh token: %d %.200s, want 202", pg.status, pg.body)
	}

	if err := p.UpdateUser(u, func(x *b24sim.User) { x.Admin = false }); err != nil {
		t.Fatal(err)
	}
	e.advance(adminProofTTL)
	if pg := withToken(p.AdminID()); pg.status != http.StatusUnauthorized {
		t.Errorf("demoted admin's tab with another admin's token: %d %.200s, want 401", pg.status, pg.body)
	}
	if pg := withToken(u); pg.status != http.StatusForbidden {
		t.Errorf("demoted admin's tab with their own token: %d %.200s, want 403", pg.status, pg.body)
	}
}

// configured installs the app on p and saves settings a sync can run with,
// the portal activated.
func (e *b24Env) configured(p *b24sim.Portal) {
	e.t.Helper()
	e.install(p)
	apptest.Configure(e.t, e.pool, e.kr, e.portal(p.MemberID()).ID, apptest.Settings{LearnURL: "https://acme.ispringlearn.com",
		LearnEmail: "admin@acme.example", LearnPassword: "secret", FirstRun: "03:00", Selected: []int64{1}}, true)
}

// fakeProfiles stands for Bitrix24's profile in the tests that mint their
// sessions without a portal behind them: fakeAuth names who holds a token.
type fakeProfiles struct{}

func fakeAuth(userID int64, admin bool) string {
	return "fake:" + strconv.FormatInt(userID, 10) + ":" + strconv.FormatBool(admin)
}

func (fakeProfiles) Profile(_ context.Context, _ store.Portal, token string) (bitrix24.Profile, error) {
	parts := strings.Split(token, ":")
	if len(parts) != 3 || parts[0] != "fake" {
		return bitrix24.Profile{}, bitrix24.ErrInvalidToken
	}
	id, _ := strconv.ParseInt(parts[1], 10, 64)
	return bitrix24.Profile{ID: id, Admin: parts[2] == "true"}, nil
}

// A dismissed admin's open tab, whose tokens Bitrix24 now refuses, costs
// Bitrix24 its profile calls once per adminRefusalTTL, not per change it
// posts. The refusal stands only for the tokens it was given for: the same
// tab with a fresh token of the user, as after a re-promotion, is let
// through at once.
func TestRefusedTabAsksBitrix24OncePerWhile(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, u, tab := e.promotedTab(43)
	token := func() string {
		t.Helper()
		_, _, body, err := p.FrameRequest(u)
		if err != nil {
			t.Fatal(err)
		}
		return body.Get("AUTH_ID")
	}
	post := func(auth string) page {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.app.URL+"/app/preview", nil)
		req.Header.Set(sessionHeader, tab)
		req.Header.Set(b24AuthHeader, auth)
		resp, err := http.DefaultClient.Do(req)
		return readPage(t, resp, err)
	}
	profiles := func() int { return p.Requests()["profile"] }
	stale := token()
	p.ExpireTokens() // both the session's token and the page's
	before := profiles()
	for i := range 5 {
		if pg := post(stale); pg.status != http.StatusUnauthorized {
			t.Fatalf("POST %d with refused tokens: %d %.200s, want 401", i, pg.status, pg.body)
		}
	}
	if got := profiles() - before; got != 2 {
		t.Fatalf("5 POSTs with refused tokens made %d profile calls, want 2 (the session's token and the page's, once)", got)
	}
	e.advance(adminRefusalTTL)
	if pg := post(stale); pg.status != http.StatusUnauthorized || profiles()-before != 4 {
		t.Fatalf("after adminRefusalTTL: %d, %d profile calls; want 401 and Bitrix24 asked again", pg.status, profiles()-before)
	}
	if pg := post(token()); pg.status != http.StatusAccepted {
		t.Fatalf("the tab with a fresh token of the user: %d %.200s, want 202", pg.status, pg.body)
	}
}
