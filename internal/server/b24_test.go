package server

import (
	"context"
	"encoding/json"

	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/jobs"
	"b24learn/internal/metrics"
	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
)

// b24Env is the app on httptest against b24sim and a private database.
type b24Env struct {
	t     *testing.T
	app   *httptest.Server
	sim   *b24sim.Server
	pool  *pgxpool.Pool
	kr    *secret.Keyring
	river *river.Client[pgx.Tx]

	mu  sync.Mutex
	now time.Time
}

func newB24Env(t *testing.T) *b24Env { t.Helper(); return newB24EnvWith(t, nil) }

// newB24EnvWith lets a test change the app's configuration before it starts.
func newB24EnvWith(t *testing.T, patch func(*config.Config)) *b24Env {
	t.Helper()
	return newB24EnvServer(t, patch, nil)
}

// newB24EnvServer also lets a test change the server (its bounds) before
// it takes its routes.
func newB24EnvServer(t *testing.T, patch func(*config.Config), change func(*Server)) *b24Env {
	t.Helper()
	e := &b24Env{t: t, pool: pgtest.NewPool(t), kr: apptest.Keyring(t), now: time.Now()}
	var h http.Handler
	e.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.app.Close)
	e.sim = b24sim.Start(b24sim.Options{AppURL: e.app.URL, Rate: -1})
	t.Cleanup(e.sim.Close)
	rc := apptest.Inserter(t, e.pool)
	e.river = rc
	cfg := &config.Config{
		PublicURL: mustURL(t, e.app.URL), B24OAuthURLs: []string{e.sim.URL},
		B24ClientID: e.sim.ClientID(), B24ClientSecret: e.sim.ClientSecret(), Keyring: e.kr,
		B24AllowPrivateHosts: true, // b24sim's portals listen on loopback over http
	}
	if patch != nil {
		patch(cfg)
	}
	// Every request here comes from one address, and some tests send more
	// frames for portals not on record than its share of Unknown allows; the
	// gate's tests cover that share.
	limits := DefaultVerifyLimits()
	limits.UnknownPerAddress = Bucket{}
	s := newServer(Deps{Log: slog.New(slog.DiscardHandler), Config: cfg, Pool: e.pool, River: rc,
		Metrics: metrics.New(), Now: e.clock, VerifyLimits: &limits, Clients: testClients(cfg, e.pool)})
	if change != nil {
		change(s)
	}
	h = s.routes()
	return e
}

func (e *b24Env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *b24Env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// promotedTab configures a portal, makes one of its non-admins an admin in
// Bitrix24 and opens the app as them: the tab's session says "admin".
func (e *b24Env) promotedTab(seed int64) (p *b24sim.Portal, u int64, tab string) {
	e.t.Helper()
	p = e.addPortal(seed)
	e.configured(p)
	u = p.NonAdminID()
	if err := p.UpdateUser(u, func(x *b24sim.User) { x.Admin = true }); err != nil {
		e.t.Fatal(err)
	}
	return p, u, e.open(p, u).session()
}

func (e *b24Env) addPortal(seed int64) *b24sim.Portal {
	return e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(seed, 12, 3)})
}

type page struct {
	status int
	header http.Header
	body   string
}

func (p page) session() string {
	// The page embeds the token for its scripts and forms; accept the ways
	// it may do so (meta tag, data attribute, hidden field).
	for _, re := range []string{`name="b24learn-session" content="([^"]+)"`, `data-session="([^"]+)"`, `name="session" value="([^"]+)"`} {
		if m := regexp.MustCompile(re).FindStringSubmatch(p.body); m != nil {
			return html.UnescapeString(m[1])
		}
	}
	return ""
}

func readPage(t *testing.T, resp *http.Response, err error) page {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header, string(b)}
}

func (e *b24Env) open(p *b24sim.Portal, userID int64) page {
	e.t.Helper()
	resp, err := p.Open(context.Background(), nil, userID)
	return readPage(e.t, resp, err)
}

