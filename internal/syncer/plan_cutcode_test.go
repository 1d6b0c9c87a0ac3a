package syncer

import (
	"slices"
	"testing"
)

// A Learn that cuts codes at 34 characters gives department 40 the code of
// department 4 ("<member>:40" cut is "<member>:4"). When department 4's own
// Learn department goes (a Learn admin deleted it), the plan must not take
// department 40's for it by that code: 40's users and courses would then
// sit under 4's name (docs/learn-api.md, "Department codes").
func TestPlanCutCodeNotTakenFromAnother(t *testing.T) {
	t.Parallel()
	d := org()
	d.Departments = append(d.Departments, Department{ID: 40, Name: "Ops", Parent: 1})
	a := converge(t, opts(), d, emptyLearn())
	four, forty := find(a, KindDepartment, 4), find(a, KindDepartment, 40)
	if four == "" || forty == "" {
		t.Fatalf("departments 4 and 40 not made: %v %v", four, forty)
	}
	for i := range a.Departments {
		if a.Departments[i].ID == forty {
			a.Departments[i].Code = DepartmentCode(member, 40)[:34]
		}
	}
	// Department 4 is gone in Learn; its child goes to the root there.
	a.Departments = slices.DeleteFunc(a.Departments, func(x LearnDepartment) bool { return x.ID == four })
	for i := range a.Departments {
		if a.Departments[i].ParentID == four {
			a.Departments[i].ParentID = "root"
		}
	}
	p := mustPlan(t, Input{Options: opts(), Desired: d, Actual: a})
	if got := p.DeptIDs[4]; got == forty {
		t.Errorf("department 4 stands for department 40's Learn department %s:%s", forty, describe(p.Steps))
	}
	if got := p.DeptIDs[40]; got != "" && got != forty {
		t.Errorf("department 40 is %s, want its own %s", got, forty)
	}
}
