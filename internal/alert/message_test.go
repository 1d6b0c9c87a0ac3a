package alert

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"b24learn/internal/i18n"
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
