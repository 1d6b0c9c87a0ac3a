package bitrix24_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
)

type fixture struct {
	srv    *b24sim.Server
	portal *b24sim.Portal
	tokens *bitrix24.MemoryTokenSource
	client *bitrix24.Client
}

// setup starts a simulator with one installed portal and a client for its admin.
func setup(t testing.TB, org b24sim.Org, cfg bitrix24.Config) *fixture {
	t.Helper()
	srv := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1"})
	t.Cleanup(srv.Close)
	p := srv.AddPortal(b24sim.PortalOptions{Org: org})
	tok := p.Install()
	p.FinishInstall(context.Background())
	oauth := &bitrix24.OAuth{URL: srv.URL, ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret()}
	ts := bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token(tok))
	cfg.Tokens = ts
	if cfg.Endpoint == "" {
		cfg.Endpoint = tok.ClientEndpoint
	}
	if cfg.RetryWait == 0 {
		cfg.RetryWait = 20 * time.Millisecond
	}
	return &fixture{srv: srv, portal: p, tokens: ts, client: bitrix24.New(cfg)}
}

func TestListUsersFastFewRequests(t *testing.T) {
	t.Parallel()
	f := setup(t, b24sim.GenerateOrg(7, 10000, 300), bitrix24.Config{})
	ctx := context.Background()
	f.portal.ResetCounters()
	users, err := f.client.Users(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := f.portal.Users()
	if len(users) != len(want) {
		t.Fatalf("got %d users, want %d", len(users), len(want))
	}
	for i, u := range users {
		w := want[i]
		if u.ID != w.ID || u.Active != w.Active || u.Name != w.Name || u.Email != w.Email || u.IsExtranet() != w.Extranet ||
			!slices.Equal(u.Departments, w.Departments) {
			t.Fatalf("user %d: got %+v, want %+v", i, u, w)
		}
	}
	if n := f.portal.TotalRequests(); n > 6 {
		t.Errorf("listing 10,000 users took %d requests, want ≤ 6 (%v)", n, f.portal.Requests())
	}
	if n := f.portal.Throttled(); n != 0 {
		t.Errorf("%d requests got QUERY_LIMIT_EXCEEDED", n)
	}

	// A filtered listing: active employees only.
	f.portal.ResetCounters()
	active, err := f.client.Users(ctx, map[string]any{"ACTIVE": true, "USER_TYPE": "employee"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, w := range want {
		if w.Active && !w.Extranet {
			n++
		}
	}
	if len(active) != n {
		t.Errorf("active employees: got %d, want %d", len(active), n)
	}
	for _, u := range active {
		if !u.Active || u.UserType != "employee" {
			t.Fatalf("filter leaked %+v", u)
		}
	}
}

func TestListUsersSmallAndEmpty(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 50, 51, 120} {
		f := setup(t, b24sim.GenerateOrg(int64(n), n, 3), bitrix24.Config{})
		got, err := f.client.Users(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(f.portal.Users()) {
			t.Errorf("%d users: listed %d", n, len(got))
		}
		paged, err := f.client.UsersPaged(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(paged) != len(got) {
			t.Errorf("%d users: paged %d, fast %d", n, len(paged), len(got))
		}
	}
}

func TestDepartments(t *testing.T) {
	t.Parallel()
	f := setup(t, b24sim.GenerateOrg(3, 200, 777), bitrix24.Config{})
	f.portal.ResetCounters()
	ds, err := f.client.Departments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := f.portal.Departments()
	if len(ds) != len(want) {
		t.Fatalf("got %d departments, want %d", len(ds), len(want))
	}
	seen := map[int64]bool{}
	byID := map[int64]b24sim.Department{}
	for _, w := range want {
		byID[w.ID] = w
	}
	for _, d := range ds {
		if d.Parent != 0 && !seen[d.Parent] {
			t.Fatalf("department %d listed before its parent %d", d.ID, d.Parent)
		}
		seen[d.ID] = true
		w := byID[d.ID]
		if d.Name != w.Name || d.Parent != w.Parent || d.Head != w.Head || d.Sort != w.Sort {
			t.Fatalf("got %+v, want %+v", d, w)
		}
	}
	if n := f.portal.TotalRequests(); n > 2 {
		t.Errorf("777 departments took %d requests", n)
	}
}

func TestExpiredTokenOneRefreshConcurrent(t *testing.T) {
	t.Parallel()
	f := setup(t, b24sim.GenerateOrg(1, 20, 3), bitrix24.Config{})
	ctx := context.Background()
	f.srv.Advance(2 * time.Hour) // every access token is now expired
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			p, err := f.client.Profile(ctx)
			if err == nil && !p.Admin {
				err = errors.New("profile is not the admin")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.srv.Refreshes(); n != 1 {
		t.Errorf("OAuth server saw %d refreshes, want 1", n)
	}
	if _, err := f.client.AppInfo(ctx); err != nil {
		t.Fatalf("portal stopped working after refresh: %v", err)
	}
}

func TestQueryLimitWaitedOut(t *testing.T) {
	t.Parallel()
	// The client's own bucket is off, so only the server's 503 paces it.
	f := setup(t, b24sim.GenerateOrg(1, 20, 3), bitrix24.Config{Limiter: bitrix24.NewLimiter(0, 0)})
	f.portal.SetRateLimit(20, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 10 {
		if _, err := f.client.AppInfo(ctx); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if f.portal.Throttled() == 0 {
		t.Error("the server never throttled: the test proves nothing")
	}
	// OPERATION_TIME_LIMIT waits for the method's reset instead (operating_test.go).

	// Bounded by ctx: a portal that always throttles gives up when ctx ends.
	f.portal.InjectFault(b24sim.Fault{Status: 503, Code: "QUERY_LIMIT_EXCEEDED", Count: 1000})
	short, cancel2 := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel2()
	_, err := f.client.AppInfo(short)
	if !errors.Is(err, bitrix24.ErrQueryLimitExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want QUERY_LIMIT_EXCEEDED and deadline, got %v", err)
	}
}

func TestClientLimiterAvoids503(t *testing.T) {
	t.Parallel()
	f := setup(t, b24sim.GenerateOrg(1, 20, 3), bitrix24.Config{Limiter: bitrix24.NewLimiter(50, 5)})
	f.portal.SetRateLimit(50, 6) // one slot of slack for timing jitter
	start := time.Now()
	for range 12 {
		if _, err := f.client.AppInfo(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if f.portal.Throttled() != 0 {
		t.Errorf("client bucket let %d requests be throttled", f.portal.Throttled())
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Errorf("12 calls at 50/s burst 5 took only %v", el)
	}
}

func TestRenamedPortalKeepsPOST(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var moved string
	f := setup(t, b24sim.GenerateOrg(1, 20, 3), bitrix24.Config{
		OnEndpointChange: func(_ context.Context, ep string) { mu.Lock(); moved = ep; mu.Unlock() },
	})
	old := f.client.Endpoint()
	newDomain := f.portal.Rename("")
	p, err := f.client.Profile(context.Background()) // JSON POST with auth in the body
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == 0 {
		t.Fatal("empty profile after redirect")
	}
	want := "http://" + newDomain + "/rest/"
	if got := f.client.Endpoint(); got != want || got == old {
		t.Errorf("endpoint %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if moved != want {
		t.Errorf("OnEndpointChange got %q", moved)
	}
	if f.portal.Requests()["profile"] != 1 {
		t.Errorf("profile requests at the new address: %v", f.portal.Requests())
	}
}

func TestTypedErrors(t *testing.T) {
	t.Parallel()
	f := setup(t, b24sim.GenerateOrg(1, 20, 3), bitrix24.Config{})
	ctx := context.Background()
	cases := []struct {
		status int
		code   string
		want   error
	}{
		{403, "ACCESS_DENIED", bitrix24.ErrAccessDenied},
		{401, "insufficient_scope", bitrix24.ErrInsufficientScope},
		{401, "NO_AUTH_FOUND", bitrix24.ErrNoAuthFound},
		{402, "PAYMENT_REQUIRED", bitrix24.ErrPaymentRequired},
		{401, "application_not_found", bitrix24.ErrApplicationNotFound}, // case-insensitive
	}
	for _, c := range cases {
		f.portal.InjectFault(b24sim.Fault{Method: "profile", Status: c.status, Code: c.code, Description: "x"})
		_, err := f.client.Profile(ctx)
		var ae *bitrix24.APIError
		if !errors.Is(err, c.want) || !errors.As(err, &ae) || ae.HTTPStatus != c.status {
			t.Errorf("%s: got %v", c.code, err)
		}
	}
	if err := f.client.Call(ctx, "no.such.method", nil, nil); !errors.Is(err, bitrix24.ErrMethodNotFound) {
		t.Errorf("unknown method: %v", err)
	}

	// After uninstall the tokens die: REST says APPLICATION_NOT_FOUND, and a
	// refresh says invalid_grant, which the token source keeps (no retry storm).
	f.portal.Uninstall(ctx, false)
	if _, err := f.client.Profile(ctx); !errors.Is(err, bitrix24.ErrApplicationNotFound) {
		t.Errorf("after uninstall: %v", err)
	}
	stale, _ := f.tokens.Token(ctx)
	_, err := f.tokens.Refresh(ctx, stale)
	if !errors.Is(err, bitrix24.ErrInvalidGrant) || !bitrix24.IsPermanentAuthError(err) {
		t.Errorf("refresh after uninstall: %v", err)
	}
	if _, err := f.client.Profile(ctx); !errors.Is(err, bitrix24.ErrInvalidGrant) {
		t.Errorf("a permanent refresh failure should stick, got %v", err)
	}
}

func TestOAuthRefreshRotation(t *testing.T) {
	t.Parallel()
	f := setup(t, b24sim.GenerateOrg(1, 5, 1), bitrix24.Config{})
	ctx := context.Background()
	first, _ := f.tokens.Token(ctx)
	oauth := &bitrix24.OAuth{URL: f.srv.URL, ClientID: f.srv.ClientID(), ClientSecret: f.srv.ClientSecret()}
	next, err := oauth.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if next.MemberID != f.portal.MemberID() || next.ClientEndpoint != f.portal.ClientEndpoint() ||
		next.AccessToken == first.AccessToken || next.Expires.IsZero() || next.UserID == 0 {
		t.Errorf("refresh answer %+v", next)
	}
	if _, err := oauth.Refresh(ctx, first.RefreshToken); !errors.Is(err, bitrix24.ErrInvalidGrant) {
		t.Errorf("reused refresh token: %v", err)
	}
	bad := *oauth
	bad.ClientSecret = "wrong"
	if _, err := bad.Refresh(ctx, next.RefreshToken); !errors.Is(err, bitrix24.ErrClientRefused) || errors.Is(err, bitrix24.ErrInvalidClient) {
		t.Errorf("wrong secret: %v, want ErrClientRefused (the app's credentials, not the portal's)", err)
	}
	// The access token issued with the consumed refresh token is dead too, and
	// the source's own refresh token was the one consumed: a branched chain is
	// fatal, which is why refreshes must be serialised.
	err = f.client.Call(ctx, "profile", nil, nil)
	if !errors.Is(err, bitrix24.ErrInvalidGrant) {
		t.Fatalf("branched chain: %v", err)
	}
}

func TestBatchPerCommandErrors(t *testing.T) {
	t.Parallel()
	f := setup(t, b24sim.GenerateOrg(1, 120, 5), bitrix24.Config{})
	res, err := f.client.Batch(context.Background(), []bitrix24.BatchCommand{
		{Key: "me", Method: "profile"},
		{Key: "bad", Method: "no.such.method"},
		{Key: "u", Method: "user.get", Params: map[string]any{"FILTER": map[string]any{"ACTIVE": true}, "start": 0}},
		{Key: "ref", Method: "user.get", Params: map[string]any{"FILTER": map[string]any{"ID": "$result[me][ID]"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.Err("bad"), bitrix24.ErrMethodNotFound) {
		t.Errorf("bad: %v", res.Err("bad"))
	}
	if res.Err("me") != nil || res.Err("u") != nil {
		t.Errorf("unexpected errors %v", res.Errors)
	}
	if res.Total["u"] == 0 || res.Next["u"] != 50 {
		t.Errorf("total/next: %v %v", res.Total, res.Next)
	}
	var me bitrix24.Profile
	var ref []bitrix24.User
	if err := jsonUnmarshal(res.Result["me"], &me); err != nil {
		t.Fatal(err)
	}
	if err := jsonUnmarshal(res.Result["ref"], &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref) != 1 || ref[0].ID != me.ID {
		t.Errorf("$result reference: got %+v for profile %d", ref, me.ID)
	}
	many := make([]bitrix24.BatchCommand, 51)
	for i := range many {
		many[i] = bitrix24.BatchCommand{Key: string(rune('a'+i%26)) + string(rune('a'+i/26)), Method: "profile"}
	}
	if _, err := f.client.Batch(context.Background(), many); err == nil {
		t.Error("51 commands accepted")
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	f := setup(t, b24sim.GenerateOrg(1, 5, 1), bitrix24.Config{})
	ctx := context.Background()
	h := "https://app.example.com/b24/events"
	for range 2 { // the second bind finds the binding and succeeds
		if err := f.client.EventBind(ctx, "ONAPPUNINSTALL", h); err != nil {
			t.Fatal(err)
		}
	}
	hs, err := f.client.EventGet(ctx)
	if err != nil || len(hs) != 1 || hs[0].Event != "ONAPPUNINSTALL" || hs[0].Handler != h {
		t.Fatalf("event.get: %v %+v", err, hs)
	}
}

func TestFormBodyCall(t *testing.T) {
	t.Parallel()
	f := setup(t, b24sim.GenerateOrg(1, 60, 2), bitrix24.Config{})
	var users []bitrix24.User
	err := f.client.Call(context.Background(), "user.get", bitrix24.EncodeBrackets(map[string]any{
		"FILTER": map[string]any{">ID": 10, "ACTIVE": true}, "start": -1}), &users)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) == 0 || users[0].ID <= 10 {
		t.Errorf("form filter ignored: %+v", users[:min(1, len(users))])
	}
}

// TestOrgFewRequests lists departments and users together: the same rows as
// the separate listings, in ceil(pages/50) requests.
func TestOrgFewRequests(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		users, depts, maxReq int
		employees            bool // filter USER_TYPE=employee
	}{
		{10000, 300, 5, true}, // 200 + 6 pages (+1 spare): 1 + ceil(158/50)
		{1, 3, 1, false},
		{49, 1, 1, false},
		{50, 60, 2, false},
		{2450, 3, 2, false}, // the first batch's 49 pages are full: one more to see the end
		{2451, 120, 2, false},
		{2600, 2600, 3, true}, // 52 + 52 pages
	} {
		var filter map[string]any
		if c.employees {
			filter = map[string]any{"USER_TYPE": "employee"}
		}
		f := setup(t, b24sim.GenerateOrg(int64(c.users+c.depts), c.users, c.depts), bitrix24.Config{})
		ctx := context.Background()
		f.portal.ResetCounters()
		ds, us, err := f.client.Org(ctx, filter)
		if err != nil {
			t.Fatalf("%d users, %d departments: %v", c.users, c.depts, err)
		}
		if n := f.portal.TotalRequests(); n > c.maxReq {
			t.Errorf("%d users, %d departments: %d requests, want ≤ %d (%v)", c.users, c.depts, n, c.maxReq, f.portal.Requests())
		}
		if n := f.portal.Throttled(); n != 0 {
			t.Errorf("%d requests got QUERY_LIMIT_EXCEEDED", n)
		}
		wantDs, err := f.client.Departments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantUs, err := f.client.Users(ctx, filter)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != len(f.portal.Departments()) || !slices.EqualFunc(ds, wantDs, func(a, b bitrix24.Department) bool {
			return a.ID == b.ID && a.Parent == b.Parent && a.Name == b.Name && a.Head == b.Head
		}) {
			t.Errorf("%d users, %d departments: Org listed %d departments, Departments %d", c.users, c.depts, len(ds), len(wantDs))
		}
		employees := 0
		for _, u := range f.portal.Users() {
			if !c.employees || !u.Extranet {
				employees++
			}
		}
		if len(us) != employees || !slices.EqualFunc(us, wantUs, func(a, b bitrix24.User) bool {
			return a.ID == b.ID && a.Active == b.Active && a.Email == b.Email && slices.Equal(a.Departments, b.Departments)
		}) {
			t.Errorf("%d users, %d departments: Org listed %d employees, Users %d, want %d", c.users, c.depts, len(us), len(wantUs), employees)
		}
		for _, u := range us {
			if c.employees && u.UserType != "employee" {
				t.Fatalf("filter leaked %+v", u)
			}
		}
	}
}

// A portal answering with a redirect off its REST API, or from https down
// to http, does not get the access token sent on, and the endpoint stays.
func TestRedirectsThatAreNotAMoveAreRefused(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"result":{"ID":"1","ADMIN":true}}`)
	}))
	defer elsewhere.Close()
	for _, c := range []struct {
		name, location string
		tls            bool
	}{
		{"off the REST API", elsewhere.URL + "/internal/metadata", false},
		{"https to http", elsewhere.URL + "/rest/profile.json", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, c.location, http.StatusFound)
			})
			portal := httptest.NewServer(h)
			if c.tls {
				portal = httptest.NewTLSServer(h)
			}
			defer portal.Close()
			client := bitrix24.New(bitrix24.Config{
				Endpoint: portal.URL + "/rest/",
				Tokens:   bitrix24.NewMemoryTokenSource(nil, bitrix24.Token{AccessToken: "secret-token", Expires: time.Now().Add(time.Hour)}),
				HTTP:     portal.Client(),
			})
			before := hits.Load()
			if _, err := client.Profile(context.Background()); err == nil {
				t.Fatal("the redirect was followed")
			}
			if hits.Load() != before {
				t.Fatal("the token was sent to the redirect target")
			}
			if client.Endpoint() != portal.URL+"/rest/" {
				t.Fatalf("endpoint changed to %s", client.Endpoint())
			}
		})
	}
}

// Whether a request Bitrix24 refuses with QUERY_LIMIT_EXCEEDED raises its
// counter too is not documented (b24sim.Portal.SetCountRefused). When it
// does, a refused burst keeps the bucket full for longer; the client, with
// its default first pause of a second, still gets through a bucket other
// apps filled.
func TestQueryLimitRefusedRequestsCount(t *testing.T) {
	t.Parallel()
	for _, counted := range []bool{false, true} {
		f := setup(t, b24sim.GenerateOrg(1, 20, 3), bitrix24.Config{})
		ctx := context.Background()
		tok, err := f.tokens.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		raw := func() int {
			resp, err := http.Post(f.client.Endpoint()+"profile", "application/json",
				strings.NewReader(`{"auth":"`+tok.AccessToken+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		f.portal.SetRateLimit(4, 3)
		f.portal.SetCountRefused(counted)
		f.portal.FillBucket()
		for range 4 {
			if s := raw(); s != http.StatusServiceUnavailable {
				t.Fatalf("counted %v: status %d into a full bucket", counted, s)
			}
		}
		time.Sleep(300 * time.Millisecond) // 1.2 drained: room for one unless the refusals counted
		want := http.StatusOK
		if counted {
			want = http.StatusServiceUnavailable
		}
		if s := raw(); s != want {
			t.Errorf("counted %v: status %d after a pause, want %d", counted, s, want)
		}

		c := bitrix24.New(bitrix24.Config{Tokens: f.tokens, Endpoint: f.client.Endpoint()}) // default waits
		f.portal.SetRateLimit(2, 50)
		f.portal.FillBucket()
		tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if _, err := c.AppInfo(tctx); err != nil {
			t.Errorf("counted %v: %v", counted, err)
		}
		cancel()
	}
}
