package b24sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
)

// fakeApp records what Bitrix24 sends to the app.
type fakeApp struct {
	mu     sync.Mutex
	frames []*http.Request
	forms  []url.Values
	events []bitrix24.Event
}

func startApp(t *testing.T) (*fakeApp, *httptest.Server) {
	a := &fakeApp{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		switch r.URL.Path {
		case "/b24/events":
			ev, err := bitrix24.ParseEventRequest(r)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			a.events = append(a.events, ev)
		default:
			body, _ := io.ReadAll(r.Body)
			f, _ := url.ParseQuery(string(body))
			a.frames = append(a.frames, r)
			a.forms = append(a.forms, f)
			io.WriteString(w, "app page "+r.URL.Path)
		}
	}))
	t.Cleanup(srv.Close)
	return a, srv
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	app, appSrv := startApp(t)
	sim := b24sim.Start(b24sim.Options{AppURL: appSrv.URL})
	defer sim.Close()
	p := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 30, 4)})
	ctx := context.Background()

	tok := p.Install()
	if p.Installed() || tok.MemberID != p.MemberID() || tok.ClientEndpoint != "http://"+p.Domain()+"/rest/" {
		t.Fatalf("install: %+v", tok)
	}
	// The first open goes to the installer with the frame POST's fields.
	resp, err := p.Open(ctx, nil, p.AdminID())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, err := bitrix24.ParseAppRequestValues(app.frames[0].URL.Query(), app.forms[0])
	if err != nil || app.frames[0].URL.Path != "/b24/install" {
		t.Fatalf("installer POST %s: %v", app.frames[0].URL.Path, err)
	}
	if req.Domain != p.Domain() || req.MemberID != p.MemberID() || req.ApplicationToken != p.ApplicationToken() ||
		req.Protocol != "0" || req.Placement != "DEFAULT" || req.RefreshID == "" {
		t.Errorf("frame request %+v", req)
	}
	// The installer binds its handlers with the frame's tokens, then finishes.
	oauth := &bitrix24.OAuth{URL: sim.URL, ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret()}
	checked, err := oauth.Refresh(ctx, req.RefreshID)
	if err != nil || checked.MemberID != req.MemberID {
		t.Fatalf("verify through OAuth: %v %+v", err, checked)
	}
	c := bitrix24.New(bitrix24.Config{Endpoint: checked.ClientEndpoint, Tokens: bitrix24.NewMemoryTokenSource(oauth, checked)})
	for _, ev := range []string{"ONAPPINSTALL", "ONAPPUNINSTALL", "ONAPPUPDATE"} {
		if err := c.EventBind(ctx, ev, appSrv.URL+"/b24/events"); err != nil {
			t.Fatal(err)
		}
	}
	if info, err := c.AppInfo(ctx); err != nil || info.Installed {
		t.Fatalf("before installFinish: %v %+v", err, info)
	}
	p.FinishInstall(ctx)
	if info, err := c.AppInfo(ctx); err != nil || !info.Installed {
		t.Fatalf("after installFinish: %v %+v", err, info)
	}
	resp, _ = p.Open(ctx, nil, p.NonAdminID())
	resp.Body.Close()
	if got := app.frames[1].URL.Path; got != "/b24/app" {
		t.Errorf("second open went to %s", got)
	}

	p.Update(ctx)
	p.Uninstall(ctx, true)
	if _, err := c.Profile(ctx); !errorsIs(err, bitrix24.ErrApplicationNotFound) {
		t.Errorf("after uninstall: %v", err)
	}
	app.mu.Lock()
	var names []string
	for _, ev := range app.events {
		names = append(names, ev.Name)
	}
	app.mu.Unlock()
	// ONAPPUNINSTALL is not delivered: the update dropped the bindings and the
	// app did not bind again — exactly as Bitrix24 behaves.
	if strings.Join(names, ",") != "ONAPPINSTALL,ONAPPUPDATE" {
		t.Fatalf("events %v", names)
	}
	inst, upd := app.events[0], app.events[1]
	if inst.Auth == nil || inst.Auth.RefreshToken == "" || inst.Auth.MemberID != p.MemberID() || inst.Auth.ApplicationToken == "" {
		t.Errorf("ONAPPINSTALL auth %+v", inst.Auth)
	}
	if upd.Auth.ApplicationToken == inst.Auth.ApplicationToken || upd.DataString("PREVIOUS_VERSION") != "1" {
		t.Errorf("ONAPPUPDATE %+v", upd)
	}

	// Reinstall: bind, finish, uninstall with CLEAN → ONAPPUNINSTALL shaped like the sample.
	tok = p.Install()
	c2 := bitrix24.New(bitrix24.Config{Tokens: bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token(tok))})
	if err := c2.EventBind(ctx, "ONAPPUNINSTALL", appSrv.URL+"/b24/events"); err != nil {
		t.Fatal(err)
	}
	p.FinishInstall(ctx)
	appToken := p.ApplicationToken()
	p.Uninstall(ctx, true)
	app.mu.Lock()
	last := app.events[len(app.events)-1]
	app.mu.Unlock()
	if last.Name != "ONAPPUNINSTALL" || !last.Clean() || last.Auth.ApplicationToken != appToken || last.Auth.AccessToken != "" || last.Auth.RefreshToken != "" {
		t.Errorf("ONAPPUNINSTALL %+v %+v", last, last.Auth)
	}
	if _, err := oauth.Refresh(ctx, tok.RefreshToken); !errorsIs(err, bitrix24.ErrInvalidGrant) {
		t.Errorf("refresh after uninstall: %v", err)
	}
}

