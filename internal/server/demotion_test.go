package server

import (
	"net/http"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
)

// An employee who once opened the app as a non-admin, later became an admin
// and ran the installer, then was demoted again: the installer's admin
// session must lose its rights once Bitrix24 has said so, as one from the
// app page does. The demotion recorded the first time must not stand in
// for the later one.
func TestInstallerSessionLosesAdminAtLaterDemotion(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p := e.addPortal(31)
	e.install(p)
	u := p.NonAdminID()
	if pg := e.open(p, u); pg.status != http.StatusOK {
		t.Fatalf("employee's open: %d", pg.status)
	}

	e.advance(time.Hour)
	if err := p.UpdateUser(u, func(x *b24sim.User) { x.Admin = true }); err != nil {
		t.Fatal(err)
	}
	_, q, body, err := p.FrameRequest(u)
	if err != nil {
		t.Fatal(err)
	}
	inst := e.post("/b24/install", q, body)
	if inst.status != http.StatusOK {
		t.Fatalf("installer by the promoted employee: %d %.300s", inst.status, inst.body)
	}
	tab := inst.session()
	if pg, st := e.state(tab); pg.status != http.StatusOK || !st.Admin {
		t.Fatalf("installer session: %d %+v, want an admin's", pg.status, st)
	}

	e.advance(time.Minute)
	if err := p.UpdateUser(u, func(x *b24sim.User) { x.Admin = false }); err != nil {
		t.Fatal(err)
	}
	if pg := e.open(p, u); pg.status != http.StatusOK {
		t.Fatalf("demoted user's open: %d", pg.status)
	}
	if pg, st := e.state(tab); pg.status != http.StatusOK || st.Admin {
		t.Errorf("installer session after the demotion: %d %+v, want read-only", pg.status, st)
	}
}

// Two app instances whose clocks disagree: the admin's tab was minted by one
// that runs ahead, the demotion recorded by one that is behind. The tab must
// still lose its rights: which came first is what the database saw, not what
// either clock says.
func TestDemotionHoldsAcrossClockSkew(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p := e.addPortal(32)
	e.install(p)
	admin := p.AdminID()

	e.advance(10 * time.Minute) // the instance whose clock runs ahead
	tab := e.open(p, admin).session()
	if pg, st := e.state(tab); pg.status != http.StatusOK || !st.Admin {
		t.Fatalf("fresh admin session: %d %+v", pg.status, st)
	}

	e.advance(-9 * time.Minute) // the other instance, a minute later in truth
	if err := p.UpdateUser(admin, func(u *b24sim.User) { u.Admin = false }); err != nil {
		t.Fatal(err)
	}
	if pg := e.open(p, admin); pg.status != http.StatusOK {
		t.Fatalf("demoted admin's open: %d", pg.status)
	}
	if pg, st := e.state(tab); pg.status != http.StatusOK || st.Admin {
		t.Errorf("tab minted by the fast clock after the demotion: %d %+v, want read-only", pg.status, st)
	}
}
