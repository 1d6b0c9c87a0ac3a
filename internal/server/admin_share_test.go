package server

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
	"b24learn/internal/store"
)

// The attacker: the portal's employees, each at their own address where
// they opened the app for real (so it is remembered for the portal), forge
// frame POSTs naming the portal as fast as their address buckets allow,
// and strangers empty the strangers' bucket. Together they empty the
// portal's users' bucket, and the gate refuses them; the admin, at the
// address Bitrix24 proved them an admin from, still gets in.
func TestEmployeesCannotSpendTheAdminsVerifications(t *testing.T) {
	t.Parallel()
	limits := DefaultVerifyLimits()
	e := newGateEnv(t, limits)
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(60, 30, 3)})
	e.install(p)
	const office = "198.51.100.30"
	if pg := e.openFrom(p, p.AdminID(), office); pg.status != http.StatusOK {
		t.Fatalf("admin opens the app from the office: %d %.200s", pg.status, pg.body)
	}
	staff := employees(p, 8)
	if len(staff) < 8 {
		t.Fatalf("%d employees, want 8", len(staff))
	}
	for i, u := range staff {
		if pg := e.openFrom(p, u, home(60, i)); pg.status != http.StatusOK {
			t.Fatalf("employee %d opens the app at home: %d %.200s", u, pg.status, pg.body)
		}
	}

	var flood []attack
	for i := range staff {
		for range limits.PerAddress.Burst {
			flood = append(flood, e.forgedFrame("/b24/app", p.MemberID(), home(60, i)))
		}
	}
	for i := range 2 * limits.PerPortal.Burst {
		flood = append(flood, e.forgedFrame("/b24/app", p.MemberID(), fmt.Sprintf("2001:db8:99:%x::1", i)))
	}
	byCode, _ := e.flood(flood)
	t.Logf("flood of %d forged frames: %v", len(flood), byCode)
	if e.refused(refusedPortalUsers) == 0 || e.refused(refusedPortal) == 0 {
		t.Fatalf("the flood did not empty the portal's buckets: portal_users_limit %d, portal_limit %d refusals",
			e.refused(refusedPortalUsers), e.refused(refusedPortal))
	}

	for i := range 5 {
		if pg := e.openFrom(p, p.AdminID(), office); pg.status != http.StatusOK {
			t.Fatalf("admin's open %d from the office after the employees' flood: %d %.200s", i, pg.status, pg.body)
		}
	}
	if n := e.refused("portal_admins_limit"); n != 0 {
		t.Errorf("%d refusals from the admins' bucket, want none", n)
	}
}

// emptyFramePortalBucket has the portal's employees, each from their own
// address and within their own bucket, open the app for real until the
// portal's bucket of frame opens refuses one; it returns that refusal.
func emptyFramePortalBucket(t *testing.T, e *gateEnv, p *b24sim.Portal, seed int64) page {
	t.Helper()
	staff := employees(p, 10)
	if len(staff) < 10 {
		t.Fatalf("%d employees, want 10", len(staff))
	}
	for range 14 {
		for i, u := range staff {
			switch pg := e.frameFrom(p, u, "", home(seed, i)); pg.status {
			case http.StatusOK:
			case http.StatusTooManyRequests:
				return pg
			default:
				t.Fatalf("employee %d: %d %.200s", u, pg.status, pg.body)
			}
		}
	}
	t.Fatal("the employees' opens were never refused")
	return page{}
}

// The attacker: ten employees replaying their own frame POSTs, each within
// their own bucket of frame opens, until the portal's bucket (which they
// share with everyone) refuses them. The admin's opens still ask Bitrix24
// who opened the app: the admins draw on a share of their own.
func TestEmployeesCannotSpendTheAdminsFrameOpens(t *testing.T) {
	t.Parallel()
	e := newGateEnv(t, DefaultVerifyLimits())
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(61, 40, 3)})
	e.configured(p)
	refused := emptyFramePortalBucket(t, e, p, 61)
	// One every 3 s: the portal's bucket, not an employee's (15 s) nor the
	// verification gate's.
	frameBusy(t, "employee's open past the portal's bucket", refused, i18n.EN, 3)

	before := profiles(p)
	for i := range 5 {
		if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK {
			t.Fatalf("admin's open %d after the employees': %d %.200s", i, pg.status, pg.body)
		}
	}
	if got := profiles(p) - before; got != 5 {
		t.Errorf("the admin's 5 opens made %d profile calls, want 5", got)
	}
	frameBusy(t, "an employee's open after the admin's", e.frameFrom(p, employees(p, 1)[0], "", home(61, 0)), i18n.EN, 3)
}

