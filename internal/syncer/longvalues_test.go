package syncer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
)

// longText is n runes of Cyrillic words.
func longText(n int) string {
	s := strings.Repeat("Управление региональных продаж ", n/10+1)
	return strings.TrimSpace(string([]rune(s)[:n]))
}

// TestLongValuesWhateverLearnDoes: Bitrix24 takes department names and
// profile fields of hundreds of characters; Learn's limits are not known,
// nor whether it keeps, cuts or refuses a longer value. Against each, with
// a limit above, at and below the app's own, the first run writes every
// department and employee (a value Learn refuses even cut to the shortest
// length the app tries is that object's report row, and everything else
// syncs), and the unchanged runs after it write nothing.
func TestLongValuesWhateverLearnDoes(t *testing.T) {
	t.Parallel()
	long := longText(400)
	for _, c := range []struct {
		lv      learnsim.LongValues
		limit   int
		refused bool // Learn takes neither the long department nor the long user
	}{
		{learnsim.LongValuesKept, 0, false},
		{learnsim.LongValuesCut, 1000, false},
		{learnsim.LongValuesCut, 255, false},
		{learnsim.LongValuesCut, 100, false},
		{learnsim.LongValuesCut, 30, false},
		{learnsim.LongValuesRefused, 1000, false},
		{learnsim.LongValuesRefused, 255, false},
		{learnsim.LongValuesRefused, 100, false},
		{learnsim.LongValuesRefused, 70, false},
		{learnsim.LongValuesRefused, 30, true},
	} {
		name := map[learnsim.LongValues]string{learnsim.LongValuesKept: "kept", learnsim.LongValuesCut: "cut",
			learnsim.LongValuesRefused: "refused"}[c.lv]
		t.Run(fmt.Sprintf("%s at %d", name, c.limit), func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Seed: 5, Unsettled: learnsim.Unsettled{LongValues: c.lv, ValueLimit: c.limit}}})
			org := b24sim.GenerateOrg(21, 40, 6)
			// The long name goes to a department without subdepartments.
			parents := map[int64]bool{}
			for _, d := range org.Departments {
				parents[d.Parent] = true
			}
			var longDept int64
			for _, d := range slices.Backward(org.Departments) {
				if !parents[d.ID] {
					longDept = d.ID
					org.Departments[d.ID-1].Name = long
					break
				}
			}
			portalID, p := e.addPortal(org)
			// The long user works elsewhere.
			var longUser b24sim.User
			for _, u := range p.Users() {
				if u.Active && !u.Extranet && u.Email != "" && len(u.Departments) == 1 && u.Departments[0] != longDept && u.ID != 1 {
					longUser = u
					break
				}
			}
			if err := p.UpdateUser(longUser.ID, func(u *b24sim.User) { u.LastName, u.WorkPosition = long, long }); err != nil {
				t.Fatal(err)
			}
			ex := expected(p)
			// What a refusal of the long department and user leaves out.
			wantOut := map[string][]int64{}
			if c.refused {
				wantOut["department"] = []int64{longDept}
				wantOut["user"] = []int64{longUser.ID}
				for _, u := range p.Users() {
					if _, ok := ex.users[strings.ToLower(u.Email)]; ok && u.Departments[0] == longDept {
						wantOut["user"] = append(wantOut["user"], u.ID)
					}
				}
				slices.Sort(wantOut["user"])
			}
			// left are the objects a run's report says Learn did not take:
			// not the employees the plan refuses on its own (no e-mail).
			left := func(rep *Report) map[string][]int64 {
				out := map[string][]int64{}
				for _, it := range e.runItems(portalID, rep.RunID) {
					if (it.Status == ItemRefused || it.Status == ItemFailed) &&
						(it.Action != ActionRefuse || it.Reason.Has(ReasonRemembered)) {
						out[string(it.Kind)] = append(out[string(it.Kind)], it.B24ID)
					}
				}
				for _, ids := range out {
					slices.Sort(ids)
				}
				return out
			}

			rep := e.run(portalID, TriggerManual)
			if got := left(rep); !maps.EqualFunc(got, wantOut, slices.Equal) {
				t.Errorf("first run left out %v, want %v (report %v)", got, wantOut, rep.Counts)
			}
			st := e.state()
			for id := range ex.depts {
				if got := st.DepartmentsByCode(DepartmentCode(p.MemberID(), id)); id != 1 && len(got) != 1 && !slices.Contains(wantOut["department"], id) {
					t.Errorf("department %d not in Learn", id)
				}
			}
			for _, u := range p.Users() {
				if _, ok := ex.users[strings.ToLower(u.Email)]; ok && !slices.Contains(wantOut["user"], u.ID) {
					if _, found := st.UserByLogin(strings.ToLower(u.Email)); !found {
						t.Errorf("user %d not in Learn", u.ID)
					}
				}
			}
			if !c.refused {
				dept := st.DepartmentsByCode(DepartmentCode(p.MemberID(), longDept))
				lu, found := st.UserByLogin(strings.ToLower(longUser.Email))
				if len(dept) != 1 || !found {
					t.Fatalf("the long department %+v, the long user %v", dept, found)
				}
				for what, v := range map[string]string{"department name": dept[0].Name, "last name": lu.Fields["last_name"], "job title": lu.Fields["job_title"]} {
					if n := utf8.RuneCountInString(v); !strings.HasPrefix(long, v) || n > maxTextRunes || n < min(c.limit, maxTextRunes)/2 {
						t.Errorf("%s in Learn is %d runes: %q", what, n, v)
					}
				}
			}

			for i := range 2 {
				e.lsim.ResetCounts()
				again := e.run(portalID, TriggerManual)
				if w := e.lsim.Counts(simAccount).Writes; w != 0 {
					t.Errorf("unchanged run %d wrote %d times: %v (report %v)", i+2, w, e.lsim.Counts(simAccount).ByRoute, again.Counts)
				}
				if got := left(again); !maps.EqualFunc(got, wantOut, slices.Equal) {
					t.Errorf("unchanged run %d left out %v, want %v", i+2, got, wantOut)
				}
			}

			// An update to a long value: written (cut), or refused once and
			// then reported without being sent again.
			var other b24sim.User
			for _, u := range p.Users() {
				if _, ok := ex.users[strings.ToLower(u.Email)]; ok && u.ID != longUser.ID && u.ID != 1 && u.Departments[0] != longDept {
					other = u
					break
				}
			}
			longer := longText(300)
			if err := p.UpdateUser(other.ID, func(u *b24sim.User) { u.WorkPosition = longer }); err != nil {
				t.Fatal(err)
			}
			if c.refused {
				wantOut["user"] = append(wantOut["user"], other.ID)
				slices.Sort(wantOut["user"])
			}
			for i := range 2 {
				e.lsim.ResetCounts()
				rep := e.run(portalID, TriggerManual)
				if w := e.lsim.Counts(simAccount).Writes; i == 1 && w != 0 {
					t.Errorf("unchanged run after the update wrote %d times: %v", w, e.lsim.Counts(simAccount).ByRoute)
				}
				if got := left(rep); !maps.EqualFunc(got, wantOut, slices.Equal) {
					t.Errorf("run %d after the update left out %v, want %v", i+1, got, wantOut)
				}
			}
			lu, _ := e.state().UserByLogin(strings.ToLower(other.Email))
			if got := lu.Fields["job_title"]; c.refused && got != other.WorkPosition || !c.refused && (got == "" || !strings.HasPrefix(longer, got)) {
				t.Errorf("job title after the update %q (was %q)", got, other.WorkPosition)
			}

			// A shorter name in Bitrix24 is written: a remembered refusal
			// holds only while Bitrix24 stays the same.
			if err := p.RenameDepartment(longDept, "Продажи"); err != nil {
				t.Fatal(err)
			}
			if rep := e.run(portalID, TriggerManual); rep.Counts["department.refused"] != 0 {
				t.Errorf("after the rename: %v", rep.Counts)
			}
			if got := e.state().DepartmentsByCode(DepartmentCode(p.MemberID(), longDept)); len(got) != 1 || got[0].Name != "Продажи" {
				t.Errorf("after the rename the department is %+v", got)
			}
		})
	}
}