// post sends a frame POST with query and body as given (for forgeries).
func (e *b24Env) post(path string, q, body url.Values) page {
	e.t.Helper()
	resp, err := http.Post(e.app.URL+path+"?"+q.Encode(), "application/x-www-form-urlencoded", strings.NewReader(body.Encode()))
	return readPage(e.t, resp, err)
}

func (e *b24Env) state(token string) (page, appState) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.app.URL+"/app/state", nil)
	if token != "" {
		req.Header.Set("X-Session", token)
	}
	resp, err := http.DefaultClient.Do(req)
	pg := readPage(e.t, resp, err)
	var st appState
	if pg.status == http.StatusOK {
		if err := json.Unmarshal([]byte(pg.body), &st); err != nil {
			e.t.Fatalf("state body %q: %v", pg.body, err)
		}
	}
	return pg, st
}

func (e *b24Env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *b24Env) portal(member string) store.Portal {
	e.t.Helper()
	p, err := store.GetPortalByMemberID(context.Background(), e.pool, member)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// install runs the whole UI install: installer page, then installFinish.
func (e *b24Env) install(p *b24sim.Portal) page {
	e.t.Helper()
	p.Install()
	pg := e.open(p, p.AdminID())
	if pg.status != http.StatusOK {
		e.t.Fatalf("installer: %d %s", pg.status, pg.body)
	}
	p.FinishInstall(context.Background())
	return pg
}

func lastDelivery(t *testing.T, p *b24sim.Portal, event string) b24sim.Delivery {
	t.Helper()
	ds := p.Deliveries()
	for i := len(ds) - 1; i >= 0; i-- {
		if ds[i].Event == event {
			return ds[i]
		}
	}
	t.Fatalf("no %s delivered; deliveries: %+v", event, ds)
	return b24sim.Delivery{}
}

func origin(p *b24sim.Portal) string { return strings.TrimSuffix(p.PageURL(), "/") }

// installerScript is the installer page's script, which calls
// BX24.installFinish().
const installerScript = `<script src="/static/install.js"></script>`

// checkFrameHeaders checks a framed page's headers: the portal may frame it,
// and scripts come only from this server and Bitrix24's library, none inline,
// so a name a portal's user wrote cannot run as script even if escaping failed.
func checkFrameHeaders(t *testing.T, pg page, p *b24sim.Portal) {
	t.Helper()
	csp := pg.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'self' "+origin(p)) || strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q does not let %s frame the page", csp, origin(p))
	}
	if !strings.Contains(csp, "script-src 'self' https://api.bitrix24.com;") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q lets scripts come from elsewhere than this server and Bitrix24's library", csp)
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(pg.body, -1) {
		if !strings.Contains(tag, " src=") && !strings.Contains(tag, `type="application/json"`) { // data, never run
			t.Errorf("inline script %s: the CSP would block it", tag)
		}
	}
	if xfo := pg.header.Get("X-Frame-Options"); xfo != "" {
		t.Errorf("X-Frame-Options %q would block the frame", xfo)
	}
}

