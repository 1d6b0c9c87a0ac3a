package bitrix24

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hostileREST answers as a portal's REST endpoint whose owner controls it (an
// on-premise portal): every list counts total departments and users (none
// when total is 0), and every user page is full, with ascending ids, so a
// reader that believes it never stops. Past 400 requests it answers 500, ending a reader that
// would go on.
func hostileREST(t *testing.T, total int, calls *atomic.Int32) *httptest.Server {
	t.Helper()
	var nextID atomic.Int64
	// Without a count the departments end at once: the users never do.
	deptMore := ""
	if total > 0 {
		deptMore = fmt.Sprintf(`,"next":50,"total":%d`, total)
	}
	userPage := func() string {
		rows := make([]string, PageSize)
		for i := range rows {
			rows[i] = fmt.Sprintf(`{"ID":"%d","ACTIVE":true,"UF_DEPARTMENT":[1]}`, nextID.Add(1))
		}
		return "[" + strings.Join(rows, ",") + "]"
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > maxListRequests+10 {
			http.Error(w, "enough", http.StatusInternalServerError)
			return
		}
		if !strings.Contains(r.URL.Path, "batch") {
			if strings.Contains(r.URL.Path, "user.get") {
				fmt.Fprintf(w, `{"result":%s,"next":50,"total":%d,"time":{}}`, userPage(), total)
				return
			}
			fmt.Fprintf(w, `{"result":[{"ID":"1","NAME":"Root"}]%s,"time":{}}`, deptMore)
			return
		}
		cmds := batchCommands(t, r)
		result, totals, next := map[string]json.RawMessage{}, map[string]int{}, map[string]int{}
		// Pages in command order (u1, u2, … u10), so ids ascend along the chain.
		keys := slices.SortedFunc(maps.Keys(cmds), func(a, b string) int {
			return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b))
		})
		for _, k := range keys {
			c := cmds[k]
			if strings.HasPrefix(c, "department.get") {
				result[k] = json.RawMessage(`[{"ID":"1","NAME":"Root"}]`)
				if total > 0 {
					totals[k], next[k] = total, PageSize
				}
				continue
			}
			result[k] = json.RawMessage(userPage())
			totals[k], next[k] = total, PageSize
		}
		writeBatch(w, result, totals, next)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// batchCommands is the commands of a batch request.
