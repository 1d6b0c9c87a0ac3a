package b24sim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
)

// wire is a simulator with one installed portal, spoken to in raw HTTP so
// that the tests see each switch's answer as sent.
type wire struct {
	t   *testing.T
	sim *b24sim.Server
	p   *b24sim.Portal
	tok b24sim.Token
}

func newWire(t *testing.T, u b24sim.Unsettled, org b24sim.Org, appURL string) *wire {
	t.Helper()
	sim := b24sim.Start(b24sim.Options{AppURL: appURL, Unsettled: u})
	t.Cleanup(sim.Close)
	p := sim.AddPortal(b24sim.PortalOptions{Org: org})
	tok := p.Install()
	p.FinishInstall(context.Background())
	return &wire{t: t, sim: sim, p: p, tok: tok}
}

// get answers a GET of u: its status and JSON body.
func (w *wire) get(u string) (int, map[string]any) {
	w.t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		w.t.Fatal(err)
	}
	return resp.StatusCode, body
}

func (w *wire) refresh(rt, secret string) (int, map[string]any) {
	q := url.Values{"grant_type": {"refresh_token"}, "client_id": {w.sim.ClientID()}, "client_secret": {secret}, "refresh_token": {rt}}
	return w.get(w.sim.URL + "/oauth/token/?" + q.Encode())
}

func (w *wire) rest(method string, q url.Values) (int, map[string]any) {
	q.Set("auth", w.tok.AccessToken)
	return w.get(w.tok.ClientEndpoint + method + "?" + q.Encode())
}

func TestUnsettledRefreshAnswer(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		u              b24sim.Unsettled
		domain, scope  string
		domainPresent  bool
		serverInDomain bool
	}{
		"portal":      {u: b24sim.Unsettled{}, domainPresent: true, scope: "user_basic,department"},
		"server":      {u: b24sim.Unsettled{RefreshDomain: b24sim.RefreshDomainServer}, domainPresent: true, serverInDomain: true, scope: "user_basic,department"},
		"absent":      {u: b24sim.Unsettled{RefreshDomain: b24sim.RefreshDomainAbsent}, scope: "user_basic,department"},
		"scope app":   {u: b24sim.Unsettled{RefreshScopeApp: true}, domainPresent: true, scope: "app"},
		"all flipped": {u: b24sim.Unsettled{RefreshDomain: b24sim.RefreshDomainServer, RefreshScopeApp: true}, domainPresent: true, serverInDomain: true, scope: "app"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWire(t, c.u, b24sim.GenerateOrg(1, 3, 1), "http://127.0.0.1:1")
			status, body := w.refresh(w.tok.RefreshToken, w.sim.ClientSecret())
			if status != http.StatusOK || body["client_endpoint"] != w.tok.ClientEndpoint || body["scope"] != c.scope {
				t.Fatalf("%d %v", status, body)
			}
			d, ok := body["domain"]
			want := w.p.Domain()
			if c.serverInDomain {
				want = strings.TrimPrefix(w.sim.URL, "http://")
			}
			if ok != c.domainPresent || ok && d != want {
				t.Errorf("domain %v (present %v), want %q", d, ok, want)
			}
		})
	}
}

func TestUnsettledAuthErrors(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		u       b24sim.Unsettled
		grant   any // invalid_grant's description; nil: none
		payment int
	}{
		"sim":   {u: b24sim.Unsettled{}, grant: "Invalid grant", payment: http.StatusBadRequest},
		"other": {u: b24sim.Unsettled{AuthTexts: b24sim.AuthTextsOther, PaymentRequiredStatus: http.StatusPaymentRequired}, grant: "The refresh token is invalid or has expired", payment: http.StatusPaymentRequired},
		"none":  {u: b24sim.Unsettled{AuthTexts: b24sim.AuthTextsNone, PaymentRequiredStatus: http.StatusForbidden}, payment: http.StatusForbidden},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWire(t, c.u, b24sim.GenerateOrg(1, 3, 1), "http://127.0.0.1:1")
			status, body := w.refresh("unknown", w.sim.ClientSecret())
			if status != http.StatusBadRequest || body["error"] != "invalid_grant" || body["error_description"] != c.grant {
				t.Errorf("invalid_grant: %d %v", status, body)
			}
			status, body = w.refresh("unknown", "wrong")
			if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Errorf("invalid_client: %d %v", status, body)
			}
			w.tok.AccessToken = "unknown"
			status, body = w.rest("profile", url.Values{})
			if _, has := body["error_description"]; status != http.StatusUnauthorized || body["error"] != "invalid_token" || has != (c.grant != nil) {
				t.Errorf("invalid_token: %d %v", status, body)
			}
			fresh, _ := w.p.Tokens(w.p.AdminID())
			w.p.SetLapse(b24sim.LapseUnpaid)
			status, body = w.refresh(fresh.RefreshToken, w.sim.ClientSecret())
			if status != c.payment || body["error"] != "PAYMENT_REQUIRED" || body["error_description"] != "Payment required" {
				t.Errorf("PAYMENT_REQUIRED: %d %v", status, body)
			}
		})
	}
}

