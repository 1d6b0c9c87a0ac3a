package bitrix24_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
)

// setupUnsettled is setup on a simulator that answers as u says.
func setupUnsettled(t *testing.T, u b24sim.Unsettled, org b24sim.Org) *fixture {
	t.Helper()
	srv := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Unsettled: u})
	t.Cleanup(srv.Close)
	p := srv.AddPortal(b24sim.PortalOptions{Org: org})
	tok := p.Install()
	p.FinishInstall(context.Background())
	ts := bitrix24.NewMemoryTokenSource(oauthOf(srv), bitrix24.Token(tok))
	return &fixture{srv: srv, portal: p, tokens: ts,
		client: bitrix24.New(bitrix24.Config{Endpoint: tok.ClientEndpoint, Tokens: ts, RetryWait: 20 * time.Millisecond})}
}

func oauthOf(srv *b24sim.Server) *bitrix24.OAuth {
	return &bitrix24.OAuth{URL: srv.URL, ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret()}
}

// TestClientAgainstUnsettled runs the client against every choice b24sim
// offers where Bitrix24's behaviour is not known (docs/bitrix24-api.md,
// "Unsettled behaviour"): the client must work the same against each.
func TestClientAgainstUnsettled(t *testing.T) {
	t.Parallel()
	for _, v := range b24sim.Variants() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			t.Run("Refresh", func(t *testing.T) { checkRefresh(t, v.Unsettled) })
			t.Run("RefreshRefused", func(t *testing.T) { checkRefreshRefused(t, v.Unsettled) })
			t.Run("EventBind", func(t *testing.T) { checkEventBind(t, v.Unsettled) })
			t.Run("Extranet", func(t *testing.T) { checkExtranet(t, v.Unsettled) })
			t.Run("Scope", func(t *testing.T) { checkScope(t, v.Unsettled) })
			t.Run("UserAccess", func(t *testing.T) { checkUserAccess(t, v.Unsettled) })
			t.Run("Listing", func(t *testing.T) { checkListing(t, v.Unsettled) })
		})
	}
}

// A refresh is read whatever its domain and scope say: the portal is its
// client_endpoint, and the client goes on calling it.
func checkRefresh(t *testing.T, u b24sim.Unsettled) {
	f := setupUnsettled(t, u, b24sim.GenerateOrg(1, 5, 1))
	ctx := context.Background()
	old, _ := f.tokens.Token(ctx)
	f.portal.ExpireTokens()
	if _, err := f.client.Profile(ctx); err != nil {
		t.Fatalf("profile after expiry: %v", err)
	}
	tok, _ := f.tokens.Token(ctx)
	if tok.AccessToken == old.AccessToken || tok.ClientEndpoint != old.ClientEndpoint || tok.MemberID != f.portal.MemberID() {
		t.Errorf("refreshed token %+v, before %+v", tok, old)
	}
	if f.srv.Refreshes() != 1 {
		t.Errorf("refreshes = %d, want 1", f.srv.Refreshes())
	}
}

// Refused refreshes and tokens are told apart by their codes, whatever the
// texts and statuses around them.
func checkRefreshRefused(t *testing.T, u b24sim.Unsettled) {
	f := setupUnsettled(t, u, b24sim.GenerateOrg(1, 5, 1))
	ctx := context.Background()
	oauth := oauthOf(f.srv)
	tok, _ := f.tokens.Token(ctx)
	if _, err := oauth.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := oauth.Refresh(ctx, tok.RefreshToken); !errors.Is(err, bitrix24.ErrInvalidGrant) || !bitrix24.IsPermanentAuthError(err) {
		t.Errorf("reused refresh token: %v", err)
	}
	// The access token issued with the used refresh token is revoked.
	if _, err := f.client.Profile(ctx); err == nil {
		t.Error("revoked access token accepted")
	}
	wrong := *oauth
	wrong.ClientSecret = "not-the-secret"
	fresh, err := f.portal.Tokens(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Refresh(ctx, fresh.RefreshToken); !errors.Is(err, bitrix24.ErrClientRefused) {
		t.Errorf("wrong client secret: %v", err)
	}
	f.portal.SetLapse(b24sim.LapseUnpaid)
	if _, err := oauth.Refresh(ctx, fresh.RefreshToken); !errors.Is(err, bitrix24.ErrPaymentRequired) || !bitrix24.IsPermanentAuthError(err) {
		t.Errorf("unpaid: %v", err)
	}
	c := bitrix24.New(bitrix24.Config{Endpoint: fresh.ClientEndpoint, RetryWait: 20 * time.Millisecond,
		Tokens: bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token{AccessToken: "unknown", RefreshToken: "unknown"})})
	f.portal.SetLapse(b24sim.LapseNone)
	if _, err := c.Profile(ctx); !errors.Is(err, bitrix24.ErrInvalidGrant) {
		t.Errorf("unknown tokens: %v", err)
	}
}

