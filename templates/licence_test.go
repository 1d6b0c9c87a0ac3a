package templates

import (
	"strings"
	"testing"

	"b24learn/internal/syncer"
)

func TestLicenceAndConflictNotes(t *testing.T) {
	for n, want := range map[int]string{1: "1 сотрудник ждёт", 3: "3 сотрудника ждут", 11: "11 сотрудников ждут",
		21: "21 сотрудник ждёт", 70: "70 сотрудников ждут", 112: "112 сотрудников ждут"} {
		if got := LicenceNote("ru", n); !strings.HasPrefix(got, want) {
			t.Errorf("ru %d: %q", n, got)
		}
	}
	if LicenceNote("en", 0) != "" || ConflictNote("ru", 0) != "" {
		t.Error("a note for nothing")
	}
	if got := ConflictNote("en", 2); !strings.HasPrefix(got, "2 employees are also in another portal") {
		t.Errorf("en conflict: %q", got)
	}
	// The console speaks of the latest sync, not of a newer preview.
	runs := []syncer.RunRecord{
		{Trigger: syncer.TriggerPreview, Counts: map[string]int{"user.waiting": 9}},
		{Trigger: syncer.TriggerScheduled, Counts: map[string]int{"user.waiting": 70, "user.conflict": 1}},
	}
	notes := mgrRunNotes("en", runs)
	if len(notes) != 2 || !strings.HasPrefix(notes[0], "70 employees are waiting") || !strings.HasPrefix(notes[1], "1 employee is also") {
		t.Fatalf("console notes %q", notes)
	}
}