func TestUnsettledRebind(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		rebind   b24sim.Rebind
		code     any // the second bind's error; nil: none
		bindings int
	}{
		"binded":     {b24sim.RebindBinded, "ERROR_CORE", 1},
		"other":      {b24sim.RebindOtherError, "ERROR_EVENT_HANDLER_EXISTS", 1},
		"accepted":   {b24sim.RebindAccepted, nil, 1},
		"duplicated": {b24sim.RebindDuplicated, nil, 2},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWire(t, b24sim.Unsettled{Rebind: c.rebind}, b24sim.GenerateOrg(1, 3, 1), "http://127.0.0.1:1")
			bind := url.Values{"event": {"ONAPPUNINSTALL"}, "handler": {"https://app.example.com/b24/events"}}
			if status, body := w.rest("event.bind", bind); status != http.StatusOK || body["result"] != true {
				t.Fatalf("first bind: %d %v", status, body)
			}
			_, body := w.rest("event.bind", bind)
			if body["error"] != c.code || c.code == nil && body["result"] != true {
				t.Errorf("second bind: %v", body)
			}
			if got := w.p.Bindings(); len(got) != c.bindings {
				t.Errorf("bindings %q, want %d", got, c.bindings)
			}
		})
	}
}

func TestUnsettledExtranetDepartment(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		e         b24sim.ExtranetDepartment
		odd, even bool // UF_DEPARTMENT present for the odd and the even ID
	}{
		"mixed":   {b24sim.ExtranetDepartmentMixed, false, true},
		"empty":   {b24sim.ExtranetDepartmentEmpty, true, true},
		"missing": {b24sim.ExtranetDepartmentMissing, false, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			org := b24sim.GenerateOrg(1, 3, 1)
			for _, id := range []int64{101, 102} {
				org.Users = append(org.Users, b24sim.User{ID: id, Active: true, Name: "Guest", Extranet: true,
					DateRegister: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)})
			}
			w := newWire(t, b24sim.Unsettled{ExtranetDepartment: c.e}, org, "http://127.0.0.1:1")
			_, body := w.rest("user.get", url.Values{"FILTER[USER_TYPE]": {"extranet"}, "ADMIN_MODE": {"1"}})
			rows, _ := body["result"].([]any)
			if len(rows) != 2 {
				t.Fatalf("rows %v", body)
			}
			for i, want := range []bool{c.odd, c.even} {
				row := rows[i].(map[string]any)
				v, has := row["UF_DEPARTMENT"]
				if has != want || has && len(v.([]any)) != 0 {
					t.Errorf("user %v: UF_DEPARTMENT %v (present %v)", row["ID"], v, has)
				}
			}
		})
	}
}

func TestUnsettledOAuthAppInfo(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		shape b24sim.OAuthAppInfo
		keys  int // keys of result
	}{"full": {b24sim.OAuthAppInfoFull, 4}, "uri only": {b24sim.OAuthAppInfoURI, 1}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWire(t, b24sim.Unsettled{OAuthAppInfo: c.shape}, b24sim.GenerateOrg(1, 3, 1), "http://127.0.0.1:1")
			_, body := w.get(w.sim.URL + "/rest/app.info?auth=" + w.tok.AccessToken)
			res, _ := body["result"].(map[string]any)
			install, _ := res["install"].(map[string]any)
			if len(res) != c.keys || install["uri"] != "http://"+w.p.Domain()+"/" {
				t.Errorf("app.info %v", body)
			}
		})
	}
}

