package syncer

import (
	"slices"
	"testing"

	"b24learn/internal/fieldmap"
)

// A changed field mapping plans exactly the field updates it causes; a
// fixed field it leaves out keeps Learn's value; the next plan is empty.
// The saved default maps as no map does: the same fingerprints, no steps.
func TestPlanFollowsFieldMap(t *testing.T) {
	d := org()
	for i := range d.Employees {
		e := &d.Employees[i]
		e.Values = map[string]string{"UF_USR_SHOE": "4" + string(rune('0'+e.ID%10)), "PERSONAL_BIRTHDAY": "1990-05-01T00:00:00+03:00"}
	}
	o := opts()
	a := converge(t, o, d, emptyLearn())

	o.FieldMap = fieldmap.Effective(map[string]string{})
	if p := mustPlan(t, Input{Options: o, Desired: d, Actual: a}); len(p.Steps) != 0 {
		t.Fatalf("the default map saved changes things: %s", describe(p.Steps))
	}

	o.FieldMap = fieldmap.Effective(map[string]string{"job_title": "", "shoe_size": "UF_USR_SHOE", "birthday": "PERSONAL_BIRTHDAY"})
	for i := range a.Users {
		a.Users[i].JobTitle = "Set in Learn"
		a.Users[i].Extra = map[string]string{"shoe_size": "", "birthday": ""}
	}
	p := mustPlan(t, Input{Options: o, Desired: d, Actual: a})
	updates := 0
	for _, s := range p.Steps {
		if s.Kind != KindUser {
			continue
		}
		if s.Action != ActionUpdate || !slices.Equal(s.Changed, []string{"birthday", "shoe_size"}) {
			t.Fatalf("step %s.%s changes %v, want an update of birthday and shoe_size", s.Kind, s.Action, s.Changed)
		}
		if s.After["birthday"] != "1990-05-01" || s.After["shoe_size"] == "" || s.After["job_title"] != "Set in Learn" {
			t.Fatalf("after %v", s.After)
		}
		updates++
	}
	if updates == 0 {
		t.Fatal("no field updates planned")
	}
	a = simulate(t, p, a)
	if p := mustPlan(t, Input{Options: o, Desired: d, Actual: a}); len(p.Steps) != 0 {
		t.Fatalf("second plan not empty: %s", describe(p.Steps))
	}
}