// Binding a handler twice leaves one binding and no error, however
// Bitrix24 answers the second bind; other refusals still fail.
func checkEventBind(t *testing.T, u b24sim.Unsettled) {
	f := setupUnsettled(t, u, b24sim.GenerateOrg(1, 5, 1))
	ctx := context.Background()
	h := "https://app.example.com/b24/events"
	for range 2 {
		if err := f.client.EventBind(ctx, "ONAPPUNINSTALL", h); err != nil {
			t.Fatalf("bind: %v", err)
		}
	}
	if err := f.client.EventBind(ctx, "ONAPPUPDATE", h); err != nil {
		t.Fatalf("bind another event: %v", err)
	}
	if got := f.portal.Bindings(); len(got) != 2 || got[0] != "ONAPPUNINSTALL "+h || got[1] != "ONAPPUPDATE "+h {
		t.Errorf("bindings %q", got)
	}
	// An employee may not bind: the refusal is not taken for "bound".
	tok, err := f.portal.Tokens(employeeID(t, f.portal))
	if err != nil {
		t.Fatal(err)
	}
	c := bitrix24.New(bitrix24.Config{Endpoint: tok.ClientEndpoint, Tokens: bitrix24.NewMemoryTokenSource(oauthOf(f.srv), bitrix24.Token(tok))})
	if err := c.EventBind(ctx, "ONAPPINSTALL", h); !errors.Is(err, bitrix24.ErrAccessDenied) {
		t.Errorf("employee's bind: %v", err)
	}
}

// employeeID is a user of p who is not an admin.
func employeeID(t *testing.T, p *b24sim.Portal) int64 {
	t.Helper()
	for _, u := range p.Users() {
		if !u.Admin && u.Active {
			return u.ID
		}
	}
	t.Fatal("no employee")
	return 0
}