func TestUnsettledUserAddActive(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		a    b24sim.UserAddActive
		want string
	}{"Y": {b24sim.UserAddActiveY, "Y"}, "1": {b24sim.UserAddActiveOne, "1"}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app, appSrv := startApp(t)
			w := newWire(t, b24sim.Unsettled{UserAddActive: c.a}, b24sim.GenerateOrg(1, 3, 1), appSrv.URL)
			if status, _ := w.rest("event.bind", url.Values{"event": {"ONUSERADD"}, "handler": {appSrv.URL + "/b24/events"}}); status != http.StatusOK {
				t.Fatalf("bind: %d", status)
			}
			u := w.p.Users()[1]
			w.p.UserAdded(context.Background(), u.ID)
			app.mu.Lock()
			defer app.mu.Unlock()
			if len(app.events) != 1 || app.events[0].Name != "ONUSERADD" || app.events[0].DataString("ACTIVE") != c.want ||
				app.events[0].DataString("ID") != strconvFormat(u.ID) || app.events[0].Auth == nil || app.events[0].Auth.RefreshToken != "" {
				t.Errorf("events %+v", app.events)
			}
		})
	}
}

func TestUnsettledUpdateEvent(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		u    b24sim.UpdateEvent
		want int
	}{"sent": {b24sim.UpdateEventSent, 1}, "lost": {b24sim.UpdateEventLost, 0}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app, appSrv := startApp(t)
			w := newWire(t, b24sim.Unsettled{UpdateEvent: c.u}, b24sim.GenerateOrg(1, 3, 1), appSrv.URL)
			if status, _ := w.rest("event.bind", url.Values{"event": {"ONAPPUPDATE"}, "handler": {appSrv.URL + "/b24/events"}}); status != http.StatusOK {
				t.Fatalf("bind: %d", status)
			}
			w.p.Update(context.Background())
			app.mu.Lock()
			defer app.mu.Unlock()
			if len(app.events) != c.want || len(w.p.Bindings()) != 0 {
				t.Errorf("events %+v, bindings %v after the update", app.events, w.p.Bindings())
			}
		})
	}
}

func TestUnsettledCodesOtherCase(t *testing.T) {
	t.Parallel()
	w := newWire(t, b24sim.Unsettled{CodesOtherCase: true}, b24sim.GenerateOrg(1, 3, 1), "http://127.0.0.1:1")
	if status, body := w.rest("no.such.method", url.Values{}); status != http.StatusNotFound || body["error"] != "error_method_not_found" {
		t.Errorf("unknown method: %d %v", status, body)
	}
	w.p.ExpireTokens()
	if status, body := w.rest("profile", url.Values{}); status != http.StatusUnauthorized || body["error"] != "EXPIRED_TOKEN" {
		t.Errorf("expired token: %d %v", status, body)
	}
}

// A refresh token nobody uses dies after the switch's lifetime with the
// answer of any dead refresh token, invalid_grant; one used in time gives a
// pair that lives as long again.
func TestUnsettledRefreshLifetime(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	for name, c := range map[string]struct {
		u    b24sim.Unsettled
		idle time.Duration
		ok   bool
	}{
		"180 days, idle 179":  {u: b24sim.Unsettled{}, idle: 179 * day, ok: true},
		"180 days, idle 181":  {u: b24sim.Unsettled{}, idle: 181 * day},
		"28 days, idle 27":    {u: b24sim.Unsettled{RefreshLifetime: b24sim.RefreshLifetime28Days}, idle: 27 * day, ok: true},
		"28 days, idle 29":    {u: b24sim.Unsettled{RefreshLifetime: b24sim.RefreshLifetime28Days}, idle: 29 * day},
		"28 days, idle 27+27": {u: b24sim.Unsettled{RefreshLifetime: b24sim.RefreshLifetime28Days}, idle: 27 * day, ok: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWire(t, c.u, b24sim.GenerateOrg(1, 3, 1), "http://127.0.0.1:1")
			rt := w.tok.RefreshToken
			if strings.HasSuffix(name, "+27") {
				w.sim.Advance(27 * day)
				status, body := w.refresh(rt, w.sim.ClientSecret())
				if status != http.StatusOK {
					t.Fatalf("first refresh after 27 days: %d %v", status, body)
				}
				rt, _ = body["refresh_token"].(string)
			}
			w.sim.Advance(c.idle)
			status, body := w.refresh(rt, w.sim.ClientSecret())
			switch {
			case c.ok && status != http.StatusOK:
				t.Fatalf("refresh: %d %v, want a new pair", status, body)
			case !c.ok && (status != http.StatusBadRequest || body["error"] != "invalid_grant"):
				t.Fatalf("refresh: %d %v, want 400 invalid_grant", status, body)
			}
		})
	}
}

