package learn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/learn/learnsim"
)

const (
	testAccount  = "https://acme.ispringlearn.ru"
	testEmail    = "admin@acme.ru"
	testPassword = "secret"
)

// fastRetry keeps retry waits short in tests. Its attempts have the
// production timeout and its slowness budget is out of reach: an answer
// that takes 0.5 s here takes over 5 s on a loaded machine under -race, and
// no test with this policy is about either (deadline_test.go tests them with
// policies of its own; a test that wants a timeout sets a short one).
var fastRetry = RetryPolicy{MaxAttempts: 10, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, Timeout: time.Minute,
	MaxSlow: 1 << 20}

// The API key the test accounts have; a client uses it when the variant
// needs one (learnsim.Unsettled.NeedsAPIKey).
const (
	testClientID     = "cid-acme"
	testClientSecret = "csecret-acme-0123456789"
)

type simEnv struct {
	sim  *learnsim.Sim
	srv  *httptest.Server
	root string
	key  bool // default clients use the API key
}

func newSimEnv(t testing.TB, opts learnsim.Options, acct learnsim.AccountOptions) *simEnv {
	t.Helper()
	sim := learnsim.New(opts)
	if acct.URL == "" {
		acct.URL = testAccount
	}
	if acct.Email == "" {
		acct.Email, acct.Password = testEmail, testPassword
	}
	if acct.ClientID == "" {
		acct.ClientID, acct.ClientSecret = testClientID, testClientSecret
	}
	root, err := sim.AddAccount(acct)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &simEnv{sim: sim, srv: srv, root: root, key: opts.Unsettled.NeedsAPIKey()}
}

