package syncer

import (
	"slices"
	"testing"
)

// learnCodes gives every department of a but the root the code keep makes
// of the app's code, as a Learn that cuts or drops codes holds them.
func learnCodes(a Actual, keep func(code string) string) {
	for i := range a.Departments {
		if d := &a.Departments[i]; d.ID != "root" && d.Code != "" {
			d.Code = keep(d.Code)
		}
	}
}

func dropMapping(a Actual, kind Kind, b24 int64) Actual {
	a.Mappings = slices.DeleteFunc(slices.Clone(a.Mappings), func(m Mapping) bool { return m.Kind == kind && m.B24ID == b24 })
	return a
}

func steps(p *Plan, kind Kind, action Action, b24 int64) int {
	n := 0
	for _, s := range append(slices.Clone(p.Steps), p.Refused...) {
		if s.Kind == kind && s.Action == action && s.B24ID == b24 {
			n++
		}
	}
	return n
}

var codeVariants = []struct {
	name string
	keep func(string) string
}{
	{"Kept", func(c string) string { return c }},
	{"Cut32", func(c string) string { return c[:32] }},
	{"Cut34", func(c string) string { return c[:34] }},
	{"Dropped", func(string) string { return "" }},
}

// A department whose mapping is lost (a run killed between the create and
// its record) is found again on a Learn that cut or dropped its code, and
// linked rather than made twice (docs/learn-api.md, "Department codes").
func TestPlanFindsDepartmentWithoutItsCode(t *testing.T) {
	t.Parallel()
	for _, v := range codeVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			a := converge(t, opts(), org(), emptyLearn())
			learnCodes(a, v.keep)
			if p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a}); len(p.Steps) != 0 {
				t.Fatalf("codes as Learn keeps them make steps: %s", describe(p.Steps))
			}
			for _, lost := range []int64{2, 3, 4} {
				it := find(a, KindDepartment, lost)
				p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: dropMapping(a, KindDepartment, lost)})
				if n := steps(p, KindDepartment, ActionCreate, lost); n != 0 {
					t.Errorf("department %d made again:%s", lost, describe(p.Steps))
				}
				if p.DeptIDs[lost] != it || steps(p, KindDepartment, ActionLink, lost) != 1 {
					t.Errorf("department %d is %q, want %s linked:%s", lost, p.DeptIDs[lost], it, describe(p.Steps))
				}
			}
		})
	}
}

// A namesake under the same parent is not ours when its code is one the app
// never makes, when another portal's mapping names it, or when nothing shows
// that Learn drops codes; two that may be ours make nothing, reported.
func TestPlanDepartmentWithoutItsCodeNotTaken(t *testing.T) {
	t.Parallel()
	// Department 4 is new in Bitrix24 (or its Learn department was
	// deleted): each Learn "IT" beside it is someone else's.
	setup := func(t *testing.T, keep func(string) string, admin LearnDepartment) Actual {
		t.Helper()
		a := converge(t, opts(), org(), emptyLearn())
		learnCodes(a, keep)
		it := find(a, KindDepartment, 4)
		a = dropMapping(a, KindDepartment, 4)
		a.Departments = slices.DeleteFunc(a.Departments, func(d LearnDepartment) bool { return d.ID == it })
		for i := range a.Departments {
			if a.Departments[i].ParentID == it {
				a.Departments[i].ParentID = "root"
			}
		}
		admin.ParentID, admin.Name = "root", "IT"
		a.Departments = append(a.Departments, admin)
		return a
	}
	for _, v := range codeVariants {
		t.Run("AdminCode"+v.name, func(t *testing.T) {
			t.Parallel()
			a := setup(t, v.keep, LearnDepartment{ID: "admin-it", Code: "IT-1"})
			p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a})
			if p.DeptIDs[4] == "admin-it" || steps(p, KindDepartment, ActionCreate, 4) != 1 {
				t.Errorf("department 4 is %q, want made:%s", p.DeptIDs[4], describe(p.Steps))
			}
		})
	}
	t.Run("NoCodeOnAKeepingLearn", func(t *testing.T) {
		t.Parallel()
		a := setup(t, func(c string) string { return c }, LearnDepartment{ID: "admin-it"})
		p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a})
		if p.DeptIDs[4] == "admin-it" || steps(p, KindDepartment, ActionCreate, 4) != 1 {
			t.Errorf("department 4 is %q, want made:%s", p.DeptIDs[4], describe(p.Steps))
		}
	})
	t.Run("AnotherPortals", func(t *testing.T) {
		t.Parallel()
		a := setup(t, func(string) string { return "" }, LearnDepartment{ID: "other-it"})
		a.OtherDepartments = map[string]bool{"other-it": true}
		p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a})
		if p.DeptIDs[4] == "other-it" || steps(p, KindDepartment, ActionCreate, 4) != 1 {
			t.Errorf("department 4 is %q, want made:%s", p.DeptIDs[4], describe(p.Steps))
		}
	})
	t.Run("TwoCandidates", func(t *testing.T) {
		t.Parallel()
		a := setup(t, func(c string) string { return c[:32] }, LearnDepartment{ID: "it-a", Code: member})
		a.Departments = append(a.Departments, LearnDepartment{ID: "it-b", Name: "IT", ParentID: "root", Code: member})
		p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a})
		if steps(p, KindDepartment, ActionCreate, 4) != 0 || p.DeptIDs[4] != "" {
			t.Errorf("department 4 made or taken (%q) with two candidates:%s", p.DeptIDs[4], describe(p.Steps))
		}
		i := slices.IndexFunc(p.Refused, func(s Step) bool { return s.B24ID == 4 && s.Kind == KindDepartment })
		if i < 0 || !p.Refused[i].Reason.Has(ReasonCodeless) {
			t.Errorf("department 4 not reported: %s", describe(p.Refused))
		}
	})
}