func TestUnsettledCountlessTotal(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		on        bool
		wantTotal bool
	}{"total 0": {false, true}, "no total": {true, false}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWire(t, b24sim.Unsettled{CountlessTotal: c.on}, b24sim.GenerateOrg(1, 120, 60), "http://127.0.0.1:1")
			for _, method := range []string{"user.get", "department.get"} {
				_, body := w.rest(method, url.Values{"start": {"-1"}})
				total, has := body["total"]
				rows, _ := body["result"].([]any)
				if has != c.wantTotal || has && total != 0.0 || len(rows) != 50 || body["next"] != nil {
					t.Errorf("%s start=-1: total %v (present %v), %d rows, next %v", method, total, has, len(rows), body["next"])
				}
				// An offset page counts as ever.
				if _, body := w.rest(method, url.Values{"start": {"0"}}); body["total"] == nil || body["total"] == 0.0 {
					t.Errorf("%s start=0: total %v", method, body["total"])
				}
			}
		})
	}
}

func TestUnsettledNumericIDs(t *testing.T) {
	t.Parallel()
	for name, numeric := range map[string]bool{"strings": false, "numbers": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWire(t, b24sim.Unsettled{NumericIDs: numeric}, b24sim.GenerateOrg(1, 20, 5), "http://127.0.0.1:1")
			isID := func(v any, wantNumber bool) bool {
				if wantNumber {
					_, ok := v.(float64)
					return ok
				}
				_, ok := v.(string)
				return ok
			}
			_, body := w.rest("department.get", url.Values{})
			for _, r := range body["result"].([]any) {
				row := r.(map[string]any)
				for _, k := range []string{"ID", "PARENT", "UF_HEAD"} {
					if v, has := row[k]; has && !isID(v, numeric) {
						t.Errorf("department %v: %s is %T", row["ID"], k, v)
					}
				}
			}
			_, body = w.rest("user.get", url.Values{"FILTER[USER_TYPE]": {"employee"}})
			for _, r := range body["result"].([]any) {
				row := r.(map[string]any)
				deps, _ := row["UF_DEPARTMENT"].([]any)
				if !isID(row["ID"], numeric) || len(deps) == 0 || !isID(deps[0], !numeric) {
					t.Errorf("user row %v", row)
				}
			}
			// Keyset references read the numeric IDs as the string ones.
			_, body = w.rest("batch", url.Values{"cmd[a]": {"user.get?start=0"},
				"cmd[b]": {"user.get?FILTER[>ID]=$result[a][0][ID]&start=-1"}})
			res := body["result"].(map[string]any)["result"].(map[string]any)
			if a, b := res["a"].([]any), res["b"].([]any); len(b) != len(a)-1 {
				t.Errorf("batch: %d rows after the first of %d", len(b), len(a))
			}
		})
	}
}

func TestUnsettledFramePlacement(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		fp   b24sim.FramePlacement
		want string
		has  bool
	}{
		"json":      {b24sim.FramePlacementJSON, `{"any":"28\/"}`, true},
		"undefined": {b24sim.FramePlacementUndefined, "undefined", true},
		"missing":   {b24sim.FramePlacementMissing, "", false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWire(t, b24sim.Unsettled{FramePlacement: c.fp}, b24sim.GenerateOrg(1, 3, 1), "http://127.0.0.1:1")
			_, _, body, err := w.p.FrameRequest(w.p.AdminID())
			if err != nil {
				t.Fatal(err)
			}
			if _, has := body["PLACEMENT_OPTIONS"]; has != c.has || body.Get("PLACEMENT_OPTIONS") != c.want || body.Get("PLACEMENT") != "DEFAULT" {
				t.Errorf("frame body %v", body)
			}
		})
	}
}

