package bitrix24_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
)

// setupSim is setup with the simulator's options.
func setupSim(t testing.TB, opts b24sim.Options, org b24sim.Org) *fixture {
	t.Helper()
	opts.AppURL = "http://127.0.0.1:1"
	srv := b24sim.Start(opts)
	t.Cleanup(srv.Close)
	p := srv.AddPortal(b24sim.PortalOptions{Org: org})
	tok := p.Install()
	p.FinishInstall(context.Background())
	oauth := &bitrix24.OAuth{URL: srv.URL, ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret()}
	ts := bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token(tok))
	c := bitrix24.New(bitrix24.Config{Tokens: ts, Endpoint: tok.ClientEndpoint, RetryWait: 20 * time.Millisecond})
	return &fixture{srv: srv, portal: p, tokens: ts, client: c}
}

// readInvited reads the org's employees with the invited users asked for.
func readInvited(t *testing.T, f *fixture) ([]bitrix24.User, bitrix24.Invited) {
	t.Helper()
	var us []bitrix24.User
	var inv *bitrix24.Invited
	_, err := f.client.ReadOrg(context.Background(), map[string]any{"USER_TYPE": "employee"}, bitrix24.OrgPages{
		Users:   func(page []bitrix24.User) error { us = append(us, page...); return nil },
		Invited: func(i bitrix24.Invited) { inv = &i },
	})
	if err != nil {
		t.Fatal(err)
	}
	if inv == nil {
		t.Fatal("Invited was not called")
	}
	return us, *inv
}

// TestOrgInvitedPerSwitch: the invited users are named only when the
// filter worked; ignored or refused, nobody is, and the employees are read
// in full either way.
func TestOrgInvitedPerSwitch(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		opts  b24sim.Options
		known bool
		why   string
	}{
		{"Honoured", b24sim.Options{InvitedFilter: b24sim.InvitedFilterHonoured}, true, ""},
		{"HonouredFullScope", b24sim.Options{InvitedFilter: b24sim.InvitedFilterHonoured, Scope: "user,department"}, true, ""},
		{"Ignored", b24sim.Options{InvitedFilter: b24sim.InvitedFilterIgnored}, false, bitrix24.InvitedIgnored},
		{"IgnoredFullScope", b24sim.Options{InvitedFilter: b24sim.InvitedFilterIgnored, Scope: "user,department"}, false, bitrix24.InvitedIgnored},
		{"Refused", b24sim.Options{InvitedFilter: b24sim.InvitedFilterRefused}, false, bitrix24.InvitedRefused},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			org := b24sim.GenerateOrg(11, 3000, 40)
			invited := org.Invite(120) // three pages of invited users
			f := setupSim(t, c.opts, org)
			us, inv := readInvited(t, f)
			employees := 0
			for _, u := range org.Users {
				if !u.Extranet {
					employees++
				}
			}
			if len(us) != employees {
				t.Errorf("read %d employees, want %d", len(us), employees)
			}
			if inv.Known != c.known || !strings.HasPrefix(inv.Why, c.why) {
				t.Fatalf("Invited %+v, want known %v why %q", inv, c.known, c.why)
			}
			if c.known && !slices.Equal(inv.IDs, invited) {
				t.Errorf("named %d invited users, want %d", len(inv.IDs), len(invited))
			}
			if !c.known && len(inv.IDs) != 0 {
				t.Errorf("named %d users though the filter did not work", len(inv.IDs))
			}
			// Asked alone (one person's run), the answer is the org read's,
			// in two requests: the count with the first page, the rest.
			f.portal.ResetCounters()
			alone, err := f.client.Invited(context.Background(), map[string]any{"USER_TYPE": "employee"})
			if err != nil {
				t.Fatalf("Invited: %v", err)
			}
			if alone.Known != inv.Known || bitrix24.InvitedReason(alone.Why) != bitrix24.InvitedReason(inv.Why) || !slices.Equal(alone.IDs, inv.IDs) {
				t.Errorf("Invited alone %+v, want the org read's %+v", alone, inv)
			}
			if n := f.portal.TotalRequests(); n > 2 {
				t.Errorf("Invited alone took %d requests, want at most 2", n)
			}
		})
	}
}

// TestOrgInvitedSignedIn: under the full user scope an answer naming a user
// who has signed in (re-invited after joining) is not believed.
func TestOrgInvitedSignedIn(t *testing.T) {
	t.Parallel()
	org := b24sim.GenerateOrg(12, 200, 5)
	org.Invite(3)
	f := setupSim(t, b24sim.Options{Scope: "user,department"}, org)
	if err := f.portal.Reinvite(org.Users[10].ID); err != nil {
		t.Fatal(err)
	}
	if _, inv := readInvited(t, f); inv.Known || !strings.HasPrefix(inv.Why, bitrix24.InvitedSignedIn) {
		t.Errorf("Invited %+v, want %q", inv, bitrix24.InvitedSignedIn)
	}
}

// TestOrgInvitedBounded: a portal counting more invited users than
// MaxInvitedPages pages is not read further, and nobody is named.
func TestOrgInvitedBounded(t *testing.T) {
	t.Parallel()
	org := b24sim.GenerateOrg(13, 6000, 10)
	org.Invite(bitrix24.MaxInvitedPages*bitrix24.PageSize + 1)
	f := setupSim(t, b24sim.Options{}, org)
	_, inv := readInvited(t, f)
	if inv.Known || !strings.HasPrefix(inv.Why, bitrix24.InvitedTooMany) {
		t.Errorf("Invited %+v, want %q", inv, bitrix24.InvitedTooMany)
	}
	if n := f.portal.Commands()["user.search"]; n != 1 {
		t.Errorf("%d user.search commands, want the first page only", n)
	}
}

// TestOrgInvitedFewRequests: asking for the invited users costs at most one
// request more than the read without, whatever the org's size.
func TestOrgInvitedFewRequests(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ users, depts, invited int }{
		{10000, 300, 40}, {10000, 300, 400}, {2450, 3, 0}, {2400, 3, 5}, {2600, 2600, 60}, {30, 2, 51},
	} {
		count := func(ask bool) int {
			org := b24sim.GenerateOrg(int64(c.users+c.depts), c.users, c.depts)
			org.Invite(c.invited)
			f := setupSim(t, b24sim.Options{}, org)
			p := bitrix24.OrgPages{Users: func([]bitrix24.User) error { return nil }}
			if ask {
				p.Invited = func(bitrix24.Invited) {}
			}
			if _, err := f.client.ReadOrg(context.Background(), map[string]any{"USER_TYPE": "employee"}, p); err != nil {
				t.Fatal(err)
			}
			return f.portal.TotalRequests()
		}
		without, with := count(false), count(true)
		if with > without+1 {
			t.Errorf("%d users, %d departments, %d invited: %d requests, %d without asking", c.users, c.depts, c.invited, with, without)
		}
	}
}
