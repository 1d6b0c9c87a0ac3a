package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"b24learn/internal/apptest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/activation"
	"b24learn/internal/activation/smtptest"
	"b24learn/internal/config"
	"b24learn/internal/manager"
	"b24learn/internal/metrics"
	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
)

type consoleEnv struct {
	t    *testing.T
	s    *Server
	pool *pgxpool.Pool
	h    http.Handler
}

func newConsoleEnv(t *testing.T) *consoleEnv {
	t.Helper()
	pool := pgtest.NewPool(t)
	kr, err := secret.NewKeyring("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	rc := apptest.Inserter(t, pool)
	s := newServer(Deps{Log: slog.New(slog.DiscardHandler), Config: &config.Config{Keyring: kr}, Pool: pool, River: rc,
		Metrics: metrics.New(), Context: t.Context()})
	s.profiles = fakeProfiles{}
	// The real router, with the middleware in the order the app runs it.
	return &consoleEnv{t: t, s: s, pool: pool, h: s.routes()}
}

// browser keeps cookies by hand: the console's cookies are Secure, which
// Go's cookie jar would not send to an http test server.
type browser struct {
	e       *consoleEnv
	cookies map[string]*http.Cookie
	ip      string
	xff     string // X-Forwarded-For sent, if any
}

func (e *consoleEnv) browser(ip string) *browser {
	return &browser{e: e, cookies: map[string]*http.Cookie{}, ip: ip}
}

func (b *browser) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	b.e.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.RemoteAddr = b.ip + ":40000"
	if b.xff != "" {
		req.Header.Set("X-Forwarded-For", b.xff)
	}
	for _, c := range b.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := httptest.NewRecorder()
	b.e.h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return rec
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in:\n%s", body)
	}
	return m[1]
}

func (b *browser) signIn(email, password string) *httptest.ResponseRecorder {
	b.e.t.Helper()
	page := b.do("GET", "/manager/signin", nil)
	if page.Code != http.StatusOK {
		b.e.t.Fatalf("sign-in page: %d", page.Code)
	}
	return b.do("POST", "/manager/signin", url.Values{"csrf": {csrfOf(b.e.t, page.Body.String())}, "email": {email}, "password": {password}})
}

