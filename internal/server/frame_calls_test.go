package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
	"b24learn/internal/metrics"
)

// frameBusy checks a frame open refused for the empty buckets of the frame
// opens' profile calls: 429, Retry-After in seconds, the reason in the
// frame's language.
func frameBusy(t *testing.T, what string, pg page, lang i18n.Lang, retry int) {
	t.Helper()
	want := msgFrameBusy.in(lang, retry)
	if pg.status != http.StatusTooManyRequests || pg.header.Get("Retry-After") != fmt.Sprint(retry) ||
		strings.TrimSpace(pg.body) != want {
		t.Errorf("%s: %d, Retry-After %q, body %.200q; want 429, %d and %q", what, pg.status,
			pg.header.Get("Retry-After"), pg.body, retry, want)
	}
}

// profiles is how many `profile` calls b24sim has answered for p.
func profiles(p *b24sim.Portal) int { return p.Requests()["profile"] }

// employees are up to n active employees of p who are not admins.
func employees(p *b24sim.Portal, n int) []int64 {
	var out []int64
	for _, u := range p.Users() {
		if u.Active && !u.Admin && !u.Extranet && len(out) < n {
			out = append(out, u.ID)
		}
	}
	return out
}

// home is employee i's own client address (an IPv6 /64 each).
func home(seed int64, i int) string { return fmt.Sprintf("2001:db8:%x:%x::1", seed, i) }

// The attacker: an ordinary employee replaying their own frame POST, to the
// app page and to the installer alike, each with a fresh token the OAuth
// server confirms, from a few addresses of theirs so that the verification
// gate's per-address bucket does not stop them first. Their bucket lets 20
// profile calls through, then each open is refused before Bitrix24 is
// asked, with Retry-After and the reason in the frame's language; it
// refills at one call every 15 s.
func TestFrameOpensBoundedPerUser(t *testing.T) {
	t.Parallel()
	e := newGateEnv(t, DefaultVerifyLimits())
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(48, 12, 3), Lang: "ru"})
	e.configured(p)
	u := p.NonAdminID()
	before := profiles(p)
	var refused []page
	for i := range 40 {
		path := "/b24/app"
		if i%4 == 3 {
			path = "/b24/install"
		}
		switch pg := e.frameFrom(p, u, path, home(48, i/10)); pg.status {
		case http.StatusOK, http.StatusForbidden: // the page; the installer refuses non-admins
		case http.StatusTooManyRequests:
			refused = append(refused, pg)
		default:
			t.Fatalf("open %d (%s): %d %.200s", i, path, pg.status, pg.body)
		}
	}
	perUser := frameCallLimits().PerUser.Burst
	if got := profiles(p) - before; got != perUser {
		t.Fatalf("40 opens by one employee made %d profile calls, want %d", got, perUser)
	}
	if len(refused) != 40-perUser {
		t.Fatalf("%d of 40 opens refused, want %d", len(refused), 40-perUser)
	}
	frameBusy(t, "open past the user's bucket", refused[0], i18n.RU, 15)

	// 15 s later one call is back, and only one.
	e.advance(15 * time.Second)
	if pg := e.frameFrom(p, u, "", home(48, 0)); pg.status != http.StatusOK {
		t.Fatalf("open 15 s later: %d %.200s", pg.status, pg.body)
	}
	frameBusy(t, "second open 15 s later", e.frameFrom(p, u, "", home(48, 0)), i18n.RU, 15)
	if got := profiles(p) - before; got != perUser+1 {
		t.Errorf("after 15 s: %d profile calls in all, want %d", got, perUser+1)
	}
	// Another employee of the portal is not held back.
	if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK {
		t.Errorf("the admin's open: %d %.200s", pg.status, pg.body)
	}
}

