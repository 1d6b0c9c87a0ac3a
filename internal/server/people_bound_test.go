package server

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
)

// A self-hosted portal's owner may answer with 100,000 departments named
// with kilobytes each. The people search and the person view read the
// whole tree: each stops at the batch past the names' bound, having asked
// for no more department pages than the bound and a batch, and tells the
// admin in their language that the portal's data is too large.
func TestPeopleReadsOfAHostilePortalsNamesStopAtTheBound(t *testing.T) {
	t.Parallel()
	const depts = 12_000 // 12,000 KiB of names once cut to 1 KiB, past 8 MiB
	org := b24sim.GenerateOrg(8, 20, 3)
	org.AddNamedDepartments(depts, strings.Repeat("Отдел ", 140)) // 1.5 KiB each
	e := newPeopleEnv(t, org)
	u := e.employee()
	allPages := (len(org.Departments) + bitrix24.PageSize - 1) / bitrix24.PageSize
	// The search's own first page, the bound's pages and a batch past them.
	maxPages := 1 + bitrix24.DefaultMaxDepartmentNameBytes/(1<<10)/bitrix24.PageSize + 1 + bitrix24.MaxBatch
	if maxPages >= allPages {
		t.Fatalf("the org's %d pages are within the %d the bound allows: the test cannot tell", allPages, maxPages)
	}
	for _, c := range []struct {
		name, lang, path string
	}{
		{"search", "en", "/app/people?q=" + url.QueryEscape(u.LastName)},
		{"person", "ru", "/app/people/" + strconv.FormatInt(u.ID, 10)},
	} {
		_, tok := e.session(e.portal, e.bp.AdminID(), true, c.lang)
		e.bp.ResetCounters()
		r := e.do(http.MethodGet, c.path, tok, nil)
		if want := msgOrgTooLarge.in(i18n.Lang(c.lang)); r.status != http.StatusBadGateway || jsonMessage(t, r) != want {
			t.Errorf("%s: %d %.200q, want 502 %q", c.name, r.status, r.body, want)
		}
		if n := e.bp.Commands()["department.get"]; n > maxPages {
			t.Errorf("%s asked for %d department pages of %d, want at most %d (the bound and a batch)", c.name, n, allPages, maxPages)
		}
	}
}
