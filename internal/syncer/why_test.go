package syncer

import "testing"

// Why gives each employee of an org the reason the plan itself would act
// on: the same builder rules, one case per reason.
func TestWhyReasons(t *testing.T) {
	t.Parallel()
	d := Desired{
		Departments: []Department{
			{ID: 1, Name: "Root"}, {ID: 2, Name: "Sales", Parent: 1}, {ID: 3, Name: "Closed", Parent: 2},
			{ID: 4, Name: "Other", Parent: 1},
		},
		Employees: []Employee{
			{ID: 10, Active: true, UserType: "employee", Email: "a@x.test", Departments: []int64{2}},
			{ID: 11, Active: false, UserType: "employee", Email: "b@x.test", Departments: []int64{2}},
			{ID: 12, Active: true, UserType: "extranet", Email: "c@x.test", Departments: []int64{2}},
			{ID: 13, Active: true, UserType: "employee", Email: "d@x.test", Departments: []int64{4}},
			{ID: 14, Active: true, UserType: "employee", Email: "e@x.test", Departments: []int64{3}},
			{ID: 15, Active: true, UserType: "employee", Departments: []int64{2}},
			{ID: 16, Active: true, UserType: "employee", Email: "g@x.test", Departments: []int64{2}},
			{ID: 17, Active: true, UserType: "employee", Email: "h@x.test", Departments: []int64{2}},
			{ID: 18, Active: true, UserType: "employee", Email: "i@x.test", Departments: []int64{2}},
			{ID: 19, Active: true, UserType: "employee", Departments: []int64{2}},
		},
	}
	o := Options{MemberID: "m", Selection: Selection{Selected: []int64{2}, Excluded: []int64{3}}}
	cases := []struct {
		id     int64
		mapped *Mapping
		last   *RunItem
		want   string
		dept   int64
	}{
		{id: 10, want: WhyInScope, dept: 2},
		{id: 11, want: WhyDismissed},
		{id: 12, want: WhyExtranet},
		{id: 13, want: WhyNotSelected},
		{id: 14, want: WhyExcluded, dept: 3},
		{id: 15, want: WhyNoEmail, dept: 2},
		{id: 16, mapped: &Mapping{Kind: KindUser, B24ID: 16, LearnID: "u16", LicenceWait: true}, want: WhyLicence, dept: 2},
		{id: 17, last: &RunItem{Action: ActionConflict, Status: ItemConflict, After: map[string]string{"owner": "other.bitrix24.test"}}, want: WhyForeign, dept: 2},
		{id: 18, last: &RunItem{Action: ActionCreate, Status: ItemFailed, Reason: "learn refused: job_title too long"}, want: WhyRefused, dept: 2},
		{id: 19, mapped: &Mapping{Kind: KindUser, B24ID: 19, LearnID: "u19"}, want: WhyInScope, dept: 2}, // linked: keeps Learn's login
		{id: 99, want: WhyNotInBitrix24},
	}
	for _, c := range cases {
		v := Why(d, o, c.mapped, c.last, c.id)
		if v.Code != c.want || v.Department != c.dept {
			t.Errorf("user %d: %+v, want %s in department %d", c.id, v, c.want, c.dept)
		}
	}
	if v := Why(d, o, nil, &RunItem{Status: ItemFailed, Reason: "x"}, 18); v.Detail != "x" {
		t.Errorf("refusal detail %q, want Learn's reason", v.Detail)
	}
}
