package b24sim_test

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
)

// departmentPage is what paging reads of a department.get answer.
type departmentPage struct {
	Result []json.RawMessage `json:"result"`
	Next   *int              `json:"next"`
	Total  int               `json:"total"`
}

// getDepartments asks the simulator's handler for the department.get page at
// start, with no network between them.
func getDepartments(tb testing.TB, sim *b24sim.Sim, tok b24sim.Token, start int) departmentPage {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"auth": tok.AccessToken, "start": start})
	req := httptest.NewRequest("POST", tok.ClientEndpoint+"department.get", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	var pg departmentPage
	if err := json.Unmarshal(rec.Body.Bytes(), &pg); err != nil || rec.Code != 200 {
		tb.Fatalf("department.get start=%d: %d %v: %s", start, rec.Code, err, rec.Body.Bytes())
	}
	return pg
}

// departmentRows pages from start to the end and returns the rows as sent
// and the total of the first page read.
func departmentRows(tb testing.TB, sim *b24sim.Sim, tok b24sim.Token, start int) ([]string, int) {
	tb.Helper()
	var rows []string
	total := -1
	for {
		pg := getDepartments(tb, sim, tok, start)
		if total < 0 {
			total = pg.Total
		}
		for _, r := range pg.Result {
			rows = append(rows, string(r))
		}
		if pg.Next == nil {
			return rows, total
		}
		start = *pg.Next
	}
}

// A change to the org between two pages shows on the next page: the
// simulator keeps the tree order between calls, and each change must drop
// it. The pages after the change are those of a portal built afresh with
// the changed org.
func TestDepartmentPagesSeeChangesBetweenPages(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		change func(t *testing.T, p *b24sim.Portal, first, last int64)
	}{
		{"add", func(t *testing.T, p *b24sim.Portal, first, last int64) { p.AddDepartment("New", 1, 0) }},
		{"move", func(t *testing.T, p *b24sim.Portal, first, last int64) { must(t, p.MoveDepartment(first, last)) }},
		{"remove", func(t *testing.T, p *b24sim.Portal, first, last int64) { must(t, p.RemoveDepartment(first)) }},
		{"rename", func(t *testing.T, p *b24sim.Portal, first, last int64) { must(t, p.RenameDepartment(last, "Renamed")) }},
		{"head", func(t *testing.T, p *b24sim.Portal, first, last int64) { must(t, p.SetHead(last, 2)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			sim := b24sim.New(b24sim.Options{Rate: -1})
			sim.SetBaseURL("http://sim.test")
			org := b24sim.GenerateOrg(3, 20, 120)
			p := sim.AddPortal(b24sim.PortalOptions{Domain: "a.bitrix24.com", Org: org})
			tok := p.Install()
			first, last := emptyLeaves(t, p, getDepartments(t, sim, tok, 0))
			before, _ := departmentRows(t, sim, tok, 50)

			c.change(t, p, first, last)
			got, gotTotal := departmentRows(t, sim, tok, 50)

			org.Departments = p.Departments()
			fresh := sim.AddPortal(b24sim.PortalOptions{Domain: "b.bitrix24.com", Org: org})
			want, wantTotal := departmentRows(t, sim, fresh.Install(), 50)
			if slices.Equal(want, before) {
				t.Fatal("the change does not show in the pages after the first: the test cannot tell")
			}
			if gotTotal != wantTotal || !slices.Equal(got, want) {
				t.Errorf("pages after the change: total %d, %d rows, want %d, %d rows\n got %v\nwant %v",
					gotTotal, len(got), wantTotal, len(want), got, want)
			}
		})
	}
}

// emptyLeaves picks two departments without subdepartments or users: first
// from the first page, last the newest.
func emptyLeaves(t *testing.T, p *b24sim.Portal, page departmentPage) (first, last int64) {
	t.Helper()
	busy := map[int64]bool{}
	for _, d := range p.Departments() {
		busy[d.Parent] = true
	}
	for _, u := range p.Users() {
		for _, d := range u.Departments {
			busy[d] = true
		}
	}
	for _, r := range page.Result {
		var row struct {
			ID int64 `json:"ID,string"`
		}
		if err := json.Unmarshal(r, &row); err != nil {
			t.Fatal(err)
		}
		if !busy[row.ID] {
			first = row.ID
			break
		}
	}
	ds := p.Departments()
	last = ds[len(ds)-1].ID // GenerateOrg's newest department has no subdepartments
	if first == 0 || busy[last] {
		t.Fatalf("no empty leaf: first %d, last %d", first, last)
	}
	return first, last
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// department.get matches its filter keys as sent, upper case only: a key in
// another case filters nothing, and only an upper-case FILTER array replaces
// the top-level keys; SORT, ORDER and START are read in any case
// (docs/bitrix24-api.md, "department.get").
func TestDepartmentFilterKeysAreUpperCase(t *testing.T) {
	t.Parallel()
	sim := b24sim.New(b24sim.Options{Rate: -1})
	sim.SetBaseURL("http://sim.test")
	p := sim.AddPortal(b24sim.PortalOptions{Domain: "a.bitrix24.com", Org: b24sim.GenerateOrg(3, 20, 12)})
	tok := p.Install()
	all, children := len(p.Departments()), 0
	for _, d := range p.Departments() {
		if d.Parent == 1 {
			children++
		}
	}
	for _, c := range []struct {
		params map[string]any
		want   int
	}{
		{map[string]any{"PARENT": 1}, children},
		{map[string]any{"parent": 1}, all},
		{map[string]any{"Parent": 1}, all},
		{map[string]any{"FILTER": map[string]any{"PARENT": 1}}, children},
		{map[string]any{"FILTER": map[string]any{"parent": 1}}, all},
		{map[string]any{"filter": map[string]any{"PARENT": 1}}, all},
		{map[string]any{"sort": "id", "order": "desc", "PARENT": 1}, children},
	} {
		c.params["auth"] = tok.AccessToken
		body, _ := json.Marshal(c.params)
		req := httptest.NewRequest("POST", tok.ClientEndpoint+"department.get", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		var pg departmentPage
		if err := json.Unmarshal(rec.Body.Bytes(), &pg); err != nil || rec.Code != 200 {
			t.Fatalf("%v: %d %v", c.params, rec.Code, err)
		}
		if pg.Total != c.want {
			t.Errorf("%v: %d departments, want %d", c.params, pg.Total, c.want)
		}
	}
}
