package bitrix24

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The sample traffic in testdata/samples (see its README) is the contract:
// the client must read every sample request and answer exactly as the samples
// mean it. b24sim's golden test holds the simulator to the same files.

func sample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// expand fills the elisions of a verbatim sample as testdata/README.md says.
func expand(t *testing.T, doc string) string {
	t.Helper()
	var dept struct {
		Result json.RawMessage `json:"result"`
		Time   json.RawMessage `json:"time"`
	}
	if err := json.Unmarshal([]byte(sample(t, "9.6-department.get.response.json")), &dept); err != nil {
		t.Fatal(err)
	}
	var user struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(sample(t, "9.6-user.get.response.json")), &user); err != nil {
		t.Fatal(err)
	}
	doc = strings.ReplaceAll(doc, `"d":[…]`, `"d":`+string(dept.Result))
	doc = strings.ReplaceAll(doc, `"u0":[…]`, `"u0":`+string(user.Result))
	return strings.ReplaceAll(doc, "{…}", string(dept.Time))
}

// httpSample reads a sample written as an HTTP request: request line, headers,
// an empty line, the body.
func httpSample(t *testing.T, name string) *http.Request {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(sample(t, name)))
	sc.Buffer(nil, 1<<20)
	sc.Scan()
	parts := strings.Fields(sc.Text())
	header := http.Header{}
	for sc.Scan() && sc.Text() != "" {
		k, v, _ := strings.Cut(sc.Text(), ":")
		header.Add(k, strings.TrimSpace(v))
	}
	var body strings.Builder
	for sc.Scan() {
		body.WriteString(sc.Text())
	}
	r := httptest.NewRequest(parts[0], parts[1], strings.NewReader(body.String()))
	r.Header = header
	return r
}

