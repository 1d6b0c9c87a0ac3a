package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
	"b24learn/internal/store"
)

// adminTab opens the app as user u of p, made an admin first.
func (e *b24Env) adminTab(p *b24sim.Portal, u int64) string {
	e.t.Helper()
	if err := p.UpdateUser(u, func(x *b24sim.User) { x.Admin = true }); err != nil {
		e.t.Fatal(err)
	}
	tab := e.open(p, u).session()
	if tab == "" {
		e.t.Fatalf("no session for user %d", u)
	}
	return tab
}

// proofPost posts to an admin route with a page token of the caller's
// choosing (X-B24-Auth), as a script may.
func (e *b24Env) proofPost(tab, auth string) page {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.app.URL+"/app/preview", nil)
	req.Header.Set(sessionHeader, tab)
	req.Header.Set(b24AuthHeader, auth)
	resp, err := http.DefaultClient.Do(req)
	return readPage(e.t, resp, err)
}

// busyRefusal checks a refusal for the empty buckets of the admin proof's
// calls: 429, Retry-After in seconds, the reason in the session's language.
func busyRefusal(t *testing.T, what string, pg page, lang i18n.Lang, retry int) {
	t.Helper()
	want := msgAdminProofBusy.in(lang, retry)
	if pg.status != http.StatusTooManyRequests || pg.header.Get("Retry-After") != fmt.Sprint(retry) ||
		strings.TrimSpace(pg.body) != want {
		t.Errorf("%s: %d, Retry-After %q, body %q; want 429, %d and %q", what, pg.status, pg.header.Get("Retry-After"),
			pg.body, retry, want)
	}
}

// The attacker: an admin's session whose tokens Bitrix24 no longer accepts
// (an admin dismissed, who keeps the tab), posting from a script with a
// made-up X-B24-Auth each time, so no refusal is remembered for the tokens:
// each request would cost Bitrix24 two profile calls. The user's bucket
// lets 20 calls through, then each request is refused before Bitrix24 is
// asked, with Retry-After and the reason in the user's language (Russian
// here, English in the portal test); it refills at one call every 3 s. The
// status panel's proof draws on the same bucket.
func TestAdminProofCallsBoundedPerUser(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(44, 12, 3), Lang: "ru"})
	e.configured(p)
	tab := e.adminTab(p, p.NonAdminID())
	p.ExpireTokens()
	profiles := func() int { return p.Requests()["profile"] }
	before := profiles()
	var refused []page
	for i := range 30 {
		switch pg := e.proofPost(tab, fmt.Sprintf("made-up-%d", i)); pg.status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			refused = append(refused, pg)
		default:
			t.Fatalf("request %d: %d %.200s", i, pg.status, pg.body)
		}
	}
	if got := profiles() - before; got != adminProofCallLimits().PerUser.Burst {
		t.Fatalf("30 requests with made-up tokens made %d profile calls, want %d", got, adminProofCallLimits().PerUser.Burst)
	}
	if len(refused) != 20 {
		t.Fatalf("%d of 30 requests refused, want 20 (10 answered with two calls each)", len(refused))
	}
	busyRefusal(t, "request past the user's bucket", refused[0], i18n.RU, 3)
	pg := e.get(tab, "/app/status")
	busyRefusal(t, "status panel past the user's bucket", pg, i18n.RU, 3)
	if got := profiles() - before; got != 20 {
		t.Errorf("the refused requests made %d profile calls, want none", got-20)
	}

	// 3 s later one call is back: the session's token is asked (and
	// refused), the page's is not.
	e.advance(3 * time.Second)
	busyRefusal(t, "request 3 s later", e.proofPost(tab, "made-up-again"), i18n.RU, 3)
	if got := profiles() - before; got != 21 {
		t.Errorf("3 s later: %d profile calls in all, want 21", got)
	}
}