func TestUnsettledInstallEventSparse(t *testing.T) {
	t.Parallel()
	for name, sparse := range map[string]bool{"fixtures": false, "docs sample": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app, appSrv := startApp(t)
			sim := b24sim.Start(b24sim.Options{AppURL: appSrv.URL, Unsettled: b24sim.Unsettled{InstallEventSparse: sparse}})
			t.Cleanup(sim.Close)
			p := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 3, 1)})
			tok := p.Install()
			q := url.Values{"auth": {tok.AccessToken}, "event": {"ONAPPINSTALL"}, "handler": {appSrv.URL + "/b24/events"}}
			resp, err := http.Get(tok.ClientEndpoint + "event.bind?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			p.FinishInstall(context.Background())
			app.mu.Lock()
			defer app.mu.Unlock()
			if len(app.events) != 1 {
				t.Fatalf("events %+v", app.events)
			}
			ev := app.events[0]
			a := ev.Auth
			full := !a.Expires.IsZero() && a.UserID != 0 && ev.DataString("ACTIVE") == "Y" && ev.DataString("INSTALLED") == "Y"
			bare := a.Expires.IsZero() && a.UserID == 0 && ev.DataString("ACTIVE") == "" && ev.DataString("INSTALLED") == ""
			if full == sparse || bare != sparse || a.RefreshToken == "" || a.ApplicationToken == "" || ev.DataString("VERSION") == "" {
				t.Errorf("ONAPPINSTALL %+v, auth %+v", ev, a)
			}
		})
	}
}

func TestUnsettledPlainListIgnored(t *testing.T) {
	t.Parallel()
	for name, ignored := range map[string]bool{"IN": false, "ignored": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWire(t, b24sim.Unsettled{PlainListIgnored: ignored}, b24sim.GenerateOrg(1, 20, 3), "http://127.0.0.1:1")
			rows := func(key string) int {
				_, body := w.rest("user.get", url.Values{"FILTER[" + key + "][0]": {"1"}, "FILTER[" + key + "][1]": {"2"}, "ADMIN_MODE": {"1"}})
				r, _ := body["result"].([]any)
				return len(r)
			}
			if n := rows("@ID"); n != 2 {
				t.Errorf("@ID list: %d rows, want 2", n)
			}
			if n := rows("ID"); (n == 2) == ignored {
				t.Errorf("ID list: %d rows (ignored %v)", n, ignored)
			}
		})
	}
}

func TestUnsettledNoOperatingKeys(t *testing.T) {
	t.Parallel()
	for name, bare := range map[string]bool{"cloud": false, "bare": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWire(t, b24sim.Unsettled{NoOperatingKeys: bare}, b24sim.GenerateOrg(1, 3, 1), "http://127.0.0.1:1")
			_, plain := w.rest("user.get", url.Values{})
			_, batch := w.rest("batch", url.Values{"cmd[a]": {"department.get"}})
			inner := batch["result"].(map[string]any)["result_time"].(map[string]any)["a"]
			for what, tb := range map[string]any{"user.get": plain["time"], "batch": batch["time"], "batch command": inner} {
				m, _ := tb.(map[string]any)
				_, op := m["operating"]
				_, reset := m["operating_reset_at"]
				if m["date_start"] == nil || op == bare || reset == bare {
					t.Errorf("%s time %v", what, tb)
				}
			}
		})
	}
}