func formSample(t *testing.T, name string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(sample(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %#v\n want %#v", what, got, want)
	}
}

const (
	sampleAccess  = "0a5c6c67006f7a1e0058f18a0000000100000743d5e1bb6a0c2e0a4b7cbb2b6a7c91f1"
	sampleRefresh = "fadb93670070f28d0058f18a00000001000007a93f6e9a1e5b0e3c4d8f21b4c6e7d0a2"
	sampleMember  = "a223c6b3710f85df22e9377d6c4f7553"
	sampleAppTok  = "51856fefc120afa4b628cc82d3935cce"
)

// 9.1: the iframe POST to the installer page.
func TestGoldenFrameRequest(t *testing.T) {
	r := httpSample(t, "9.1-frame.request.http")
	got, err := ParseAppRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "app request", got, AppRequest{
		Domain: "acme.bitrix24.com", Protocol: "1", Lang: "en", AppSID: "9ecab44f06b9efb6c37d7b02180422b2",
		AuthID: sampleAccess, AuthExpires: 3600, RefreshID: sampleRefresh,
		ServerEndpoint: "https://oauth.bitrix.info/rest/", ApplicationToken: sampleAppTok,
		ApplicationScope: "user_basic,department", MemberID: sampleMember, Status: "F", Placement: "DEFAULT",
		PlacementOptions: `{"any":"28\/"}`,
	})
	// The variants the notes name: older portals send no APPLICATION_TOKEN or
	// APPLICATION_SCOPE, PLACEMENT_OPTIONS may be missing or "undefined", and
	// status may be L, T or P.
	r = httpSample(t, "9.1-frame.request.http")
	q := r.URL.Query()
	if err := r.ParseForm(); err != nil {
		t.Fatal(err)
	}
	body := r.PostForm
	for _, drop := range []string{"APPLICATION_TOKEN", "APPLICATION_SCOPE", "PLACEMENT_OPTIONS"} {
		b := cloneValues(body)
		b.Del(drop)
		if _, err := ParseAppRequestValues(q, b); err != nil {
			t.Errorf("without %s: %v", drop, err)
		}
	}
	for _, kv := range [][2]string{{"PLACEMENT_OPTIONS", "undefined"}, {"status", "L"}, {"status", "T"}, {"status", "P"}} {
		b := cloneValues(body)
		b.Set(kv[0], kv[1])
		a, err := ParseAppRequestValues(q, b)
		got := a.Status
		if kv[0] == "PLACEMENT_OPTIONS" {
			got = a.PlacementOptions
		}
		if err != nil || got != kv[1] {
			t.Errorf("%s=%s: %v, read as %q", kv[0], kv[1], err, got)
		}
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// 9.2: ONAPPINSTALL from Bitrix24's servers.
func TestGoldenOnAppInstall(t *testing.T) {
	ev, err := ParseEventRequest(httpSample(t, "9.2-onappinstall.request.http"))
	if err != nil {
		t.Fatal(err)
	}
	same(t, "name", ev.Name, "ONAPPINSTALL")
	same(t, "handler id", ev.HandlerID, "1")
	same(t, "ts", ev.TS, time.Unix(1762089975, 0).UTC())
	same(t, "data", ev.Data, map[string]any{"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "en"})
	same(t, "auth", ev.Auth, &EventAuth{
		AccessToken: sampleAccess, RefreshToken: sampleRefresh, Expires: time.Unix(1762093575, 0).UTC(), ExpiresIn: 3600,
		Scope: "user_basic,department", Domain: "acme.bitrix24.com", ServerEndpoint: "https://oauth.bitrix.info/rest/",
		ClientEndpoint: "https://acme.bitrix24.com/rest/", Status: "F", MemberID: sampleMember, UserID: 1,
		ApplicationToken: sampleAppTok,
	})
	if err := ev.CheckRefreshAuth(); err != nil {
		t.Errorf("the sample's auth block is refused: %v", err)
	}
}

// 9.3: ONAPPUNINSTALL carries no tokens, only who and the application token.
func TestGoldenOnAppUninstall(t *testing.T) {
	ev, err := ParseEvent(formSample(t, "9.3-onappuninstall.form"))
	if err != nil {
		t.Fatal(err)
	}
	same(t, "name", ev.Name, "ONAPPUNINSTALL")
	same(t, "handler id", ev.HandlerID, "2")
	same(t, "ts", ev.TS, time.Unix(1766047124, 0).UTC())
	same(t, "data", ev.Data, map[string]any{"LANGUAGE_ID": "en", "CLEAN": "1"})
	same(t, "clean", ev.Clean(), true)
	same(t, "auth", ev.Auth, &EventAuth{
		Domain: "acme.bitrix24.com", ServerEndpoint: "https://oauth.bitrix.info/rest/",
		ClientEndpoint: "https://acme.bitrix24.com/rest/", MemberID: sampleMember, ApplicationToken: sampleAppTok,
	})
	kept := formSample(t, "9.3-onappuninstall.form")
	kept.Set("data[CLEAN]", "0")
	if ev, _ := ParseEvent(kept); ev.Clean() {
		t.Error("data[CLEAN]=0 read as clean")
	}
}

// 9.4: ONUSERADD: no refresh token; the auth block may be missing and ACTIVE may be 1.
func TestGoldenOnUserAdd(t *testing.T) {
	form := formSample(t, "9.4-onuseradd.form")
	ev, err := ParseEvent(form)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "name", ev.Name, "ONUSERADD")
	same(t, "handler id", ev.HandlerID, "3")
	same(t, "ts", ev.TS, time.Unix(1788252000, 0).UTC())
	same(t, "data", ev.Data, map[string]any{
		"ID": "27", "ACTIVE": "Y", "EMAIL": "k.weber@example.com", "NAME": "Klaus", "LAST_NAME": "Weber",
		"UF_DEPARTMENT": map[string]any{"0": "5"}, "DATE_REGISTER": "2026-09-01T10:00:00+02:00", "WORK_POSITION": "Engineer",
	})
	same(t, "auth", ev.Auth, &EventAuth{
		AccessToken: "0a5c…91f1", Expires: time.Unix(1788255600, 0).UTC(), ExpiresIn: 3600,
		Scope: "user_basic,department", Domain: "acme.bitrix24.com", ServerEndpoint: "https://oauth.bitrix.info/rest/",
		ClientEndpoint: "https://acme.bitrix24.com/rest/", Status: "F", MemberID: sampleMember, UserID: 27,
		ApplicationToken: sampleAppTok,
	})
	for k := range form {
		if strings.HasPrefix(k, "auth[") {
			form.Del(k)
		}
	}
	form.Set("data[ACTIVE]", "1")
	ev, err = ParseEvent(form)
	if err != nil || ev.Auth != nil || ev.DataString("ACTIVE") != "1" {
		t.Errorf("without auth: %v, auth %+v, ACTIVE %q", err, ev.Auth, ev.DataString("ACTIVE"))
	}
}

// 9.5: the client sends the refresh as the sample does and reads its answer
// and its errors.
func TestGoldenOAuthRefresh(t *testing.T) {
	want := httpSample(t, "9.5-refresh.request.http")
	answer := sample(t, "9.5-refresh.response.json")
	status := http.StatusOK
	// The client checks an invalid_client with a refresh token no portal
	// holds (see OAuth.Refresh); the server knows the app by default.
	controlStatus, control := http.StatusBadRequest, `{"error":"invalid_grant","error_description":"Invalid grant"}`
	controls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("refresh_token") == unknownRefreshToken {
			controls++
			w.WriteHeader(controlStatus)
			_, _ = w.Write([]byte(control))
			return
		}
		if r.Method != want.Method || r.URL.Path != want.URL.Path {
			t.Errorf("refresh sent as %s %s, want %s %s", r.Method, r.URL.Path, want.Method, want.URL.Path)
		}
		same(t, "refresh query", r.URL.Query(), want.URL.Query())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(answer))
	}))
	defer srv.Close()
	q := want.URL.Query()
	o := &OAuth{URL: srv.URL, ClientID: q.Get("client_id"), ClientSecret: q.Get("client_secret")}
	tok, err := o.Refresh(context.Background(), q.Get("refresh_token"))
	if err != nil {
		t.Fatal(err)
	}
	same(t, "token", tok, Token{
		AccessToken:  "d3649b60006f7a1e0058f18a000000010000073268d7306c5146016aa02478352371",
		RefreshToken: "c3e3c260006f7a1e0058f18a0000000100000336eb479587163854e87e224265dfde48",
		Expires:      time.Unix(1762097175, 0).UTC(), MemberID: sampleMember, ClientEndpoint: "https://acme.bitrix24.com/rest/",
		ServerEndpoint: "https://oauth.bitrix.info/rest/", Domain: "oauth.bitrix.info", Scope: "user_basic,department",
		Status: "F", UserID: 1,
	})

	// The errors; PAYMENT_REQUIRED's status is not given, so every plausible one.
	cases := []struct {
		status int
		body   string
		is     *APIError
	}{}
	for _, line := range strings.Split(sample(t, "9.5-refresh-errors.txt"), "\n") {
		code, body := parseErrorLine(t, line)
		var is *APIError
		switch {
		case strings.Contains(body, "invalid_grant"):
			is = ErrInvalidGrant
		case strings.Contains(body, "invalid_client"):
			is = ErrInvalidClient
		case strings.Contains(body, "PAYMENT_REQUIRED"):
			is = ErrPaymentRequired
		}
		if code != 0 {
			cases = append(cases, struct {
				status int
				body   string
				is     *APIError
			}{code, body, is})
			continue
		}
		for _, s := range []int{400, 401, 402, 403} {
			cases = append(cases, struct {
				status int
				body   string
				is     *APIError
			}{s, body, is})
		}
	}
	if len(cases) != 6 {
		t.Fatalf("read %d error cases from the sample, want 6", len(cases))
	}
	for _, c := range cases {
		status, answer = c.status, c.body
		_, err := o.Refresh(context.Background(), q.Get("refresh_token"))
		var ae *APIError
		if !errors.As(err, &ae) || !errors.Is(err, c.is) || ae.HTTPStatus != c.status || !IsPermanentAuthError(err) {
			t.Errorf("%d %s: got %v", c.status, c.body, err)
			continue
		}
		var want struct{ Error, ErrorDescription string }
		_ = json.Unmarshal([]byte(c.body), &struct {
			E *string `json:"error"`
			D *string `json:"error_description"`
		}{&want.Error, &want.ErrorDescription})
		if ae.Code != want.Error || ae.Description != want.ErrorDescription {
			t.Errorf("%d %s: read as %q %q", c.status, c.body, ae.Code, ae.Description)
		}
	}
	invalidClient := 0
	for _, c := range cases {
		if c.is == ErrInvalidClient {
			invalidClient++
		}
	}
	if invalidClient == 0 || controls != invalidClient {
		t.Errorf("%d checks of the app's credentials, want one per invalid_client case (%d)", controls, invalidClient)
	}

	// Refused for a token no portal holds too, invalid_client is the app's
	// credentials: not the portal's answer, and not a reason to drop its tokens.
	status, answer = http.StatusUnauthorized, `{"error":"invalid_client","error_description":"Invalid client"}`
	controlStatus, control = status, answer
	_, err = o.Refresh(context.Background(), q.Get("refresh_token"))
	if !errors.Is(err, ErrClientRefused) || errors.Is(err, ErrInvalidClient) || IsPermanentAuthError(err) {
		t.Errorf("invalid_client for every token: got %v, want ErrClientRefused only", err)
	}
}