// emptyAppPortalBucket has employees of p poll the status panel, each
// within their own bucket, until the portal's bucket refuses one.
func emptyAppPortalBucket(t *testing.T, e *settingsEnv, p store.Portal) {
	t.Helper()
	perUser, perPortal := appRequestLimits().PerUser.Burst, appRequestLimits().PerPortal.Burst
	for u := range 2 * perPortal / perUser {
		_, tok := e.session(p, int64(100+u), false, "en")
		for range perUser {
			switch r := e.do(http.MethodGet, "/app/status", tok, nil); r.status {
			case http.StatusOK:
			case http.StatusTooManyRequests:
				_, fresh := e.session(p, 999, false, "en")
				if r := e.do(http.MethodGet, "/app/status", fresh, nil); r.status != http.StatusTooManyRequests {
					t.Fatalf("a fresh employee after the flood: %d, want 429 (the portal's bucket empty)", r.status)
				}
				return
			default:
				t.Fatalf("employee %d: %d %s", 100+u, r.status, r.body)
			}
		}
	}
	t.Fatal("the employees' requests were never refused")
}

// The attacker: a portal's employees poll the status panel from a script,
// each as many times as their own bucket allows, until the portal's bucket
// refuses them. The admin, proven by Bitrix24 on their first poll, keeps
// polling: the admins draw on a share of their own.
func TestEmployeesCannotSpendTheAdminsAppRequests(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	now := time.Now()
	e.s.now = func() time.Time { return now } // no refill during the test
	p := e.addPortal("admin-share", "en")
	_, admin := e.session(p, 1, true, "en")
	if r := e.do(http.MethodGet, "/app/status", admin, nil); r.status != http.StatusOK {
		t.Fatalf("admin's first poll: %d %s", r.status, r.body)
	}
	emptyAppPortalBucket(t, e, p)
	// Within the admin's own bucket (60 at once), which still applies.
	for i := range 40 {
		if r := e.do(http.MethodGet, "/app/status", admin, nil); r.status != http.StatusOK {
			t.Fatalf("admin's poll %d after the employees' flood: %d %s", i, r.status, r.body)
		}
	}
}

// An admin keeps the admins' shares while Bitrix24 says they are one; once
// demoted (Bitrix24's "no" heard by another instance, so only in the
// database) they lose them. Their next frame open draws on the employees'
// bucket, empty, and Bitrix24 is not asked; of their /app requests the one
// that finds the demotion is the last the admins' share answers.
func TestDemotedAdminLosesTheAdminsShare(t *testing.T) {
	t.Parallel()
	t.Run("frame opens", func(t *testing.T) {
		t.Parallel()
		e := newGateEnv(t, DefaultVerifyLimits())
		p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(62, 40, 3)})
		e.configured(p)
		admin := p.AdminID()
		emptyFramePortalBucket(t, e, p, 62)
		if pg := e.open(p, admin); pg.status != http.StatusOK {
			t.Fatalf("admin's open after the employees': %d %.200s", pg.status, pg.body)
		}

		if err := p.UpdateUser(admin, func(u *b24sim.User) { u.Admin = false }); err != nil {
			t.Fatal(err)
		}
		if err := recordAdminCheck(t.Context(), e.pool, e.portal(p.MemberID()).ID, admin, false, e.clock()); err != nil {
			t.Fatal(err)
		}
		before := profiles(p)
		frameBusy(t, "the demoted admin's open", e.open(p, admin), i18n.EN, 3)
		if got := profiles(p) - before; got != 0 {
			t.Errorf("the demoted admin's refused open made %d profile calls, want 0", got)
		}
	})
	t.Run("app requests", func(t *testing.T) {
		t.Parallel()
		e := newSettingsEnv(t)
		now := time.Now()
		e.s.now = func() time.Time { return now }
		p := e.addPortal("demoted-share", "en")
		_, admin := e.session(p, 1, true, "en")
		if r := e.do(http.MethodGet, "/app/status", admin, nil); r.status != http.StatusOK {
			t.Fatalf("admin's first poll: %d %s", r.status, r.body)
		}
		emptyAppPortalBucket(t, e, p)
		if r := e.do(http.MethodGet, "/app/status", admin, nil); r.status != http.StatusOK {
			t.Fatalf("admin's poll after the employees': %d %s", r.status, r.body)
		}
		if err := recordAdminCheck(t.Context(), e.pool, p.ID, 1, false, now); err != nil {
			t.Fatal(err)
		}
		if r := e.do(http.MethodGet, "/app/status", admin, nil); r.status != http.StatusOK {
			t.Fatalf("the poll that finds the demotion: %d %s", r.status, r.body)
		}
		if r := e.do(http.MethodGet, "/app/status", admin, nil); r.status != http.StatusTooManyRequests {
			t.Errorf("the demoted admin's next poll: %d, want 429 (the employees' bucket, empty)", r.status)
		}
	})
}

