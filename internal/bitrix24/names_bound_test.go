package bitrix24_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
)

// hostileDeptName is a department name of a self-hosted portal's owner,
// longer than what the client keeps of a text (1 KiB).
var hostileDeptName = strings.Repeat("Отдел ", 140)

// A self-hosted portal may list 100,000 departments named with kilobytes
// each (100 MB once each is cut to 1 KiB). Every listing of departments, the separate one and the org read's,
// stops at the batch that passes the names' bound with ErrOrgTooLarge,
// having asked for no more department pages than the bound and a batch.
func TestDepartmentListingsStopAtTheNamesBound(t *testing.T) {
	t.Parallel()
	// A bound of 1 MiB keeps the test quick; the default's 8 MiB is the
	// same rule (the server's and the syncer's tests read past it).
	const bound, depts = 1 << 20, 5_000
	org := b24sim.GenerateOrg(3, 20, 3)
	org.AddNamedDepartments(depts, hostileDeptName)
	f := setupSim(t, b24sim.Options{Rate: -1}, org)
	f.client = bitrix24.New(bitrix24.Config{Tokens: f.tokens, Endpoint: f.client.Endpoint(), MaxDepartmentNameBytes: bound})
	// The bound's pages, and a batch of 50 pages past them.
	maxPages := bound/(1<<10)/bitrix24.PageSize + 1 + bitrix24.MaxBatch
	allPages := (depts + 3 + bitrix24.PageSize - 1) / bitrix24.PageSize
	if maxPages >= allPages {
		t.Fatalf("the org's %d pages are within the %d the bound allows: the test cannot tell", allPages, maxPages)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		read func() ([]bitrix24.Department, error)
	}{
		{"Departments", func() ([]bitrix24.Department, error) { return f.client.Departments(ctx) }},
		{"ReadOrg", func() ([]bitrix24.Department, error) {
			return f.client.ReadOrg(ctx, nil, bitrix24.OrgPages{Users: func([]bitrix24.User) error { return nil }})
		}},
	} {
		f.portal.ResetCounters()
		ds, err := c.read()
		if !errors.Is(err, bitrix24.ErrOrgTooLarge) {
			t.Errorf("%s: %d departments, %v; want ErrOrgTooLarge", c.name, len(ds), err)
		}
		if n := f.portal.Commands()["department.get"]; n > maxPages {
			t.Errorf("%s asked for %d department pages of %d, want at most %d (the bound and a batch)", c.name, n, allPages, maxPages)
		}
	}
}