func TestInstallOpenUninstallReinstall(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p := e.addPortal(1)

	p.Install()
	inst := e.open(p, p.AdminID())
	if inst.status != http.StatusOK || !strings.Contains(inst.body, installerScript) {
		t.Fatalf("installer: %d %s", inst.status, inst.body)
	}
	checkFrameHeaders(t, inst, p)
	row := e.portal(p.MemberID())
	if !row.Installed() || row.Domain != p.Domain() || row.Origin() != origin(p) {
		t.Fatalf("stored portal: %+v", row)
	}
	binds := strings.Join(p.Bindings(), "\n")
	for _, ev := range []string{"ONAPPUNINSTALL", "ONAPPUPDATE"} {
		if !strings.Contains(binds, ev+" "+e.app.URL+"/b24/events") {
			t.Errorf("%s not bound to the events URL; bindings:\n%s", ev, binds)
		}
	}

	// installFinish: ONAPPINSTALL reaches the app, which keeps the token.
	p.FinishInstall(ctx)
	if d := lastDelivery(t, p, "ONAPPINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("ONAPPINSTALL answered %d %s", d.Status, d.Err)
	}
	if tok, _ := store.ApplicationToken(ctx, e.pool, e.kr, row.ID); tok != p.ApplicationToken() {
		t.Fatal("stored application token differs from the portal's")
	}

	// The admin opens the app: a session that reads the portal's state.
	app := e.open(p, p.AdminID())
	if app.status != http.StatusOK {
		t.Fatalf("app page: %d %s", app.status, app.body)
	}
	checkFrameHeaders(t, app, p)
	st, state := e.state(app.session())
	if st.status != http.StatusOK || !state.Admin || state.Domain != p.Domain() || state.InstallState != "installed" {
		t.Fatalf("state for admin: %d %+v %s", st.status, state, st.body)
	}
	// The activation form starts with the admin's name from profile.
	var admin b24sim.User
	for _, u := range p.Users() {
		if u.ID == p.AdminID() {
			admin = u
		}
	}
	if want := `id="activation-name" name="name" value="` + html.EscapeString(admin.Name+" "+admin.LastName) + `"`; admin.Name == "" || !strings.Contains(app.body, want) {
		t.Errorf("activation form not prefilled with the admin's name %q %q", admin.Name, admin.LastName)
	}
	// A non-admin gets a read-only page and a non-admin session.
	ro := e.open(p, p.NonAdminID())
	if ro.status != http.StatusOK {
		t.Fatalf("non-admin page: %d %s", ro.status, ro.body)
	}
	if _, s := e.state(ro.session()); s.Admin || s.UserID != p.NonAdminID() {
		t.Fatalf("non-admin session: %+v", s)
	}

	// Jobs of this portal stop at uninstall; another portal's do not.
	mine, err := e.river.Insert(ctx, jobs.SyncArgs{PortalID: row.ID, Trigger: syncer.TriggerManual}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.river.Insert(ctx, jobs.PreviewArgs{PortalID: row.ID + 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}

	p.Uninstall(ctx, false)
	if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("ONAPPUNINSTALL answered %d %s", d.Status, d.Err)
	}
	row = e.portal(p.MemberID())
	if row.Installed() || row.UninstalledAt.IsZero() {
		t.Fatalf("after uninstall: %+v", row)
	}
	if j, _ := e.river.JobGet(ctx, mine.Job.ID); j.State != rivertype.JobStateCancelled {
		t.Errorf("portal's job is %s, want cancelled", j.State)
	}
	if j, _ := e.river.JobGet(ctx, other.Job.ID); j.State != rivertype.JobStateAvailable {
		t.Errorf("other portal's job is %s, want available", j.State)
	}
	if st, _ := e.state(app.session()); st.status != http.StatusUnauthorized {
		t.Errorf("session after uninstall: %d, want 401", st.status)
	}

	// Reinstall: the same row, installed again, with the new application token.
	e.install(p)
	if d := lastDelivery(t, p, "ONAPPINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("second ONAPPINSTALL answered %d", d.Status)
	}
	if n := e.count(`SELECT count(*) FROM portals`); n != 1 {
		t.Fatalf("%d portal rows after reinstall, want 1", n)
	}
	again := e.portal(p.MemberID())
	if again.ID != row.ID || !again.Installed() {
		t.Fatalf("after reinstall: %+v", again)
	}
	if tok, _ := store.ApplicationToken(ctx, e.pool, e.kr, row.ID); tok != p.ApplicationToken() {
		t.Fatal("application token not replaced at reinstall")
	}
	if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK || pg.session() == "" {
		t.Fatalf("app after reinstall: %d", pg.status)
	}
}

func TestForgedFrameRequestsStoreNothing(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	a, b := e.addPortal(2), e.addPortal(3)
	a.Install()
	b.Install()

	frame := func(p *b24sim.Portal) (url.Values, url.Values) {
		_, q, body, err := p.FrameRequest(p.AdminID())
		if err != nil {
			t.Fatal(err)
		}
		return q, body
	}
	cases := map[string]func() (url.Values, url.Values){
		"unknown tokens": func() (url.Values, url.Values) {
			q, body := frame(a)
			body.Set("AUTH_ID", strings.Repeat("ab", 35))
			body.Set("REFRESH_ID", strings.Repeat("cd", 35))
			return q, body
		},
		"member_id of another portal": func() (url.Values, url.Values) {
			q, body := frame(a)
			body.Set("member_id", b.MemberID())
			return q, body
		},
		"DOMAIN of another portal": func() (url.Values, url.Values) {
			q, body := frame(a)
			q.Set("DOMAIN", b.Domain())
			return q, body
		},
		"portal B's tokens claiming to be A": func() (url.Values, url.Values) {
			q, body := frame(b)
			q.Set("DOMAIN", a.Domain())
			body.Set("member_id", a.MemberID())
			return q, body
		},
	}
	for name, build := range cases {
		for _, path := range []string{"/b24/install", "/b24/app"} {
			q, body := build()
			if pg := e.post(path, q, body); pg.status != http.StatusUnauthorized {
				t.Errorf("%s %s: %d, want 401", name, path, pg.status)
			}
		}
	}
	if n := e.count(`SELECT count(*) FROM portals`); n != 0 {
		t.Fatalf("%d portals stored after forged requests", n)
	}
	if len(a.Bindings())+len(b.Bindings()) != 0 {
		t.Fatalf("events bound after forged requests: %v %v", a.Bindings(), b.Bindings())
	}
	// A page outside Bitrix24 (no frame fields) is a clear 400.
	if pg := e.post("/b24/app", url.Values{}, url.Values{}); pg.status != http.StatusBadRequest {
		t.Errorf("empty POST: %d, want 400", pg.status)
	}
	// So is one without the refresh token that would prove it.
	q, body := frame(a)
	body.Del("REFRESH_ID")
	if pg := e.post("/b24/app", q, body); pg.status != http.StatusBadRequest {
		t.Errorf("no refresh token: %d, want 400", pg.status)
	}
	// A non-admin cannot install, even with genuine tokens.
	_, q, body, _ = a.FrameRequest(a.NonAdminID())
	if pg := e.post("/b24/install", q, body); pg.status != http.StatusForbidden {
		t.Errorf("non-admin install: %d, want 403", pg.status)
	}
	if n := e.count(`SELECT count(*) FROM portals`); n != 0 {
		t.Fatalf("%d portals stored after a non-admin install", n)
	}
}

func uninstallForm(p *b24sim.Portal, appToken string, clean bool) url.Values {
	c := "0"
	if clean {
		c = "1"
	}
	return url.Values{
		"event": {"ONAPPUNINSTALL"}, "event_handler_id": {"2"}, "data[LANGUAGE_ID]": {"en"}, "data[CLEAN]": {c},
		"ts": {"1766047124"}, "auth[domain]": {p.Domain()}, "auth[client_endpoint]": {p.ClientEndpoint()},
		"auth[member_id]": {p.MemberID()}, "auth[application_token]": {appToken},
	}
}

func TestEventsNeedTheApplicationToken(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p := e.addPortal(4)
	e.install(p)
	row := e.portal(p.MemberID())
	if _, err := settings.Save(ctx, e.pool, e.kr, row.ID, 1, func(s *settings.Settings) {
		s.LearnURL, s.Password = "https://acme.ispringlearn.com", "learn-secret"
	}); err != nil {
		t.Fatal(err)
	}
	postEvent := func(form url.Values) int {
		resp, err := http.PostForm(e.app.URL+"/b24/events", form)
		return readPage(t, resp, err).status
	}
	for name, tok := range map[string]string{"wrong": strings.Repeat("0", 32), "empty": "", "prefix": p.ApplicationToken()[:16]} {
		if st := postEvent(uninstallForm(p, tok, true)); st != http.StatusUnauthorized {
			t.Errorf("uninstall with %s token: %d, want 401", name, st)
		}
	}
	// ONAPPUPDATE with a made-up refresh token cannot replace the token.
	upd := url.Values{"event": {"ONAPPUPDATE"}, "auth[member_id]": {p.MemberID()}, "auth[domain]": {p.Domain()},
		"auth[refresh_token]": {strings.Repeat("ef", 35)}, "auth[application_token]": {strings.Repeat("1", 32)}}
	if st := postEvent(upd); st != http.StatusUnauthorized {
		t.Errorf("forged ONAPPUPDATE: %d, want 401", st)
	}
	after := e.portal(p.MemberID())
	if !after.Installed() || after.TokenExpiresAt.IsZero() {
		t.Fatalf("portal changed by forged events: %+v", after)
	}
	if tok, _ := store.ApplicationToken(ctx, e.pool, e.kr, row.ID); tok != p.ApplicationToken() {
		t.Fatal("application token changed by a forged event")
	}
	if e.count(`SELECT count(*) FROM portal_settings WHERE portal_id = $1 AND learn_password IS NOT NULL`, row.ID) != 1 {
		t.Fatal("settings erased by a forged event")
	}

	// A genuine update replaces the token and binds the events again.
	p.Update(ctx)
	if d := lastDelivery(t, p, "ONAPPUPDATE"); d.Status != http.StatusOK {
		t.Fatalf("ONAPPUPDATE answered %d", d.Status)
	}
	if tok, _ := store.ApplicationToken(ctx, e.pool, e.kr, row.ID); tok != p.ApplicationToken() {
		t.Fatal("ONAPPUPDATE did not store the new application token")
	}
	if !strings.Contains(strings.Join(p.Bindings(), "\n"), "ONAPPUNINSTALL "+e.app.URL+"/b24/events") {
		t.Fatalf("events not bound again after the update: %v", p.Bindings())
	}

	// The genuine uninstall with CLEAN erases secrets and credentials, once
	// uninstall.SettleDelay has passed.
	p.Uninstall(ctx, true)
	if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("ONAPPUNINSTALL answered %d", d.Status)
	}
	e.runErases(row)
	if e.count(`SELECT count(*) FROM portals WHERE id = $1 AND install_state = 'uninstalled'
		AND access_token IS NULL AND refresh_token IS NULL AND application_token IS NULL`, row.ID) != 1 {
		t.Fatal("CLEAN left secrets on the portal row")
	}
	if e.count(`SELECT count(*) FROM portal_settings WHERE portal_id = $1`, row.ID) != 0 {
		t.Fatal("CLEAN left the portal's settings")
	}
}