func (e *consoleEnv) portal(domain string) int64 {
	e.t.Helper()
	var id int64
	if err := e.pool.QueryRow(context.Background(), `INSERT INTO portals (member_id, domain) VALUES ($1, $1) RETURNING id`, domain).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// request puts a portal at domain and sub's activation request from it
// into the database, as the admin's "Send" would, without forwarding it.
// olgaAsks is the request Olga sends for the portal at domain.
func olgaAsks(domain string) activation.Submission {
	return activation.Submission{
		Contact: activation.Contact{Name: "Olga", Email: "olga@" + domain, Phone: "+7 912 345 67 89"}}
}

// plainMailer is a mailer sending to a mail server of its own, without TLS
// or sign-in.
func plainMailer(t *testing.T) (*smtptest.Server, *activation.Mailer) {
	t.Helper()
	srv := smtptest.Start(t, smtptest.Plain, "", "")
	mailer, err := activation.NewMailer(srv.URL, "x@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv, mailer
}

func (e *consoleEnv) request(domain string, at time.Time, sub activation.Submission) (portalID, requestID int64) {
	e.t.Helper()
	sub.PortalID = e.portal(domain)
	res, err := activation.Submit(context.Background(), e.pool, manager.DefaultLimits, at, sub,
		func(context.Context, pgx.Tx, int64, int64) error { return nil })
	if err != nil {
		e.t.Fatal(err)
	}
	return sub.PortalID, res.RequestID
}

// requestsPage is the body of the signed-in manager's list of requests in
// lang ("en", the default, or "ru", switched to on the account).
func (b *browser) requestsPage(lang string) string {
	b.e.t.Helper()
	page := b.do("GET", "/manager/requests", nil)
	if page.Code != http.StatusOK {
		b.e.t.Fatalf("%s: requests page %d", lang, page.Code)
	}
	if lang == "ru" {
		// The language switch is the manager's choice, kept on the account.
		if rec := b.do("POST", "/manager/lang", url.Values{"lang": {"ru"}, "csrf": {csrfOf(b.e.t, page.Body.String())},
			"back": {"/manager/requests"}}); rec.Code != http.StatusSeeOther {
			b.e.t.Fatalf("switch to Russian: %d", rec.Code)
		}
		page = b.do("GET", "/manager/requests", nil)
	}
	return page.Body.String()
}

func (e *consoleEnv) state(id int64) string {
	e.t.Helper()
	var s string
	if err := e.pool.QueryRow(context.Background(), `SELECT activation_state FROM portals WHERE id = $1`, id).Scan(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func TestConsole(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "anna@ispring.example", "long enough password"); err != nil {
		t.Fatal(err)
	}
	pid, _ := e.request("evil.bitrix24.ru", time.Now(), activation.Submission{
		Contact: activation.Contact{Name: `<script>alert(1)</script>`, Email: "x@evil.example", Phone: "+7 912 345 67 89"}})
	b := e.browser("10.0.0.1")

	if rec := b.do("GET", "/manager/requests", nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/manager/signin" {
		t.Fatalf("signed out: %d %q", rec.Code, rec.Header().Get("Location"))
	}

	// The sign-in form is protected by its own double-submit token.
	b.do("GET", "/manager/signin", nil)
	if rec := b.do("POST", "/manager/signin", url.Values{"csrf": {"forged"}, "email": {"anna@ispring.example"}, "password": {"long enough password"}}); rec.Code != http.StatusForbidden {
		t.Fatalf("sign-in with a forged token: %d", rec.Code)
	}
	if rec := b.signIn("anna@ispring.example", "wrong password"); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Wrong e-mail, password or authenticator code.") {
		t.Fatalf("wrong password: %d", rec.Code)
	}
	rec := b.signIn("anna@ispring.example", "long enough password")
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", rec.Code, rec.Body.String())
	}
	ck := b.cookies[managerCookie]
	if ck == nil || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
		t.Fatalf("session cookie %+v", ck)
	}
	kept := *ck // what a thief or a back button would keep

	page := b.do("GET", "/manager/requests", nil)
	body := page.Body.String()
	if page.Code != http.StatusOK || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(body, "<script>alert") {
		t.Fatalf("requests page: %d, name not escaped:\n%s", page.Code, body)
	}
	if !strings.Contains(body, "+79123456789") || !strings.Contains(body, "evil.bitrix24.ru") {
		t.Fatal("requests page lacks the request")
	}
	// The portal's settings as a list of label and value, not text lined
	// up with spaces that wraps in a narrow column.
	if !strings.Contains(body, "<dt>Learn URL</dt><dd>not set yet</dd>") || !strings.Contains(body, "<dt>Employees in scope</dt>") {
		t.Fatalf("requests page lacks the settings list:\n%s", body)
	}
	// The console's pages run no script: what slips past escaping has
	// nothing to run and no other origin to post to.
	for _, rec := range []*httptest.ResponseRecorder{page, b.do("GET", "/manager/signin", nil)} {
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'none'") || !strings.Contains(csp, "default-src 'self'") ||
			!strings.Contains(csp, "form-action 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("console page policy %q, want no scripts, forms to this origin only, no framing", csp)
		}
	}
	csrf := csrfOf(t, body)

	path := "/manager/portals/" + strconv.FormatInt(pid, 10) + "/activation"
	for name, form := range map[string]url.Values{
		"NoToken":    {"state": {"active"}},
		"WrongToken": {"state": {"active"}, "csrf": {csrf + "x"}},
	} {
		if rec := b.do("POST", path, form); rec.Code != http.StatusForbidden {
			t.Fatalf("%s: %d, want 403", name, rec.Code)
		}
	}
	if st := e.state(pid); st != "requested" {
		t.Fatalf("state after refused posts: %q", st)
	}
	if rec := b.do("POST", path, url.Values{"state": {"active"}, "note": {"contract signed"}, "csrf": {csrf}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("activate: %d %s", rec.Code, rec.Body.String())
	}
	if st := e.state(pid); st != "active" {
		t.Fatalf("state after Activate: %q", st)
	}
	detail := b.do("GET", "/manager/portals/"+strconv.FormatInt(pid, 10), nil).Body.String()
	if !strings.Contains(detail, `data-testid="activation-state">active<`) || !strings.Contains(detail, "contract signed") ||
		!strings.Contains(detail, `app: <span data-testid="install-state">installed<`) {
		t.Fatalf("portal page lacks state, install state or audit note:\n%s", detail)
	}
	if rec := b.do("POST", path, url.Values{"state": {"suspended"}, "note": {"unpaid"}, "csrf": {csrf}}); rec.Code != http.StatusSeeOther || e.state(pid) != "suspended" {
		t.Fatalf("suspend: %d state %q", rec.Code, e.state(pid))
	}
	audit := b.do("GET", "/manager/audit", nil).Body.String()
	for _, want := range []string{"sign_in", "activate", "suspend", "unpaid", "anna@ispring.example"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
	if rec := b.do("GET", "/manager/portals", nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "evil.bitrix24.ru") {
		t.Fatalf("portals page: %d", rec.Code)
	}

	// Sign out; the kept cookie never works again, for reading or writing.
	if rec := b.do("POST", "/manager/signout", url.Values{"csrf": {csrf}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", rec.Code)
	}
	if b.cookies[managerCookie] != nil {
		t.Fatal("sign-out left the cookie")
	}
	b.cookies[managerCookie] = &kept
	if rec := b.do("GET", "/manager/requests", nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("kept cookie after sign-out: GET %d, want redirect to sign-in", rec.Code)
	}
	if rec := b.do("POST", path, url.Values{"state": {"active"}, "csrf": {csrf}}); rec.Code != http.StatusUnauthorized || e.state(pid) != "suspended" {
		t.Fatalf("kept cookie after sign-out: POST %d, state %q", rec.Code, e.state(pid))
	}
}

// Ten wrong passwords for a manager from one address make that address
// wait; the manager signs in from another address at once.
func TestConsoleSignInLimit(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	if _, err := manager.CreateManager(context.Background(), e.pool, manager.DefaultHasher(), "bob@ispring.example", "bob's long password"); err != nil {
		t.Fatal(err)
	}
	attacker := e.browser("203.0.113.9")
	limited := 0
	for i := range 10 {
		switch rec := attacker.signIn("bob@ispring.example", "guess"); rec.Code {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			if !strings.Contains(rec.Body.String(), "Too many failed sign-ins") || rec.Header().Get("Retry-After") == "" {
				t.Fatalf("attempt %d: 429 without message or Retry-After", i+1)
			}
			limited++
		default:
			t.Fatalf("attempt %d: %d", i+1, rec.Code)
		}
	}
	if limited == 0 {
		t.Fatal("ten wrong passwords from one address were never slowed down")
	}
	if rec := attacker.signIn("bob@ispring.example", "bob's long password"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("guessing address, right password, during its wait: %d, want 429", rec.Code)
	}
	if rec := e.browser("198.51.100.7").signIn("bob@ispring.example", "bob's long password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("bob from another address: %d, want 303 (signed in)", rec.Code)
	}
}

// auditIPs lists the addresses of the trail's sign-ins, oldest first.
func (e *consoleEnv) auditIPs(email string) []string {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT ip FROM manager_audit WHERE manager_email = $1 AND action = 'sign_in' ORDER BY id`, email)
	if err != nil {
		e.t.Fatal(err)
	}
	ips, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		e.t.Fatal(err)
	}
	return ips
}

// Behind the TLS proxy every client has the proxy's address. With
// TRUSTED_PROXIES the limits and the audit trail see the forwarded client;
// without it, or from a peer that is not a trusted proxy, a forged
// X-Forwarded-For changes nothing.
func TestConsoleBehindProxy(t *testing.T) {
	t.Parallel()
	const proxy = "10.0.0.1"

	t.Run("Trusted", func(t *testing.T) {
		t.Parallel()
		e := newConsoleEnv(t)
		e.s.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
		if _, err := manager.CreateManager(context.Background(), e.pool, manager.DefaultHasher(), "bob@ispring.example", "bob's long password"); err != nil {
			t.Fatal(err)
		}
		attacker := e.browser(proxy)
		attacker.xff = "203.0.113.9"
		for range 10 {
			attacker.signIn("bob@ispring.example", "guess")
		}
		if rec := attacker.signIn("bob@ispring.example", "bob's long password"); rec.Code != http.StatusTooManyRequests {
			t.Fatalf("attacker through the proxy: %d, want 429", rec.Code)
		}
		bob := e.browser(proxy)
		bob.xff = "192.0.2.1, 198.51.100.7" // the left part is bob's own header, not believed
		if rec := bob.signIn("bob@ispring.example", "bob's long password"); rec.Code != http.StatusSeeOther {
			t.Fatalf("bob through the same proxy: %d, want 303", rec.Code)
		}
		// A peer outside TRUSTED_PROXIES is the client, whatever it forwards.
		direct := e.browser("198.51.100.50")
		direct.xff = "192.0.2.99"
		if rec := direct.signIn("bob@ispring.example", "bob's long password"); rec.Code != http.StatusSeeOther {
			t.Fatalf("bob direct: %d", rec.Code)
		}
		if got := strings.Join(e.auditIPs("bob@ispring.example"), " "); got != "198.51.100.7 198.51.100.50" {
			t.Fatalf("audit trail sign-in addresses %q, want the clients'", got)
		}
	})

	t.Run("NotTrusted", func(t *testing.T) {
		t.Parallel()
		e := newConsoleEnv(t)
		if _, err := manager.CreateManager(context.Background(), e.pool, manager.DefaultHasher(), "bob@ispring.example", "bob's long password"); err != nil {
			t.Fatal(err)
		}
		// The attacker forges a new X-Forwarded-For on every guess to
		// dodge the per-address wait: it is ignored.
		attacker := e.browser("203.0.113.9")
		limited := false
		for i := range 10 {
			attacker.xff = "192.0.2." + strconv.Itoa(i+1)
			if rec := attacker.signIn("bob@ispring.example", "guess"); rec.Code == http.StatusTooManyRequests {
				limited = true
			}
		}
		if !limited {
			t.Fatal("forged X-Forwarded-For values dodged the per-address wait")
		}
		bob := e.browser("198.51.100.7")
		bob.xff = "192.0.2.77"
		if rec := bob.signIn("bob@ispring.example", "bob's long password"); rec.Code != http.StatusSeeOther {
			t.Fatalf("bob: %d", rec.Code)
		}
		if got := strings.Join(e.auditIPs("bob@ispring.example"), " "); got != "198.51.100.7" {
			t.Fatalf("audit trail sign-in addresses %q, want the peer's", got)
		}
	})
}

// An account that must have two-step sign-in is sent to set it up and can
// change nothing until it has.
func TestConsoleTOTPRequired(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	m, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "hugo@ispring.example", "hugo's long password")
	if err != nil {
		t.Fatal(err)
	}
	if err := manager.SetTOTPRequired(ctx, e.pool, m.ID, true); err != nil {
		t.Fatal(err)
	}
	pid := e.portal("req.bitrix24.ru")
	b := e.browser("10.0.0.5")
	if rec := b.signIn("hugo@ispring.example", "hugo's long password"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/manager/totp" {
		t.Fatalf("sign-in: %d to %q, want the enrol page", rec.Code, rec.Header().Get("Location"))
	}
	if rec := b.do("GET", "/manager/requests", nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/manager/totp" {
		t.Fatalf("requests before enrolling: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	page := b.do("GET", "/manager/totp", nil)
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "otpauth://totp/") {
		t.Fatalf("enrol page: %d", page.Code)
	}
	csrf := csrfOf(t, page.Body.String())
	path := "/manager/portals/" + strconv.FormatInt(pid, 10) + "/activation"
	if rec := b.do("POST", path, url.Values{"state": {"active"}, "csrf": {csrf}}); rec.Code != http.StatusForbidden || e.state(pid) == "active" {
		t.Fatalf("activation before enrolling: %d, state %q", rec.Code, e.state(pid))
	}
}