// The attacker: eight employees of one portal, each replaying frame POSTs
// from their own address within their own bucket. The portal's bucket (120
// at once, then 20 a minute) bounds them all: a minute later the
// verification gate lets all of their 40 opens through, the portal's bucket
// 20 of them. Another portal's employees are not held back.
func TestFrameOpensBoundedPerPortal(t *testing.T) {
	t.Parallel()
	e := newGateEnv(t, DefaultVerifyLimits())
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(49, 30, 3)})
	e.configured(p)
	users := employees(p, 8)
	if len(users) < 8 {
		t.Fatalf("%d employees to open the app as, want 8", len(users))
	}
	q := e.addPortal(50)
	e.configured(q)
	opens := func(n int) (refused []page) {
		for i, u := range users {
			for range n {
				switch pg := e.frameFrom(p, u, "", home(49, i)); pg.status {
				case http.StatusOK:
				case http.StatusTooManyRequests:
					refused = append(refused, pg)
				default:
					t.Fatalf("user %d: %d %.200s", u, pg.status, pg.body)
				}
			}
		}
		return refused
	}
	before := profiles(p)
	refused := opens(frameCallLimits().PerUser.Burst)
	// The installer's open took one of the portal's tokens.
	if got, want := profiles(p)-before, frameCallLimits().PerPortal.Burst-1; got != want {
		t.Fatalf("8 employees' opens made %d profile calls, want %d", got, want)
	}
	// The sixth user found the portal's bucket empty: one call every 3 s.
	frameBusy(t, "open past the portal's bucket", refused[0], i18n.EN, 3)

	e.advance(time.Minute + time.Second)
	before = profiles(p)
	refused = opens(5)
	if got := profiles(p) - before; got != 20 {
		t.Errorf("a minute later, 40 opens made %d profile calls, want 20", got)
	}
	if len(refused) != 20 {
		t.Errorf("a minute later, %d of 40 opens refused, want 20", len(refused))
	}
	if pg := e.open(q, q.NonAdminID()); pg.status != http.StatusOK {
		t.Errorf("another portal's employee: %d %.200s", pg.status, pg.body)
	}
}

// People are never refused: an admin who installs the app, reloads it a
// dozen times in a row, then opens it every 15 s for ten minutes; and a
// portal's employees who have opened the app before, each from their own
// address, opening it at 9:00, a hundred at once and a hundred more over the
// next five minutes. (This passes without the bounds too: it keeps their
// numbers from being made too tight.)
func TestFrameOpensByPeopleNotRefused(t *testing.T) {
	t.Parallel()
	e := newGateEnv(t, DefaultVerifyLimits())
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(51, 260, 6)})
	e.install(p)
	admin := p.AdminID()
	for i := range 12 {
		if pg := e.open(p, admin); pg.status != http.StatusOK {
			t.Fatalf("admin's reload %d: %d %.200s", i, pg.status, pg.body)
		}
	}
	for i := range 40 {
		e.advance(15 * time.Second)
		if pg := e.open(p, admin); pg.status != http.StatusOK {
			t.Fatalf("admin's open %d: %d %.200s", i, pg.status, pg.body)
		}
	}
	staff := employees(p, 200)
	if len(staff) < 200 {
		t.Fatalf("%d employees, want 200", len(staff))
	}
	// Yesterday each opened the app once (the gate's bucket for addresses
	// not yet seen allows one every 2 s).
	for i, u := range staff {
		e.advance(2 * time.Second)
		if pg := e.frameFrom(p, u, "", home(51, i)); pg.status != http.StatusOK {
			t.Fatalf("employee %d's first open: %d %.200s", i, pg.status, pg.body)
		}
	}
	e.advance(24 * time.Hour)
	for i, u := range staff {
		if i >= 100 {
			e.advance(3 * time.Second)
		}
		if pg := e.frameFrom(p, u, "", home(51, i)); pg.status != http.StatusOK {
			t.Fatalf("employee %d of the 9:00 rush: %d %.200s", i, pg.status, pg.body)
		}
	}
}

