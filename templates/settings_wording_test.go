package templates

import (
	"context"
	"strings"
	"testing"

	"b24learn/internal/i18n"
)

// The Russian settings form says "электронная почта" as the activation form
// does, and a checkbox label does not repeat its section's heading.
func TestSettingsRussianWording(t *testing.T) {
	var b strings.Builder
	if err := settingsFields(SettingsView{Lang: i18n.RU, Admin: true}).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"Email для оповещений", "Уведомления пользователям: "} {
		if strings.Contains(page, bad) {
			t.Errorf("the Russian settings still say %q", bad)
		}
	}
	for _, want := range []string{"Электронная почта для оповещений", "Отправлять пользователям данные для входа"} {
		if !strings.Contains(page, want) {
			t.Errorf("no %q on the Russian settings", want)
		}
	}
}