// The attacker: a portal with many users (a self-hosted portal makes as
// many admins as it likes), a script posting as each in turn, each within
// their own bucket. The portal's bucket (60 calls, then 30 a minute) is
// spent by the first three and refuses the fourth before Bitrix24 is asked;
// another portal's admin is not held back.
func TestAdminProofCallsBoundedPerPortal(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p := e.addPortal(45)
	e.configured(p)
	var tabs []string
	for _, u := range p.Users() {
		if len(tabs) < 4 && u.Active && !u.Admin && !u.Extranet {
			tabs = append(tabs, e.adminTab(p, u.ID))
		}
	}
	if len(tabs) < 4 {
		t.Fatalf("%d users to open the app as, want 4", len(tabs))
	}
	q := e.addPortal(46)
	e.configured(q)
	other := e.adminTab(q, q.NonAdminID())
	p.ExpireTokens()
	q.ExpireTokens()
	profiles := func(p *b24sim.Portal) int { return p.Requests()["profile"] }
	before := profiles(p)
	for i, tab := range tabs[:3] {
		for j := range 12 {
			if pg := e.proofPost(tab, fmt.Sprintf("made-up-%d-%d", i, j)); pg.status != http.StatusUnauthorized && pg.status != http.StatusTooManyRequests {
				t.Fatalf("user %d request %d: %d %.200s", i, j, pg.status, pg.body)
			}
		}
	}
	perPortal := adminProofCallLimits().PerPortal.Burst
	if got := profiles(p) - before; got != perPortal {
		t.Fatalf("three users' requests made %d profile calls, want %d", got, perPortal)
	}
	// The fourth user's own bucket is full; the portal's is empty (it
	// refills at one call every 2 s, the user's at one every 3 s).
	busyRefusal(t, "fourth user of the portal", e.proofPost(tabs[3], "made-up-fourth"), i18n.EN, 2)
	if got := profiles(p) - before; got != perPortal {
		t.Errorf("the fourth user's request made %d profile calls, want none", got-perPortal)
	}

	otherBefore := profiles(q)
	if pg := e.proofPost(other, "made-up-other"); pg.status != http.StatusUnauthorized || profiles(q)-otherBefore != 2 {
		t.Errorf("another portal's admin: %d after %d profile calls, want 401 after 2", pg.status, profiles(q)-otherBefore)
	}
}

// User ids in the buckets come from sessions, and a portal may have any
// number of users: the buckets are capped (least recently used dropped)
// and those full again are forgotten, so memory stays bounded whatever
// ids come.
func TestAdminProofBucketsStayBounded(t *testing.T) {
	t.Parallel()
	const maxKeys = 500
	now := time.Unix(1_800_000_000, 0)
	s := &Server{log: slog.New(slog.DiscardHandler), profiles: fakeProfiles{}, now: func() time.Time { return now },
		proofs: newAdminProofs(), proofCalls: newAppGate(adminProofCallLimits(), maxKeys)}
	floodInventedUsers(t, s.proofCalls, maxKeys, adminProofCallLimits().PerPortal, &now, func(i int) int {
		user := int64(1_000_000 + i*7919)
		sess := Session{PortalID: int64(1 + i%3), UserID: user, Admin: true, Auth: fakeAuth(user, true)}
		req, _ := http.NewRequest(http.MethodPost, "/app/sync", nil)
		if err := s.proveAdmin(t.Context(), store.Portal{ID: sess.PortalID}, sess, req); err != nil {
			return statusOf(err)
		}
		return http.StatusOK
	})
	// Once every bucket has filled up again, the next request finds the
	// others gone.
	now = now.Add(10 * time.Minute)
	sess := Session{PortalID: 1, UserID: 5, Admin: true, Auth: fakeAuth(5, true)}
	req, _ := http.NewRequest(http.MethodPost, "/app/sync", nil)
	if err := s.proveAdmin(t.Context(), store.Portal{ID: 1}, sess, req); err != nil {
		t.Fatal(err)
	}
	if u, p := s.proofCalls.buckets.len(), s.proofCalls.portals.len(); u != 1 || p != 1 {
		t.Errorf("after the buckets filled up: %d user and %d portal buckets, want 1 and 1", u, p)
	}
}

// The page shows the reason of a request refused for the admin proof's
// empty bucket (a plain-text 429), not "the server could not be reached":
// here a script spent the admin's bucket with the tab's session, and the
// admin then searches for an employee.
func TestAdminProofBusyReasonInBrowser(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	b := newBrowserEnvWith(t, browserOptions{learnSeed: 1, now: clock.Now})
	p := b.installPortal("ru", b24sim.GenerateOrg(47, 20, 3))
	b.openApp(p)
	b.waitFor("the People section", `document.getElementById('people-search')`)
	var tab string
	b.mustEval(`document.getElementById('app').dataset.session`, &tab)
	clock.advance(adminProofTTL) // the open's proof no longer stands
	p.ExpireTokens()
	for i := range 10 { // two profile calls each
		req, _ := http.NewRequest(http.MethodPost, b.cfg.PublicURL.String()+"/app/preview", nil)
		req.Header.Set(sessionHeader, tab)
		req.Header.Set(b24AuthHeader, fmt.Sprintf("made-up-%d", i))
		resp, err := http.DefaultClient.Do(req)
		if pg := readPage(t, resp, err); pg.status != http.StatusUnauthorized {
			t.Fatalf("script's request %d: %d %.200s", i, pg.status, pg.body)
		}
	}
	b.mustEval(`(() => { document.getElementById('people-q').value = 'Ivan';
		document.getElementById('people-search').requestSubmit(); return true; })()`, nil)
	b.waitFor("the search's failure", `!document.getElementById('people-error').hidden`)
	var said string
	b.mustEval(`document.getElementById('people-error').textContent`, &said)
	if want := msgAdminProofBusy.in(i18n.RU, 3); said != want {
		t.Errorf("the search past the bucket says %q, want %q", said, want)
	}
	if errs := b.jsErrors(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %q", errs)
	}
}
