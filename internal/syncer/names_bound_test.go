package syncer

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
)

// hostileDeptName is a self-hosted portal's department name, longer than
// the client keeps of a text (1 KiB): 1.5 KiB.
var hostileDeptName = strings.Repeat("Отдел ", 140)

// A self-hosted portal's owner may answer with 100,000 departments named
// with kilobytes each. A preview and a sync read the whole tree, through
// the shared batches or the separate listing: each stops at the batch past
// the names' bound, having asked for no more department pages than the
// bound and a batch, writes nothing, and the run says why in the admin's
// language.
func TestSyncOfAHostilePortalsNamesStopsAtTheBound(t *testing.T) {
	t.Parallel()
	const depts = 12_000 // 12,000 KiB of names once cut to 1 KiB, past 8 MiB
	e := newSimEnv(t, simOpts{})
	org := b24sim.GenerateOrg(9, 20, 3)
	org.AddNamedDepartments(depts, hostileDeptName)
	id, p := e.addPortal(org)
	allPages := (len(org.Departments) + bitrix24.PageSize - 1) / bitrix24.PageSize
	maxPages := bitrix24.DefaultMaxDepartmentNameBytes/(1<<10)/bitrix24.PageSize + 1 + bitrix24.MaxBatch
	if maxPages >= allPages {
		t.Fatalf("the org's %d pages are within the %d the bound allows: the test cannot tell", allPages, maxPages)
	}
	batched := e.b24[id].(*bitrix24.Client)
	for _, c := range []struct {
		name    string
		trigger Trigger
		b24     Bitrix24
	}{
		{"preview", TriggerPreview, batched},
		{"sync", TriggerManual, batched},
		{"sync through the separate listings", TriggerManual, listsOnly{batched}},
	} {
		e.mu.Lock()
		e.b24[id] = c.b24
		e.mu.Unlock()
		p.ResetCounters()
		run, err := e.refusedRun(id, c.trigger)
		if !errors.Is(err, ErrOrgTooLarge) {
			t.Errorf("%s: %v, want ErrOrgTooLarge", c.name, err)
		}
		key, _ := RunErrorKey(run.Error)
		if run.Status != RunFailed || key != "run_err_org_too_large" {
			t.Errorf("%s: run %s, error %q: key %q, want run_err_org_too_large", c.name, run.Status, run.Error, key)
		}
		if n := p.Commands()["department.get"]; n > maxPages {
			t.Errorf("%s asked for %d department pages of %d, want at most %d (the bound and a batch)", c.name, n, allPages, maxPages)
		}
	}
	for _, lang := range []i18n.Lang{i18n.EN, i18n.RU} {
		if s := i18n.T(lang, "run_err_org_too_large"); s == "" || s == "run_err_org_too_large" {
			t.Errorf("%s: no sentence for run_err_org_too_large", lang)
		}
	}
}

// A name within the bound but longer than Learn keeps is cut in what the
// run reports and sends (maxTextRunes), not stored as the portal sent it.
func TestLongDepartmentNameIsCutInRunItems(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	id, p := e.addPortal(b24sim.GenerateOrg(10, 6, 1))
	d := p.AddDepartment(hostileDeptName, 1, 0)
	rep := e.run(id, TriggerPreview)
	found := false
	for _, it := range e.items(id, rep.RunID) {
		if it.Kind != KindDepartment || it.B24ID != d {
			continue
		}
		found = true
		name := it.After["name"]
		if n := utf8.RuneCountInString(name); n == 0 || n > maxTextRunes || !strings.HasPrefix(hostileDeptName, name) {
			t.Errorf("the run item's name is %d characters (%d bytes), want the name cut to at most %d", n, len(name), maxTextRunes)
		}
	}
	if !found {
		t.Fatal("no run item for the long-named department")
	}
}