func TestUnsettledEmptyValues(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		ev   b24sim.EmptyValues
		want any // the value a missing one is sent as; "omitted" for no key
	}{
		"omitted": {b24sim.EmptyOmitted, "omitted"},
		"null":    {b24sim.EmptyNull, nil},
		"string":  {b24sim.EmptyString, ""},
		"false":   {b24sim.EmptyFalse, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWire(t, b24sim.Unsettled{EmptyValues: c.ev}, b24sim.GenerateOrg(1, 20, 5), "http://127.0.0.1:1")
			check := func(what string, row map[string]any, key string) {
				t.Helper()
				v, has := row[key]
				switch {
				case c.want == "omitted" && has:
					t.Errorf("%s: %s = %#v, want no key", what, key, v)
				case c.want != "omitted" && (!has || v != c.want):
					t.Errorf("%s: %s = %#v (present %v), want %#v", what, key, v, has, c.want)
				}
			}
			_, body := w.rest("department.get", url.Values{})
			rows := body["result"].([]any)
			root := rows[0].(map[string]any) // tree order: the root first
			check("root", root, "PARENT")
			if _, has := rows[1].(map[string]any)["PARENT"]; !has {
				t.Errorf("a child department lost its PARENT: %v", rows[1])
			}
			for _, r := range rows {
				if row := r.(map[string]any); row["UF_HEAD"] == nil || row["UF_HEAD"] == "" || row["UF_HEAD"] == false {
					check(fmt.Sprint("department ", row["ID"]), row, "UF_HEAD")
				}
			}
			// A user without PERSONAL_MOBILE (the generator leaves most
			// without one) shows it the switch's way.
			_, body = w.rest("user.get", url.Values{"FILTER[USER_TYPE]": {"employee"}})
			sawNoMobile := false
			for _, r := range body["result"].([]any) {
				row := r.(map[string]any)
				if m, ok := row["PERSONAL_MOBILE"].(string); ok && m != "" {
					continue
				}
				check(fmt.Sprint("user ", row["ID"]), row, "PERSONAL_MOBILE")
				sawNoMobile = true
			}
			if !sawNoMobile {
				t.Error("no user without a mobile number: the case is not seen")
			}
		})
	}
}

func TestUnsettledInstallEventTokens(t *testing.T) {
	t.Parallel()
	for name, which := range map[string]b24sim.InstallEventTokens{"own chain": b24sim.InstallEventOwnChain, "installer's": b24sim.InstallEventInstallers} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app, appSrv := startApp(t)
			sim := b24sim.Start(b24sim.Options{AppURL: appSrv.URL, Unsettled: b24sim.Unsettled{InstallEventTokens: which}})
			t.Cleanup(sim.Close)
			p := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 3, 1)})
			tok := p.Install()
			q := url.Values{"auth": {tok.AccessToken}, "event": {"ONAPPINSTALL"}, "handler": {appSrv.URL + "/b24/events"}}
			resp, err := http.Get(tok.ClientEndpoint + "event.bind?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			_, _, frame, err := p.FrameRequest(p.AdminID()) // the admin's installer page
			if err != nil {
				t.Fatal(err)
			}
			p.FinishInstall(context.Background())
			app.mu.Lock()
			defer app.mu.Unlock()
			if len(app.events) != 1 {
				t.Fatalf("events %+v", app.events)
			}
			a := app.events[0].Auth
			same := a.RefreshToken == frame.Get("REFRESH_ID") && a.AccessToken == frame.Get("AUTH_ID")
			if same != (which == b24sim.InstallEventInstallers) || a.RefreshToken == "" {
				t.Errorf("ONAPPINSTALL refresh token %q, the installer frame's %q", a.RefreshToken, frame.Get("REFRESH_ID"))
			}
		})
	}
}

func TestUnsettledInstallEventEarly(t *testing.T) {
	t.Parallel()
	for name, early := range map[string]bool{"none": false, "early": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app, appSrv := startApp(t)
			sim := b24sim.Start(b24sim.Options{AppURL: appSrv.URL, Unsettled: b24sim.Unsettled{InstallEventEarly: early}})
			t.Cleanup(sim.Close)
			p := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 3, 1)})
			p.Install()
			_, _, first, err := p.FrameRequest(p.AdminID())
			if err != nil {
				t.Fatal(err)
			}
			_, _, second, _ := p.FrameRequest(p.AdminID())
			app.mu.Lock()
			defer app.mu.Unlock()
			if !early {
				if len(app.events) != 0 {
					t.Fatalf("events without the switch: %+v", app.events)
				}
				return
			}
			if len(app.events) != 1 || app.events[0].Name != "ONAPPINSTALL" {
				t.Fatalf("events %+v", app.events)
			}
			a := app.events[0].Auth
			if a.RefreshToken != first.Get("REFRESH_ID") || a.ApplicationToken != p.ApplicationToken() {
				t.Errorf("early ONAPPINSTALL refresh token %q, the first installer frame's %q", a.RefreshToken, first.Get("REFRESH_ID"))
			}
			if second.Get("REFRESH_ID") == first.Get("REFRESH_ID") {
				t.Error("a second installer frame carries the first one's pair")
			}
		})
	}
}
