// Package activationtest gives tests the two places an activation request
// goes, the managers' mailbox (an SMTP server on loopback) and iSpring's CRM
// (a simulated portal taking leads by webhook), with a Forwarder to both.
package activationtest

import (
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/activation"
	"b24learn/internal/activation/smtptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/manager"
)

// Sinks are the mailbox and the CRM, and a Forwarder to them.
type Sinks struct {
	SMTP      *smtptest.Server
	CRM       *b24sim.Portal
	Forwarder *activation.Forwarder
}

// Start starts the sinks and a Forwarder over pool that mails
// sales@ispring.example and sends at most bound e-mails and bound leads an
// hour by now, logging to log.
func Start(t testing.TB, pool *pgxpool.Pool, bound int, now func() time.Time, log *slog.Logger) *Sinks {
	t.Helper()
	srv := smtptest.Start(t, smtptest.Plain, "", "")
	sim := b24sim.Start(b24sim.Options{})
	t.Cleanup(sim.Close)
	crm := sim.AddPortal(b24sim.PortalOptions{WebhookCode: "leads123"})
	hook, err := url.Parse(crm.WebhookURL())
	if err != nil {
		t.Fatal(err)
	}
	mailer, err := activation.NewMailer(srv.URL, "x@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &activation.Forwarder{Log: log, Pool: pool, Mail: mailer,
		To: []string{"sales@ispring.example"}, CRM: activation.NewCRM(hook, nil), Now: now,
		Bounds: activation.Bounds{
			Mail: manager.Limit{Max: bound, Window: time.Hour},
			CRM:  manager.Limit{Max: bound, Window: time.Hour},
		}}
	return &Sinks{SMTP: srv, CRM: crm, Forwarder: f}
}

// Sent is how many e-mails and leads went out.
func (s *Sinks) Sent() (mails, leads int) { return len(s.SMTP.Messages()), len(s.CRM.Leads()) }
