package alert

import (
	"strings"
	"testing"

	"b24learn/internal/i18n"
)

// One mailbox is one recipient for the cap, however it is spelt: case and a
// "+tag" do not make a new one; other local parts and domains do.
func TestRecipientKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"victim@corp.ru":        "victim@corp.ru",
		" Victim@Corp.RU ":      "victim@corp.ru",
		"victim+alerts@corp.ru": "victim@corp.ru",
		"VICTIM+a+b@corp.ru":    "victim@corp.ru",
		"+tag@corp.ru":          "+tag@corp.ru", // no local part left to strip to
		"victim.two@corp.ru":    "victim.two@corp.ru",
		"victim@other.corp.ru":  "victim@other.corp.ru",
	} {
		if got := recipient(in); got != want {
			t.Errorf("recipient(%q) = %q, want %q", in, got, want)
		}
	}
}

// The e-mail carries the link and the portal in the admin's language.
func TestConfirmMessage(t *testing.T) {
	t.Parallel()
	const link = "https://app.example.test/alerts/confirm?token=abc"
	for lang, word := range map[i18n.Lang]string{i18n.EN: "Confirm", i18n.RU: "Подтвердите"} {
		subject, body := ConfirmMessage(lang, "acme.bitrix24.ru", link)
		if !strings.Contains(subject, word) || !strings.Contains(subject, "acme.bitrix24.ru") ||
			!strings.Contains(body, "\n"+link+"\n") || !strings.Contains(body, "7") {
			t.Errorf("%s: %q / %q", lang, subject, body)
		}
	}
}
