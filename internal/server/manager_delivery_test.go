package server

import (
	"context"
	"html"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"b24learn/internal/activation"
	"b24learn/internal/manager"
)

// A request nobody was e-mailed about because every address on
// MANAGER_EMAILS belongs to a disabled console account is not "not
// configured": the console says what happened and what the operator can
// do, in both languages, on the list and on the portal's page. A request
// skipped for want of mail settings still says "not configured".
func TestConsoleSaysWhyAnEmailWasSkipped(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	now := time.Now()
	for _, email := range []string{"anna@ispring.example", "leaver@ispring.example"} {
		if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), email, "long enough password"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := manager.SetDisabled(ctx, e.pool, "leaver@ispring.example", true, now); err != nil {
		t.Fatal(err)
	}
	submit := func(domain string) (int64, int64) {
		t.Helper()
		return e.request(domain, now, olgaAsks(domain))
	}
	pidOff, idOff := submit("leavers.bitrix24.ru")
	pidNone, idNone := submit("nomail.bitrix24.ru")

	srv, mailer := plainMailer(t)
	log := slog.New(slog.DiscardHandler)
	toLeaver := &activation.Forwarder{Log: log, Pool: e.pool, Mail: mailer, To: []string{"leaver@ispring.example"}}
	if err := toLeaver.Forward(ctx, pidOff, idOff, true); err != nil {
		t.Fatal(err)
	}
	noMail := &activation.Forwarder{Log: log, Pool: e.pool, To: []string{"anna@ispring.example"}}
	if err := noMail.Forward(ctx, pidNone, idNone, true); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages sent, want none", n)
	}

	b := e.browser("10.0.0.7")
	if rec := b.signIn("anna@ispring.example", "long enough password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	type texts struct{ disabled, hint, notConfigured string }
	langs := []struct {
		lang string
		want texts
	}{
		{"en", texts{"skipped: every manager on MANAGER_EMAILS has a disabled console account",
			"enable a manager's account (b24learn manager enable EMAIL) or put an active manager's address on MANAGER_EMAILS",
			"not configured"}},
		{"ru", texts{"пропущено: у всех менеджеров из MANAGER_EMAILS отключена учётная запись консоли",
			"включите учётную запись менеджера (b24learn manager enable EMAIL) или добавьте в MANAGER_EMAILS адрес действующего менеджера",
			"не настроено"}},
	}
	for _, l := range langs {
		body := b.requestsPage(l.lang)
		portalOff := b.do("GET", "/manager/portals/"+strconv.FormatInt(pidOff, 10), nil).Body.String()
		for where, row := range map[string]string{"list": requestRow(t, body, idOff), "portal page": requestRow(t, portalOff, idOff)} {
			email := deliveryCell(t, row, "email-delivery")
			if email != l.want.disabled {
				t.Errorf("%s, %s: e-mail delivery %q, want %q", l.lang, where, email, l.want.disabled)
			}
			if !strings.Contains(row, `class="badge failed" data-testid="email-delivery"`) {
				t.Errorf("%s, %s: the skipped e-mail is not marked as a problem:\n%s", l.lang, where, row)
			}
			if hint := deliveryCell(t, row, "email-delivery-hint"); !strings.Contains(hint, l.want.hint) {
				t.Errorf("%s, %s: hint %q lacks %q", l.lang, where, hint, l.want.hint)
			}
		}
		other := requestRow(t, body, idNone)
		if got := deliveryCell(t, other, "email-delivery"); got != l.want.notConfigured {
			t.Errorf("%s: e-mail without mail settings %q, want %q", l.lang, got, l.want.notConfigured)
		}
		if strings.Contains(other, "email-delivery-hint") {
			t.Errorf("%s: a hint on the request skipped for want of settings:\n%s", l.lang, other)
		}
	}
}

// requestRow is the request's row of a console page.
func requestRow(t *testing.T, body string, id int64) string {
	t.Helper()
	start := strings.Index(body, `id="request-`+strconv.FormatInt(id, 10)+`"`)
	if start < 0 {
		t.Fatalf("no row of request %d in:\n%s", id, body)
	}
	end := strings.Index(body[start:], "</tr>")
	if end < 0 {
		t.Fatalf("row of request %d does not end", id)
	}
	return body[start : start+end]
}

// deliveryCell is the text of the element with data-testid testid in row.
func deliveryCell(t *testing.T, row, testid string) string {
	t.Helper()
	m := regexp.MustCompile(`data-testid="` + regexp.QuoteMeta(testid) + `">([^<]*)<`).FindStringSubmatch(row)
	if m == nil {
		t.Fatalf("no %s in:\n%s", testid, row)
	}
	return html.UnescapeString(m[1])
}
