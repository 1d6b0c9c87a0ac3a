package templates

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"b24learn/internal/i18n"
	"b24learn/internal/syncer"
)

// A failed run's stored error (English Go error text) reaches a Russian
// admin as a Russian sentence first, the text after it marked for support;
// a restart's "interrupted" is a sentence alone.
func TestRunErrorSaidInThePagesLanguage(t *testing.T) {
	for _, tc := range []struct {
		raw, ru, en string
		detail      bool
	}{
		{"interrupted", "Запуск прервался при перезапуске", "The run was cut short", false},
		{fmt.Errorf("plan: %w", syncer.ErrNothingSelected).Error(), "Не выбрано ни одного подразделения", "No departments are selected", true},
		{fmt.Errorf("plan: %w", syncer.ErrEmptyRead).Error(), "Битрикс24 не вернул", "Bitrix24 returned no departments", true},
		{"find learn api: learn check bad_credentials: learn: unauthorized", "iSpring Learn отклонил e-mail", "iSpring Learn rejected", true},
		{"read learn departments: list departments: learn: GET /departments: wrong email or password (status 401, code 401)", "iSpring Learn отклонил e-mail", "iSpring Learn rejected", true},
		{"read users: bitrix24: error QUERY_LIMIT_EXCEEDED (http 503)", "ошибки запроса к Битрикс24", "on a Bitrix24 request", true},
		{"create user: learn: server error (http 500)", "ошибки запроса к iSpring Learn", "on an iSpring Learn request", true},
		{fmt.Errorf("learn account: %w", &syncer.AccountElsewhereError{Address: "https://acme.ispringlearn.ru"}).Error(),
			"уже подключён другим порталом по другому адресу. В iSpring Learn ничего не изменено: укажите в настройках URL аккаунта https://acme.ispringlearn.ru.",
			"already connected by another portal under another address. Nothing was changed in iSpring Learn: enter the account URL https://acme.ispringlearn.ru in",
			false},
		{"acquire lock connection: timeout", "Запуск не удался.", "The run failed.", true},
	} {
		for _, c := range []struct {
			lang i18n.Lang
			want string
		}{{i18n.RU, tc.ru}, {i18n.EN, tc.en}} {
			text, detail := RunErrorText(c.lang, tc.raw)
			if !strings.Contains(text, c.want) {
				t.Errorf("%s %q: %q, want it to say %q", c.lang, tc.raw, text, c.want)
			}
			if (detail == tc.raw) != tc.detail || (detail != "" && detail != tc.raw) {
				t.Errorf("%s %q: detail %q", c.lang, tc.raw, detail)
			}
		}
	}
	if text, detail := RunErrorText(i18n.RU, " "); text != "" || detail != "" {
		t.Errorf("no error: %q %q", text, detail)
	}

	// The panel of a Russian admin: the sentence, then the text for support.
	run := RunView{ID: 1, Trigger: "scheduled", Status: syncer.RunFailed, StartedAt: time.Now(),
		Error: "read users: bitrix24: error QUERY_LIMIT_EXCEEDED (http 503)"}
	var b strings.Builder
	v := StatusView{Lang: i18n.RU, Admin: true, Activation: "active", LastRun: &run, Runs: []RunView{run}, Attention: run.Error}
	if err := StatusPanel(v).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.Count(page, "Запуск не удался из-за ошибки запроса к Битрикс24.") != 2 ||
		!strings.Contains(page, "Подробности для службы поддержки: <code>read users: bitrix24: error QUERY_LIMIT_EXCEEDED (http 503)</code>") {
		t.Errorf("the Russian panel does not say the error (last run, attention):\n%s", page)
	}
}

// The run report says a run's error as the status panel does: the sentence in
// the page's language, not the stored text, which may name an address
// another tenant chose (syncer.RunErrorArgs).
func TestRunReportSaysTheErrorsSentence(t *testing.T) {
	t.Parallel()
	raw := fmt.Errorf("learn account: %w", &syncer.AccountElsewhereError{Address: "https://learn.evil.test"}).Error()
	run := RunView{ID: 7, Trigger: "scheduled", Status: "failed", StartedAt: time.Now(), Error: raw}
	var b strings.Builder
	if err := RunReport(i18n.EN, run, nil, ReportPage{}).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	// The sentence up to its first apostrophe, which the page escapes.
	want, _, _ := strings.Cut(i18n.T(i18n.EN, "run_err_account_elsewhere_unnamed"), "'")
	if !strings.Contains(b.String(), want) {
		t.Errorf("the report does not say the sentence: %s", b.String())
	}
	if strings.Contains(b.String(), "evil") {
		t.Errorf("the report names the other tenant's address: %s", b.String())
	}
}
