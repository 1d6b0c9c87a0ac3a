package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"b24learn/internal/activation"
	"b24learn/internal/activation/smtptest"
	"b24learn/internal/browsertest"
	"b24learn/internal/i18n"
	"b24learn/internal/manager"
)

// tab drives one Chromium tab through the console.
type tab struct {
	t *testing.T
	b *browsertest.Browser
}

func (p tab) js(expr string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.b.Ctx, chromedp.Evaluate[chromedp.Void](expr)); err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
}

func (p tab) eval(expr string, opts ...chromedp.EvaluateOption) string {
	p.t.Helper()
	s, err := chromedp.Run(p.b.Ctx, chromedp.Evaluate[string](expr, opts...))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return s
}

func (p tab) open(url string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.b.Ctx, chromedp.Navigate(url)); err != nil {
		p.t.Fatalf("open %s: %v", url, err)
	}
}

// until polls a JavaScript condition; navigation in between makes single
// evaluations fail, which only means "not yet".
func (p tab) until(what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(p.b.Ctx, chromedp.Evaluate[bool](`document.readyState === 'complete' && !!(`+cond+`)`))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(p.b.Ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
			p.t.Fatalf("waiting for %s: %v\npage: %s", what, err, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p tab) signIn(base, email, password string) {
	p.t.Helper()
	p.open(base + "/manager/signin")
	p.until("the sign-in form", `document.querySelector('#email')`)
	p.js(fmt.Sprintf(`document.getElementById('email').value = %q; document.getElementById('password').value = %q;
		document.querySelector('form[action="/manager/signin"] button[type=submit]').click()`, email, password))
	p.until("the console after signing in", `document.querySelector('form[action="/manager/signout"]')`)
}

// mailOf parses a message from the SMTP test server: its decoded subject,
// its raw Subject header and its decoded body.
func mailOf(t *testing.T, m smtptest.Message) (subject, rawSubject, body string) {
	t.Helper()
	d := m.Decode(t)
	return d.Subject, d.Header.Get("Subject"), d.Body
}

// A manager with a Russian browser sees the console in Russian, switches it
// to English, and the choice holds after signing out and in again. The
// activation e-mail then reaches the SMTP server in English for this
// manager and in Russian for a manager who chose Russian, with a correctly
// encoded UTF-8 subject.
func TestConsoleLanguageInBrowser(t *testing.T) {
	t.Parallel()
	b := browsertest.Start(t, "ru", 2*time.Minute)
	// Headless Chromium's --lang does not reach Accept-Language; send what
	// a Russian Chrome sends.
	if _, err := chromedp.Call(b.Ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Accept-Language": "ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7"}}); err != nil {
		t.Fatal(err)
	}
	e := newConsoleEnv(t)
	ctx := context.Background()
	const email, password = "vera@ispring.example", "vera's long password"
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), email, password); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	p := tab{t: t, b: b}

	p.open(srv.URL + "/manager/signin")
	p.until("the sign-in form", `document.querySelector('#email')`)
	if lang, label := p.eval(`document.documentElement.lang`), p.eval(`document.querySelector('label[for=password]').textContent`); lang != "ru" || label != "Пароль" {
		t.Fatalf("sign-in page for a Russian browser: lang %q, password label %q", lang, label)
	}
	p.signIn(srv.URL, email, password)
	nav := p.eval(`document.querySelector('nav').innerText`)
	if !strings.Contains(nav, "Заявки на активацию") || !strings.Contains(nav, "Порталы") || strings.Contains(nav, "Portals") {
		t.Fatalf("console nav for a Russian browser: %q", nav)
	}
	if h := p.eval(`document.querySelector('h1').textContent`); h != "Заявки на активацию" {
		t.Fatalf("requests page heading %q", h)
	}

	// The switch: back on the same page, in English.
	p.open(srv.URL + "/manager/portals")
	p.until("the portals page", `document.querySelector('[data-testid="lang-switch"] button[value="en"]')`)
	p.js(`document.querySelector('[data-testid="lang-switch"] button[value="en"]').click()`)
	p.until("the console in English", `document.documentElement.lang === 'en'`)
	if path, h := p.eval(`location.pathname`), p.eval(`document.querySelector('h1').textContent`); path != "/manager/portals" || h != "Portals" {
		t.Fatalf("after switching: %s, heading %q", path, h)
	}

	// Signed out: the sign-in page speaks the choice too; signed in again,
	// the console does, though the browser still asks for Russian.
	p.js(`document.querySelector('form[action="/manager/signout"] button').click()`)
	p.until("the sign-in form after signing out", `document.querySelector('#email')`)
	if label := p.eval(`document.querySelector('label[for=password]').textContent`); label != "Password" {
		t.Fatalf("sign-in page after choosing English: %q", label)
	}
	// The account keeps the choice, not only this browser: clear the cookies.
	if _, err := chromedp.Call(b.Ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	p.signIn(srv.URL, email, password)
	if nav := p.eval(`document.querySelector('nav').innerText`); !strings.Contains(nav, "Activation requests") || strings.Contains(nav, "Заявки") {
		t.Fatalf("console after signing in again: %q", nav)
	}
	if errs := b.JSErrors(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %v", errs)
	}

	// The activation e-mail: one message per language.
	boris, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "boris@ispring.example", "boris's long password")
	if err != nil {
		t.Fatal(err)
	}
	if err := manager.SetLang(ctx, e.pool, boris.ID, i18n.RU); err != nil {
		t.Fatal(err)
	}
	pid, requestID := e.request("mail-lang.bitrix24.ru", time.Now(), activation.Submission{B24UserID: 1,
		Contact: activation.Contact{Name: "Иван Петров", Email: "ivan@acme.example", Phone: "+79123456789"}})
	smtp := smtptest.Start(t, smtptest.Plain, "", "")
	m, err := activation.NewMailer(smtp.URL, "b24learn@test.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &activation.Forwarder{Log: slog.New(slog.DiscardHandler), Pool: e.pool, Mail: m,
		To: []string{"VERA@ispring.example", "boris@ispring.example"}}
	if err := f.Forward(ctx, pid, requestID, false); err != nil {
		t.Fatal(err)
	}
	msgs := smtp.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want one per language", len(msgs))
	}
	byTo := map[string]int{}
	for i, msg := range msgs {
		byTo[strings.Join(msg.To, ",")] = i
	}
	ruIdx, ok1 := byTo["boris@ispring.example"]
	enIdx, ok2 := byTo["VERA@ispring.example"]
	if !ok1 || !ok2 {
		t.Fatalf("recipients %v", byTo)
	}
	subj, _, body := mailOf(t, msgs[enIdx])
	if subj != "Activation request: mail-lang.bitrix24.ru" || !strings.Contains(body, "asks for activation") || strings.Contains(body, "Портал") {
		t.Fatalf("Vera's e-mail is not English: %q\n%s", subj, body)
	}
	subj, rawSubj, body := mailOf(t, msgs[ruIdx])
	if subj != "Заявка на активацию: mail-lang.bitrix24.ru" || !strings.Contains(body, "просит активировать") ||
		!strings.Contains(body, "Иван Петров") || strings.Contains(body, "asks for activation") {
		t.Fatalf("Boris's e-mail is not Russian: %q\n%s", subj, body)
	}
	// An 8-bit header is not allowed: the subject travels as encoded words.
	if !strings.HasPrefix(strings.ToUpper(rawSubj), "=?UTF-8?") || strings.ContainsFunc(rawSubj, func(r rune) bool { return r > 127 }) {
		t.Fatalf("raw Subject header %q", rawSubj)
	}
}

