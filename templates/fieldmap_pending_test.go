package templates

import (
	"context"
	"strings"
	"testing"

	"b24learn/internal/i18n"
)

// Before the Learn account is saved the field mapping has no rows; the
// section must say why instead of showing a heading over nothing.
func TestFieldMapSectionNeverEmpty(t *testing.T) {
	for _, c := range []struct {
		lang  i18n.Lang
		admin bool
		want  string
	}{
		{i18n.EN, true, "appear here once the iSpring Learn account above is saved"},
		{i18n.RU, true, "появятся здесь, когда аккаунт iSpring Learn выше будет сохранён"},
		{i18n.EN, false, "Only a portal administrator"},
		{i18n.RU, false, "видит и меняет только администратор портала"},
	} {
		var b strings.Builder
		if err := FieldMapSection(SettingsView{Lang: c.lang, Admin: c.admin}).Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), c.want) {
			t.Errorf("%s admin=%v: no %q in %s", c.lang, c.admin, c.want, b.String())
		}
	}
	// An error from Learn replaces the note, it does not stack with it.
	var b strings.Builder
	if err := FieldMapSection(SettingsView{Lang: i18n.EN, Admin: true, FieldMapError: "Learn did not answer"}).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "fieldmap-pending") || !strings.Contains(b.String(), "Learn did not answer") {
		t.Errorf("with an error: %s", b.String())
	}
}
