package syncer

import (
	"context"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// A Learn field whose type changes after the mapping was saved (text into
// what is now a date field) is left out of the next run: its value is not
// sent, Learn keeps what it has, and the run's report has a row saying so.
func TestRunLeavesOutFieldWhoseTypeChanged(t *testing.T) {
	t.Parallel()
	e, portalID, p, u := cityMappedPortal(t)
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
			rows = append(rows, it.Reason.String())
		}
	}
	if len(rows) != 1 || rows[0] != "field_left_out(user_defined_field1, needs_date)" {
		t.Errorf("left-out rows %q, want one naming user_defined_field1 and the date type", rows)
	}
}

// A birth date goes out as YYYY-MM-DD against every date form Learn may
// want: where it is taken the value lands; where it is not, the run still
// finishes, that employee's row names the refusal, and the others sync.
func TestSyncBirthDateAgainstDateFormats(t *testing.T) {
	t.Parallel()
	for _, f := range []learnsim.DateFormat{learnsim.DateISO, learnsim.DateDotted, learnsim.DateDateTime} {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{DateFormat: f}},
				account: learnsim.AccountOptions{ExtraFields: []string{"birthday"}, FieldTypes: map[string]string{"birthday": "birthdate"}}})
			portalID, p := e.addPortal(b24sim.GenerateOrg(3, 20, 5))
			u := syncedUser(p)
			if err := p.UpdateUser(u.ID, func(x *b24sim.User) { x.Birthday = "1990-05-01" }); err != nil {
				t.Fatal(err)
			}
			e.mu.Lock()
			set := e.settings[portalID]
			set.FieldMap = map[string]string{"birthday": "PERSONAL_BIRTHDAY", "first_name": "NAME", "last_name": "LAST_NAME"}
			e.settings[portalID] = set
			e.mu.Unlock()
			rep := e.run(portalID, TriggerManual)
			got, created := e.state().UserByLogin(u.Email)
			if f == learnsim.DateISO {
				if rep.Status != RunSucceeded || !created || got.Fields["birthday"] != "1990-05-01" {
					t.Fatalf("run %s, user %+v: want the birth date in Learn", rep.Status, got)
				}
				return
			}
			if rep.Status != RunPartial || created {
				t.Fatalf("run %s, user created %v: want a partial run without that user", rep.Status, created)
			}
			items, err := e.syncer.store.RunItems(context.Background(), portalID, rep.RunID)
			if err != nil {
				t.Fatal(err)
			}
			refused, applied := 0, 0
			for _, it := range items {
				switch {
				case it.Kind == KindUser && it.Status == ItemRefused:
					refused++
					if it.B24ID != u.ID || it.Reason.arg(ReasonLearnField) != "birthday" {
						t.Errorf("refused row %+v, want employee %d's naming the field", it, u.ID)
					}
				case it.Kind == KindUser && it.Status == ItemApplied:
					applied++
				}
			}
			if refused != 1 || applied == 0 {
				t.Errorf("%d refused and %d applied user rows, want 1 and the rest", refused, applied)
			}
		})
	}
}

// cityMappedPortal is a portal whose field mapping sends an employee's city
// (PERSONAL_CITY) to the custom Learn field user_defined_field1, after a
// full run has synced u with the city Казань.
func cityMappedPortal(t *testing.T) (*simEnv, int64, *b24sim.Portal, b24sim.User) {
	t.Helper()
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
	return e, portalID, p, u
}
