package syncer

import (
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// A mapping that reads a list (enumeration) field sends Learn the chosen
// option's text, not the ID user.get gives, in a full run and in a run for
// one employee; a multiple field's options are joined. Where Bitrix24 sends
// no options (EnumListOmitted) the IDs go as they are, as before.
func TestListFieldsSendTheirOptionTexts(t *testing.T) {
	t.Parallel()
	for _, omitted := range []bool{false, true} {
		e := newSimEnv(t, simOpts{b24: b24sim.Options{Scope: "user_basic,department,user.userfield", EnumListOmitted: omitted},
			account: learnsim.AccountOptions{ExtraFields: []string{"user_defined_field1", "user_defined_field2"}}})
		portalID, p := e.addPortal(b24sim.GenerateOrg(5, 20, 4))
		office := p.AddUserField(b24sim.UserField{FieldName: "OFFICE", Type: "enumeration", Label: "Office",
			Options: []b24sim.EnumOption{{ID: 41, Value: "Москва, Тверская"}, {ID: 42, Value: "Казань"}}})
		langs := p.AddUserField(b24sim.UserField{FieldName: "LANGS", Type: "enumeration", Multiple: true, Label: "Languages",
			Options: []b24sim.EnumOption{{ID: 7, Value: "English"}, {ID: 8, Value: "Deutsch"}, {ID: 9, Value: "Français"}}})
		u := syncedUser(p)
		set := func(officeID int64, langIDs ...any) {
			t.Helper()
			if err := p.UpdateUser(u.ID, func(x *b24sim.User) {
				x.UF = map[string]any{office: officeID, langs: langIDs}
			}); err != nil {
				t.Fatal(err)
			}
		}
		set(41, int64(7), int64(9))
		e.setSettings(portalID, func(s *Settings) {
			s.FieldMap = map[string]string{"first_name": "NAME", "last_name": "LAST_NAME",
				"user_defined_field1": office, "user_defined_field2": langs}
		})
		e.run(portalID, TriggerManual)
		want1, want2 := "Москва, Тверская", "English, Français"
		if omitted {
			want1, want2 = "41", "7, 9"
		}
		if got := e.learnUser(u.Email).Fields; got["user_defined_field1"] != want1 || got["user_defined_field2"] != want2 {
			t.Errorf("options omitted %v: Learn has %q, %q after a full run, want %q, %q", omitted,
				got["user_defined_field1"], got["user_defined_field2"], want1, want2)
		}

		set(42, int64(8))
		runPersonOK(t, e, portalID, u.ID)
		want1, want2 = "Казань", "Deutsch"
		if omitted {
			want1, want2 = "42", "8"
		}
		if got := e.learnUser(u.Email).Fields; got["user_defined_field1"] != want1 || got["user_defined_field2"] != want2 {
			t.Errorf("options omitted %v: Learn has %q, %q after the employee's run, want %q, %q", omitted,
				got["user_defined_field1"], got["user_defined_field2"], want1, want2)
		}

		e.lsim.ResetCounts()
		e.run(portalID, TriggerManual)
		if c := e.lsim.Counts(simAccount); c.Writes != 0 {
			t.Errorf("options omitted %v: a repeat wrote %d times %v", omitted, c.Writes, c.ByRoute)
		}
	}
}
