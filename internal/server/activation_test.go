package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"b24learn/internal/activation"
	"b24learn/internal/manager"
	"b24learn/internal/settings"
	"b24learn/internal/store"
)

func (e *consoleEnv) post(token, path string, form url.Values, header bool) *httptest.ResponseRecorder {
	e.t.Helper()
	if !header {
		form.Set("session", token)
	}
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if header {
		req.Header.Set(sessionHeader, token)
	}
	req.RemoteAddr = "198.51.100.4:5555"
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

func (e *consoleEnv) token(portalID int64, admin bool, lang string) string {
	e.t.Helper()
	p, err := store.GetPortal(context.Background(), e.pool, portalID)
	if err != nil {
		e.t.Fatal(err)
	}
	_, tok, err := e.s.newSession(p, 1, admin, lang, fakeAuth(1, admin))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func TestActivationHandler(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	pid := e.portal("form.bitrix24.ru")
	admin := e.token(pid, true, "ru")

	t.Run("FieldErrorsInRussian", func(t *testing.T) {
		rec := e.post(admin, "/app/activation", url.Values{"name": {" "}, "email": {"ivan@"}, "phone": {"8 912 345 67 89"}}, false)
		body := rec.Body.String()
		if rec.Code != http.StatusUnprocessableEntity {
			t.Fatalf("status %d", rec.Code)
		}
		for field, want := range map[string]string{"name": "Укажите ваше имя", "email": "Укажите адрес электронной почты, например", "phone": "международном формате"} {
			i := strings.Index(body, `data-testid="error-`+field+`"`)
			if i < 0 || !strings.Contains(body[i:], want) {
				t.Errorf("no %s error %q next to the field", field, want)
			}
		}
		if !strings.Contains(body, `value="8 912 345 67 89"`) || !strings.Contains(body, "<html") {
			t.Fatal("the typed values are not shown again in a whole page")
		}
		if e.state(pid) != "inactive" {
			t.Fatal("an invalid request changed the portal")
		}
	})

	t.Run("NotAdmin", func(t *testing.T) {
		rec := e.post(e.token(pid, false, "en"), "/app/activation", url.Values{"name": {"A"}, "email": {"a@b.example"}, "phone": {"+79123456789"}}, true)
		if rec.Code != http.StatusForbidden {
			t.Fatalf("non-admin: %d", rec.Code)
		}
	})

	t.Run("NoSession", func(t *testing.T) {
		rec := e.post("forged", "/app/activation", url.Values{"name": {"A"}, "email": {"a@b.example"}, "phone": {"+79123456789"}}, true)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("forged session: %d", rec.Code)
		}
	})

	t.Run("StoredWithJob", func(t *testing.T) {
		rec := e.post(admin, "/app/activation", url.Values{"name": {"Иван"}, "email": {"ivan@form.example"}, "phone": {"+7 (912) 345-67-89"}}, true)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, "Менеджер iSpring свяжется с вами") {
			t.Fatalf("status %d:\n%s", rec.Code, body)
		}
		if strings.Contains(body, "<html") || !strings.Contains(body, `value="+79123456789"`) {
			t.Fatal("a script request gets the component alone, with the normalised phone")
		}
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'lead_forward' AND (args->>'portal_id')::bigint = $1`, pid).Scan(&n); err != nil || n != 1 {
			t.Fatalf("forwarding jobs = %d (%v), want 1", n, err)
		}
		if e.state(pid) != "requested" {
			t.Fatalf("state %q, want requested", e.state(pid))
		}
		// The settings page then shows the open request, prefilled.
		comp, err := e.s.activationForm(ctx, Session{PortalID: pid, Admin: true, Lang: "en"}, "tok", "requested", lead0())
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		_ = comp.Render(ctx, &sb)
		if !strings.Contains(sb.String(), "Your request was sent on") || !strings.Contains(sb.String(), `value="ivan@form.example"`) {
			t.Fatalf("settings component:\n%s", sb.String())
		}
	})

	t.Run("RateLimited", func(t *testing.T) {
		other := e.portal("flood.bitrix24.ru")
		tok := e.token(other, true, "en")
		var rec *httptest.ResponseRecorder
		for range 6 { // DefaultLimits: 5 per portal and hour
			rec = e.post(tok, "/app/activation", url.Values{"name": {"A"}, "email": {"a@b.example"}, "phone": {"+79123456789"}}, true)
		}
		if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "Please try again in") || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("6th submission: %d %q", rec.Code, rec.Body.String())
		}
	})
}

func lead0() activation.Contact {
	return activation.Contact{Name: "Prefill", Email: "prefill@example.com"}
}

func TestResolveClientIP(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")}
	cases := []struct {
		name, peer string
		xff        []string
		trusted    []netip.Prefix
		want       string
	}{
		{"NoProxiesConfiguredForgedHeaderIgnored", "10.1.1.1:5000", []string{"203.0.113.9"}, nil, "10.1.1.1"},
		{"UntrustedPeerForgedHeaderIgnored", "198.51.100.4:5000", []string{"203.0.113.9"}, trusted, "198.51.100.4"},
		{"TrustedPeerNamesClient", "10.1.1.1:5000", []string{"203.0.113.9"}, trusted, "203.0.113.9"},
		{"ClientForgedLeftPartSkipped", "10.1.1.1:5000", []string{"1.2.3.4, 203.0.113.9"}, trusted, "203.0.113.9"},
		{"ChainOfProxies", "10.1.1.1:5000", []string{"1.2.3.4, 203.0.113.9, 10.2.2.2", "10.3.3.3"}, trusted, "203.0.113.9"},
		{"ClientForgesTrustedAddress", "10.1.1.1:5000", []string{"10.9.9.9, 203.0.113.9"}, trusted, "203.0.113.9"},
		{"IPv6AndMapped", "[2001:db8:1::5]:443", []string{"::ffff:203.0.113.9"}, trusted, "203.0.113.9"},
		{"WithPort", "10.1.1.1:5000", []string{"203.0.113.9:4711"}, trusted, "203.0.113.9"},
		{"GarbageStopsAtLastRealHop", "10.1.1.1:5000", []string{"203.0.113.9, bogus, 10.2.2.2"}, trusted, "10.2.2.2"},
		{"NoHeaderFromTrustedPeer", "10.1.1.1:5000", nil, trusted, "10.1.1.1"},
		{"AllTrusted", "10.1.1.1:5000", []string{"10.4.4.4"}, trusted, "10.4.4.4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, h := range tc.xff {
				r.Header.Add("X-Forwarded-For", h)
			}
			if got := resolveClientIP(r, tc.trusted); got != tc.want {
				t.Fatalf("client = %q, want %q", got, tc.want)
			}
		})
	}
}

// An activation request counts the employees in scope, a read of the whole
// org from Bitrix24. Past the portal's submission limit the request is
// refused, and the read must not happen first: else an admin's script (or
// anyone holding an admin's page for its two hours) repeats a full org read
// per request, spending the portal's Bitrix24 budget that its syncs need.
// (The admin proof each change needs is remembered for adminProofTTL, so
// within it a refused request asks Bitrix24 nothing at all.)
func TestRefusedActivationRequestsCostNoBitrix24Calls(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p := e.addPortal(31)
	e.install(p)
	row := e.portal(p.MemberID())
	if _, err := settings.Save(context.Background(), e.pool, e.kr, row.ID, 1, func(s *settings.Settings) {
		s.Departments = settings.Scope{Selected: []int64{1}}
	}); err != nil {
		t.Fatal(err)
	}
	tok := e.open(p, p.AdminID()).session()
	if tok == "" {
		t.Fatal("no session on the admin's page")
	}
	form := url.Values{"name": {"Ivan Petrov"}, "email": {"ivan@example.com"}, "phone": {"+79123456789"}}
	limit := manager.DefaultLimits.SubmitPerPortal.Max
	for i := range limit {
		if pg := e.send(tok, "/app/activation", form); pg.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, pg.status, pg.body)
		}
	}
	before := p.TotalRequests()
	if before == 0 {
		t.Fatal("the admitted requests counted no employees: the test proves nothing")
	}
	for i := range 10 {
		if pg := e.send(tok, "/app/activation", form); pg.status != http.StatusTooManyRequests {
			t.Fatalf("request %d past the limit: %d, want 429", limit+i+1, pg.status)
		}
	}
	if got := p.TotalRequests(); got != before {
		t.Errorf("10 refused activation requests made %d Bitrix24 requests, want 0", got-before)
	}
}
