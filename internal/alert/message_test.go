package alert

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"b24learn/internal/i18n"
	"b24learn/internal/learn"
	"b24learn/internal/syncer"
)

// A run refused because another portal reaches the Learn account under
// another address tells the admin, in their language, which address to use.
func TestNeedsAttentionSaysTheAddressToUse(t *testing.T) {
	t.Parallel()
	raw := fmt.Errorf("learn account: %w", &syncer.AccountElsewhereError{Address: "https://acme.ispringlearn.ru"}).Error()
	for lang, want := range map[i18n.Lang]string{
		i18n.RU: "укажите в настройках URL аккаунта https://acme.ispringlearn.ru.",
		i18n.EN: "enter the account URL https://acme.ispringlearn.ru in the settings.",
	} {
		_, body := Message(lang, NeedsAttention, true, "beta.bitrix24.ru", raw, time.Time{})
		if !strings.Contains(body, want) || strings.Contains(body, "%!") {
			t.Errorf("%s: %s", lang, body)
		}
	}
}

// The e-mail of an uninstall without CLEAN taken on refused tokens announces
// no erase, since nothing will be erased, in every language; that of a CLEAN
// one names the day.
func TestUninstallKeptNamesNoErase(t *testing.T) {
	t.Parallel()
	eraseAt := time.Date(2026, 5, 17, 9, 0, 0, 0, time.UTC)
	for _, lang := range []i18n.Lang{i18n.EN, i18n.RU} {
		_, kept := Message(lang, UninstallKept, true, "beta.bitrix24.ru", "", eraseAt)
		_, pending := Message(lang, UninstallPending, true, "beta.bitrix24.ru", "", eraseAt)
		if strings.Contains(kept, "2026-05-17") || strings.Contains(kept, "%!") || !strings.Contains(kept, "30") ||
			!strings.Contains(kept, "beta.bitrix24.ru") {
			t.Errorf("%s: uninstall kept: %s", lang, kept)
		}
		if !strings.Contains(pending, "2026-05-17") {
			t.Errorf("%s: uninstall pending names no day: %s", lang, pending)
		}
		if kept == pending {
			t.Errorf("%s: the two e-mails say the same", lang)
		}
		subject, body := Message(lang, UninstallKept, false, "beta.bitrix24.ru", "", time.Time{})
		if strings.Contains(subject+body, "%!") || strings.Contains(body, "alert.recovered") {
			t.Errorf("%s: uninstall kept ended: %s / %s", lang, subject, body)
		}
		lsubject, lbody := LapsedMessage(lang, UninstallKept, "beta.bitrix24.ru")
		if strings.Contains(lsubject+lbody, "%!") || strings.Contains(lsubject+lbody, "alert.lapsed") ||
			!strings.Contains(lsubject, "beta.bitrix24.ru") || lsubject == subject || lbody == body {
			t.Errorf("%s: uninstall kept lapsed: %s / %s", lang, lsubject, lbody)
		}
	}
}

// A run stopped by a refused API key tells the admin, in each language,
// that the key was refused and to make a new one; a refused password keeps
// the password's words.
func TestNeedsAttentionSaysTheKeyWasRefused(t *testing.T) {
	t.Parallel()
	// As a run stores it (syncer.TestKeyTokenLostMidRun).
	key := "apply: create user: POST /user: learn: no access token: learn: POST /api/v3/token: API key refused (status 401, code 401)"
	password := "read learn departments: list departments: learn: GET /departments: wrong email or password (status 401, code 401)"
	for _, lang := range []i18n.Lang{i18n.EN, i18n.RU} {
		_, body := Message(lang, NeedsAttention, true, "beta.bitrix24.ru", key, time.Time{})
		if !strings.Contains(body, i18n.T(lang, "check."+learn.CheckBadAPIKey)) || strings.Contains(body, i18n.T(lang, "check."+learn.CheckBadCredentials)) {
			t.Errorf("%s: a refused key %q:\n%s", lang, key, body)
		}
		_, body = Message(lang, NeedsAttention, true, "beta.bitrix24.ru", password, time.Time{})
		if !strings.Contains(body, i18n.T(lang, "check."+learn.CheckBadCredentials)) {
			t.Errorf("%s: a refused password:\n%s", lang, body)
		}
	}
}