// parseErrorLine reads "401 {json}   (comment)"; a line without a status
// gives 0.
func parseErrorLine(t *testing.T, line string) (int, string) {
	t.Helper()
	line = strings.TrimSpace(line)
	status := 0
	if i := strings.IndexByte(line, ' '); i > 0 && line[0] >= '0' && line[0] <= '9' {
		for _, c := range line[:i] {
			status = status*10 + int(c-'0')
		}
		line = strings.TrimSpace(line[i:])
	}
	if i := strings.LastIndexByte(line, '}'); i >= 0 {
		line = line[:i+1]
	}
	return status, line
}

// 9.6: the REST success bodies.
func TestGoldenDepartmentGet(t *testing.T) {
	env, err := DecodeEnvelope(200, []byte(sample(t, "9.6-department.get.response.json")))
	if err != nil {
		t.Fatal(err)
	}
	same(t, "paging", [3]any{env.Total, env.Next, env.HasNext}, [3]any{3, 0, false})
	same(t, "time", env.Time, Time{Start: 1736924749.531017, Finish: 1736924749.719845, Duration: 0.1888279914855957,
		Processing: 0.00179290771484375, Operating: 0, OperatingResetAt: 1736925349})
	var ds []Department
	if err := decodeList(env.Result, &ds); err != nil {
		t.Fatal(err)
	}
	same(t, "departments", ds, []Department{
		{ID: 1, Name: "Acme Corp", Sort: 500, Head: 1},
		{ID: 5, Name: "Engineering", Sort: 500, Parent: 1, Head: 12},
		{ID: 7, Name: "QA", Sort: 500, Parent: 5},
	})
}

