package syncer

import (
	"context"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// A Learn field whose type changes after the mapping was saved (text into
// what is now a date field) is left out of the next run: its value is not
// sent, Learn keeps what it has, and the run's report has a row saying so.
func TestRunLeavesOutFieldWhoseTypeChanged(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{account: learnsim.AccountOptions{ExtraFields: []string{"user_defined_field1"}}})
	portalID, p := e.addPortal(b24sim.GenerateOrg(3, 20, 5))
	u := syncedUser(p)
	if err := p.UpdateUser(u.ID, func(x *b24sim.User) { x.PersonalCity = "Казань" }); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	set := e.settings[portalID]
	set.FieldMap = map[string]string{"user_defined_field1": "PERSONAL_CITY", "first_name": "NAME", "last_name": "LAST_NAME"}
	e.settings[portalID] = set
	e.mu.Unlock()
	e.run(portalID, TriggerManual)
	city := func() string {
		got, ok := e.state().UserByLogin(u.Email)
		if !ok {
			t.Fatalf("no Learn user %s", u.Email)
		}
		return got.Fields["user_defined_field1"]
	}
	if got := city(); got != "Казань" {
		t.Fatalf("mapped custom field %q, want Казань", got)
	}

	// The Learn admin turns the field into a date; Bitrix24 changes the city.
	if err := e.lsim.SetFieldType(simAccount, "user_defined_field1", "birthdate"); err != nil {
		t.Fatal(err)
	}
	if err := p.UpdateUser(u.ID, func(x *b24sim.User) { x.PersonalCity = "Самара" }); err != nil {
		t.Fatal(err)
	}
	e.lsim.ResetCounts()
	rep := e.run(portalID, TriggerManual)
	if rep.Status != RunSucceeded && rep.Status != RunPartial {
		t.Fatalf("run status %s", rep.Status)
	}
	if got := city(); got != "Казань" {
		t.Errorf("custom field %q after the type change, want Learn's value kept", got)
	}
	if c := e.lsim.Counts(simAccount); c.Writes != 0 {
		t.Errorf("%d Learn writes, want none: %v", c.Writes, c.ByRoute)
	}
	items, err := e.syncer.store.RunItems(context.Background(), portalID, rep.RunID)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, it := range items {
		if it.Action == ActionRefuse && it.B24ID == 0 {
			rows = append(rows, it.Reason)
		}
	}
	if len(rows) != 1 || !strings.Contains(rows[0], "user_defined_field1") || !strings.Contains(rows[0], "date") {
		t.Errorf("left-out rows %q, want one naming user_defined_field1 and the date type", rows)
	}
}
