package server

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"testing"

	"b24learn/internal/config"
)

// An ordinary employee chooses the SERVER_ENDPOINT of their own frame POST.
// Should a second listed OAuth server also accept the employee's refresh
// token (a second name of the same servers, or regions that share tokens),
// the open is verified there: it must not move the portal's stored tokens,
// which it did not replace, to that server. Their refreshes would go where
// they were not issued and, refused, stop the portal's syncs until an admin
// opens the app.
func TestEmployeeOpenKeepsThePortalsOAuthServer(t *testing.T) {
	t.Parallel()
	// A listed OAuth server that answers for the simulator's main one.
	alias := httptest.NewUnstartedServer(nil)
	aliasURL := "http://" + alias.Listener.Addr().String()
	e := newB24EnvWith(t, func(c *config.Config) {
		c.B24OAuthURLs = append(c.B24OAuthURLs, aliasURL+"/")
	})
	alias.Config.Handler = httputil.NewSingleHostReverseProxy(mustURL(t, e.sim.URL))
	alias.Start()
	t.Cleanup(alias.Close)

	p := e.addPortal(41)
	e.install(p)
	before := e.portal(p.MemberID()).ServerEndpoint

	_, q, body, err := p.FrameRequest(p.NonAdminID())
	if err != nil {
		t.Fatal(err)
	}
	body.Set("SERVER_ENDPOINT", aliasURL+"/rest/")
	if pg := e.post("/b24/app", q, body); pg.status != http.StatusOK {
		t.Fatalf("employee's open at the other listed server: %d %s", pg.status, pg.body)
	}
	if after := e.portal(p.MemberID()).ServerEndpoint; after != before {
		t.Fatalf("an employee's open moved the portal's OAuth server from %q to %q", before, after)
	}
}
