package templates

import (
	"context"
	"strings"
	"testing"
	"time"

	"b24learn/internal/i18n"
	"b24learn/internal/manager"
)

// The console says when a refused portal's data goes (list and page), and
// why an audit line's note is empty after an erase.
func TestConsoleShowsEraseDayAndErasedNotes(t *testing.T) {
	t.Parallel()
	refused := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	p := &manager.PortalRow{ID: 7, Domain: "acme.bitrix24.ru", InstallState: "installed", ActivationState: "active",
		NeedsReconnect: true, TokensRefusedAt: refused}
	nav := ConsoleNav{Lang: i18n.EN, Section: "portals"}
	var list, page, audit strings.Builder
	if err := ManagerPortals(PortalsView{Nav: nav, Portals: []*manager.PortalRow{p}}).Render(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	if err := ManagerPortal(PortalView{Nav: nav, Portal: *p}).Render(context.Background(), &page); err != nil {
		t.Fatal(err)
	}
	for name, html := range map[string]string{"list": list.String(), "page": page.String()} {
		if !strings.Contains(html, `data-testid="erase-on"`) || !strings.Contains(html, "2026-05-30") {
			t.Errorf("the portal %s does not say the erase day 2026-05-30", name)
		}
	}
	entries := []manager.AuditEntry{{ManagerEmail: "olga@ispring.example", Action: "suspend", PortalID: 7, NoteErased: refused, At: refused}}
	if err := ManagerAudit(AuditView{Nav: nav, Entries: entries}).Render(context.Background(), &audit); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(audit.String(), `data-testid="note-erased"`) {
		t.Error("an erased note is not marked in the audit trail")
	}
}

// The portal page offers only the changes its state allows: no second
// activation of an active portal, no second suspension of a suspended one.
func TestConsolePortalOffersOnlyAChange(t *testing.T) {
	t.Parallel()
	activate := `name="state" value="active"`
	suspend := `name="state" value="suspended"`
	for _, c := range []struct {
		state             string
		activate, suspend bool
	}{
		{"inactive", true, true},
		{"requested", true, true},
		{"active", false, true},
		{"suspended", true, false},
	} {
		var page strings.Builder
		p := manager.PortalRow{ID: 7, Domain: "acme.bitrix24.ru", InstallState: "installed", ActivationState: c.state}
		if err := ManagerPortal(PortalView{Nav: ConsoleNav{Lang: i18n.EN, Section: "portals"}, Portal: p}).Render(context.Background(), &page); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(page.String(), activate); got != c.activate {
			t.Errorf("%s portal: Activate offered %v, want %v", c.state, got, c.activate)
		}
		if got := strings.Contains(page.String(), suspend); got != c.suspend {
			t.Errorf("%s portal: Suspend offered %v, want %v", c.state, got, c.suspend)
		}
	}
}
