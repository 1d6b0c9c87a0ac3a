package syncer

import (
	"context"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
)

// The attacker: an on-premise portal whose department listing has a root
// and, beside it, two departments each the other's parent (a cycle that
// does not reach the root), one of them selected. The plan created each
// under the other, so the two creates, and the creates of their
// employees, waited for each other: every run of the portal failed
// ("steps wait for steps that never run") after writing what came before
// them. The cycle is now cut at its lowest id, which hangs under the
// portal's root, as a rootless listing's is.
func TestSyncDepartmentCycleBesideTheRoot(t *testing.T) {
	e := newSimEnv(t, simOpts{})
	id, p := e.addPortal(b24sim.GenerateOrg(11, 6, 1))
	a := p.AddDepartment("Sales", 1, 0)
	b := p.AddDepartment("Ops", a, 0)
	if err := p.MoveDepartment(a, b); err != nil {
		t.Fatal(err)
	}
	var inA, inB string
	for _, u := range p.Users() {
		if !u.Active || u.Extranet || u.Email == "" {
			continue
		}
		switch {
		case inA == "":
			inA = u.Email
			if err := p.MoveUser(u.ID, a); err != nil {
				t.Fatal(err)
			}
		case inB == "":
			inB = u.Email
			if err := p.MoveUser(u.ID, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if inB == "" {
		t.Fatal("the org has too few employees with an e-mail: the test proves nothing")
	}
	e.setSettings(id, func(s *Settings) { s.Selection.Selected = []int64{1, a} })
	rep, err := e.syncer.Run(context.Background(), id, TriggerManual)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Status != RunSucceeded {
		t.Errorf("run %s, want %s", rep.Status, RunSucceeded)
	}
	st := e.state()
	for _, email := range []string{inA, inB} {
		found := false
		for _, u := range st.Users {
			if u.Fields["email"] == email && u.Status == 1 {
				found = true
			}
		}
		if !found {
			t.Errorf("%s (in the cycle's departments) is not an active Learn user", email)
		}
	}
}
