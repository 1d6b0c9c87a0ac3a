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

// An attacker with many portals spells one victim's mailbox in ways the mail
// system delivers to the same place: each spelling must not bring a new cap
// of confirmation e-mails. The domain as the mail system resolves it (IDNA
// mapping: full-width, circled, invisible characters, Unicode against
// punycode), Gmail's dots and Yandex's dots, hyphens and domains are one
// mailbox.
func TestRecipientKeyFoldsSpellingsOfOneMailbox(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ a, b string }{
		{"victim@corp.ru", "victim@ⓒorp.ru"},
		{"victim@corp.ru", "victim@ｃｏｒｐ.ru"},
		{"victim@corp.ru", "victim@corp.ru\u200b"},
		{"victim@corp.ru", "victim@co\u00adrp.ru"},
		{"victim@пример.рф", "victim@xn--e1afmkfd.xn--p1ai"},
		{"victim@пример.рф", "victim@ПРИМЕР.РФ"},
		{"victim@gmail.com", "v.i.c.t.i.m@gmail.com"},
		{"victim@gmail.com", "Vic.Tim+x@googlemail.com"},
		{"ivan.petrov@yandex.ru", "ivan-petrov@ya.ru"},
		{"ivan.petrov@yandex.ru", "Ivan-Petrov+b24@yandex.com"},
		{"ivan.petrov@yandex.ru", "ivan.petrov@narod.ru"},
	} {
		if ra, rb := recipient(tc.a), recipient(tc.b); ra != rb {
			t.Errorf("recipient(%q) = %q but recipient(%q) = %q: one mailbox, two caps", tc.a, ra, tc.b, rb)
		}
	}
	// Other providers' dots and hyphens are part of the name.
	if recipient("vic.tim@corp.ru") == recipient("victim@corp.ru") || recipient("vic.tim@corp.ru") == recipient("vic-tim@corp.ru") {
		t.Error("dots or hyphens folded outside Gmail and Yandex")
	}
}
