package syncer

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// headlessChain is a chain of n departments without heads under the
// selected root, and n leaves under its bottom, each headed by its only
// employee: the shape in which every head's own manager was looked for by
// a walk up the whole chain.
func headlessChain(n int) Desired {
	var d Desired
	for i := 1; i <= n; i++ {
		d.Departments = append(d.Departments, Department{ID: int64(i), Name: "c", Parent: int64(i - 1)})
	}
	for j := range n {
		id, uid := int64(n+1+j), int64(1_000_000+j)
		d.Departments = append(d.Departments, Department{ID: id, Name: "l", Parent: int64(n), Head: uid})
		d.Employees = append(d.Employees, emp(uid, fmt.Sprintf("u%d@x.test", j), id))
	}
	return d
}

// The heads' walks of the plan's last stage look at each department a
// bounded number of times: a hostile portal's deep chain cannot make the
// plan quadratic. Counted, not timed.
func TestPlanHeadsWalkLinear(t *testing.T) {
	o := opts()
	o.HeadsAsManagers, o.ParentHeadsAsSupervisors = true, true
	for _, n := range []int{1_000, 4_000} {
		d := headlessChain(n)
		b, err := build(Input{Options: o, Desired: d, Actual: emptyLearn()})
		if err != nil {
			t.Fatal(err)
		}
		size := len(d.Departments) + len(d.Employees)
		t.Logf("chain of %d + %d headed leaves: %d departments looked at (%d departments and employees)", n, n, b.walked, size)
		if b.walked > 5*size {
			t.Errorf("chain of %d: the heads' walks looked at %d departments, want at most %d (5 per department and employee)", n, b.walked, 5*size)
		}
	}
}

// walkHeadUp is headUp as a plain walk up from start: the rule the cached
// headUp must keep.
func walkHeadUp(b *builder, start, skip int64) int64 {
	for x, n := start, 0; x != 0 && n <= len(b.depts); x, n = b.parentOf(x), n+1 {
		if h := b.depts[x].Head; h != 0 && h != skip && b.synced(h) {
			return h
		}
	}
	return 0
}

// headUp gives the walk's answer for every department and every user to
// skip, in random orgs where one user heads several departments, some
// heads do not sync and some departments' parents form cycles.
func TestHeadUpMatchesWalk(t *testing.T) {
	o := opts()
	o.HeadsAsManagers, o.ParentHeadsAsSupervisors = true, true
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		n := 2 + r.IntN(40)
		var d Desired
		users := int64(1 + r.IntN(6))
		for i := 1; i <= n; i++ {
			dep := Department{ID: int64(i), Name: "d", Parent: int64(r.IntN(i))}
			if r.IntN(3) > 0 {
				dep.Head = 100 + r.Int64N(users+2) // 100+users and up are not employees
			}
			d.Departments = append(d.Departments, dep)
		}
		for u := range users {
			e := emp(100+u, fmt.Sprintf("u%d@x.test", u), 1+r.Int64N(int64(n)))
			e.Active = r.IntN(4) > 0
			d.Employees = append(d.Employees, e)
		}
		if !d.Employees[0].Active {
			d.Employees[0].Active = true
		}
		b, err := build(Input{Options: o, Desired: d, Actual: emptyLearn()})
		if err != nil {
			t.Fatal(err)
		}
		// Parents turned into cycles after the plan: headUp alone is asked.
		for range r.IntN(3) {
			x := b.depts[1+r.Int64N(int64(n))]
			x.Parent = 1 + r.Int64N(int64(n))
		}
		b.heads, b.headed = nil, nil
		for i := 1; i <= n; i++ {
			for skip := int64(0); skip < 100+users+2; skip++ {
				if skip > 0 && skip < 100 {
					skip = 100
				}
				if got, want := b.headUp(int64(i), skip), walkHeadUp(b, int64(i), skip); got != want {
					t.Fatalf("round %d: headUp(%d, %d) = %d, the walk says %d (departments %+v)", round, i, skip, got, want, d.Departments)
				}
			}
		}
	}
}

// BenchmarkPlanHeadsChain is the plan of a chain of n head-less departments
// with n headed leaves, both supervisor toggles on (docs/benchmarks.md,
// "Hostile org shapes").
func BenchmarkPlanHeadsChain(b *testing.B) {
	o := opts()
	o.HeadsAsManagers, o.ParentHeadsAsSupervisors = true, true
	for _, n := range []int{2_500, 10_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			in := Input{Options: o, Desired: headlessChain(n), Actual: emptyLearn()}
			b.ReportAllocs()
			walked := 0
			for b.Loop() {
				bl, err := build(in)
				if err != nil {
					b.Fatal(err)
				}
				walked = bl.walked
			}
			b.ReportMetric(float64(walked), "walked/op")
		})
	}
}

// The attacker: a portal whose department listing has no root, every
// department's parent being another of them (a cycle, or one department
// its own parent), as an on-premise portal's owner may answer. The plan
// looked up the root it had not found and panicked, every run of the
// portal; now the lowest id stands in for the root and the cycle is cut
// above it.
func TestPlanDepartmentsWithoutRoot(t *testing.T) {
	for _, c := range []struct {
		name  string
		depts []Department
	}{
		{"OwnParent", []Department{{ID: 1, Name: "Acme", Parent: 1, Head: 10}}},
		{"Cycle", []Department{{ID: 2, Name: "Sales", Parent: 1, Head: 20}, {ID: 1, Name: "Acme", Parent: 2, Head: 10}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Desired{Departments: c.depts, Employees: []Employee{emp(10, "ceo@acme.test", 1), emp(20, "sales@acme.test", 2)}}
			o := opts()
			o.HeadsAsManagers, o.ParentHeadsAsSupervisors = true, true
			p, err := BuildPlan(Input{Options: o, Desired: d, Actual: emptyLearn()})
			if err != nil {
				t.Fatal(err)
			}
			if p.Layout.RootB24 != 1 {
				t.Errorf("root %d, want 1 (the lowest id)", p.Layout.RootB24)
			}
			creates := map[int64]bool{}
			for _, s := range p.Steps {
				if s.Kind == KindUser && s.Action == ActionCreate {
					creates[s.B24ID] = true
				}
				if s.Kind == KindDepartment && s.B24ID == 2 && s.Dept != nil && s.Dept.ParentB24 != 1 && s.Dept.ParentLearnID != "root" {
					t.Errorf("department 2 under %+v, want under the root's department", s.Dept)
				}
			}
			if !creates[10] || len(c.depts) == 2 && !creates[20] {
				t.Errorf("user creates %v, want the employees of the selected tree", creates)
			}
		})
	}
}
