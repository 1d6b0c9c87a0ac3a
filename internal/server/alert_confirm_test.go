package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"b24learn/internal/apptest"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"b24learn/internal/activation"
	"b24learn/internal/activation/smtptest"
	"b24learn/internal/alert"
	"b24learn/internal/settings"
	"b24learn/internal/store"
)

const confirmBase = "https://app.example.test"

// confirmEnv is the settings endpoints with River working the alert and
// confirmation e-mails into an in-process SMTP server, as serve runs them.
type confirmEnv struct {
	*settingsEnv
	smtp *smtptest.Server
}

func newConfirmEnv(t *testing.T) *confirmEnv {
	t.Helper()
	e := &confirmEnv{settingsEnv: newSettingsEnv(t), smtp: smtptest.Start(t, smtptest.Plain, "", "")}
	m, err := activation.NewMailer(e.smtp.URL, "b24learn@app.example.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	workers := river.NewWorkers()
	river.AddWorker(workers, &alert.Worker{Log: log, Pool: e.pool, Mail: m})
	river.AddWorker(workers, &alert.ConfirmWorker{Log: log, Pool: e.pool, Mail: m, PublicURL: confirmBase})
	apptest.StartRiver(t, e.pool, &river.Config{Logger: log, Workers: workers})
	return e
}

// settle waits until River has no unfinished job.
func (e *confirmEnv) settle() {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.count(`SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded')`) > 0 {
		if time.Now().After(deadline) {
			e.t.Fatal("timed out waiting for the e-mail jobs")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type sentMail struct{ to, subject, body string }

// mails decodes what the SMTP server accepted, once River settled.
func (e *confirmEnv) mails() []sentMail {
	e.t.Helper()
	e.settle()
	var out []sentMail
	for _, m := range e.smtp.Messages() {
		d := m.Decode(e.t)
		out = append(out, sentMail{to: strings.Join(m.To, ","), subject: d.Subject, body: d.Body})
	}
	return out
}

var linkRE = regexp.MustCompile(`https://app\.example\.test/alerts/confirm\?token=([A-Za-z0-9_-]+)`)

// token is the token of the confirmation link in m.
func (e *confirmEnv) token(m sentMail) string {
	e.t.Helper()
	got := linkRE.FindStringSubmatch(m.body)
	if got == nil {
		e.t.Fatalf("no confirmation link in %+v", m)
	}
	if len(got[1]) < 22 { // 128 bits in base64url
		e.t.Fatalf("token %q is shorter than 128 bits", got[1])
	}
	return got[1]
}

// open GETs the link's page; post presses its button, from the page's own
// origin unless site says otherwise.
func (e *confirmEnv) open(token string) resp {
	e.t.Helper()
	return e.doConfirm(http.MethodGet, "/alerts/confirm?token="+url.QueryEscape(token), nil, "")
}

func (e *confirmEnv) post(token, site string) resp {
	e.t.Helper()
	return e.doConfirm(http.MethodPost, "/alerts/confirm", url.Values{"token": {token}}, site)
}

func (e *confirmEnv) doConfirm(method, target string, form url.Values, site string) resp {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, confirmBase+target, body)
	req.Header.Set("Accept-Language", "en-US,en;q=0.9")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if site == "" {
			site = "same-origin"
		}
		req.Header.Set("Sec-Fetch-Site", site)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return resp{w.Code, w.Body.String(), w.Header()}
}

// flipAttention sets the portal's "needs attention" state as the sync jobs
// do, queueing an alert when it flips.
func (e *confirmEnv) flipAttention(portalID int64, on bool) {
	e.t.Helper()
	err := pgx.BeginFunc(context.Background(), e.pool, func(tx pgx.Tx) error {
		return alert.Observe(context.Background(), tx, e.s.river, portalID, alert.Observed{Attention: &on})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.settle()
}

func (e *confirmEnv) confirmed(portalID int64, address string) bool {
	e.t.Helper()
	ok, err := alert.Confirmed(context.Background(), e.pool, portalID, address)
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

// A saved address gets one confirmation e-mail with a link, and no alert
// until its owner confirms: opening the link changes nothing, a POST from
// another site is refused, the page's button confirms, and the next alert
// goes out. The link works once; the raw token is stored nowhere.
func TestAlertAddressDoubleOptIn(t *testing.T) {
	t.Parallel()
	e := newConfirmEnv(t)
	p := e.addPortal("optin", "en")
	sess, tok := e.session(p, 1, true, "en")

	r, sr := e.save(tok, with(validForm(), "alert_email", "Boss@acme.ru"))
	if r.status != http.StatusOK || !strings.Contains(sr.Message, "confirmation link to Boss@acme.ru") || sr.AlertState != "pending" {
		t.Fatalf("save: %d %s, want 200 saying a confirmation link was sent", r.status, r.body)
	}
	got := e.mails()
	if len(got) != 1 || got[0].to != "Boss@acme.ru" || !strings.Contains(got[0].subject, "Confirm") || !strings.Contains(got[0].body, "optin.bitrix24.com") {
		t.Fatalf("mails after the save: %+v, want one confirmation e-mail to the address", got)
	}
	token := e.token(got[0])

	// Only the token's hash is stored: not in its table, not in the job.
	sum := sha256.Sum256([]byte(token))
	if e.count(`SELECT count(*) FROM alert_confirm_tokens WHERE token_hash = $1 AND portal_id = $2 AND address = 'boss@acme.ru'`, sum[:], p.ID) != 1 {
		t.Fatal("the token's hash is not stored, bound to the portal and the address")
	}
	for _, table := range []string{"alert_confirm_tokens", "alert_confirm_sends", "alert_confirmed", "portal_settings", "settings_audit", "river_job"} {
		if n := e.count(`SELECT count(*) FROM `+table+` t WHERE row_to_json(t)::text LIKE '%' || $1 || '%'`, token); n != 0 {
			t.Fatalf("the raw token is stored in %s", table)
		}
	}

	e.flipAttention(p.ID, true)
	if got := e.mails(); len(got) != 1 {
		t.Fatalf("an alert went to an unconfirmed address: %+v", got[1:])
	}
	if page := e.page(p, sess, tok); !strings.Contains(page, "Waiting for confirmation — check Boss@acme.ru") {
		t.Fatal("the settings page does not say the address waits for confirmation")
	}

	page := e.open(token)
	if page.status != http.StatusOK || !strings.Contains(page.body, `<form method="post" action="/alerts/confirm">`) ||
		!strings.Contains(page.body, "boss@acme.ru") || page.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET of the link: %d %s", page.status, page.body)
	}
	if e.confirmed(p.ID, "Boss@acme.ru") {
		t.Fatal("opening the link (GET) confirmed the address")
	}
	if r := e.post(token, "cross-site"); r.status != http.StatusForbidden || e.confirmed(p.ID, "Boss@acme.ru") {
		t.Fatalf("a cross-site POST: %d, confirmed %v; want 403 and nothing confirmed", r.status, e.confirmed(p.ID, "Boss@acme.ru"))
	}
	if r := e.post(token, ""); r.status != http.StatusOK || !strings.Contains(r.body, "Confirmed") || !e.confirmed(p.ID, "Boss@acme.ru") {
		t.Fatalf("POST of the button: %d %s, want 200 and the address confirmed", r.status, r.body)
	}
	if page := e.page(p, sess, tok); !strings.Contains(page, "Address confirmed") {
		t.Fatal("the settings page does not say the address is confirmed")
	}

	e.flipAttention(p.ID, false)
	e.flipAttention(p.ID, true)
	got = e.mails()
	if len(got) != 2 || got[1].to != "Boss@acme.ru" || !strings.Contains(got[1].subject, "needs attention") {
		t.Fatalf("after confirming: %+v, want the alert sent", got)
	}

	for _, r := range []resp{e.post(token, ""), e.open(token)} {
		if r.status != http.StatusConflict || !strings.Contains(r.body, "already used") {
			t.Fatalf("a used link: %d %s, want 409 saying it was used", r.status, r.body)
		}
	}

	// Back to a confirmed address after another: no new e-mail needed.
	if r, _ := e.save(tok, with(validForm(), "alert_email", "")); r.status != http.StatusOK {
		t.Fatalf("save: %d", r.status)
	}
	if r, sr := e.save(tok, with(validForm(), "alert_email", "boss@acme.ru")); r.status != http.StatusOK || sr.AlertState != "confirmed" {
		t.Fatalf("saving the confirmed address again: %d %s", r.status, r.body)
	}
	if got := e.mails(); len(got) != 2 {
		t.Fatalf("a confirmed address got another confirmation e-mail: %+v", got[2:])
	}
}

// A wrong, an expired and a used token are each refused with a page that
// says so and a 4xx status, on GET and POST alike, and confirm nothing.
func TestAlertConfirmRefusesBadTokens(t *testing.T) {
	t.Parallel()
	e := newConfirmEnv(t)
	p := e.addPortal("badtokens", "ru")
	_, tok := e.session(p, 1, true, "ru")
	if r, _ := e.save(tok, with(validForm(), "alert_email", "boss@acme.ru")); r.status != http.StatusOK {
		t.Fatalf("save: %d %s", r.status, r.body)
	}
	got := e.mails()
	if len(got) != 1 || !strings.Contains(got[0].subject, "Подтвердите") {
		t.Fatalf("mails: %+v, want one confirmation in the saving admin's Russian", got)
	}
	token := e.token(got[0])

	for _, bad := range []string{"", "nonsense", token[:len(token)-1], token + "x", strings.Repeat("a", 5000)} {
		for _, r := range []resp{e.open(bad), e.post(bad, "")} {
			if r.status != http.StatusNotFound || !strings.Contains(r.body, "not valid") {
				t.Fatalf("token %.20q: %d %s, want 404 saying the link is not valid", bad, r.status, r.body)
			}
		}
	}
	if _, err := e.pool.Exec(context.Background(), `UPDATE alert_confirm_tokens SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	for _, r := range []resp{e.open(token), e.post(token, "")} {
		if r.status != http.StatusGone || !strings.Contains(r.body, "expired") {
			t.Fatalf("an expired link: %d %s, want 410 saying it expired", r.status, r.body)
		}
	}
	if e.confirmed(p.ID, "boss@acme.ru") {
		t.Fatal("a refused token confirmed the address")
	}
	if !strings.Contains(e.open("<script>").body, "not valid") || strings.Contains(e.open("<script>").body, "<script>") {
		t.Fatal("the page echoes the token unescaped")
	}
}

// A portal sends at most ConfirmPortalCap confirmation e-mails a day:
// further saves of new addresses are saved, unconfirmed, with a message
// saying why no e-mail went; the "send the link" button hits the same cap.
func TestAlertConfirmationsPerPortalAreCapped(t *testing.T) {
	t.Parallel()
	e := newConfirmEnv(t)
	p := e.addPortal("portalcap", "en")
	sess, tok := e.session(p, 1, true, "en")
	for i := range alert.ConfirmPortalCap + 2 {
		addr := "person" + string(rune('a'+i)) + "@acme" + string(rune('a'+i)) + ".ru"
		r, sr := e.save(tok, with(validForm(), "alert_email", addr))
		capped := i >= alert.ConfirmPortalCap
		if r.status != http.StatusOK || strings.Contains(sr.Message, "too many confirmation e-mails") != capped {
			t.Fatalf("save %d: %d %s, want 200, capped %v", i, r.status, r.body, capped)
		}
		st, err := settings.Load(context.Background(), e.pool, nil, p.ID)
		if err != nil || st.AlertEmail != addr {
			t.Fatalf("save %d: stored %q (%v), want %q", i, st.AlertEmail, err, addr)
		}
		// Each e-mail goes before the next save: a job finding the address
		// changed since sends nothing.
		e.settle()
	}
	if got := e.mails(); len(got) != alert.ConfirmPortalCap {
		t.Fatalf("%d confirmation e-mails from one portal, want %d", len(got), alert.ConfirmPortalCap)
	}
	if page := e.page(p, sess, tok); !strings.Contains(page, "Not confirmed") || !strings.Contains(page, `id="alert-send"`) {
		t.Fatal("the page does not offer to send the link of the capped address")
	}
	r := e.do(http.MethodPost, "/app/alert-confirmation", tok, url.Values{})
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "too many confirmation e-mails") {
		t.Fatalf("send the link past the cap: %d %s, want 429 with the reason", r.status, r.body)
	}
	if got := e.mails(); len(got) != alert.ConfirmPortalCap {
		t.Fatalf("the button sent past the cap: %d e-mails", len(got))
	}
}

// The attacker: many portals, each within its own cap, point their alerts
// at one victim, in spellings of one mailbox. At most ConfirmRecipientCap
// e-mails reach the victim; every further portal is told why.
func TestAlertConfirmationsPerRecipientAreCapped(t *testing.T) {
	t.Parallel()
	e := newConfirmEnv(t)
	spellings := []string{"victim@corp.ru", "Victim@Corp.ru", "victim+1@corp.ru", "VICTIM+b24@corp.ru", "victim@corp.ru", "victim+x@corp.ru"}
	for i, addr := range spellings {
		p := e.addPortal("attacker"+string(rune('a'+i)), "en")
		_, tok := e.session(p, 1, true, "en")
		r, sr := e.save(tok, with(validForm(), "alert_email", addr))
		capped := i >= alert.ConfirmRecipientCap
		if r.status != http.StatusOK || strings.Contains(sr.Message, "too many confirmation e-mails") != capped {
			t.Fatalf("portal %d: %d %s, want 200, capped %v", i, r.status, r.body, capped)
		}
		if capped {
			if r := e.do(http.MethodPost, "/app/alert-confirmation", tok, url.Values{}); r.status != http.StatusTooManyRequests {
				t.Fatalf("portal %d's button: %d %s, want 429", i, r.status, r.body)
			}
		}
	}
	if got := e.mails(); len(got) != alert.ConfirmRecipientCap {
		t.Fatalf("%d e-mails reached the victim, want at most %d", len(got), alert.ConfirmRecipientCap)
	}
}

// The attacker's way round the recipient's cap: send the victim its
// confirmation e-mails from a portal, erase the portal (a clean uninstall,
// which the attacker's own portal confirms), install again, and send more.
// The erase drops the portal's link to the sends and their address, not the
// recipient's count.
func TestAlertConfirmationsPerRecipientCapOutlivesAnErase(t *testing.T) {
	t.Parallel()
	e := newConfirmEnv(t)
	ctx := context.Background()
	a := e.addPortal("erasedattacker", "en")
	_, tok := e.session(a, 1, true, "en")
	for i, addr := range []string{"victim@corp.ru", "victim+1@corp.ru", "victim+2@corp.ru"}[:alert.ConfirmRecipientCap] {
		if r, sr := e.save(tok, with(validForm(), "alert_email", addr)); r.status != http.StatusOK || strings.Contains(sr.Message, "too many") {
			t.Fatalf("save %d: %d %s", i, r.status, r.body)
		}
		if got := e.mails(); len(got) != i+1 { // sent before the next save changes the address
			t.Fatalf("%d e-mails after save %d", len(got), i)
		}
	}
	if err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error { return store.ErasePortalData(ctx, tx, a.ID) }); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM alert_confirm_sends WHERE portal_id = $1 OR address <> ''`, a.ID); n != 0 {
		t.Fatalf("%d confirmation sends still name the erased portal or the address", n)
	}
	b := e.addPortal("nextattacker", "en")
	_, tok = e.session(b, 1, true, "en")
	if r, sr := e.save(tok, with(validForm(), "alert_email", "victim@corp.ru")); r.status != http.StatusOK || !strings.Contains(sr.Message, "too many confirmation e-mails") {
		t.Fatalf("save after the erase: %d %s, want 200 and capped", r.status, r.body)
	}
	if got := e.mails(); len(got) != alert.ConfirmRecipientCap {
		t.Fatalf("%d e-mails reached the victim, want at most %d", len(got), alert.ConfirmRecipientCap)
	}
}

// An address saved before the opt-in (no link ever sent) gets no alerts;
// the page offers the link, the admin's button sends it, and other users
// than admins cannot.
func TestAlertAddressSavedBeforeOptIn(t *testing.T) {
	t.Parallel()
	e := newConfirmEnv(t)
	p := e.addPortal("legacy", "en")
	if _, err := settings.Save(context.Background(), e.pool, e.kr, p.ID, 1, func(s *settings.Settings) {
		s.AlertEmail, s.AlertLang = "old@acme.ru", "en"
	}); err != nil {
		t.Fatal(err)
	}
	e.flipAttention(p.ID, true)
	if got := e.mails(); len(got) != 0 {
		t.Fatalf("an address saved before the opt-in got %+v", got)
	}
	sess, tok := e.session(p, 1, true, "en")
	if page := e.page(p, sess, tok); !strings.Contains(page, "Not confirmed") {
		t.Fatal("the page does not say the old address is not confirmed")
	}
	_, userTok := e.session(p, 2, false, "en")
	if r := e.do(http.MethodPost, "/app/alert-confirmation", userTok, url.Values{}); r.status != http.StatusForbidden {
		t.Fatalf("a non-admin sent the link: %d", r.status)
	}
	r := e.do(http.MethodPost, "/app/alert-confirmation", tok, url.Values{})
	var res alertConfirmResult
	if err := json.Unmarshal([]byte(r.body), &res); err != nil || r.status != http.StatusOK || res.AlertState != "pending" {
		t.Fatalf("send the link: %d %s", r.status, r.body)
	}
	got := e.mails()
	if len(got) != 1 || got[0].to != "old@acme.ru" {
		t.Fatalf("mails: %+v, want the confirmation to the old address", got)
	}
	if r := e.post(e.token(got[0]), ""); r.status != http.StatusOK || !e.confirmed(p.ID, "old@acme.ru") {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	p2, err := store.GetPortal(context.Background(), e.pool, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if page := e.page(p2, sess, tok); !strings.Contains(page, "Address confirmed") || !strings.Contains(page, `id="alert-send" hidden`) {
		t.Fatal("the page does not show the confirmed state")
	}
}

// An address literal saved before the save refused them gets no link from
// the button either: the link would make our relay connect wherever it says.
func TestAlertConfirmationButtonRefusesAnOldAddressLiteral(t *testing.T) {
	t.Parallel()
	e := newConfirmEnv(t)
	p := e.addPortal("oldliteral", "en")
	if _, err := settings.Save(context.Background(), e.pool, e.kr, p.ID, 1, func(s *settings.Settings) {
		s.AlertEmail, s.AlertLang = "victim@[10.0.0.1]", "en"
	}); err != nil {
		t.Fatal(err)
	}
	_, tok := e.session(p, 1, true, "en")
	r := e.do(http.MethodPost, "/app/alert-confirmation", tok, url.Values{})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Enter an e-mail address") {
		t.Fatalf("send the link to an address literal: %d %s, want 422 asking for an address", r.status, r.body)
	}
	e.settle()
	if got := e.mails(); len(got) != 0 {
		t.Fatalf("an address literal was sent %+v", got)
	}
}

// The recipient's cap holds when the attacker's portals save at once.
func TestAlertConfirmationsPerRecipientCapHoldsConcurrently(t *testing.T) {
	t.Parallel()
	e := newConfirmEnv(t)
	const portals = 8
	toks := make([]string, portals)
	for i := range toks {
		_, toks[i] = e.session(e.addPortal("rush"+string(rune('a'+i)), "en"), 1, true, "en")
	}
	results := make(chan string, portals)
	for i, tok := range toks {
		go func() {
			// Each its own Learn login: checks of one login in flight at
			// once count towards its bound on failed checks (learn_guess.go).
			form := with(validForm(), "alert_email", "target@corp.ru", "learn_email", fmt.Sprintf("admin%d@acme.ru", i))
			req := httptest.NewRequest(http.MethodPost, "/app/settings", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Session", tok)
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, req)
			results <- strconv.Itoa(w.Code) + " " + w.Body.String()
		}()
	}
	capped := 0
	for range portals {
		r := <-results
		if !strings.HasPrefix(r, "200 ") {
			t.Fatalf("a save failed: %s", r)
		}
		if strings.Contains(r, "too many confirmation e-mails") {
			capped++
		}
	}
	if got := e.mails(); len(got) != alert.ConfirmRecipientCap || capped != portals-alert.ConfirmRecipientCap {
		t.Fatalf("%d e-mails reached the target and %d saves were told of the cap; want %d and %d",
			len(got), capped, alert.ConfirmRecipientCap, portals-alert.ConfirmRecipientCap)
	}
}

// The link's page and its answer speak the e-mail's language, not the
// browser's: a Russian admin's e-mail opened in an English browser (or the
// other way round) gets a page like the e-mail.
func TestAlertConfirmPageSpeaksTheEmailsLanguage(t *testing.T) {
	t.Parallel()
	e := newConfirmEnv(t)
	for i, c := range []struct {
		lang, browser, ask, done, other string
	}{
		{"ru", "en-US,en;q=0.9", "Присылать оповещения", "Готово: оповещения портала", "Send the iSpring Learn sync alerts"},
		{"en", "ru-RU,ru;q=0.9", "Send the iSpring Learn sync alerts", "Confirmed: the alerts", "Присылать оповещения"},
	} {
		p := e.addPortal("lang"+strconv.Itoa(i), c.lang)
		_, tok := e.session(p, 1, true, c.lang)
		if r, _ := e.save(tok, with(validForm(), "alert_email", "boss"+strconv.Itoa(i)+"@acme.ru")); r.status != http.StatusOK {
			t.Fatalf("%s: save: %d %s", c.lang, r.status, r.body)
		}
		got := e.mails()
		m := got[len(got)-1]
		link := regexp.MustCompile(`https://app\.example\.test(/alerts/confirm\?\S+)`).FindStringSubmatch(m.body)
		if link == nil || !strings.HasSuffix(link[1], "&lang="+c.lang) {
			t.Fatalf("%s: the e-mail's link %v does not name its language", c.lang, link)
		}
		get := func(method, target string, form url.Values) resp {
			var body io.Reader
			if form != nil {
				body = strings.NewReader(form.Encode())
			}
			req := httptest.NewRequest(method, confirmBase+target, body)
			req.Header.Set("Accept-Language", c.browser)
			if form != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Sec-Fetch-Site", "same-origin")
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, req)
			return resp{w.Code, w.Body.String(), w.Header()}
		}
		page := get(http.MethodGet, link[1], nil)
		if page.status != http.StatusOK || !strings.Contains(page.body, c.ask) || strings.Contains(page.body, c.other) ||
			!strings.Contains(page.body, `<html lang="`+c.lang+`"`) {
			t.Fatalf("%s: the link's page in a %s browser: %d %s", c.lang, c.browser, page.status, page.body)
		}
		// The button posts the language with the token.
		if !strings.Contains(page.body, `name="lang" value="`+c.lang+`"`) {
			t.Fatalf("%s: the page's form does not carry its language: %s", c.lang, page.body)
		}
		r := get(http.MethodPost, "/alerts/confirm", url.Values{"token": {e.token(m)}, "lang": {c.lang}})
		if r.status != http.StatusOK || !strings.Contains(r.body, c.done) {
			t.Fatalf("%s: the confirmation in a %s browser: %d %s", c.lang, c.browser, r.status, r.body)
		}
	}
}

// The attacker spends the victim's cap in advance: one new portal of their
// own saves the victim's address and presses "send the link" until the
// recipient's cap is full, as it can again every day. The victim's own
// portal, activated by iSpring, must still get its link to the victim's
// admin, who confirms it; portals not activated stay refused, so the cap
// still keeps the attacker's further portals from mailing the victim.
func TestAlertConfirmationCapCannotBeSpentAgainstTheRightfulAdmin(t *testing.T) {
	t.Parallel()
	e := newConfirmEnv(t)
	attacker := e.addPortal("spender", "en")
	_, atok := e.session(attacker, 1, true, "en")
	if r, sr := e.save(atok, with(validForm(), "alert_email", "admin@victim.ru")); r.status != http.StatusOK || sr.AlertState != "pending" {
		t.Fatalf("attacker's save: %d %s", r.status, r.body)
	}
	for i := 1; i < alert.ConfirmRecipientCap; i++ {
		e.settle() // the link went out: the button queues another
		if r := e.do(http.MethodPost, "/app/alert-confirmation", atok, url.Values{}); r.status != http.StatusOK {
			t.Fatalf("attacker's press %d: %d %s", i, r.status, r.body)
		}
	}
	if got := e.mails(); len(got) != alert.ConfirmRecipientCap {
		t.Fatalf("%d e-mails from the attacker's portal, want the recipient's cap (%d)", len(got), alert.ConfirmRecipientCap)
	}
	if r := e.do(http.MethodPost, "/app/alert-confirmation", atok, url.Values{}); r.status != http.StatusTooManyRequests {
		t.Fatalf("attacker's press past the cap: %d, want 429", r.status)
	}

	victim := e.addPortal("victimco", "en")
	if _, err := e.pool.Exec(context.Background(), `UPDATE portals SET activation_state = 'active' WHERE id = $1`, victim.ID); err != nil {
		t.Fatal(err)
	}
	_, vtok := e.session(victim, 1, true, "en")
	r, sr := e.save(vtok, with(validForm(), "alert_email", "Admin@victim.ru"))
	if r.status != http.StatusOK || !strings.Contains(sr.Message, "confirmation link to Admin@victim.ru") || sr.AlertState != "pending" {
		t.Fatalf("the rightful admin's save: %d %s, want the link sent", r.status, r.body)
	}
	got := e.mails()
	if len(got) != alert.ConfirmRecipientCap+1 || !strings.Contains(got[len(got)-1].body, "victimco.bitrix24.com") {
		t.Fatalf("mails %+v, want the rightful portal's link last", got)
	}
	if r := e.post(e.token(got[len(got)-1]), ""); r.status != http.StatusOK || !e.confirmed(victim.ID, "admin@victim.ru") {
		t.Fatalf("the rightful admin's confirmation: %d %s", r.status, r.body)
	}

	// The cap still holds for every portal not activated.
	other := e.addPortal("spender2", "en")
	_, otok := e.session(other, 1, true, "en")
	if r, sr := e.save(otok, with(validForm(), "alert_email", "admin+x@victim.ru")); r.status != http.StatusOK || !strings.Contains(sr.Message, "too many confirmation e-mails") {
		t.Fatalf("another attacker portal: %d %s, want capped", r.status, r.body)
	}
	if got := e.mails(); len(got) != alert.ConfirmRecipientCap+1 {
		t.Fatalf("%d e-mails reached the victim, want %d", len(got), alert.ConfirmRecipientCap+1)
	}
}