func TestSessionsAreBoundToTheirPortalAndExpire(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	a, b := e.addPortal(5), e.addPortal(6)
	e.install(a)
	e.install(b)
	tokA := e.open(a, a.AdminID()).session()
	tokB := e.open(b, b.AdminID()).session()
	if tokA == "" || tokB == "" || tokA == tokB {
		t.Fatal("no distinct sessions")
	}
	// Each session sees only its own portal, whatever the request says.
	for _, c := range []struct {
		tok    string
		domain string
	}{{tokA, a.Domain()}, {tokB, b.Domain()}} {
		req, _ := http.NewRequest(http.MethodGet, e.app.URL+"/app/state?portal_id=1&portal_id=2&member_id="+b.MemberID(), nil)
		req.Header.Set("X-Session", c.tok)
		resp, err := http.DefaultClient.Do(req)
		pg := readPage(t, resp, err)
		var st appState
		_ = json.Unmarshal([]byte(pg.body), &st)
		if pg.status != http.StatusOK || st.Domain != c.domain {
			t.Fatalf("state: %d %+v, want domain %s", pg.status, st, c.domain)
		}
	}
	// A session naming portal B signed with keys other than the app's, and a
	// tampered token, are refused.
	portalB := e.portal(b.MemberID())
	foreign := newSessionCodec(apptest.Keyring(t))
	forged, err := foreign.encode(Session{PortalID: portalB.ID, UserID: 1, Admin: true, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	tampered := []byte(tokA)
	tampered[len(tampered)/2] ^= 1
	for name, tok := range map[string]string{"foreign key": forged, "tampered": string(tampered), "missing": "", "garbage": "abc"} {
		if pg, _ := e.state(tok); pg.status != http.StatusUnauthorized {
			t.Errorf("%s session: %d, want 401", name, pg.status)
		}
	}
	// Past its expiry the session is refused.
	e.advance(sessionTTL + time.Second)
	if pg, _ := e.state(tokA); pg.status != http.StatusUnauthorized {
		t.Errorf("expired session: %d, want 401", pg.status)
	}
}

func TestRequireAdmin(t *testing.T) {
	t.Parallel()
	s := &Server{log: slog.New(slog.DiscardHandler), profiles: fakeProfiles{}, now: time.Now, proofs: newAdminProofs(),
		proofCalls: newAppGate(adminProofCallLimits(), 100)}
	h := s.requireAdmin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, c := range []struct {
		method string
		admin  bool
		auth   string
		want   int
	}{
		{http.MethodPost, true, fakeAuth(7, true), http.StatusNoContent},
		{http.MethodPost, true, fakeAuth(8, true), http.StatusUnauthorized}, // another user's token
		{http.MethodPost, true, "", http.StatusUnauthorized},                // no token to prove it with
		{http.MethodGet, true, "", http.StatusUnauthorized},                 // reads are proven too
		{http.MethodGet, true, fakeAuth(7, true), http.StatusNoContent},
		{http.MethodPost, false, fakeAuth(7, true), http.StatusForbidden},
	} {
		s.proofs = newAdminProofs() // each case asks anew
		req := httptest.NewRequest(c.method, "/app/x", nil)
		sess := Session{PortalID: 1, UserID: 7, Admin: c.admin, Auth: c.auth}
		req = req.WithContext(context.WithValue(req.Context(), sessionKey, sessionValue{sess: sess, portal: store.Portal{ID: 1}}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s admin=%v auth=%q: %d, want %d", c.method, c.admin, c.auth, rec.Code, c.want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/app/x", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("no session: %d, want 401", rec.Code)
	}
}

func TestRenamedPortalKeepsItsRowAndFrameOrigin(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p := e.addPortal(7)
	e.install(p)
	before := e.portal(p.MemberID())
	p.Rename("")
	pg := e.open(p, p.AdminID())
	if pg.status != http.StatusOK {
		t.Fatalf("app after rename: %d %s", pg.status, pg.body)
	}
	checkFrameHeaders(t, pg, p)
	after := e.portal(p.MemberID())
	if after.ID != before.ID || after.Domain != p.Domain() || after.Domain == before.Domain {
		t.Fatalf("after rename: %+v (before %+v)", after, before)
	}
}

func TestAdminOpenReconnectsAPortal(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p := e.addPortal(8)
	e.install(p)
	row := e.portal(p.MemberID())
	if _, err := e.pool.Exec(ctx, `UPDATE portals SET needs_reconnect = true, refresh_token = NULL WHERE id = $1`, row.ID); err != nil {
		t.Fatal(err)
	}
	if pg := e.open(p, p.NonAdminID()); pg.status != http.StatusOK {
		t.Fatalf("non-admin open: %d", pg.status)
	}
	if !e.portal(p.MemberID()).NeedsReconnect {
		t.Fatal("a non-admin's open replaced the portal's tokens")
	}
	if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK {
		t.Fatalf("admin open: %d", pg.status)
	}
	if e.portal(p.MemberID()).NeedsReconnect || e.count(`SELECT count(*) FROM portals WHERE id = $1 AND refresh_token IS NOT NULL`, row.ID) != 1 {
		t.Fatal("an admin's open did not restore the portal's tokens")
	}
}