func TestFitText(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"Sales", 5, "Sales"},
		{"Отдел продаж", 12, "Отдел продаж"},             // runes, not bytes
		{"Отдел продаж", 9, "Отдел про"},                 // no space in the last fifth: cut inside the word
		{"Отдел продаж Москва", 15, "Отдел продаж"},      // a word's start near the end: cut before it
		{"Отдел продаж Москва", 17, "Отдел продаж Моск"}, // not near: cut inside it
		{"Отдел продаж Москва", 13, "Отдел продаж"},      // ends on a space: no trailing space
		{"Отдел продаж Москва", 12, "Отдел продаж"},      // the next rune is a space: a whole word
		{"Отдел", 0, ""},
		{"Отдел Зуи\u0306", 9, "Отдел Зу"},                // a decomposed й stays whole: not и
		{"Cafe\u0301 Paris", 4, "Caf"},                    // so does an é
		{"Team \U0001F468\u200D\U0001F4BB", 7, "Team"},    // and an emoji joined by a ZWJ
		{"Z\u0301\u0301\u0301\u0301", 3, "Z\u0301\u0301"}, // one too long is cut inside, not to nothing
	} {
		if got := fitText(c.in, c.n); got != c.want {
			t.Errorf("fitText(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
		if got := fitText(fitText(c.in, c.n), c.n); got != fitText(c.in, c.n) {
			t.Errorf("fitText(%q, %d) cuts again: %q", c.in, c.n, got)
		}
	}
}

// TestLongValuesUnderHundred: a value of 51 to 100 characters that Learn
// refuses (its limit is lower) goes once more cut to 50, as a longer one
// does, and the runs after write nothing; it was sent whole and refused
// every run.
func TestLongValuesUnderHundred(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Seed: 5, Unsettled: learnsim.Unsettled{LongValues: learnsim.LongValuesRefused, ValueLimit: 60}}})
	org := b24sim.GenerateOrg(22, 12, 3)
	portalID, p := e.addPortal(org)
	mid := longText(80)
	dept := org.Departments[len(org.Departments)-1].ID
	if err := p.RenameDepartment(dept, mid); err != nil {
		t.Fatal(err)
	}
	var user b24sim.User
	for _, u := range p.Users() {
		if u.Active && !u.Extranet && u.Email != "" && u.ID != 1 {
			user = u
			break
		}
	}
	if err := p.UpdateUser(user.ID, func(u *b24sim.User) { u.LastName = mid }); err != nil {
		t.Fatal(err)
	}
	rep := e.run(portalID, TriggerManual)
	for _, it := range e.runItems(portalID, rep.RunID) {
		if it.B24ID == dept && it.Kind == KindDepartment || it.B24ID == user.ID && it.Kind == KindUser {
			if it.Status != ItemApplied {
				t.Errorf("first run: %+v", it)
			}
		}
	}
	st := e.state()
	if got := st.DepartmentsByCode(DepartmentCode(p.MemberID(), dept)); len(got) != 1 || !strings.HasPrefix(mid, got[0].Name) {
		t.Errorf("the department in Learn: %+v", got)
	}
	if lu, found := st.UserByLogin(strings.ToLower(user.Email)); !found || lu.Fields["last_name"] == "" || !strings.HasPrefix(mid, lu.Fields["last_name"]) {
		t.Errorf("the user in Learn: %v %q", found, lu.Fields["last_name"])
	}
	e.lsim.ResetCounts()
	e.run(portalID, TriggerManual)
	if w := e.lsim.Counts(simAccount).Writes; w != 0 {
		t.Errorf("unchanged run wrote %d times: %v", w, e.lsim.Counts(simAccount).ByRoute)
	}
}

