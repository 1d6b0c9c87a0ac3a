package fieldmap

import (
	"maps"
	"testing"
)

func TestCheck(t *testing.T) {
	targets := []Target{
		{Name: "login", Type: "login", Required: true}, {Name: "email", Type: "email"},
		{Name: "first_name", Type: "first_name", Required: true}, {Name: "last_name", Type: "last_name", Required: true},
		{Name: "job_title", Type: "job_title"}, {Name: "country", Type: "country", Required: true},
		{Name: "birthday", Type: "birthdate"}, {Name: "shoe", Type: "string", Required: true},
	}
	sources := append(append([]Source{}, Standard...), Source{Code: "UF_USR_SHOE", Kind: Text}, Source{Code: "UF_USR_HIRED", Kind: Date})
	cases := []struct {
		name string
		m    map[string]string
		want map[string]string
	}{
		{"default leaves the required custom field empty", nil, map[string]string{"shoe": ProblemRequired}},
		{"all good", map[string]string{"shoe": "UF_USR_SHOE", "birthday": "UF_USR_HIRED", "job_title": "PERSONAL_BIRTHDAY"}, map[string]string{}},
		{"required name unmapped", map[string]string{"shoe": "UF_USR_SHOE", "first_name": ""}, map[string]string{"first_name": ProblemRequired}},
		{"text into a date", map[string]string{"shoe": "UF_USR_SHOE", "birthday": "PERSONAL_CITY"}, map[string]string{"birthday": ProblemNeedsDate}},
		{"unknown source", map[string]string{"shoe": "UF_USR_GONE"}, map[string]string{"shoe": ProblemUnknownSource}},
		{"login is fixed", map[string]string{"shoe": "NAME", "login": "NAME"}, map[string]string{"login": ProblemNotMappable}},
		{"country takes codes only", map[string]string{"shoe": "NAME", "country": "PERSONAL_CITY"}, map[string]string{"country": ProblemNotMappable}},
		{"unknown learn field", map[string]string{"shoe": "NAME", "nope": "NAME"}, map[string]string{"nope": ProblemUnknownField}},
	}
	for _, c := range cases {
		if got := Check(targets, sources, c.m); !maps.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestValue(t *testing.T) {
	cases := []struct {
		code, raw, want string
		ok              bool
	}{
		{"PERSONAL_BIRTHDAY", "1990-05-01T00:00:00+03:00", "1990-05-01", true},
		{"UF_EMPLOYMENT_DATE", "01.09.2021", "2021-09-01", true},
		{"PERSONAL_BIRTHDAY", "soon", "", false},
		{"PERSONAL_BIRTHDAY", "", "", true},
		{"UF_USR_HIRED", "2020-02-29T00:00:00+00:00", "2020-02-29", true},
		{"UF_USR_SHOE", " 42 ", "42", true},
		{"WORK_POSITION", "Engineer", "Engineer", true},
	}
	for _, c := range cases {
		if got, ok := Value(c.code, c.raw); got != c.want || ok != c.ok {
			t.Errorf("Value(%s, %q) = %q, %v; want %q, %v", c.code, c.raw, got, ok, c.want, c.ok)
		}
	}
	if e := Effective(nil); !maps.Equal(e, Default()) {
		t.Errorf("Effective(nil) = %v", e)
	}
	if e := Effective(map[string]string{"phone": "", "shoe": "UF_USR_SHOE", "email": "NAME"}); e["phone"] != "" || e["shoe"] != "UF_USR_SHOE" || e["email"] != "" || e["job_title"] != "WORK_POSITION" {
		t.Errorf("Effective = %v", e)
	}
}

// Fit keeps what still fits Learn's fields and names the problem of the rest.
func TestFit(t *testing.T) {
	targets := []Target{{Name: "first_name", Type: "first_name"}, {Name: "udf1", Type: "birthdate"}, {Name: "udf2", Type: "country"},
		{Name: "udf3", Type: "birthdate"}, {Name: "udf4", Type: "string"}}
	m := map[string]string{"first_name": "NAME", "udf1": "PERSONAL_CITY", "udf2": "WORK_POSITION", "udf3": "PERSONAL_BIRTHDAY",
		"udf4": "PERSONAL_BIRTHDAY", "gone": "NAME"}
	fits, left := Fit(targets, m)
	wantFits := map[string]string{"first_name": "NAME", "udf3": "PERSONAL_BIRTHDAY", "udf4": "PERSONAL_BIRTHDAY"}
	wantLeft := map[string]string{"udf1": ProblemNeedsDate, "udf2": ProblemNotMappable, "gone": ProblemUnknownField}
	if !maps.Equal(fits, wantFits) || !maps.Equal(left, wantLeft) {
		t.Errorf("Fit = %v, %v; want %v, %v", fits, left, wantFits, wantLeft)
	}
}
