package server

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"b24learn/internal/manager"
)

var portalRow = regexp.MustCompile(`<tr data-portal-id="\d+"><td><a [^>]*>([^<]+)</a>`)

// The console's portal list filters by the states the admins are alerted
// about; an unknown filter is refused with a clear message.
func TestConsolePortalFilter(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "anna@ispring.example", "long enough password"); err != nil {
		t.Fatal(err)
	}
	healthy, failing, gone, held := e.portal("ok.bitrix24.ru"), e.portal("failing.bitrix24.ru"), e.portal("gone.bitrix24.ru"), e.portal("held.bitrix24.ru")
	both := e.portal("both.bitrix24.ru")
	// Uninstalled on refused tokens, waiting for the recheck; one uninstalled
	// for good, and one whose recheck flag outlived a reinstall, are not.
	recheck, gone2, back := e.portal("recheck.bitrix24.ru"), e.portal("uninstalled.bitrix24.ru"), e.portal("back.bitrix24.ru")
	for _, q := range []struct {
		sql string
		ids []int64
	}{
		{`UPDATE portals SET needs_attention = true, sync_failures = 3 WHERE id = ANY($1)`, []int64{failing, both}},
		{`UPDATE portals SET needs_reconnect = true WHERE id = ANY($1)`, []int64{gone, both}},
		{`INSERT INTO portal_alerts (portal_id, state, active) SELECT unnest($1::bigint[]), 'held', true`, []int64{held}},
		// A held state that ended is not held.
		{`INSERT INTO portal_alerts (portal_id, state, active) SELECT unnest($1::bigint[]), 'held', false`, []int64{healthy}},
		{`UPDATE portals SET install_state = 'uninstalled', uninstalled_at = now(), uninstall_recheck = true WHERE id = ANY($1)`, []int64{recheck}},
		{`UPDATE portals SET install_state = 'uninstalled', uninstalled_at = now() WHERE id = ANY($1)`, []int64{gone2}},
		{`UPDATE portals SET uninstall_recheck = true WHERE id = ANY($1)`, []int64{back}},
	} {
		if _, err := e.pool.Exec(ctx, q.sql, q.ids); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser("10.0.0.2")
	if rec := b.signIn("anna@ispring.example", "long enough password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign in: %d", rec.Code)
	}
	list := func(query string) []string {
		t.Helper()
		rec := b.do("GET", "/manager/portals"+query, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", query, rec.Code, rec.Body.String())
		}
		var out []string
		for _, m := range portalRow.FindAllStringSubmatch(rec.Body.String(), -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{"back.bitrix24.ru", "both.bitrix24.ru", "failing.bitrix24.ru", "gone.bitrix24.ru", "held.bitrix24.ru", "ok.bitrix24.ru",
			"recheck.bitrix24.ru", "uninstalled.bitrix24.ru"}},
		{"?state=needs_attention", []string{"both.bitrix24.ru", "failing.bitrix24.ru"}},
		{"?state=needs_reconnect", []string{"both.bitrix24.ru", "gone.bitrix24.ru"}},
		{"?state=held", []string{"held.bitrix24.ru"}},
		{"?state=recheck", []string{"recheck.bitrix24.ru"}},
	} {
		if got := list(c.query); !slices.Equal(got, c.want) {
			t.Errorf("portals%s = %v, want %v", c.query, got, c.want)
		}
	}
	rec := b.do("GET", "/manager/portals?state=nonsense", nil)
	if rec.Code != http.StatusBadRequest && rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "Unknown portal filter") {
		t.Fatalf("unknown filter: %d %s", rec.Code, rec.Body.String())
	}
	if body := b.do("GET", "/manager/portals?state=held", nil).Body.String(); !strings.Contains(body, "<strong>Held</strong>") {
		t.Fatal("the chosen filter is not marked")
	}
	if body := b.do("GET", "/manager/portals", nil).Body.String(); !strings.Contains(body, `state=recheck`) || !strings.Contains(body, "Uninstall rechecked") {
		t.Error("the list offers no recheck filter")
	}
	// In the manager's language, as every console message.
	csrf := csrfOf(t, b.do("GET", "/manager/portals", nil).Body.String())
	if rec := b.do("POST", "/manager/lang", url.Values{"lang": {"ru"}, "csrf": {csrf}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("switch to Russian: %d", rec.Code)
	}
	if rec := b.do("GET", "/manager/portals?state=nonsense", nil); !strings.Contains(rec.Body.String(), "Неизвестный фильтр порталов") {
		t.Errorf("unknown filter, Russian console: %d %s", rec.Code, rec.Body.String())
	}
}