// TestLongValueWithEmptiedField: an update that empties one field and
// lengthens another, to a Learn that refuses both an empty value and a long
// one, writes the long one cut and reports the other not cleared; the
// shorter writes carried the empty value again, so Learn refused them too
// and the update was remembered as refused for good.
func TestLongValueWithEmptiedField(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Seed: 5, Unsettled: learnsim.Unsettled{
		LongValues: learnsim.LongValuesRefused, ValueLimit: 60, RefuseEmptyUpdate: true}}})
	portalID, p := e.addPortal(b24sim.GenerateOrg(23, 12, 3))
	e.run(portalID, TriggerManual)
	var user b24sim.User
	for _, u := range p.Users() {
		if lu, ok := e.state().UserByLogin(strings.ToLower(u.Email)); ok && u.ID != 1 && u.Email != "" && lu.Fields["job_title"] != "" {
			user = u
			break
		}
	}
	if user.ID == 0 {
		t.Fatal("no synced user with a job title")
	}
	long := longText(150)
	if err := p.UpdateUser(user.ID, func(u *b24sim.User) { u.LastName, u.WorkPosition = long, "" }); err != nil {
		t.Fatal(err)
	}
	rep := e.run(portalID, TriggerManual)
	for _, it := range e.runItems(portalID, rep.RunID) {
		if it.Kind == KindUser && it.B24ID == user.ID && it.Status != ItemApplied {
			t.Errorf("the update: %+v", it)
		}
	}
	lu, _ := e.state().UserByLogin(strings.ToLower(user.Email))
	if got := lu.Fields["last_name"]; got == "" || !strings.HasPrefix(long, got) {
		t.Errorf("last name in Learn %q", got)
	}
	if lu.Fields["job_title"] != user.WorkPosition {
		t.Errorf("job title in Learn %q, want %q kept", lu.Fields["job_title"], user.WorkPosition)
	}
	e.lsim.ResetCounts()
	e.run(portalID, TriggerManual)
	if w := e.lsim.Counts(simAccount).Writes; w != 0 {
		t.Errorf("unchanged run wrote %d times: %v", w, e.lsim.Counts(simAccount).ByRoute)
	}
}