func batchCommands(t *testing.T, r *http.Request) map[string]string {
	var body struct {
		Cmd map[string]string `json:"cmd"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		t.Errorf("batch body: %v", err)
	}
	return body.Cmd
}

// writeBatch answers a batch request with each command's result, total and
// next.
func writeBatch(w http.ResponseWriter, result map[string]json.RawMessage, totals, next map[string]int) {
	out, _ := json.Marshal(map[string]any{"result": map[string]any{"result": result, "result_error": []any{},
		"result_total": totals, "result_next": next, "result_time": []any{}}, "time": map[string]any{}})
	_, _ = w.Write(out)
}

// boundedClient reads srv as a portal's REST endpoint, with the tests'
// bounds on listings.
func boundedClient(srv *httptest.Server) *Client {
	return New(Config{Endpoint: srv.URL + "/rest/", Tokens: staticTokens{Token{AccessToken: "a"}},
		Limiter: NewLimiter(0, 0), MaxRetries: 1, HTTP: &http.Client{Timeout: 10 * time.Second},
		MaxDepartments: testMaxDepartments, MaxUsers: testMaxUsers})
}

// The tests' bounds, small to keep them quick; the defaults work alike.
const (
	testMaxDepartments = 500
	testMaxUsers       = 5_000
)

// maxListRequests is the most requests a listing may take before it stops
// at testMaxUsers: a page a request at worst.
const maxListRequests = testMaxUsers/PageSize + 2

// A listing is bounded whatever the portal's REST endpoint says: a claimed
// total far beyond any real portal is refused before the reader sizes
// anything by it (the commands for every page, the caller's slice for every
// user), and full pages that never end are refused past the same bound
// rather than read until memory runs out.
func TestHostileListingsAreBounded(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		total int
		list  func(*Client) error
	}{
		{"OrgClaimsHugeTotals", 2_000_000_000, func(c *Client) error {
			_, err := c.ReadOrg(context.Background(), nil, OrgPages{
				Totals: func(departments, users int) {
					if departments > testMaxDepartments || users > testMaxUsers {
						t.Errorf("Totals told %d departments, %d users: beyond the bounds", departments, users)
					}
				},
				Users: func([]User) error { return nil }})
			return err
		}},
		{"DepartmentsClaimHugeTotal", 2_000_000_000, func(c *Client) error {
			_, err := c.Departments(context.Background())
			return err
		}},
		{"OrgPagesNeverEnd", 0, func(c *Client) error {
			_, err := c.ReadOrg(context.Background(), nil, OrgPages{Users: func([]User) error { return nil }})
			return err
		}},
		{"UsersPagesNeverEnd", 0, func(c *Client) error {
			_, err := c.Users(context.Background(), nil)
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			srv := hostileREST(t, c.total, &calls)
			cl := boundedClient(srv)
			err := c.list(cl)
			if !errors.Is(err, ErrListTooLong) {
				t.Fatalf("error %v after %d requests, want ErrListTooLong", err, calls.Load())
			}
			if n := int(calls.Load()); n > maxListRequests {
				t.Errorf("%d requests, want at most %d", n, maxListRequests)
			}
		})
	}
}

// The attacker: a portal's REST endpoint (an on-premise portal) answers the
// first department page with a next far below it. The department pages
// asked for follow the first at 50-row steps up to the bounded count; before,
// every page from next up was asked for: 4,000 commands in 80 batches here,
// 40 million commands held at once for next -2,000,000,000.
func TestOrgDepartmentNextBelowTheFirstPage(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		cmds := batchCommands(t, r)
		result, totals, next := map[string]json.RawMessage{}, map[string]int{}, map[string]int{}
		for k, c := range cmds {
			switch {
			case k == "d0":
				result[k] = json.RawMessage(`[{"ID":"1","NAME":"Root"}]`)
				totals[k], next[k] = 120, -200_000
			case strings.HasPrefix(c, "department.get"):
				result[k] = json.RawMessage(`[]`)
			case k == "u0":
				result[k] = json.RawMessage(`[{"ID":"1","ACTIVE":true,"UF_DEPARTMENT":[1]}]`)
				totals[k] = 1
			default:
				result[k] = json.RawMessage(`[]`)
			}
		}
		writeBatch(w, result, totals, next)
	}))
	t.Cleanup(srv.Close)
	cl := boundedClient(srv)
	ds, err := cl.ReadOrg(context.Background(), nil, OrgPages{Users: func([]User) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Errorf("%d departments, want 1", len(ds))
	}
	// The first batch, and one with the two pages at 50 and 100.
	if n := calls.Load(); n > 2 {
		t.Errorf("%d requests for 120 departments, want at most 2", n)
	}
}

// The attacker, for the departments alone (a person's sync reads them so):
// the first department.get page names a next far below it. The pages asked
// for follow the first at 50-row steps up to the bounded count; before,
// every page from next up was asked for, 4,000 commands in 80 batches here
// and 40 million commands held at once for next -2,000,000,000.
func TestDepartmentsNextBelowTheFirstPage(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !strings.Contains(r.URL.Path, "batch") {
			fmt.Fprint(w, `{"result":[{"ID":"1","NAME":"Root"}],"next":-200000,"total":120,"time":{}}`)
			return
		}
		cmds := batchCommands(t, r)
		result := map[string]json.RawMessage{}
		for k := range cmds {
			result[k] = json.RawMessage(`[]`)
		}
		writeBatch(w, result, map[string]int{}, map[string]int{})
	}))
	t.Cleanup(srv.Close)
	cl := boundedClient(srv)
	ds, err := cl.Departments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Errorf("%d departments, want 1", len(ds))
	}
	// The first page, and one batch with the two pages at 50 and 100.
	if n := calls.Load(); n > 2 {
		t.Errorf("%d requests for 120 departments, want at most 2", n)
	}
}

// The attacker: a portal that sends no usable total answers every
// department page empty, with a next one past the page asked for. No row
// is ever added, so a bound on rows alone never ends the listing: it went
// on a call a page until the run's two hours ran out. Now the pages are
// bounded as the rows are.
func TestDepartmentsEmptyPagesThatNeverEnd(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n > 4*maxListRequests {
			http.Error(w, "enough", http.StatusInternalServerError)
			return
		}
		if n == 1 {
			fmt.Fprint(w, `{"result":[{"ID":"1","NAME":"Root"}],"next":50,"time":{}}`)
			return
		}
		fmt.Fprintf(w, `{"result":[],"next":%d,"time":{}}`, 50+n)
	}))
	t.Cleanup(srv.Close)
	cl := boundedClient(srv)
	_, err := cl.Departments(context.Background())
	if !errors.Is(err, ErrListTooLong) {
		t.Fatalf("error %v after %d requests, want ErrListTooLong", err, calls.Load())
	}
	// The first page, then the pages the bound on rows allows, and one more.
	if n, most := int(calls.Load()), 1+testMaxDepartments/PageSize+2; n > most {
		t.Errorf("%d requests, want at most %d", n, most)
	}
}

// The attacker: asked for users by id (one person, or the heads above
// them), a portal's REST endpoint answers full pages that never end. A
// filter by id matches no more users than the ids it names, so the
// listing stops there; before, it read as many users as a whole org may
// hold (500,000 of up to 13 KiB each by default) for one person's sync.
func TestUsersByIDBoundedByTheIDs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		key  string
		ids  any
	}{
		{"OneID", "ID", int64(7)},
		{"IDList", "ID", []int64{7, 8, 9}},
		{"IDListUnderAt", "@ID", []int64{7, 8, 9}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			srv := hostileREST(t, 0, &calls)
			cl := boundedClient(srv)
			_, err := cl.Users(context.Background(), map[string]any{c.key: c.ids})
			if !errors.Is(err, ErrListTooLong) {
				t.Fatalf("error %v after %d requests, want ErrListTooLong", err, calls.Load())
			}
			if n := calls.Load(); n > 1 {
				t.Errorf("%d requests for users by id, want 1", n)
			}
		})
	}
}
