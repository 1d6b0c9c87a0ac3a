package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"b24learn/internal/activation"
	"b24learn/internal/alert"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/manager"
)

// LeadForwardArgs forwards one activation request to the iSpring managers
// (e-mail and CRM lead). Inserted by the activation handler in the same
// transaction as the request; unique per request while one is waiting, so a
// resubmission rides on the job already queued (it reads the latest details).
type LeadForwardArgs struct {
	PortalID  int64 `json:"portal_id"`
	RequestID int64 `json:"request_id"`
}

func (LeadForwardArgs) Kind() string { return "lead_forward" }

// leadForwardAttempts: with River's attempt⁴-second backoff, 15 attempts span
// about a day and a half of SMTP or CRM downtime before the request shows as
// failed in the console.
const leadForwardAttempts = 15

func (LeadForwardArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       queues.System,
		MaxAttempts: leadForwardAttempts,
		// Not completed: a resubmission after delivery needs a new job. A job
		// running while the request changes notices (activation.ErrChanged) and retries.
		UniqueOpts: queues.WaitingOnce(),
	}
}

// LeadForwardWorker runs activation.Forwarder.
type LeadForwardWorker struct {
	river.WorkerDefaults[LeadForwardArgs]
	Forwarder *activation.Forwarder
}

// mailFrom is the sender of the app's e-mails when SMTP_URL has no ?from=.
func mailFrom(d Deps) string {
	if d.Config.PublicURL != nil {
		return "b24learn@" + d.Config.PublicURL.Hostname()
	}
	return "b24learn@localhost"
}

// addAlertWorker registers the portal admins' alert e-mails and the
// confirmation e-mails of their addresses (called by NewWorkers); without
// SMTP_URL the jobs complete unsent.
func addAlertWorker(r *registry, d Deps) error {
	aw := &alert.Worker{Log: d.Log, Pool: d.Pool}
	cw := &alert.ConfirmWorker{Log: d.Log, Pool: d.Pool}
	if d.Config.PublicURL != nil {
		cw.PublicURL = d.Config.PublicURL.String()
	}
	if d.Config.SMTPURL != nil {
		m, err := activation.NewMailer(d.Config.SMTPURL, mailFrom(d), nil)
		if err != nil {
			return fmt.Errorf("SMTP_URL: %w", err)
		}
		aw.Mail, cw.Mail = m, m
	}
	add(r, aw)
	add(r, cw)
	return nil
}

// NewLeadForwardWorker builds the channels from SMTP_URL, MANAGER_EMAILS and
// LEAD_WEBHOOK_URL; a channel without its settings is skipped.
func NewLeadForwardWorker(d Deps) (*LeadForwardWorker, error) {
	f := &activation.Forwarder{Log: d.Log, Pool: d.Pool, To: d.Config.ManagerEmails, LeadLang: d.Config.LeadLang,
		Bounds: activation.Bounds{
			Mail: manager.Limit{Max: d.Config.ActivationMailsPerHour, Window: time.Hour},
			CRM:  manager.Limit{Max: d.Config.ActivationLeadsPerHour, Window: time.Hour},
		}}
	from := "b24learn@localhost"
	if d.Config.PublicURL != nil {
		from = "b24learn@" + d.Config.PublicURL.Hostname()
		f.ConsoleURL = d.Config.PublicURL.String() + "/manager"
	}
	if d.Config.SMTPURL != nil {
		m, err := activation.NewMailer(d.Config.SMTPURL, from, nil)
		if err != nil {
			return nil, fmt.Errorf("SMTP_URL: %w", err)
		}
		f.Mail = m
	}
	if d.Config.LeadWebhookURL != nil {
		f.CRM = activation.NewCRM(d.Config.LeadWebhookURL, nil)
	}
	return &LeadForwardWorker{Forwarder: f}, nil
}

func (w *LeadForwardWorker) Work(ctx context.Context, job *river.Job[LeadForwardArgs]) error {
	final := job.Attempt >= job.MaxAttempts
	err := w.Forwarder.Forward(ctx, job.Args.PortalID, job.Args.RequestID, final)
	// Over a bound the job waits for the window to free without spending
	// an attempt, however long a flood keeps the bound reached.
	var d *activation.DeferredError
	if errors.As(err, &d) {
		return river.JobSnooze(d.Wait)
	}
	return err
}

// addLeadWorker registers the forwarding worker (called by NewWorkers).
func addLeadWorker(r *registry, d Deps) error {
	lw, err := NewLeadForwardWorker(d)
	if err != nil {
		return err
	}
	add(r, lw)
	return nil
}

// Timeout covers one SMTP session and one webhook call, each bounded at 30 s.
func (w *LeadForwardWorker) Timeout(*river.Job[LeadForwardArgs]) time.Duration {
	return 2 * time.Minute
}