// statusLog records the status of every answer under a path prefix.
type statusLog struct {
	mu   sync.Mutex
	seen []string // "METHOD path status"
}

func (l *statusLog) wrap(prefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if strings.HasPrefix(r.URL.Path, prefix) {
			l.mu.Lock()
			l.seen = append(l.seen, fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, rec.status))
			l.mu.Unlock()
		}
	})
}

func (l *statusLog) find(what string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.seen {
		if strings.HasPrefix(s, what) {
			return s, true
		}
	}
	return "", false
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// River UI inside the console: without a session it redirects to sign-in;
// a signed-in manager sees its job list with the app's jobs; a POST to its
// API from another origin is refused (the session cookie is sent, since the
// attacker's page is on the same host, so only the origin check stops it),
// while the same POST from the console's own origin cancels the job.
func TestRiverUIInBrowser(t *testing.T) {
	t.Parallel()
	b := browsertest.Start(t, "en-US", 2*time.Minute)
	e := newConsoleEnv(t)
	ctx := context.Background()
	const email, password = "rita@ispring.example", "rita's long password"
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), email, password); err != nil {
		t.Fatal(err)
	}
	var victim int64
	if err := e.pool.QueryRow(ctx, `INSERT INTO river_job (args, kind, max_attempts, state) VALUES ('{}', 'probe_river_ui', 1, 'available') RETURNING id`).Scan(&victim); err != nil {
		t.Fatal(err)
	}
	jobState := func() string {
		var st string
		if err := e.pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, victim).Scan(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	log := &statusLog{}
	srv := httptest.NewServer(log.wrap("/manager/river/api/", e.h))
	t.Cleanup(srv.Close)
	p := tab{t: t, b: b}

	p.open(srv.URL + "/manager/river/jobs?state=available")
	p.until("the sign-in page instead of River UI", `location.pathname === '/manager/signin' && document.querySelector('#email')`)

	p.signIn(srv.URL, email, password)
	p.open(srv.URL + "/manager/river/jobs?state=available")
	p.until("River UI's job list with the app's job", `document.body && document.body.innerText.includes('probe_river_ui')`)
	if s, ok := log.find("GET /manager/river/api/jobs"); !ok || !strings.HasSuffix(s, " 200") {
		t.Fatalf("River UI's job list API: %q", s)
	}
	// Text from a portal that slipped past River UI's escaping into the page
	// as a script would run with the manager's session: the policy stops it.
	injected := p.eval(`new Promise(done => {
		document.addEventListener('securitypolicyviolation', () => done('blocked'), {once: true});
		const s = document.createElement('script');
		s.textContent = 'window.__injected = 1';
		document.head.appendChild(s);
		setTimeout(() => done(window.__injected === 1 ? 'ran' : 'silent'), 2000);
	})`, chromedp.EvalAwaitPromise)
	if injected != "blocked" {
		t.Fatalf("an inline script injected into River UI: %s, want blocked", injected)
	}

	// Another origin on the same host: the browser sends the session
	// cookie (same site) and marks the request Sec-Fetch-Site: same-site.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body><script>
			fetch(%q, {method: 'POST', mode: 'no-cors', credentials: 'include', headers: {'Content-Type': 'text/plain'},
				body: JSON.stringify({ids: ['%d']})}).finally(() => { document.body.dataset.sent = '1' });
			</script></body></html>`, srv.URL+"/manager/river/api/jobs/cancel", victim)
	}))
	t.Cleanup(evil.Close)
	p.open(evil.URL + "/")
	p.until("the cross-site POST sent", `document.body.dataset.sent === '1'`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s, ok := log.find("POST /manager/river/api/jobs/cancel"); ok {
			if !strings.HasSuffix(s, " 403") {
				t.Fatalf("cross-origin POST answered %q, want 403", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cross-origin POST never reached the server")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := jobState(); st != "available" {
		t.Fatalf("job state after the cross-origin POST: %s", st)
	}

	// The same request from the console's own origin goes through.
	p.open(srv.URL + "/manager/river/jobs?state=available")
	p.until("River UI again", `document.body && document.body.innerText.includes('probe_river_ui')`)
	status := p.eval(fmt.Sprintf(`fetch('/manager/river/api/jobs/cancel', {method: 'POST', headers: {'Content-Type': 'application/json'},
		body: JSON.stringify({ids: ['%d']})}).then(r => String(r.status))`, victim), chromedp.EvalAwaitPromise)
	if status != "200" || jobState() != "cancelled" {
		t.Fatalf("same-origin cancel: %s, job %s", status, jobState())
	}
}
