package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/connect"
	"b24learn/internal/store"
)

// regionEnv is the app with two listed OAuth servers, the simulator's main
// one (west) and an east one, plus a third server that is not listed.
type regionEnv struct {
	*b24Env
	cfg         *config.Config
	east, rogue string
}

func newRegionEnv(t *testing.T) *regionEnv {
	t.Helper()
	// The servers' addresses must be in the configuration before the app
	// starts, and the simulator exists only inside newB24EnvWith: listen
	// first, serve once it exists.
	eastSrv, rogueSrv := httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)
	r := &regionEnv{east: "http://" + eastSrv.Listener.Addr().String(), rogue: "http://" + rogueSrv.Listener.Addr().String()}
	r.b24Env = newB24EnvWith(t, func(c *config.Config) {
		r.cfg = c
		c.B24OAuthURLs = append(c.B24OAuthURLs, r.east+"/")
	})
	for name, srv := range map[string]*httptest.Server{"east": eastSrv, "rogue": rogueSrv} {
		srv.Config.Handler = r.sim.RegionHandler(name)
		srv.Start()
		t.Cleanup(srv.Close)
		r.sim.SetRegion(b24sim.Region{Name: name}, srv.URL)
	}
	return r
}

// A portal of the east region is verified and refreshed at the east server,
// and never at the west one, which would refuse its tokens; a west portal
// stays at the west server.
func TestPortalStaysAtItsRegionsOAuthServer(t *testing.T) {
	t.Parallel()
	e := newRegionEnv(t)
	ctx := context.Background()
	east := e.sim.AddPortal(b24sim.PortalOptions{Region: "east", Org: b24sim.GenerateOrg(5, 12, 3)})

	e.install(east) // installer page: verified at the east server
	row := e.portal(east.MemberID())
	if row.ServerEndpoint != e.east+"/rest/" {
		t.Fatalf("stored server_endpoint %q, want %q", row.ServerEndpoint, e.east+"/rest/")
	}
	if pg := e.open(east, east.AdminID()); pg.status != http.StatusOK { // the app page, verified again
		t.Fatalf("app page: %d %s", pg.status, pg.body)
	}
	east.Update(ctx) // ONAPPUPDATE names the east server too
	if d := lastDelivery(t, east, "ONAPPUPDATE"); d.Status != http.StatusOK {
		t.Fatalf("ONAPPUPDATE: %d", d.Status)
	}
	verified := e.sim.OAuthCalls("east")
	if verified < 3 {
		t.Fatalf("east server saw %d calls, want the installer's, the app page's and the event's", verified)
	}

	// Background work refreshes the stored pair at the east server.
	clients := connect.New(connect.Options{Pool: e.pool, Keyring: e.kr, Log: slog.New(slog.DiscardHandler),
		OAuthServers: e.cfg.OAuthServers(), B24AllowPrivateHosts: true})
	east.ExpireTokens()
	c, err := clients.Bitrix24(ctx, row.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Profile(ctx); err != nil {
		t.Fatalf("call after expiry: %v", err)
	}
	if got := e.sim.OAuthCalls("east"); got != verified+1 {
		t.Fatalf("east server saw %d calls after the refresh, want %d", got, verified+1)
	}
	if n := e.sim.OAuthCalls(""); n != 0 {
		t.Fatalf("the west server saw %d calls for an east portal", n)
	}

	// The simulator is faithful: the west server refuses east tokens.
	tok, err := east.Tokens(east.AdminID())
	if err != nil {
		t.Fatal(err)
	}
	west, _ := e.cfg.OAuthServers().For("")
	if _, err := west.Refresh(ctx, tok.RefreshToken); !errors.Is(err, bitrix24.ErrInvalidGrant) {
		t.Fatalf("west refresh of an east token: %v, want invalid_grant", err)
	}

	// A west portal is verified at the west server only.
	westPortal := e.addPortal(6)
	before := e.sim.OAuthCalls("east")
	e.install(westPortal)
	if got := e.portal(westPortal.MemberID()).ServerEndpoint; got != bitrix24.ServerEndpoint(e.sim.URL) {
		t.Fatalf("west portal stored %q", got)
	}
	if e.sim.OAuthCalls("east") != before || e.sim.OAuthCalls("") == 1 {
		t.Fatalf("west install: east %d (was %d), west %d", e.sim.OAuthCalls("east"), before, e.sim.OAuthCalls(""))
	}
}

// A frame POST or event naming an OAuth server that is not on B24_OAUTH_URL
// is refused with 401 before any call: nothing is stored, and the unlisted
// server never sees the app's secret.
func TestUnlistedOAuthServerRefused(t *testing.T) {
	t.Parallel()
	e := newRegionEnv(t)
	ctx := context.Background()
	rogue := e.sim.AddPortal(b24sim.PortalOptions{Region: "rogue", Org: b24sim.GenerateOrg(7, 12, 3)})
	rogue.Install()
	west := e.addPortal(8)
	west.Install()

	for name, p := range map[string]*b24sim.Portal{"portal of an unlisted server": rogue, "west portal naming it": west} {
		_, q, body, err := p.FrameRequest(p.AdminID())
		if err != nil {
			t.Fatal(err)
		}
		body.Set("SERVER_ENDPOINT", e.rogue+"/rest/")
		for _, path := range []string{"/b24/install", "/b24/app"} {
			if pg := e.post(path, q, body); pg.status != http.StatusUnauthorized {
				t.Errorf("%s %s: %d, want 401", name, path, pg.status)
			}
		}
	}
	// The public servers' names are compared by scheme and host, so a
	// look-alike is not on the list either.
	_, q, body, _ := west.FrameRequest(west.AdminID())
	body.Set("SERVER_ENDPOINT", "https://oauth.bitrix.info.example.net/rest/")
	if pg := e.post("/b24/app", q, body); pg.status != http.StatusUnauthorized {
		t.Errorf("look-alike server: %d, want 401", pg.status)
	}

	// An event of a portal on record that names the unlisted server.
	e.install(west)
	stored := e.portal(west.MemberID())
	west.Update(ctx) // a genuine event, then the same with the server changed
	d := lastDelivery(t, west, "ONAPPUPDATE")
	form := url.Values{}
	for k, v := range d.Form {
		form[k] = v
	}
	form.Set("auth[server_endpoint]", e.rogue+"/rest/")
	form.Set("auth[application_token]", "forged-token")
	resp, err := http.PostForm(e.app.URL+"/b24/events", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("event naming an unlisted server: %d, want 401", resp.StatusCode)
	}

	if n := e.sim.OAuthCalls("rogue"); n != 0 {
		t.Fatalf("the unlisted server saw %d calls", n)
	}
	if n := e.count(`SELECT count(*) FROM portals WHERE member_id = $1`, rogue.MemberID()); n != 0 {
		t.Fatal("a portal of an unlisted server was stored")
	}
	after, err := store.GetPortalByMemberID(ctx, e.pool, west.MemberID())
	if err != nil {
		t.Fatal(err)
	}
	if after.ServerEndpoint != stored.ServerEndpoint {
		t.Fatalf("server_endpoint changed to %q", after.ServerEndpoint)
	}
	tokStored, err := store.ApplicationToken(ctx, e.pool, e.kr, after.ID)
	if err != nil || tokStored == "forged-token" {
		t.Fatalf("application token replaced by the refused event (%v)", err)
	}
}
