package server

import (
	"net/http"
	"strings"
	"testing"

	"b24learn/internal/config"
)

// With the address rule on, a portal whose client_endpoint (as the OAuth
// server names it) is on loopback gets no REST call and no portal row, and
// the page says only that the portal cannot be reached.
func TestPortalEndpointOnLoopbackRefused(t *testing.T) {
	t.Parallel()
	e := newB24EnvWith(t, func(c *config.Config) { c.B24AllowPrivateHosts = false })
	p := e.addPortal(7)
	p.Install()
	if !strings.HasPrefix(p.ClientEndpoint(), "http://127.0.0.1:") {
		t.Fatalf("the simulated portal is not on loopback: %s", p.ClientEndpoint())
	}
	p.ResetCounters()
	pg := e.open(p, p.AdminID())
	if pg.status != http.StatusBadGateway || !strings.Contains(pg.body, "cannot reach this Bitrix24 portal") {
		t.Fatalf("open: %d %s", pg.status, pg.body)
	}
	if strings.Contains(pg.body, "127.0.0.1") {
		t.Errorf("page names the address: %s", pg.body)
	}
	if n := p.TotalRequests(); n != 0 {
		t.Errorf("the portal's REST API got %d requests: %v", n, p.Requests())
	}
	if n := e.count(`SELECT count(*) FROM portals`); n != 0 {
		t.Errorf("%d portals stored", n)
	}
}
