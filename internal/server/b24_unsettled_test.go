package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
)

// TestInstallAgainstUnsettled installs, opens and uninstalls the app under
// every choice b24sim offers where Bitrix24's behaviour is not known
// (docs/bitrix24-api.md, "Unsettled behaviour"). The installer runs twice
// before installFinish, as it does when the admin reopens it, so its binds
// meet bindings that exist: each event stays bound once. An app update,
// whose ONAPPUPDATE may not come, comes before the uninstall.
func TestInstallAgainstUnsettled(t *testing.T) {
	t.Parallel()
	for _, v := range b24sim.Variants() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			e := newB24Env(t)
			e.sim.SetUnsettled(v.Unsettled)
			ctx := context.Background()
			p := e.addPortal(1)
			p.Install()
			for i := range 2 {
				pg := e.open(p, p.AdminID())
				if pg.status != http.StatusOK || !strings.Contains(pg.body, installerScript) {
					t.Fatalf("installer, open %d: %d %s", i+1, pg.status, pg.body)
				}
				noCookie(t, "installer", pg)
			}
			want := []string{}
			for _, ev := range appEvents {
				want = append(want, ev+" "+e.app.URL+"/b24/events")
			}
			if got := p.Bindings(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("bindings %q, want %q", got, want)
			}
			row := e.portal(p.MemberID())
			if !row.Installed() || row.Domain != p.Domain() || row.Origin() != origin(p) {
				t.Fatalf("stored portal: %+v", row)
			}
			p.FinishInstall(ctx)
			if d := lastDelivery(t, p, "ONAPPINSTALL"); d.Status != http.StatusOK {
				t.Fatalf("ONAPPINSTALL answered %d %s", d.Status, d.Err)
			}
			for _, user := range []int64{p.AdminID(), p.NonAdminID()} {
				pg := e.open(p, user)
				if pg.status != http.StatusOK {
					t.Fatalf("app page for user %d: %d %s", user, pg.status, pg.body)
				}
				noCookie(t, "app page", pg)
				if _, st := e.state(pg.session()); st.UserID != user || st.Domain != p.Domain() || st.InstallState != "installed" {
					t.Errorf("state for user %d: %+v", user, st)
				}
			}
			// An expired token is refreshed on the next open, whatever the
			// refresh answer's domain and scope say.
			p.ExpireTokens()
			if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK {
				t.Fatalf("app page after expiry: %d %s", pg.status, pg.body)
			}
			// An update drops the bindings and changes the application
			// token; whether ONAPPUPDATE came or not, the admin's next
			// open leaves the events bound, so the uninstall reaches the
			// app and is taken.
			p.Update(ctx)
			if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK {
				t.Fatalf("app page after the update: %d %s", pg.status, pg.body)
			}
			if got := p.Bindings(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("bindings after the update %q, want %q", got, want)
			}
			row = e.portalFixture(p)
			p.Uninstall(ctx, true)
			if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
				t.Fatalf("ONAPPUNINSTALL answered %d", d.Status)
			}
			e.erased(row)
		})
	}
}

// noCookie fails the test if pg sets a cookie: whether a browser keeps
// cookies inside Bitrix24's iframe is not documented (Safari does not), so
// the frame's pages carry their session in the page and never in a cookie.
func noCookie(t *testing.T, what string, pg page) {
	t.Helper()
	if c := pg.header.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("%s sets cookies %q", what, c)
	}
}