// refusingRename answers a department update with a 400 while the name is
// longer than fits, then with answer.
type refusingRename struct {
	Learn
	fits   int
	answer error
}

func (l *refusingRename) UpdateDepartment(ctx context.Context, id string, u learn.DepartmentUpdate) error {
	if utf8.RuneCountInString(u.Name) > l.fits {
		return &learn.ValidationError{Message: "name too long"}
	}
	return l.answer
}

// A long name refused at 400 until cut to the last length, and the cut
// write then refused for another reason (beyond the credentials' reach, or
// the department gone), is no refusal of the values: the next run, with the
// reason gone, must send the name again rather than skip it as remembered.
func TestCutWriteRefusedForAnotherReasonIsNotRemembered(t *testing.T) {
	t.Parallel()
	for _, answer := range []error{learn.ErrPermissionDenied, learn.ErrNotFound} {
		t.Run(answer.Error(), func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{})
			org := b24sim.GenerateOrg(7, 4, 2)
			portalID, p := e.addPortal(org)
			e.run(portalID, TriggerManual)
			dept := org.Departments[len(org.Departments)-1].ID
			long := longText(120)
			if err := p.RenameDepartment(dept, long); err != nil {
				t.Fatal(err)
			}
			e.wrap = func(l Learn) Learn {
				return &refusingRename{Learn: l, fits: shorterRunes[len(shorterRunes)-1], answer: answer}
			}
			if rep := e.run(portalID, TriggerManual); rep.Status != RunPartial {
				t.Fatalf("run with the refusals: %s %v", rep.Status, rep.Counts)
			}
			e.wrap = nil
			rep := e.run(portalID, TriggerManual)
			for _, it := range e.runItems(portalID, rep.RunID) {
				if it.Kind == KindDepartment && it.B24ID == dept && it.Status != ItemApplied {
					t.Errorf("the rename once the reason is gone: %+v", it)
				}
			}
			got := e.state().DepartmentsByCode(DepartmentCode(p.MemberID(), dept))
			if len(got) != 1 || got[0].Name != long {
				t.Errorf("the department in Learn: %+v, want named %q", got, long)
			}
		})
	}
}