var sampleAnna = User{ID: 1, Active: true, Name: "Anna", LastName: "Schmidt", Email: "a.schmidt@example.com",
	WorkPosition: "CEO", Departments: []int64{1}, UserType: "employee", DateRegister: "2024-07-15T00:00:00+00:00"}

func TestGoldenUserGet(t *testing.T) {
	env, err := DecodeEnvelope(200, []byte(sample(t, "9.6-user.get.response.json")))
	if err != nil {
		t.Fatal(err)
	}
	same(t, "paging", [3]any{env.Total, env.Next, env.HasNext}, [3]any{120, 50, true})
	same(t, "time", env.Time, Time{Start: 1721913235.39648, Finish: 1721913235.45078, Duration: 0.05430006980896,
		Processing: 0.0187909603118897})
	var us []User
	if err := decodeList(env.Result, &us); err != nil {
		t.Fatal(err)
	}
	same(t, "users", us, []User{sampleAnna})
	if us[0].IsExtranet() {
		t.Error("Anna read as extranet")
	}

	// The row variants the notes name: extranet without UF_DEPARTMENT or with
	// [], a dismissed user.
	row := func(edit func(map[string]any)) User {
		var m []map[string]any
		var e struct{ Result json.RawMessage }
		_ = json.Unmarshal([]byte(sample(t, "9.6-user.get.response.json")), &e)
		if err := json.Unmarshal(e.Result, &m); err != nil {
			t.Fatal(err)
		}
		edit(m[0])
		b, _ := json.Marshal(m[0])
		var u User
		if err := json.Unmarshal(b, &u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	for name, edit := range map[string]func(map[string]any){
		"extranet, no UF_DEPARTMENT": func(m map[string]any) { m["USER_TYPE"] = "extranet"; delete(m, "UF_DEPARTMENT") },
		"extranet, UF_DEPARTMENT []": func(m map[string]any) { m["USER_TYPE"] = "extranet"; m["UF_DEPARTMENT"] = []any{} },
	} {
		if u := row(edit); !u.IsExtranet() || len(u.Departments) != 0 {
			t.Errorf("%s: read as %+v", name, u)
		}
	}
	if u := row(func(m map[string]any) { m["ACTIVE"] = false }); u.Active {
		t.Error("dismissed user read as active")
	}

	env, err = DecodeEnvelope(200, []byte(expand(t, sample(t, "9.6-user.get-empty.response.verbatim.txt"))))
	if err != nil {
		t.Fatal(err)
	}
	us = []User{{ID: 9}}
	if err := decodeList(env.Result, &us); err != nil || len(us) != 0 || env.HasNext || env.Total != 0 {
		t.Errorf("empty answer: %v, %d rows, next %v, total %d", err, len(us), env.HasNext, env.Total)
	}
}

func TestGoldenBatch(t *testing.T) {
	env, err := DecodeEnvelope(200, []byte(expand(t, sample(t, "9.6-batch.response.verbatim.txt"))))
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeBatch(env.Result)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "errors", b.Errors, map[string]*APIError{})
	same(t, "totals", b.Total, map[string]int{"d": 3, "u0": 120})
	same(t, "nexts", b.Next, map[string]int{"u0": 50})
	if len(b.Result) != 2 {
		t.Fatalf("results %v", b.Result)
	}
	var ds []Department
	var us []User
	if err := decodeList(b.Result["d"], &ds); err != nil || len(ds) != 3 || ds[2].Parent != 5 {
		t.Errorf("departments %v %+v", err, ds)
	}
	if err := decodeList(b.Result["u0"], &us); err != nil {
		t.Fatal(err)
	}
	same(t, "users", us, []User{sampleAnna})
}

func TestGoldenAppInfoAndProfile(t *testing.T) {
	env, err := DecodeEnvelope(200, []byte(expand(t, sample(t, "9.6-app.info.response.verbatim.txt"))))
	if err != nil {
		t.Fatal(err)
	}
	var a AppInfo
	if err := json.Unmarshal(env.Result, &a); err != nil {
		t.Fatal(err)
	}
	same(t, "app.info", a, AppInfo{ID: 5, Code: "vendor.ispringsync", Version: 1, Status: "F", Installed: true,
		PaymentExpired: false, Days: 0, LanguageID: "en", License: "en_ent250"})

	env, err = DecodeEnvelope(200, []byte(expand(t, sample(t, "9.6-profile.response.verbatim.txt"))))
	if err != nil {
		t.Fatal(err)
	}
	var p Profile
	if err := json.Unmarshal(env.Result, &p); err != nil {
		t.Fatal(err)
	}
	same(t, "profile", p, Profile{ID: 1, Admin: true, Name: "Anna", LastName: "Schmidt"})
}

// 9.7: every REST error body maps to its code, its sentinel and what the
// client does about it.
func TestGoldenRESTErrors(t *testing.T) {
	sentinels := map[string]*APIError{
		"expired_token": ErrExpiredToken, "invalid_token": ErrInvalidToken, "NO_AUTH_FOUND": ErrNoAuthFound,
		"insufficient_scope": ErrInsufficientScope, "APPLICATION_NOT_FOUND": ErrApplicationNotFound,
		"ACCESS_DENIED": ErrAccessDenied, "ERROR_METHOD_NOT_FOUND": ErrMethodNotFound,
		"OPERATION_TIME_LIMIT": ErrOperationTimeLimit, "QUERY_LIMIT_EXCEEDED": ErrQueryLimitExceeded,
		"OVERLOAD_LIMIT": ErrOverloadLimit,
	}
	permanent := map[string]bool{"NO_AUTH_FOUND": true, "APPLICATION_NOT_FOUND": true}
	n := 0
	for _, line := range strings.Split(sample(t, "9.7-errors.txt"), "\n") {
		status, body := parseErrorLine(t, line)
		if status == http.StatusFound {
			continue // TestGoldenRenamedPortal
		}
		n++
		_, err := DecodeEnvelope(status, []byte(body))
		var ae *APIError
		if !errors.As(err, &ae) || ae.HTTPStatus != status {
			t.Errorf("%s: %v", line, err)
			continue
		}
		s, ok := sentinels[ae.Code]
		if !ok || !errors.Is(err, s) {
			t.Errorf("%s: code %q matches no sentinel", line, ae.Code)
		}
		if IsPermanentAuthError(err) != permanent[ae.Code] {
			t.Errorf("%s: permanent %v", line, IsPermanentAuthError(err))
		}
		// Codes come in either case.
		if _, err := DecodeEnvelope(status, []byte(strings.Replace(body, ae.Code, strings.ToLower(ae.Code), 1))); !errors.Is(err, s) {
			t.Errorf("%s in lower case: %v", ae.Code, err)
		}
	}
	if n != 10 {
		t.Fatalf("read %d error bodies, want 10", n)
	}
}

// 9.7, last line: a renamed portal answers 302 with the new address; the
// client sends the same POST there and keeps the new endpoint.
func TestGoldenRenamedPortal(t *testing.T) {
	var line string
	for _, l := range strings.Split(sample(t, "9.7-errors.txt"), "\n") {
		if strings.HasPrefix(l, "302 ") {
			line = l
		}
	}
	loc, err := url.Parse(strings.Fields(strings.TrimPrefix(line, "302 Location:"))[0])
	if err != nil || loc.Path != "/rest/user.get" {
		t.Fatalf("sample location %q: %v", line, err)
	}
	var bodies []string
	newSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 4096)
		n, _ := r.Body.Read(b)
		bodies = append(bodies, r.Method+" "+r.URL.Path+" "+string(b[:n]))
		_, _ = w.Write([]byte(sample(t, "9.6-user.get.response.json")))
	}))
	defer newSrv.Close()
	oldSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", newSrv.URL+loc.Path)
		w.WriteHeader(http.StatusFound)
	}))
	defer oldSrv.Close()
	var stored string
	c := New(Config{Endpoint: oldSrv.URL + "/rest/", Tokens: NewMemoryTokenSource(nil, Token{AccessToken: "tok"}),
		OnEndpointChange: func(_ context.Context, ep string) { stored = ep }})
	env, err := c.CallEnvelope(context.Background(), "user.get", map[string]any{"start": 0})
	if err != nil {
		t.Fatal(err)
	}
	if env.Total != 120 || stored != newSrv.URL+"/rest/" || c.Endpoint() != stored {
		t.Errorf("total %d, stored endpoint %q, client endpoint %q", env.Total, stored, c.Endpoint())
	}
	same(t, "requests at the new address", bodies, []string{`POST /rest/user.get {"auth":"tok","start":0}`})
}