// An extranet user reads as one without departments, whichever empty value
// Bitrix24 sends.
func checkExtranet(t *testing.T, u b24sim.Unsettled) {
	org := b24sim.GenerateOrg(1, 5, 2)
	for _, id := range []int64{101, 102} {
		org.Users = append(org.Users, b24sim.User{ID: id, Active: true, Name: "Guest", LastName: "Partner",
			Email: "guest@example.com", Extranet: true, DateRegister: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)})
	}
	f := setupUnsettled(t, u, org)
	users, err := f.client.Users(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, us := range users {
		if us.ID > 100 {
			n++
			if !us.IsExtranet() || len(us.Departments) != 0 {
				t.Errorf("extranet user %+v", us)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d extranet users read, want 2", n)
	}
}

// A method beyond the app's scope is insufficient_scope whatever its
// status (401 in Bitrix24's code, 403 in its docs' table): neither a reason
// to refresh nor one to give the tokens up.
func checkScope(t *testing.T, u b24sim.Unsettled) {
	f := setupUnsettled(t, u, b24sim.GenerateOrg(1, 5, 1))
	ctx := context.Background()
	_, err := f.client.UserFields(ctx, "en")
	if !errors.Is(err, bitrix24.ErrInsufficientScope) || bitrix24.IsPermanentAuthError(err) {
		t.Errorf("user.userfield.list without its scope: %v", err)
	}
	if f.srv.Refreshes() != 0 {
		t.Errorf("refreshes = %d, want 0", f.srv.Refreshes())
	}
	if _, err := f.client.Profile(ctx); err != nil {
		t.Errorf("profile after the refusal: %v", err)
	}
}

// An app the portal's admin limited to users the token's user is not among
// is refused with user_access_error whatever its status (401 in Bitrix24's
// code, 403 in its docs' table): ErrUserAccess, neither a reason to refresh
// nor one to give the tokens up, and gone once access is given.
func checkUserAccess(t *testing.T, u b24sim.Unsettled) {
	f := setupUnsettled(t, u, b24sim.GenerateOrg(1, 5, 1))
	ctx := context.Background()
	installer, err := f.client.Profile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.portal.LimitAccess(installer.ID + 1000)
	for what, call := range map[string]func() error{
		"department.get": func() error { _, err := f.client.Departments(ctx); return err },
		"user.get":       func() error { _, err := f.client.Users(ctx, nil); return err },
	} {
		err := call()
		if !errors.Is(err, bitrix24.ErrUserAccess) || bitrix24.IsPermanentAuthError(err) {
			t.Errorf("%s with the app limited to others: %v, want ErrUserAccess", what, err)
		}
	}
	if f.srv.Refreshes() != 0 {
		t.Errorf("refreshes = %d, want 0", f.srv.Refreshes())
	}
	f.portal.LimitAccess(installer.ID)
	if _, err := f.client.Departments(ctx); err != nil {
		t.Errorf("department.get with the app limited to the installer: %v", err)
	}
	f.portal.LimitAccess()
	if _, err := f.client.Departments(ctx); !errors.Is(err, bitrix24.ErrUserAccess) {
		t.Errorf("department.get with the app limited to nobody: %v", err)
	}
	f.portal.OpenAccess()
	if _, err := f.client.Departments(ctx); err != nil {
		t.Errorf("department.get with access open again: %v", err)
	}
}

// Every listing reads the whole org, whatever form the IDs come in and
// whether a start=-1 page carries "total":0 or no total: the org is larger
// than one batch of keyset pages (2,450 users) and one page of departments.
func checkListing(t *testing.T, u b24sim.Unsettled) {
	f := setupUnsettled(t, u, b24sim.GenerateOrg(7, 3000, 120))
	ctx := context.Background()
	wantUsers := map[int64]string{}
	var wantInvited []int64
	for _, x := range f.portal.Users() {
		if !x.Extranet {
			wantUsers[x.ID] = fmt.Sprint(x.Active, x.Departments, x.Email, x.SecondName)
		}
		if x.Invited {
			wantInvited = append(wantInvited, x.ID)
		}
	}
	wantDepts := map[int64]string{}
	for _, d := range f.portal.Departments() {
		wantDepts[d.ID] = fmt.Sprint(d.Parent, d.Head)
	}
	sameUsers := func(what string, us []bitrix24.User) {
		t.Helper()
		got := map[int64]string{}
		for _, x := range us {
			if !x.IsExtranet() {
				got[x.ID] = fmt.Sprint(x.Active, x.Departments, x.Email, x.SecondName)
			}
		}
		if len(got) != len(wantUsers) {
			t.Errorf("%s: %d employees, want %d", what, len(got), len(wantUsers))
		}
		for id, w := range wantUsers {
			if got[id] != w {
				t.Errorf("%s: user %d is %q, want %q", what, id, got[id], w)
				return
			}
		}
	}
	sameDepts := func(what string, ds []bitrix24.Department) {
		t.Helper()
		got := map[int64]string{}
		for _, d := range ds {
			got[d.ID] = fmt.Sprint(d.Parent, d.Head)
		}
		if !maps.Equal(got, wantDepts) {
			t.Errorf("%s: %d departments %v, want %d %v", what, len(got), got, len(wantDepts), wantDepts)
		}
	}
	var us []bitrix24.User
	var inv bitrix24.Invited
	ds, err := f.client.ReadOrg(ctx, nil, bitrix24.OrgPages{
		Users:   func(page []bitrix24.User) error { us = append(us, page...); return nil },
		Invited: func(i bitrix24.Invited) { inv = i },
	})
	if err != nil {
		t.Fatalf("ReadOrg: %v", err)
	}
	sameUsers("ReadOrg", us)
	sameDepts("ReadOrg", ds)
	if !slices.IsSortedFunc(us, func(a, b bitrix24.User) int { return int(a.ID - b.ID) }) {
		t.Error("ReadOrg: users not in ID order")
	}
	slices.Sort(wantInvited)
	slices.Sort(inv.IDs)
	if !inv.Known || !slices.Equal(inv.IDs, wantInvited) {
		t.Errorf("ReadOrg: invited %+v, want %v", inv, wantInvited)
	}
	if us, err = f.client.Users(ctx, nil); err != nil {
		t.Fatalf("Users: %v", err)
	}
	sameUsers("Users", us)
	if ds, err = f.client.Departments(ctx); err != nil {
		t.Fatalf("Departments: %v", err)
	}
	sameDepts("Departments", ds)
}
