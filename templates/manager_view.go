package templates

import (
	"fmt"
	"strconv"
	"time"

	"b24learn/internal/lead"
)

// ConsoleNav is what every signed-in console page shows: who is signed in,
// the CSRF token for its forms, the current section and a one-off message.
type ConsoleNav struct {
	Email   string
	CSRF    string
	Section string // requests, portals, audit
	Flash   string
	Error   string
}

// SignInView is the console's sign-in page.
type SignInView struct {
	Email string
	Error string
	CSRF  string
}

// RequestsView lists activation requests.
type RequestsView struct {
	Nav      ConsoleNav
	Filter   string // "" or a status
	Requests []*lead.Request
}

// PortalsView lists portals.
type PortalsView struct {
	Nav     ConsoleNav
	Portals []*lead.Portal
}

// PortalView is one portal's detail.
type PortalView struct {
	Nav      ConsoleNav
	Portal   *lead.Portal
	Runs     []lead.Run
	Requests []*lead.Request
	Audit    []lead.AuditEntry
}

// AuditView is the audit trail.
type AuditView struct {
	Nav     ConsoleNav
	Entries []lead.AuditEntry
}

func mgrTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func mgrTimePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return mgrTime(*t)
}

func mgrItoa(n int64) string { return strconv.FormatInt(n, 10) }

// mgrDeliveryText describes one channel for the console.
func mgrDeliveryText(c lead.Channel) string {
	switch c.State {
	case lead.DeliveryDelivered:
		return "delivered " + mgrTimePtr(c.At)
	case lead.DeliverySkipped:
		return "not configured"
	case lead.DeliveryFailed:
		return fmt.Sprintf("failed after %d attempts: %s", c.Attempts, c.Error)
	default:
		if c.Attempts > 0 {
			return fmt.Sprintf("retrying (%d attempts so far): %s", c.Attempts, c.Error)
		}
		return "pending"
	}
}

func mgrDeliveryClass(c lead.Channel) string {
	switch c.State {
	case lead.DeliveryFailed:
		return "failed"
	case lead.DeliveryDelivered:
		return "active"
	}
	return ""
}

func mgrRunText(r *lead.Run) string {
	if r == nil {
		return "no runs yet"
	}
	return r.Status + " · " + r.Trigger + " · " + mgrTime(r.StartedAt)
}

func mgrPortalHref(id int64) string { return "/manager/portals/" + mgrItoa(id) }