// User ids come from the OAuth server's answers, and a portal may have any
// number of users: the buckets are capped (least recently used dropped) and
// those full again are forgotten, so memory stays bounded whatever ids
// come. An answer without a user id takes from the portal's bucket alone.
func TestFrameBucketsStayBounded(t *testing.T) {
	t.Parallel()
	const maxKeys = 500
	now := time.Unix(1_800_000_000, 0)
	s := &Server{log: slog.New(slog.DiscardHandler), metrics: metrics.New(), now: func() time.Time { return now },
		frameCalls: newAppGate(frameCallLimits(), maxKeys)}
	open := func(member string, user int64) int {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/b24/app", nil)
		s.admitFrameCalls(w, r, bitrix24.AppRequest{Lang: "en"},
			verified{token: bitrix24.Token{MemberID: member, UserID: user}})
		return w.Code
	}
	floodInventedUsers(t, s.frameCalls, maxKeys, frameCallLimits().PerPortal, &now, func(i int) int {
		return open(fmt.Sprintf("member-%d", i%3), int64(1_000_000+i*7919))
	})
	// Once every bucket has filled up again, the next open finds the
	// others gone; one without a user id makes no user bucket.
	now = now.Add(10 * time.Minute)
	if code := open("member-x", 0); code != http.StatusOK {
		t.Fatalf("open without a user id: %d", code)
	}
	if u, p := s.frameCalls.buckets.len(), s.frameCalls.portals.len(); u != 0 || p != 1 {
		t.Errorf("after the buckets filled up: %d user and %d portal buckets, want 0 and 1", u, p)
	}
}

// A refused frame open writes its access line and nothing more: an
// employee's script past the buckets, the verification gate's or the frame
// opens', would otherwise add a warning for every request it keeps sending.
func TestRefusedFrameOpensLogOnlyTheirAccessLine(t *testing.T) {
	t.Parallel()
	e := newGateEnv(t, DefaultVerifyLimits())
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(52, 12, 3)})
	e.configured(p)
	u := p.NonAdminID()
	for i := range frameCallLimits().PerUser.Burst {
		if pg := e.frameFrom(p, u, "", home(52, 0)); pg.status != http.StatusOK {
			t.Fatalf("open %d: %d %.200s", i, pg.status, pg.body)
		}
	}
	// From a second address: 20 refused by the user's bucket of profile
	// calls, then 5 by the gate's bucket of the address.
	mark := len(e.logs.String())
	const refused = 25
	for i := range refused {
		if pg := e.frameFrom(p, u, "", home(52, 1)); pg.status != http.StatusTooManyRequests {
			t.Fatalf("replay %d: %d %.200s, want 429", i, pg.status, pg.body)
		}
	}
	if got := e.refused(refusedFrameCalls); got != 20 {
		t.Errorf("%d refusals for the profile calls counted, want 20", got)
	}
	lines := strings.Split(strings.TrimSpace(e.logs.String()[mark:]), "\n")
	if len(lines) != refused {
		t.Errorf("%d refused opens wrote %d log lines, want one each:\n%s", refused, len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, "msg=http ") || !strings.Contains(l, "status=429") {
			t.Errorf("log line of a refused open is not its access line: %.300s", l)
		}
	}
}

// floodInventedUsers sends 20,000 requests of invented users of three
// portals through gate, 1 ms apart: try makes request i and returns its
// status. The users' buckets must stay within maxKeys all along, and the
// three portals' buckets (perPortal) must refuse most.
func floodInventedUsers(t *testing.T, gate *appGate, maxKeys int, perPortal Bucket, now *time.Time, try func(i int) int) {
	t.Helper()
	ok, busy := 0, 0
	for i := range 20000 {
		switch code := try(i); code {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			busy++
		default:
			t.Fatalf("request %d: %d", i, code)
		}
		if n := gate.buckets.len(); n > maxKeys {
			t.Fatalf("after %d invented users: %d user buckets, cap %d", i+1, n, maxKeys)
		}
		*now = now.Add(time.Millisecond)
	}
	if ok > 3*perPortal.Burst+3*10 || busy == 0 {
		t.Errorf("%d admitted, %d refused: the portals' buckets did not bound the requests", ok, busy)
	}
	if n := gate.portals.len(); n != 3 {
		t.Errorf("%d portal buckets, want 3", n)
	}
}