func (e *simEnv) client(t testing.TB, creds Credentials) *Client {
	t.Helper()
	if creds.AccountURL == "" {
		creds = Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword}
		if e.key {
			creds.ClientID, creds.ClientSecret = testClientID, testClientSecret
		}
	}
	c, err := New(creds, Options{BaseURL: e.srv.URL, AllowHTTP: true, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestListDepartmentsAcrossPages(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, learnsim.Options{}, learnsim.AccountOptions{})
	for i := range 2100 {
		if _, err := env.sim.SeedDepartment(testAccount, fmt.Sprintf("D%d", i), env.root, fmt.Sprintf("c%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	c := env.client(t, Credentials{})
	deps, err := c.ListDepartments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range deps {
		if seen[d.ID] {
			t.Fatalf("department %s listed twice", d.ID)
		}
		seen[d.ID] = true
	}
	if len(deps) != 2101 {
		t.Fatalf("got %d departments, want 2101 (root + 2100)", len(deps))
	}
	if deps[0].ID != env.root || deps[0].ParentID != "" {
		t.Errorf("first department %+v, want the root without parent", deps[0])
	}
	if got := env.sim.Counts(testAccount).ByRoute["GET /departments"]; got != 3 {
		t.Errorf("GET /departments calls = %d, want 3 pages", got)
	}
}

func TestUsersPagingAndFieldQuirk(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, learnsim.Options{}, learnsim.AccountOptions{})
	ctx := context.Background()
	c := env.client(t, Credentials{})
	id, err := c.CreateUser(ctx, NewUser{DepartmentID: env.root, Fields: Fields{
		FieldLogin: "ivan@acme.ru", FieldEmail: "ivan@acme.ru", FieldFirstName: "Иван", FieldLastName: "Петров", FieldJobTitle: "Менеджер"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1500 {
		f := map[string]string{"login": fmt.Sprintf("u%d", i), "first_name": "F", "last_name": "L"}
		if _, err := env.sim.SeedUser(testAccount, env.root, f, 1); err != nil {
			t.Fatal(err)
		}
	}
	// The wire form of reads is the UPPERCASE name/value list.
	req, _ := http.NewRequest("GET", env.srv.URL+"/user/"+id+"/v2", nil)
	req.Header.Set("X-Auth-Account-Url", testAccount)
	req.Header.Set("X-Auth-Email", testEmail)
	req.Header.Set("X-Auth-Password", testPassword)
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(raw), `"name":"FIRST_NAME"`) {
		t.Fatalf("read form is not the UPPERCASE list: %s", raw)
	}
	u, err := c.GetUser(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if u.Fields[FieldFirstName] != "Иван" || u.Fields[FieldJobTitle] != "Менеджер" || u.Login() != "ivan@acme.ru" ||
		u.DepartmentID != env.root || u.Status != StatusActive {
		t.Fatalf("user read back = %+v", u)
	}
	env.sim.ResetCounts()
	all, err := c.AllUsers(ctx, UserFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1502 { // owner + ivan + 1500
		t.Fatalf("AllUsers = %d, want 1502", len(all))
	}
	if got := env.sim.Counts(testAccount).ByRoute["GET /users/v2"]; got != 2 {
		t.Errorf("GET /users/v2 calls = %d, want 2 pages", got)
	}
	found, err := c.FindUserByLogin(ctx, "IVAN@acme.ru")
	if err != nil || found.ID != id {
		t.Fatalf("FindUserByLogin = %+v, %v", found, err)
	}
	if _, err := c.FindUserByEmail(ctx, "nobody@acme.ru"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindUserByEmail(missing) err = %v, want ErrNotFound", err)
	}
}

func TestTypedErrors(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, learnsim.Options{}, learnsim.AccountOptions{})
	ctx := context.Background()
	c := env.client(t, Credentials{})
	nu := NewUser{DepartmentID: env.root, Fields: Fields{FieldLogin: "a@x.ru", FieldEmail: "a@x.ru", FieldFirstName: "A", FieldLastName: "B"}}
	if _, err := c.CreateUser(ctx, nu); err != nil {
		t.Fatal(err)
	}
	nu.Fields = Fields{FieldLogin: "other", FieldEmail: "A@x.ru", FieldFirstName: "A", FieldLastName: "B"}
	_, err := c.CreateUser(ctx, nu)
	var ae *APIError
	if !errors.Is(err, ErrDuplicate) || !errors.As(err, &ae) || ae.Status != 409 || ae.Code != 409 || !strings.Contains(ae.Message, "email") {
		t.Fatalf("duplicate email: err = %v, want 409 ErrDuplicate naming email", err)
	}
	nu.Fields = Fields{FieldLogin: "c@x.ru", FieldFirstName: "C"}
	_, err = c.CreateUser(ctx, nu)
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.Message, "last_name") {
		t.Fatalf("missing last_name: err = %v, want *ValidationError naming last_name", err)
	}
	if errors.Is(err, ErrDuplicate) {
		t.Fatal("validation error also matches ErrDuplicate")
	}
	if _, err := c.GetDepartment(ctx, "no-such-id"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing department: err = %v, want ErrNotFound", err)
	}
}

func TestBadCredentialsFailFastAndWriteNothing(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, learnsim.Options{}, learnsim.AccountOptions{})
	ctx := context.Background()
	c := env.client(t, Credentials{AccountURL: testAccount, Email: testEmail, Password: "wrong"})
	start := time.Now()
	_, err := c.ListDepartments(ctx)
	if !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("err = %v, want ErrBadCredentials", err)
	}
	if _, err := c.CreateDepartment(ctx, NewDepartment{Name: "X", ParentID: env.root, Code: "x"}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("create err = %v, want ErrBadCredentials", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v; 401 must not be retried", d)
	}
	cnt := env.sim.Counts(testAccount)
	if cnt.Rejected != 2 || cnt.Writes != 0 || cnt.Reads != 0 {
		t.Errorf("counts = %+v, want exactly 2 rejected calls and nothing else", cnt)
	}
	st, _ := env.sim.Snapshot(testAccount)
	if len(st.Departments) != 1 {
		t.Errorf("departments = %d, want only the root", len(st.Departments))
	}

	noAPI := newSimEnv(t, learnsim.Options{}, learnsim.AccountOptions{NoAPIAccess: true})
	if _, err := noAPI.client(t, Credentials{}).ListDepartments(ctx); !errors.Is(err, ErrNoAPIAccess) {
		t.Fatalf("no API access: err = %v, want ErrNoAPIAccess", err)
	}
}

// TestRetriesConverge runs creates and updates against injected 500s,
// refusals for load and lost answers (applied, then 500) and checks the
// account ends exactly as wanted, in each form a refusal for load may take
// (learnsim.Throttle: nothing says how Learn refuses one): with Retry-After
// in seconds, without it, as a date, or a 503, which a create must not
// take as refused before it ran.
func TestRetriesConverge(t *testing.T) {
	t.Parallel()
	for name, th := range map[string]learnsim.Throttle{"429 seconds": learnsim.ThrottleSeconds,
		"429 no Retry-After": learnsim.ThrottleNoHeader, "429 date": learnsim.ThrottleDate, "503": learnsim.Throttle503} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			retriesConverge(t, th)
		})
	}
}

func retriesConverge(t *testing.T, th learnsim.Throttle) {
	env := newSimEnv(t, learnsim.Options{Seed: 42, Unsettled: learnsim.Unsettled{Throttle: th}}, learnsim.AccountOptions{})
	env.sim.SetFaults(learnsim.Faults{ErrorRate: 0.1, RateLimitRate: 0.1, AfterWriteErrorRate: 0.1, RetryAfter: time.Second})
	ctx := context.Background()
	c := env.client(t, Credentials{})
	codes := make([]int, 40)
	for i := range codes {
		codes[i] = i
	}
	deptIDs := make([]string, len(codes))
	err := Parallel(ctx, 4, codes, func(ctx context.Context, i int) error {
		id, err := c.CreateDepartment(ctx, NewDepartment{Name: fmt.Sprintf("Dept %d", i), ParentID: env.root, Code: fmt.Sprintf("p1-%d", i)})
		deptIDs[i] = id
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	userIDs := make([]string, 80)
	idx := make([]int, len(userIDs))
	for i := range idx {
		idx[i] = i
	}
	err = Parallel(ctx, 4, idx, func(ctx context.Context, i int) error {
		id, err := c.CreateUser(ctx, NewUser{DepartmentID: deptIDs[i%len(deptIDs)], Fields: Fields{
			FieldLogin: fmt.Sprintf("user%d@acme.ru", i), FieldEmail: fmt.Sprintf("user%d@acme.ru", i), FieldFirstName: "F", FieldLastName: "L"}})
		userIDs[i] = id
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Idempotent writes under the same faults.
	if err := c.MoveUsers(ctx, deptIDs[0], userIDs[:10]); err != nil {
		t.Fatal(err)
	}
	if err := c.DeactivateUsers(ctx, userIDs[10:20]); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateUser(ctx, userIDs[20], UserUpdate{Fields: Fields{FieldLogin: "user20@acme.ru", FieldJobTitle: "Boss"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDepartmentSubordination(ctx, deptIDs[1], nil, Manual(userIDs[20]), nil); err != nil {
		t.Fatal(err)
	}
	if c.Stats().Retries == 0 || env.sim.Counts(testAccount).Faults == 0 {
		t.Fatalf("no faults happened (stats %+v): the test proves nothing", c.Stats())
	}

	st, err := env.sim.Snapshot(testAccount)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Departments) != 41 {
		t.Errorf("departments = %d, want 41 (no duplicates)", len(st.Departments))
	}
	for i, id := range deptIDs {
		if got := st.DepartmentsByCode(fmt.Sprintf("p1-%d", i)); len(got) != 1 || got[0].ID != id {
			t.Errorf("code p1-%d: %+v, returned id %s", i, got, id)
		}
	}
	if len(st.Users) != 81 {
		t.Errorf("users = %d, want 81 (owner + 80, no duplicates)", len(st.Users))
	}
	byID := map[string]learnsim.User{}
	for _, u := range st.Users {
		byID[u.ID] = u
	}
	for i, id := range userIDs {
		u, ok := byID[id]
		if !ok || u.Fields["login"] != fmt.Sprintf("user%d@acme.ru", i) {
			t.Errorf("user %d: id %s → %+v", i, id, u)
		}
		wantDept := deptIDs[i%len(deptIDs)]
		if i < 10 {
			wantDept = deptIDs[0]
		}
		wantStatus := 1
		if i >= 10 && i < 20 {
			wantStatus = 3
		}
		if u.DepartmentID != wantDept || u.Status != wantStatus {
			t.Errorf("user %d: dept %s status %d, want %s %d", i, u.DepartmentID, u.Status, wantDept, wantStatus)
		}
	}
	if u := byID[userIDs[20]]; u.Fields["job_title"] != "Boss" {
		t.Errorf("update lost: %+v", u)
	}
	if d, _ := st.Department(deptIDs[1]); d.CoSubordination.SupervisorID != userIDs[20] {
		t.Errorf("coSubordination = %+v", d.CoSubordination)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		}
		io.WriteString(w, `{"departments":[]}`)
	}))
	defer srv.Close()
	c, err := New(Credentials{AccountURL: "https://x.example.com", Email: "a", Password: "b"},
		Options{BaseURL: srv.URL, AllowHTTP: true, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.ListDepartments(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, want ≥ 1s (Retry-After)", d)
	}

	// A Retry-After beyond the policy's limit is not waited for: the caller snoozes.
	long := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "600")
		w.WriteHeader(429)
	}))
	defer long.Close()
	c2, _ := New(Credentials{AccountURL: "https://x.example.com", Email: "a", Password: "b"},
		Options{BaseURL: long.URL, AllowHTTP: true, Retry: fastRetry})
	_, err = c2.ListDepartments(context.Background())
	var ae *APIError
	if !errors.Is(err, ErrRateLimited) || !errors.As(err, &ae) || ae.RetryAfter != 600*time.Second {
		t.Fatalf("err = %v, want ErrRateLimited with RetryAfter 600s", err)
	}
}

// TestTolerantAnswers: 200 or 204, bare or enveloped objects, IDs in any wrapping.
func TestTolerantAnswers(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "POST" && r.URL.Path == "/user/u1":
			w.WriteHeader(204)
		case r.Method == "POST" && r.URL.Path == "/user":
			w.WriteHeader(201)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><response>f29d887c-5cff-11e9-9e6a-0a580af40692</response>`)
		case r.URL.Path == "/department/d1":
			io.WriteString(w, `{"departmentId":"d1","name":"Bare","subordination":{"subordinationType":"inherit"}}`)
		case r.URL.Path == "/user/u1/v2":
			io.WriteString(w, `{"response":{"userId":"u1","status":"5","fields":{"LOGIN":"l","Email":"e"}}}`)
		}
	}))
	defer srv.Close()
	c, _ := New(Credentials{AccountURL: "https://x.example.com", Email: "a", Password: "b"},
		Options{BaseURL: srv.URL, AllowHTTP: true, Retry: fastRetry})
	ctx := context.Background()
	if err := c.UpdateUser(ctx, "u1", UserUpdate{DepartmentID: "d", Fields: Fields{FieldLogin: "l"}}); err != nil {
		t.Errorf("204 on update: %v", err)
	}
	if id, err := c.CreateUser(ctx, NewUser{DepartmentID: "d", Fields: Fields{FieldLogin: "l"}}); err != nil || id != "f29d887c-5cff-11e9-9e6a-0a580af40692" {
		t.Errorf("XML id: %q %v", id, err)
	}
	if d, err := c.GetDepartment(ctx, "d1"); err != nil || d.Name != "Bare" || d.Subordination.Type != SubordinationInherit {
		t.Errorf("bare department: %+v %v", d, err)
	}
	if u, err := c.GetUser(ctx, "u1"); err != nil || u.Status != StatusTerminated || u.Login() != "l" || u.Email() != "e" {
		t.Errorf("enveloped user with object fields: %+v %v", u, err)
	}
}

func TestParseID(t *testing.T) {
	t.Parallel()
	const id = "d48bd4fa-5b70-11e9-b12b-22e9fbac4a59"
	for _, body := range []string{
		`"` + id + `"`, id, " " + id + "\n", `<response>` + id + `</response>`,
		`<?xml version="1.0"?>` + "\n" + `<response>` + id + `</response>`,
		`{"response":"` + id + `"}`, `{"departmentId":"` + id + `"}`,
		`{"response":{"departmentId":"` + id + `","name":"Sales","parentDepartmentId":"p"}}`,
		`<response><department><departmentId>` + id + `</departmentId><name>Sales</name></department></response>`,
	} {
		if got := parseID([]byte(body), "departmentId"); got != id {
			t.Errorf("parseID(%q) = %q", body, got)
		}
	}
	for _, body := range []string{"", "<html>oops</html>", `{"x":1}`, "two words", `<response><a>b</a></response>`} {
		if got := parseID([]byte(body), "departmentId"); got != "" {
			t.Errorf("parseID(%q) = %q, want empty", body, got)
		}
	}
	// A created user, returned whole, also has a departmentId: only userId is its ID.
	for _, body := range []string{
		`{"departmentId":"dept","userId":"` + id + `","fields":[]}`,
		`{"response":{"userId":"` + id + `","departmentId":"dept"}}`,
		`<response><userProfile><departmentId>dept</departmentId><userId>` + id + `</userId></userProfile></response>`,
	} {
		if got := parseID([]byte(body), "userId"); got != id {
			t.Errorf("parseID(%q, userId) = %q", body, got)
		}
	}
}

func TestParallelBoundsAndStops(t *testing.T) {
	t.Parallel()
	var inFlight, peak atomic.Int32
	items := make([]int, 50)
	err := Parallel(context.Background(), 3, items, func(ctx context.Context, _ int) error {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		inFlight.Add(-1)
		return nil
	})
	if err != nil || peak.Load() > 3 || peak.Load() < 2 {
		t.Fatalf("err %v, peak %d, want ≤ 3 (and some parallelism)", err, peak.Load())
	}
	var ran atomic.Int32
	boom := errors.New("boom")
	err = Parallel(context.Background(), 2, make([]int, 100), func(ctx context.Context, _ int) error {
		if ran.Add(1) == 5 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || ran.Load() > 10 {
		t.Fatalf("err %v after %d calls, want boom and an early stop", err, ran.Load())
	}
}

// TestCreateAfterLostAnswer: the create is applied but the answer never arrives
// (timeout). The client finds the object by its key instead of creating it twice.
func TestCreateAfterLostAnswer(t *testing.T) {
	t.Parallel()
	sim := learnsim.New(learnsim.Options{})
	root, _ := sim.AddAccount(learnsim.AccountOptions{URL: testAccount, Email: testEmail, Password: testPassword})
	var lost atomic.Int32
	h := sim.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && (r.URL.Path == "/user" || r.URL.Path == "/department") && lost.Add(1) <= 2 {
			h.ServeHTTP(httptest.NewRecorder(), r) // applied...
			<-r.Context().Done()                   // ...and the client times out waiting
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	retry := fastRetry
	retry.Timeout = 300 * time.Millisecond
	c, _ := New(Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword},
		Options{BaseURL: srv.URL, AllowHTTP: true, Retry: retry})
	ctx := context.Background()
	did, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: root, Code: "p1-7"})
	if err != nil {
		t.Fatal(err)
	}
	uid, err := c.CreateUser(ctx, NewUser{DepartmentID: did, Fields: Fields{FieldLogin: "a@acme.ru", FieldFirstName: "A", FieldLastName: "B"}})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sim.Snapshot(testAccount)
	if len(st.Departments) != 2 || st.Departments[1].ID != did {
		t.Errorf("departments %+v, want root + %s", st.Departments, did)
	}
	if u, ok := st.UserByLogin("a@acme.ru"); len(st.Users) != 2 || !ok || u.ID != uid {
		t.Errorf("users %+v, want owner + %s", st.Users, uid)
	}
	// Without a code the client cannot know: it says so instead of guessing.
	lost.Store(1)
	_, err = c.CreateDepartment(ctx, NewDepartment{Name: "No code", ParentID: root})
	if !errors.Is(err, ErrMaybeCreated) {
		t.Fatalf("err = %v, want ErrMaybeCreated", err)
	}
}

// A create whose answer is lost, not found by the lookup that follows (a
// listing that lags), is sent again and meets the user it made: Learn says
// so with 409 or, not settled, 400. Either way the client looks once more
// and returns that user rather than a refusal.
func TestRepeatedCreateMeetsItsUserWhateverTheStatus(t *testing.T) {
	t.Parallel()
	for _, dup400 := range []bool{false, true} {
		sim := learnsim.New(learnsim.Options{Unsettled: learnsim.Unsettled{Duplicate400: dup400}})
		root, _ := sim.AddAccount(learnsim.AccountOptions{URL: testAccount, Email: testEmail, Password: testPassword})
		var lost, hidden atomic.Int32
		h := sim.Handler()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == "POST" && r.URL.Path == "/user" && lost.Add(1) == 1:
				h.ServeHTTP(httptest.NewRecorder(), r) // applied, the answer lost
				http.Error(w, "bad gateway", http.StatusBadGateway)
				return
			case r.Method == "GET" && strings.Contains(r.URL.RawQuery, "a%40acme.ru") && hidden.Add(1) == 1:
				r.URL.RawQuery = strings.ReplaceAll(r.URL.RawQuery, "a%40acme.ru", "nobody%40acme.ru") // not listed yet
			}
			h.ServeHTTP(w, r)
		}))
		c, _ := New(Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword},
			Options{BaseURL: srv.URL, AllowHTTP: true, Retry: fastRetry})
		uid, err := c.CreateUser(context.Background(), NewUser{DepartmentID: root,
			Fields: Fields{FieldLogin: "a@acme.ru", FieldFirstName: "A", FieldLastName: "B"}})
		st, _ := sim.Snapshot(testAccount)
		u, ok := st.UserByLogin("a@acme.ru")
		if err != nil || !ok || u.ID != uid || len(st.Users) != 2 {
			t.Errorf("duplicate 400 %v: create %q, %v; Learn has %d users, a@acme.ru %+v", dup400, uid, err, len(st.Users), u)
		}
		if hidden.Load() < 2 || lost.Load() < 2 {
			t.Errorf("duplicate 400 %v: %d lookups, %d creates; want the lost create, a lookup that missed, a repeat and a second lookup", dup400, hidden.Load(), lost.Load())
		}
		srv.Close()
	}
}

// TestUpdateUserCarriesLogin: a user update without the login, a department
// alone included, is refused before it is sent (Learn's docs call the login
// required in an update; learnsim.Unsettled.UpdateNeedsLogin refuses it), and
// the same update with the login moves the user.
func TestUpdateUserCarriesLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newSimEnv(t, learnsim.Options{Seed: 3, Unsettled: learnsim.Unsettled{UpdateNeedsLogin: true}}, learnsim.AccountOptions{})
	c := env.client(t, Credentials{})
	dept, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: env.root})
	if err != nil {
		t.Fatal(err)
	}
	uid, err := c.CreateUser(ctx, NewUser{DepartmentID: env.root, Fields: Fields{FieldLogin: "ivan@acme.ru", FieldFirstName: "I", FieldLastName: "P"}})
	if err != nil {
		t.Fatal(err)
	}
	env.sim.ResetCounts()
	var ve *ValidationError
	if err := c.UpdateUser(ctx, uid, UserUpdate{DepartmentID: dept}); !errors.As(err, &ve) || ve.Remote {
		t.Errorf("department alone: %v, want the client's own refusal", err)
	}
	if n := env.sim.Counts(testAccount).Writes; n != 0 {
		t.Errorf("%d writes sent without the login", n)
	}
	if err := c.UpdateUser(ctx, uid, UserUpdate{DepartmentID: dept, Fields: Fields{FieldLogin: "ivan@acme.ru"}}); err != nil {
		t.Fatal(err)
	}
	if u, err := c.GetUser(ctx, uid); err != nil || u.DepartmentID != dept {
		t.Errorf("after the update: %+v %v", u, err)
	}
}

// TestListingLastPage lists two full pages of users and one full page of
// departments against each way Learn may mark the last page
// (learnsim.Unsettled.LastPage): every object is read once and the listing
// stops there, after the empty page a full last page's token names.
func TestListingLastPage(t *testing.T) {
	t.Parallel()
	for _, lp := range []learnsim.LastPage{learnsim.LastPageNoToken, learnsim.LastPageEmpty, learnsim.LastPageNull, learnsim.LastPageAfterFull} {
		env := newSimEnv(t, learnsim.Options{Seed: 5, Unsettled: learnsim.Unsettled{LastPage: lp}}, learnsim.AccountOptions{})
		for i := 1; i < 2*pageSize; i++ { // and the owner
			if _, err := env.sim.SeedUser(testAccount, env.root, map[string]string{"login": fmt.Sprintf("u%d@acme.ru", i),
				"first_name": "F", "last_name": "L"}, StatusActive); err != nil {
				t.Fatal(err)
			}
		}
		for i := 1; i < pageSize; i++ { // and the root
			if _, err := env.sim.SeedDepartment(testAccount, fmt.Sprint("D", i), env.root, ""); err != nil {
				t.Fatal(err)
			}
		}
		c := env.client(t, Credentials{})
		ctx := context.Background()
		users, err := c.AllUsers(ctx, UserFilter{})
		if err != nil {
			t.Fatalf("%d: %v", lp, err)
		}
		depts, err := c.ListDepartments(ctx)
		if err != nil {
			t.Fatalf("%d: %v", lp, err)
		}
		seen := map[string]bool{}
		for _, u := range users {
			seen[u.ID] = true
		}
		want := int64(3) // two pages of users, one of departments
		if lp == learnsim.LastPageAfterFull {
			want = 5 // and the empty page after each
		}
		if len(users) != 2*pageSize || len(seen) != len(users) || len(depts) != pageSize {
			t.Errorf("%d: %d users (%d distinct), %d departments", lp, len(users), len(seen), len(depts))
		}
		if got := env.sim.Counts(testAccount).Reads; got != want {
			t.Errorf("%d: %d pages read, want %d", lp, got, want)
		}
	}
}