// The gate's bucket for proven admins: an address remembered for one takes
// from it instead of the users' bucket, each refusing on its own with its
// own reason; a demoted admin's address goes back to the users' bucket;
// at most MaxKeys admins are known, the least recently proven forgotten.
func TestVerifyGateAdminsBucket(t *testing.T) {
	t.Parallel()
	g := newVerifyGate(VerifyLimits{
		PerAddress:        Bucket{Burst: 100, Every: time.Minute},
		PerPortal:         Bucket{Burst: 2, Every: time.Minute},
		PerPortalUsers:    Bucket{Burst: 3, Every: time.Minute},
		PerPortalAdmins:   Bucket{Burst: 4, Every: 30 * time.Second},
		RememberAddresses: time.Hour,
		MaxKeys:           4,
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	member := randHex(16)
	p := store.Portal{ID: 7, PortalInfo: store.PortalInfo{MemberID: member}}
	g.remember(now, member, "office", 1)
	g.remember(now, member, "desk", 2)
	g.proven.set(p, 1, true)
	g.proven.set(p, 2, false)

	for i := range 4 {
		if r, _ := g.admit(now, "office", member, true); r != "" {
			t.Fatalf("admin's request %d: %s", i, r)
		}
	}
	if r, wait := g.admit(now, "office", member, true); r != refusedPortalAdmins || wait != 30*time.Second {
		t.Fatalf("admin past the admins' bucket: %q %v, want portal_admins_limit after 30s", r, wait)
	}
	// The admins took nothing of the users' bucket, and the employee's
	// refusals take nothing of the admins'.
	for i := range 3 {
		if r, _ := g.admit(now, "desk", member, true); r != "" {
			t.Fatalf("employee's request %d: %s", i, r)
		}
	}
	if r, _ := g.admit(now, "desk", member, true); r != refusedPortalUsers {
		t.Fatalf("employee past the users' bucket: %q, want portal_users_limit", r)
	}
	later := now.Add(30 * time.Second)
	if r, _ := g.admit(later, "office", member, true); r != "" {
		t.Fatalf("admin 30 s later: %s", r)
	}
	// Another portal's user at the office is no admin of it.
	other := randHex(16)
	g.remember(later, other, "office", 1)
	if r, _ := g.admit(later, "office", other, true); r != "" {
		t.Fatalf("other portal's user: %s", r)
	}
	if g.admins.len() != 1 {
		t.Errorf("%d admins' buckets, want the one portal's", g.admins.len())
	}

	g.proven.set(p, 1, false)
	if r, _ := g.admit(later, "office", member, true); r != refusedPortalUsers {
		t.Fatalf("demoted admin: %q, want portal_users_limit", r)
	}

	for i := range 100 {
		g.proven.set(store.Portal{ID: int64(100 + i), PortalInfo: store.PortalInfo{MemberID: randHex(16)}}, int64(i+1), true)
	}
	if n := g.proven.len(); n != 4 {
		t.Errorf("%d admins known, want MaxKeys=4", n)
	}
	g.proven.set(p, 1, true)
	if !g.proven.hasMember(member, 1) || !g.proven.hasPortal(7, 1) || g.proven.len() != 4 {
		t.Error("the admin proven last is not known by member_id and portal, or the least recent not dropped")
	}
}
