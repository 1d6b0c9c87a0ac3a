package server

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/store"
)

// badClientEndpoints are client_endpoints an OAuth answer might name whose
// host is no host name: the portal's domain is taken from it and put into
// URLs and the CSP header. Each keeps the simulated portal's port, so a
// request to it would still reach the portal where loopback answers.
func badClientEndpoints(p *b24sim.Portal) map[string]string {
	_, port, _ := strings.Cut(p.Domain(), ":")
	return map[string]string{
		"IP literal in brackets": "http://[::1]:" + port + "/rest/",
		"user-info":              "http://intruder@" + p.Domain() + "/rest/",
		"quote":                  "http://a'b.localhost:" + port + "/rest/",
		"double quote":           "http://a\"b.localhost:" + port + "/rest/",
		"semicolon":              "http://127.0.0.1;x:" + port + "/rest/",
		"parenthesis":            "http://a(b).localhost:" + port + "/rest/",
		// The Kelvin sign, lower-cased, is an ASCII k.
		"percent-escape":  "http://bitri%E2%84%AA24.localhost:" + port + "/rest/",
		"escaped percent": "http://a%25b.localhost:" + port + "/rest/",
	}
}

// TestAppTokenEventWithAClientEndpointNotADNSName: an ONAPPUPDATE or
// ONAPPINSTALL whose refresh the OAuth server answers with a client_endpoint
// whose host is no host name is not verified: the application token stays.
// The same answer to a frame POST refuses the installer and the app page,
// and the portal's address stays.
func TestAppTokenEventWithAClientEndpointNotADNSName(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p := e.addPortal(51)
	e.install(p)
	p.Update(ctx)
	d := lastDelivery(t, p, "ONAPPUPDATE")
	if d.Status != http.StatusOK {
		t.Fatalf("ONAPPUPDATE answered %d %s", d.Status, d.Err)
	}
	row := e.portal(p.MemberID())
	stored, err := store.ApplicationToken(ctx, e.pool, e.kr, row.ID)
	if err != nil || stored == "" {
		t.Fatalf("application token: %q %v", stored, err)
	}

	for name, endpoint := range badClientEndpoints(p) {
		p.SetOAuthClientEndpoint(endpoint)
		for _, event := range []string{"ONAPPUPDATE", "ONAPPINSTALL"} {
			e.advance(time.Minute) // out of the portal's event bucket
			tok, err := p.Tokens(p.AdminID())
			if err != nil {
				t.Fatal(err)
			}
			form := maps.Clone(d.Form)
			form.Set("event", event)
			form.Set("auth[access_token]", tok.AccessToken)
			form.Set("auth[refresh_token]", tok.RefreshToken)
			form.Set("auth[application_token]", "0123456789abcdef0123456789abcdef")
			if pg := e.postEvent(form); pg.status != http.StatusUnauthorized {
				t.Errorf("%s, %s: %d %s, want 401", name, event, pg.status, pg.body)
			}
			if now, _ := store.ApplicationToken(ctx, e.pool, e.kr, row.ID); now != stored {
				t.Fatalf("%s, %s: application token replaced", name, event)
			}
		}

		// The frame POST names the DOMAIN the endpoint's host would give,
		// when it is one a frame may name.
		domain := p.Domain()
		if u, err := url.Parse(endpoint); err == nil && bitrix24.ValidHost(strings.ToLower(u.Host)) {
			domain = strings.ToLower(u.Host)
		}
		e.advance(time.Minute)
		_, q, body, err := p.FrameRequest(p.AdminID())
		if err != nil {
			t.Fatal(err)
		}
		q.Set("DOMAIN", domain)
		if pg := e.post("/b24/app", q, body); pg.status != http.StatusUnauthorized {
			t.Errorf("%s, app page: %d %s, want 401", name, pg.status, pg.body)
		}
		if now := e.portal(p.MemberID()); now.Domain != row.Domain || now.ClientEndpoint != row.ClientEndpoint {
			t.Fatalf("%s: portal address now %q %q, was %q %q", name, now.Domain, now.ClientEndpoint, row.Domain, row.ClientEndpoint)
		}
	}

	// Host names are case-insensitive: an upper-case client_endpoint is the
	// same portal, stored lower-case.
	p.SetOAuthClientEndpoint("http://" + strings.ToUpper(p.Domain()) + "/rest/")
	e.advance(time.Minute)
	_, q, body, err := p.FrameRequest(p.AdminID())
	if err != nil {
		t.Fatal(err)
	}
	if pg := e.post("/b24/app", q, body); pg.status != http.StatusOK {
		t.Errorf("upper-case client_endpoint, app page: %d %s, want 200", pg.status, pg.body)
	}
	if now := e.portal(p.MemberID()); now.Domain != strings.ToLower(p.Domain()) {
		t.Errorf("upper-case client_endpoint stored domain %q", now.Domain)
	}
	p.SetOAuthClientEndpoint("")

	// The installer of a portal not on record stores nothing.
	fresh := e.addPortal(52)
	fresh.Install()
	for name, endpoint := range badClientEndpoints(fresh) {
		fresh.SetOAuthClientEndpoint(endpoint)
		domain := fresh.Domain()
		if u, err := url.Parse(endpoint); err == nil && bitrix24.ValidHost(strings.ToLower(u.Host)) {
			domain = strings.ToLower(u.Host)
		}
		_, q, body, err := fresh.FrameRequest(fresh.AdminID())
		if err != nil {
			t.Fatal(err)
		}
		q.Set("DOMAIN", domain)
		if pg := e.post("/b24/install", q, body); pg.status != http.StatusUnauthorized {
			t.Errorf("%s, installer: %d %s, want 401", name, pg.status, pg.body)
		}
	}
	if n := e.count(`SELECT count(*) FROM portals WHERE member_id = $1`, fresh.MemberID()); n != 0 {
		t.Fatalf("the installer stored the portal %d times", n)
	}
	if len(fresh.Bindings()) != 0 {
		t.Fatalf("events bound: %v", fresh.Bindings())
	}
}