func TestPortalPage(t *testing.T) {
	t.Parallel()
	_, appSrv := startApp(t)
	sim := b24sim.Start(b24sim.Options{AppURL: appSrv.URL})
	defer sim.Close()
	p := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(2, 10, 2)})
	get := func(u string) string {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if page := get(p.PageURL()); !strings.Contains(page, "Install the app") {
		t.Fatalf("not-installed page: %s", page)
	}
	// The install button posts, then the page auto-submits the installer form into the frame.
	resp, err := http.PostForm(p.PageURL()+"install", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	page := get(p.PageURL())
	for _, want := range []string{`action="` + appSrv.URL + `/b24/install?`, `name="AUTH_ID"`, `name="REFRESH_ID"`, `name="member_id" value="` + p.MemberID(),
		`<iframe name="` + p.Domain() + `|0|`, `.submit()`, "installFinish"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	resp, _ = http.Post(p.PageURL()+"install-finish", "", nil)
	resp.Body.Close()
	page = get(p.PageURL() + "?user=" + itoa(p.NonAdminID()))
	if !strings.Contains(page, "/b24/app?") || !strings.Contains(page, "Open as admin") {
		t.Errorf("installed page as non-admin lacks the app form")
	}
	resp, _ = http.PostForm(p.PageURL()+"uninstall", url.Values{"clean": {"1"}})
	resp.Body.Close()
	if p.Installed() {
		t.Error("uninstall button did nothing")
	}
}

func TestUserGetPaging(t *testing.T) {
	t.Parallel()
	sim := b24sim.Start(b24sim.Options{})
	defer sim.Close()
	p := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(5, 130, 6)})
	tok := p.Install()
	post := func(method, body string) map[string]any {
		resp, err := http.Post(tok.ClientEndpoint+method, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		m["status"] = resp.StatusCode
		return m
	}
	auth := `"auth":"` + tok.AccessToken + `"`
	// Without ADMIN_MODE extranet users are hidden; start pages with next/total.
	employees := 0
	for _, u := range p.Users() {
		if !u.Extranet {
			employees++
		}
	}
	m := post("user.get", `{`+auth+`,"start":0}`)
	if int(m["total"].(float64)) != employees || m["next"].(float64) != 50 || len(m["result"].([]any)) != 50 {
		t.Errorf("page 1: total %v next %v", m["total"], m["next"])
	}
	m = post("user.get", `{`+auth+`,"start":100,"ADMIN_MODE":true}`)
	if _, ok := m["next"]; ok || int(m["total"].(float64)) != 130 || len(m["result"].([]any)) != 30 {
		t.Errorf("last page: %v", m["next"])
	}
	m = post("user.get", `{`+auth+`,"start":-1,"FILTER":{">ID":1000000}}`)
	if _, ok := m["total"]; ok || len(m["result"].([]any)) != 0 {
		t.Errorf("empty answer should lack total: %v", m)
	}
	m = post("user.get", `{`+auth+`,"start":-1,"FILTER":{"ACTIVE":"false"}}`) // "false" means Y in PHP
	for _, row := range m["result"].([]any) {
		if row.(map[string]any)["ACTIVE"] != true {
			t.Fatalf("ACTIVE=\"false\" should select active users: %v", row)
		}
	}
	m = post("nope", `{`+auth+`}`)
	if m["status"] != 404 || m["error"] != "ERROR_METHOD_NOT_FOUND" {
		t.Errorf("unknown method: %v", m)
	}
	m = post("profile", `{"auth":"forged"}`)
	if m["status"] != 401 || m["error"] != "invalid_token" {
		t.Errorf("forged token: %v", m)
	}
	cmds := map[string]string{}
	for i := range 51 {
		cmds["c"+itoa(int64(i))] = "profile"
	}
	b, _ := json.Marshal(map[string]any{"auth": tok.AccessToken, "cmd": cmds})
	if m = post("batch", string(b)); m["error"] != "ERROR_BATCH_LENGTH_EXCEEDED" {
		t.Errorf("51 commands: %v", m["error"])
	}
	// Form-encoded batch with a doubly encoded inner query and a reference.
	form := url.Values{"auth": {tok.AccessToken}, "halt": {"0"},
		"cmd[a]": {"user.get?FILTER[ID]=5"}, "cmd[b]": {"user.get?FILTER[>ID]=$result[a][0][ID]&start=-1"}}
	resp, err := http.PostForm(tok.ClientEndpoint+"batch", form)
	if err != nil {
		t.Fatal(err)
	}
	var br struct {
		Result struct {
			Result map[string][]map[string]any `json:"result"`
		} `json:"result"`
	}
	json.NewDecoder(resp.Body).Decode(&br)
	resp.Body.Close()
	if rows := br.Result.Result["b"]; len(rows) == 0 || rows[0]["ID"] == "5" || rows[0]["ID"] == "1" {
		t.Errorf("reference not applied: %v", rows[:min(1, len(rows))])
	}
}

func TestWebhookLeads(t *testing.T) {
	t.Parallel()
	sim := b24sim.Start(b24sim.Options{})
	defer sim.Close()
	p := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 3, 1), WebhookCode: "abc123"})
	resp, err := http.Post(p.WebhookURL()+"crm.lead.add.json", "application/json",
		strings.NewReader(`{"fields":{"TITLE":"Activation","NAME":"Anna","EMAIL":[{"VALUE":"a@example.com","VALUE_TYPE":"WORK"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(p.Leads()) != 1 || p.Leads()[0].Fields["TITLE"] != "Activation" {
		t.Fatalf("lead not recorded: %d %v", resp.StatusCode, p.Leads())
	}
	bad := strings.Replace(p.WebhookURL(), "abc123", "wrong", 1)
	resp, _ = http.Post(bad+"crm.lead.add", "application/json", strings.NewReader(`{"fields":{"TITLE":"x"}}`))
	resp.Body.Close()
	if resp.StatusCode != 401 || len(p.Leads()) != 1 {
		t.Errorf("wrong webhook code: %d", resp.StatusCode)
	}
}

func TestGenerateOrg(t *testing.T) {
	t.Parallel()
	a, b := b24sim.GenerateOrg(42, 2000, 120), b24sim.GenerateOrg(42, 2000, 120)
	if len(a.Users) != 2000 || len(a.Departments) != 120 || a.Users[1500].Name != b.Users[1500].Name {
		t.Fatal("not deterministic or wrong size")
	}
	var fired, extranet, multi, noMail, cyr, heads int
	for _, u := range a.Users {
		switch {
		case !u.Active:
			fired++
		}
		if u.Extranet {
			extranet++
		}
		if len(u.Departments) > 1 {
			multi++
		}
		if u.Email == "" {
			noMail++
		}
		if strings.ContainsAny(u.Name, "АИМЕОНТСДПЮЛ") {
			cyr++
		}
	}
	for _, d := range a.Departments {
		if d.Head != 0 {
			heads++
		}
		if d.ID != 1 && (d.Parent == 0 || d.Parent >= d.ID) {
			t.Fatalf("department %d has parent %d", d.ID, d.Parent)
		}
	}
	for name, n := range map[string]int{"fired": fired, "extranet": extranet, "multi": multi, "noMail": noMail, "cyrillic": cyr} {
		if n < 10 || n > 1200 {
			t.Errorf("%s users: %d", name, n)
		}
	}
	if heads < 80 || heads == 120 {
		t.Errorf("heads: %d of 120", heads)
	}
}

func TestTokenExpiryClock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sim := b24sim.Start(b24sim.Options{Now: func() time.Time { return now }, AccessTTL: time.Minute})
	defer sim.Close()
	p := sim.AddPortal(b24sim.PortalOptions{Domain: "acme.bitrix24.com", Org: b24sim.GenerateOrg(1, 3, 1)})
	tok := p.Install()
	if tok.ClientEndpoint != sim.URL+"/p/acme.bitrix24.com/rest/" || !tok.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("token %+v", tok)
	}
	call := func() string {
		resp, err := http.PostForm(tok.ClientEndpoint+"profile", url.Values{"auth": {tok.AccessToken}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		e, _ := m["error"].(string)
		return e
	}
	if e := call(); e != "" {
		t.Fatalf("fresh token: %s", e)
	}
	sim.Advance(time.Minute)
	if e := call(); e != "expired_token" {
		t.Fatalf("expired token: %q", e)
	}
	// A renamed path-routed portal answers 302 at its old address.
	p.Rename("acme-new.bitrix24.com")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Post(tok.ClientEndpoint+"profile", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || !strings.HasSuffix(loc, "/p/acme-new.bitrix24.com/rest/profile") {
		t.Errorf("rename: %d %s", resp.StatusCode, loc)
	}
}

func itoa(n int64) string { return strconvFormat(n) }

// Each AfterUninstall refuses the dead installation's tokens its own way, and
// a new installation's tokens work again.
func TestAfterUninstallAnswers(t *testing.T) {
	t.Parallel()
	sim := b24sim.Start(b24sim.Options{Rate: -1})
	defer sim.Close()
	ctx := context.Background()
	oauth := &bitrix24.OAuth{URL: sim.URL, ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret()}
	type want struct {
		rest    error // app.info on the old access token, no refresh
		refresh error // refresh of the old refresh token
	}
	notFound := &bitrix24.APIError{Code: "NOT_FOUND"}
	cases := map[b24sim.AfterUninstall]want{
		b24sim.GoneAppNotFound:     {bitrix24.ErrApplicationNotFound, bitrix24.ErrInvalidGrant},
		b24sim.GoneInvalidToken:    {bitrix24.ErrInvalidToken, bitrix24.ErrInvalidGrant},
		b24sim.GoneExpiredToken:    {bitrix24.ErrExpiredToken, bitrix24.ErrInvalidGrant},
		b24sim.GonePaymentRequired: {bitrix24.ErrInvalidToken, bitrix24.ErrPaymentRequired},
		b24sim.GonePortalNotFound:  {notFound, bitrix24.ErrInvalidGrant},
		b24sim.GoneNotInstalled:    {nil, bitrix24.ErrInvalidGrant},
		b24sim.GoneInvalidClient:   {bitrix24.ErrInvalidToken, bitrix24.ErrInvalidClient},
	}
	if len(cases) != len(b24sim.AfterUninstalls) {
		t.Fatalf("%d cases for %d behaviours", len(cases), len(b24sim.AfterUninstalls))
	}
	for mode, w := range cases {
		p := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 5, 2), AfterUninstall: mode})
		tok := p.Install()
		p.FinishInstall(ctx)
		p.Uninstall(ctx, true)
		info, err := rawAppInfo(tok)
		switch {
		case w.rest == nil && (err != nil || info.Installed):
			t.Errorf("%v: app.info %v %+v, want INSTALLED false", mode, err, info)
		case w.rest != nil && !errors.Is(err, w.rest):
			t.Errorf("%v: app.info %v, want %v", mode, err, w.rest)
		}
		if _, err := oauth.Refresh(ctx, tok.RefreshToken); !errors.Is(err, w.refresh) {
			t.Errorf("%v: refresh %v, want %v", mode, err, w.refresh)
		}
		// Reinstalled, the new tokens work.
		tok = p.Install()
		if _, err := rawAppInfo(tok); err != nil {
			t.Errorf("%v: after reinstall: %v", mode, err)
		}
	}
}

// rawAppInfo calls app.info once, without the client's refresh, so the
// portal's own answer shows.
func rawAppInfo(tok b24sim.Token) (bitrix24.AppInfo, error) {
	resp, err := http.PostForm(tok.ClientEndpoint+"app.info", url.Values{"auth": {tok.AccessToken}})
	if err != nil {
		return bitrix24.AppInfo{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	env, err := bitrix24.DecodeEnvelope(resp.StatusCode, body)
	if err != nil {
		return bitrix24.AppInfo{}, err
	}
	var info bitrix24.AppInfo
	err = json.Unmarshal(env.Result, &info)
	return info, err
}

// A portal writes its dates with its own offset: the time block's, and a
// birthday as midnight of its day there.
func TestPortalTimeZone(t *testing.T) {
	t.Parallel()
	sim := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1"})
	defer sim.Close()
	org := b24sim.GenerateOrg(1, 3, 1)
	org.Users[0].Birthday = "1990-05-01"
	p := sim.AddPortal(b24sim.PortalOptions{Org: org, TimeZone: time.FixedZone("MSK", 3*3600)})
	tok := p.Install()
	q := url.Values{"auth": {tok.AccessToken}, "FILTER[ID]": {strconvFormat(org.Users[0].ID)}}
	resp, err := http.Get(tok.ClientEndpoint + "user.get?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Result []map[string]any
		Time   map[string]any
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if len(body.Result) != 1 || body.Result[0]["PERSONAL_BIRTHDAY"] != "1990-05-01T00:00:00+03:00" ||
		!strings.HasSuffix(str(body.Result[0]["DATE_REGISTER"]), "+03:00") || !strings.HasSuffix(str(body.Time["date_start"]), "+03:00") {
		t.Errorf("answer %+v", body)
	}
}

func str(v any) string { s, _ := v.(string); return s }
