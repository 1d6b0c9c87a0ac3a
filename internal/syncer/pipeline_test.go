package syncer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
)

// pacedLearn makes department creates slow and notes when the first user
// create started and when the last department create finished.
type pacedLearn struct {
	Learn
	mu                   sync.Mutex
	firstUser, lastDept  time.Time
	deptsDone, usersSent int
}

func (p *pacedLearn) CreateDepartment(ctx context.Context, d learn.NewDepartment) (string, error) {
	time.Sleep(30 * time.Millisecond)
	id, err := p.Learn.CreateDepartment(ctx, d)
	p.mu.Lock()
	p.lastDept = time.Now()
	p.deptsDone++
	p.mu.Unlock()
	return id, err
}

func (p *pacedLearn) CreateUser(ctx context.Context, u learn.NewUser) (string, error) {
	p.mu.Lock()
	if p.firstUser.IsZero() {
		p.firstUser = time.Now()
	}
	p.usersSent++
	p.mu.Unlock()
	return p.Learn.CreateUser(ctx, u)
}

// A deep tree does not drain the writes at every level: the users of a
// department start as soon as it exists, while the departments deeper in the
// tree are still being created, and the result is the same tree.
func TestApplyPipelinesDepartmentsAndTheirUsers(t *testing.T) {
	e := newSimEnv(t, simOpts{par: 4})
	org := b24sim.Org{Name: "Deep", Departments: []b24sim.Department{{ID: 1, Name: "Root"}}}
	for id := int64(2); id <= 10; id++ { // a chain 9 deep under the root
		org.Departments = append(org.Departments, b24sim.Department{ID: id, Name: fmt.Sprintf("Level %d", id-1), Parent: id - 1})
	}
	for i := range 40 {
		id := int64(100 + i)
		org.Users = append(org.Users, b24sim.User{ID: id, Active: true, Name: "User", LastName: fmt.Sprint(id),
			Email: fmt.Sprintf("u%d@example.com", id), Departments: []int64{2 + int64(i%3)}})
	}
	var paced *pacedLearn
	e.wrap = func(l Learn) Learn { paced = &pacedLearn{Learn: l}; return paced }
	id, p := e.addPortal(org)
	rep := e.run(id, TriggerManual)
	if rep.Status != RunSucceeded {
		t.Fatalf("run %s", rep.Status)
	}
	if paced.deptsDone != 9 || paced.usersSent != 40 {
		t.Fatalf("%d departments and %d users created, want 9 and 40", paced.deptsDone, paced.usersSent)
	}
	if !paced.firstUser.Before(paced.lastDept) {
		t.Fatalf("the first user create started %v after the last department was created, want users under the upper departments while the deeper ones are made",
			paced.firstUser.Sub(paced.lastDept))
	}
	checkPortal(t, e.state(), p, e.state().RootID)
}

// movesLearn notes when each department update started and finished, by
// Learn id.
type movesLearn struct {
	Learn
	mu         sync.Mutex
	start, end map[string]time.Time
}

func (m *movesLearn) UpdateDepartment(ctx context.Context, id string, u learn.DepartmentUpdate) error {
	m.mu.Lock()
	m.start[id] = time.Now()
	m.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	err := m.Learn.UpdateDepartment(ctx, id, u)
	m.mu.Lock()
	m.end[id] = time.Now()
	m.mu.Unlock()
	return err
}

// Moves of existing departments keep the order of the levels in the pipeline:
// a department that goes under one of its current descendants is moved only
// after that descendant has left its subtree, never making a loop in Learn.
func TestApplyPipelineMovesExistingDepartmentsLevelByLevel(t *testing.T) {
	e := newSimEnv(t, simOpts{par: 8})
	org := b24sim.Org{Name: "Moves", Departments: []b24sim.Department{{ID: 1, Name: "Root"},
		{ID: 2, Name: "A", Parent: 1}, {ID: 3, Name: "B", Parent: 2}, {ID: 4, Name: "C", Parent: 3}}}
	for i := range 10 {
		id := int64(100 + i)
		org.Users = append(org.Users, b24sim.User{ID: id, Active: true, Name: "User", LastName: fmt.Sprint(id),
			Email: fmt.Sprintf("u%d@example.com", id), Departments: []int64{2 + int64(i%3)}})
	}
	id, p := e.addPortal(org)
	e.run(id, TriggerManual)
	ids := checkPortal(t, e.state(), p, e.state().RootID)
	// A > B > C becomes C > A > B: C leaves A's subtree, then A goes under it.
	if err := p.MoveDepartment(4, 1); err != nil {
		t.Fatal(err)
	}
	if err := p.MoveDepartment(2, 4); err != nil {
		t.Fatal(err)
	}
	m := &movesLearn{start: map[string]time.Time{}, end: map[string]time.Time{}}
	e.wrap = func(l Learn) Learn { m.Learn = l; return m }
	if rep := e.run(id, TriggerManual); rep.Status != RunSucceeded {
		t.Fatalf("run %s", rep.Status)
	}
	c, a := ids[4], ids[2]
	if m.end[c].IsZero() || m.start[a].IsZero() {
		t.Fatalf("moves of C (%v) and A (%v): want both", m.end[c], m.start[a])
	}
	if m.start[a].Before(m.end[c]) {
		t.Fatalf("A was moved under C %v before C had left A's subtree", m.end[c].Sub(m.start[a]))
	}
	checkPortal(t, e.state(), p, e.state().RootID)
}
