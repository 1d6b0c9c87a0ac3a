package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"b24learn/internal/activation"
	"b24learn/internal/settings"
	"b24learn/internal/store"
)

// The alerts' address and switch are saved with the settings, with the
// saving admin's language; a bad address is refused with a message next to
// its field in the session's language; a client that does not send the
// fields keeps the stored ones; the page offers the admin's Bitrix24
// address until a save sets the alerts.
func TestSettingsAlertFields(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("alerts", "ru")
	sess, tok := e.session(p, 1, true, "ru")
	load := func() settings.Settings {
		t.Helper()
		st, err := settings.Load(context.Background(), e.pool, nil, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	pageWith := func(email string) string {
		t.Helper()
		p, err := store.GetPortal(context.Background(), e.pool, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		e.s.renderSettings(w, httptest.NewRequest(http.MethodPost, "/b24/app", nil), p, sess, tok, activation.Contact{Email: email})
		return w.Body.String()
	}
	if page := pageWith("anna@acme.ru"); !strings.Contains(page, `name="alert_email" value="anna@acme.ru"`) {
		t.Fatal("the page does not offer the admin's Bitrix24 address for alerts")
	}

	for _, bad := range []string{"anna", "anna@acme", "Anna <anna@acme.ru>", "a@acme.ru, b@acme.ru", "anna@acme.ru\r\nBcc: x@y.ru", strings.Repeat("a", 250) + "@acme.ru"} {
		r, sr := e.save(tok, with(validForm(), "alert_email", bad))
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(sr.Errors["alert_email"], "Укажите адрес") {
			t.Fatalf("alert_email %q: %d %+v, want 422 with a Russian message on the field", bad, r.status, sr.Errors)
		}
	}
	if st := load(); st.Saved {
		t.Fatal("a refused save stored settings")
	}

	if r, _ := e.save(tok, with(validForm(), "alert_email", " boss@acme.ru ", "alerts", "0")); r.status != http.StatusOK {
		t.Fatalf("save: %d %s", r.status, r.body)
	}
	if st := load(); st.AlertEmail != "boss@acme.ru" || !st.AlertsOff || st.AlertLang != "ru" {
		t.Fatalf("stored alerts %q off=%v lang=%q", st.AlertEmail, st.AlertsOff, st.AlertLang)
	}
	if e.count(`SELECT count(*) FROM settings_audit WHERE portal_id = $1 AND changes ? 'alert_email' AND changes ? 'alerts_off'`, p.ID) != 1 {
		t.Fatal("the alerts' change is not audited")
	}
	if r, _ := e.save(tok, validForm()); r.status != http.StatusOK {
		t.Fatalf("save without the fields: %d %s", r.status, r.body)
	}
	if st := load(); st.AlertEmail != "boss@acme.ru" || !st.AlertsOff {
		t.Fatalf("a save without the fields changed the alerts: %q off=%v", st.AlertEmail, st.AlertsOff)
	}
	if r, _ := e.save(tok, with(validForm(), "alert_email", "", "alerts", "1")); r.status != http.StatusOK {
		t.Fatalf("save: %d %s", r.status, r.body)
	}
	if st := load(); st.AlertEmail != "" || st.AlertsOff {
		t.Fatalf("stored alerts %q off=%v, want cleared and on", st.AlertEmail, st.AlertsOff)
	}
	if page := pageWith("anna@acme.ru"); !strings.Contains(page, `name="alert_email" value=""`) {
		t.Fatal("an address the admin cleared came back from the profile")
	}
}

// An address literal names a mail server by IP: each of a victim server's
// addresses (and every spelling of an IPv6 one) would be a new recipient for
// the confirmation cap, and the link would make our mail relay connect
// wherever the admin says, inside our network too.
func TestAlertEmailRefusesAddressLiterals(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"victim@[10.0.0.1]", "victim@[127.0.0.1]", "victim@[IPv6:::1]", "victim@[IPv6:2001:db8::1]"} {
		if activation.Mailbox(bad) {
			t.Errorf("activation.Mailbox(%q) = true", bad)
		}
	}
	for _, good := range []string{"victim@corp.ru", "victim@пример.рф"} {
		if !activation.Mailbox(good) {
			t.Errorf("activation.Mailbox(%q) = false", good)
		}
	}
}

// The alert address is shown on the settings page, the confirmation page
// and in the e-mail's header: a bidi override or an invisible character
// would show another address than the one the link confirms.
func TestAlertEmailRefusesBidiAndInvisibleCharacters(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"anna\u202e@acme.ru", "anna@\u202eur.emca", "anna@ac\u200bme.ru", "an\ufeffna@acme.ru"} {
		if activation.Mailbox(bad) {
			t.Errorf("activation.Mailbox(%+q) = true", bad)
		}
	}
}
