package server

import (
	"testing"

	"b24learn/internal/i18n"
	"b24learn/internal/syncer"
)

// A run item's changes name Learn's fields, a user's status and a
// contested user's owner in the page's language; values that are data
// (names, ids, a custom field's name) stay as they are.
func TestItemChangesInThePagesLanguage(t *testing.T) {
	t.Parallel()
	it := syncer.RunItem{
		Before: map[string]string{"status": "3", "job_title": "Инженер", "UF_SHOE_SIZE": "41"},
		After:  map[string]string{"status": "1", "job_title": "Старший инженер", "UF_SHOE_SIZE": "42", "owner": syncer.OwnerThisPortal},
	}
	for lang, want := range map[i18n.Lang]string{
		i18n.RU: "UF_SHOE_SIZE: 41 → 42; должность: Инженер → Старший инженер; владелец:  → этот портал; статус: неактивен → активен",
		i18n.EN: "UF_SHOE_SIZE: 41 → 42; position: Инженер → Старший инженер; owner:  → this portal; status: inactive → active",
	} {
		if got := itemChanges(lang, it, deptNames{}); got != want {
			t.Errorf("%s: %q, want %q", lang, got, want)
		}
	}
}
