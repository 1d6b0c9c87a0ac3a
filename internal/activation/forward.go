package activation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/i18n"
	"b24learn/internal/manager"
	"b24learn/internal/remote"
	"b24learn/internal/store"
)

// Sender and LeadAdder are the two channels; *Mailer and *CRM implement them.
type Sender interface {
	Send(ctx context.Context, m Mail) error
}

type LeadAdder interface {
	AddLead(ctx context.Context, l Lead) (string, error)
}

// Forwarder delivers stored requests to the managers. A nil Mail (or no
// recipients, or only ones whose console account is disabled) or nil CRM
// marks that channel skipped.
type Forwarder struct {
	Log  *slog.Logger
	Pool *pgxpool.Pool
	Mail Sender
	To   []string // MANAGER_EMAILS
	CRM  LeadAdder
	// ConsoleURL is the console's base (PUBLIC_URL + "/manager"), for the
	// link in the e-mail; "" leaves the link out.
	ConsoleURL string
	// LeadLang is the CRM lead's language (LEAD_LANG); zero is English.
	LeadLang i18n.Lang
	// Bounds caps what all portals together can make the channels send.
	Bounds Bounds
	Now    func() time.Time
}

// Bounds are the hourly caps on activation e-mails and CRM leads across
// every portal: anyone can make a portal and install the app, so without
// them a script with many portals floods the managers' mailboxes and CRM.
// A zero Max leaves that channel unbounded.
type Bounds struct {
	Mail manager.Limit // requests e-mailed (each to every MANAGER_EMAILS address)
	CRM  manager.Limit // leads added
}

// DeferredError says a channel is over its bound: the request is stored
// and shown, and its job should run again after Wait, when the window
// frees. Nothing was sent on that channel and no attempt was spent.
type DeferredError struct {
	Channel string
	Wait    time.Duration
}

func (e *DeferredError) Error() string {
	return fmt.Sprintf("forward by %s: over the hourly bound, deferred %s", e.Channel, e.Wait.Round(time.Second))
}

// ErrChanged says the request was resubmitted while it was being forwarded:
// the attempt is repeated with the new details.
var ErrChanged = errors.New("activation request changed while forwarding")

// Forward delivers the channels of request id that are not delivered yet.
// A channel delivered on an earlier attempt is not sent again. final says
// this is the job's last attempt: a failing channel is then marked failed
// for the console instead of pending. It returns an error when any channel
// failed, so the job is retried.
func (f *Forwarder) Forward(ctx context.Context, portalID, id int64, final bool) error {
	r, err := GetRequest(ctx, f.Pool, portalID, id)
	if errors.Is(err, ErrNotFound) {
		f.Log.Info("activation request gone; nothing to forward", "portal_id", portalID, "request_id", id)
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	if err := f.channel(ctx, r, "email", r.EmailDelivery.State, final, f.Mail != nil && len(f.To) > 0, f.Bounds.Mail, func() (string, error) {
		return "", f.sendMails(ctx, r)
	}); err != nil {
		errs = append(errs, err)
	}
	if err := f.channel(ctx, r, "crm", r.CRMDelivery.State, final, f.CRM != nil, f.Bounds.CRM, func() (string, error) {
		return f.CRM.AddLead(ctx, CRMLead(f.LeadLang, r))
	}); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// channel runs one channel's delivery, within its bound, and records its
// outcome for the revision that was sent.
func (f *Forwarder) channel(ctx context.Context, r *Request, ch string, state Delivery, final, configured bool, bound manager.Limit, send func() (string, error)) error {
	if state == DeliveryDelivered || state == DeliverySkipped {
		return nil
	}
	if !configured {
		return f.record(ctx, r, ch, outcome{state: DeliverySkipped, skip: SkipNotConfigured})
	}
	if err := f.takeBound(ctx, r, ch, bound); err != nil {
		return err
	}
	leadID, sendErr := send()
	if errors.Is(sendErr, errNoRecipients) {
		// Nothing was sent and nothing will be until an account is enabled
		// again or MANAGER_EMAILS changes: the request stays in the console.
		f.Log.Warn("activation request not e-mailed: every address of MANAGER_EMAILS has a disabled console account; it waits in the console",
			"portal_id", r.PortalID, "request_id", r.ID)
		return f.record(ctx, r, ch, outcome{state: DeliverySkipped, skip: SkipNoRecipients})
	}
	if sendErr == nil {
		if err := f.record(ctx, r, ch, outcome{state: DeliveryDelivered, attempt: 1, leadID: leadID}); err != nil {
			return err
		}
		f.Log.Info("activation request forwarded", "channel", ch, "portal_id", r.PortalID, "request_id", r.ID)
		return nil
	}
	f.Log.Warn("activation request not forwarded", "channel", ch, "portal_id", r.PortalID, "request_id", r.ID,
		"final", final, "error", sendErr)
	o := outcome{state: DeliveryPending, attempt: 1, err: remote.Clip(sendErr.Error(), 500)}
	if final {
		o.state = DeliveryFailed
	}
	if err := f.record(ctx, r, ch, o); err != nil && !errors.Is(err, ErrChanged) {
		return errors.Join(fmt.Errorf("forward by %s: %w", ch, sendErr), err)
	}
	return fmt.Errorf("forward by %s: %w", ch, sendErr)
}

// takeBound counts one send of ch against its bound across all portals.
// Over it, the channel stays pending with the reason for the console and
// a *DeferredError asks for another run when the window frees. A send
// that then fails still counts: it reached the SMTP server or the CRM.
func (f *Forwarder) takeBound(ctx context.Context, r *Request, ch string, bound manager.Limit) error {
	if bound.Max <= 0 {
		return nil
	}
	err := manager.Hit(ctx, f.Pool, "activation:forward:"+ch, bound, f.now())
	var rl *manager.RateLimitedError
	if !errors.As(err, &rl) {
		return err
	}
	f.Log.Warn("activation request over the hourly bound across portals; deferred until the window frees",
		"channel", ch, "portal_id", r.PortalID, "request_id", r.ID, "bound", bound.Max, "retry_in", rl.RetryAfter.Round(time.Second))
	if err := f.record(ctx, r, ch, outcome{state: DeliveryPending, skip: SkipOverLimit}); err != nil {
		return err
	}
	return &DeferredError{Channel: ch, Wait: rl.RetryAfter}
}

type outcome struct {
	state   Delivery
	attempt int // 1 when something was sent
	err     string
	skip    Skip // why a skipped channel was skipped
	leadID  string
}

// Per channel, the same statement; the column names are fixed strings.
var recordSQL = map[string]string{
	"email": `UPDATE activation_requests SET email_state = $3, email_attempts = email_attempts + $4,
		email_error = $5, email_at = CASE WHEN $3 = 'delivered' THEN $6 ELSE email_at END, updated_at = $6,
		email_skip = $7
		WHERE id = $1 AND revision = $2`,
	"crm": `UPDATE activation_requests SET crm_state = $3, crm_attempts = crm_attempts + $4,
		crm_error = $5, crm_at = CASE WHEN $3 = 'delivered' THEN $6 ELSE crm_at END, updated_at = $6,
		crm_skip = $7, crm_lead_id = CASE WHEN $8 <> '' THEN $8 ELSE crm_lead_id END
		WHERE id = $1 AND revision = $2`,
}

// record stores a channel's outcome when the request is still at the
// revision that was sent; otherwise ErrChanged makes the job run again.
func (f *Forwarder) record(ctx context.Context, r *Request, ch string, o outcome) error {
	args := []any{r.ID, r.Revision, o.state, o.attempt, o.err, f.now(), o.skip}
	if ch == "crm" {
		args = append(args, o.leadID)
	}
	tag, err := f.Pool.Exec(ctx, recordSQL[ch], args...)
	if err != nil {
		return fmt.Errorf("record %s delivery: %w", ch, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrChanged
	}
	return nil
}

func (f *Forwarder) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// errNoRecipients says every address of MANAGER_EMAILS was left out.
var errNoRecipients = errors.New("no manager to e-mail")

// sendMails sends the request to the managers, one message per language:
// each address gets the language its manager account chose, or the
// default (manager.MailLangs). A retry after a failed message sends all
// of them again, as it did when there was one.
func (f *Forwarder) sendMails(ctx context.Context, r *Request) error {
	to, err := f.recipients(ctx, r)
	if err != nil {
		return err
	}
	if len(to) == 0 {
		return errNoRecipients
	}
	langs, err := manager.MailLangs(ctx, f.Pool, to)
	if err != nil {
		return err
	}
	for _, m := range f.mails(r, to, langs) {
		if err := f.Mail.Send(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// recipients are the addresses of f.To without those whose console
// account is disabled (manager.DisabledAddrs); the ones left out are
// logged, by the manager's address only.
func (f *Forwarder) recipients(ctx context.Context, r *Request) ([]string, error) {
	disabled, err := manager.DisabledAddrs(ctx, f.Pool, f.To)
	if err != nil {
		return nil, err
	}
	if len(disabled) == 0 {
		return f.To, nil
	}
	f.Log.Info("activation e-mail leaves out addresses with a disabled console account",
		"portal_id", r.PortalID, "request_id", r.ID, "skipped", disabled)
	var to []string
	for _, a := range f.To {
		if !slices.Contains(disabled, a) {
			to = append(to, a)
		}
	}
	return to, nil
}

// mails are the request's messages: one per language, Russian first, to
// the addresses of to in that language.
func (f *Forwarder) mails(r *Request, to []string, langs map[string]i18n.Lang) []Mail {
	var out []Mail
	for _, l := range []i18n.Lang{i18n.RU, i18n.EN} {
		var lto []string
		for _, a := range to {
			if langs[a].String() == l.String() {
				lto = append(lto, a)
			}
		}
		if len(lto) > 0 {
			m := f.mail(l, r)
			m.To = lto
			out = append(out, m)
		}
	}
	return out
}

// ReviewURL is the console's list of requests at the page that opens with
// r, scrolled to its row: the list is paged newest first by (created_at,
// id), so the page of the rows older than r's key with its id one higher
// starts with r however many requests came after it.
func ReviewURL(consoleURL string, r *Request) string {
	after := store.Key{At: r.CreatedAt, ID: r.ID + 1}
	return fmt.Sprintf("%s/requests?older=%s#request-%d", strings.TrimRight(consoleURL, "/"), after, r.ID)
}

func (f *Forwarder) mail(l i18n.Lang, r *Request) Mail {
	var b strings.Builder
	b.WriteString(i18n.T(l, "mail.intro") + "\n\n")
	var t table
	line := func(key, v string) { t.add(i18n.T(l, key), v) }
	sent := r.UpdatedAt.UTC().Format("2006-01-02 15:04") + " UTC"
	if r.Submissions > 1 {
		sent += " " + i18n.T(l, "mail.updated", r.Submissions)
	}
	line("mail.portal", r.PortalDomain)
	line("mail.name", r.Name)
	line("mail.email", r.Email)
	line("mail.phone", r.Phone)
	line("mail.sent", sent)
	t.write(&b, "")
	b.WriteString("\n" + i18n.T(l, "mail.settings") + "\n")
	b.WriteString(SummaryText(l, r.Summary))
	if f.ConsoleURL != "" {
		fmt.Fprintf(&b, "\n%s %s\n", i18n.T(l, "mail.review"), ReviewURL(f.ConsoleURL, r))
	}
	return Mail{
		ReplyTo: r.Email,
		Subject: i18n.T(l, "mail.subject", r.PortalDomain),
		Body:    b.String(),
	}
}

// SummaryText is the settings summary as plain text lines in l.
func SummaryText(l i18n.Lang, s Summary) string {
	var t table
	for _, r := range SummaryRows(l, s) {
		t.add(r[0], r[1])
	}
	var b strings.Builder
	t.write(&b, "  ")
	return b.String()
}

// SummaryRows is the settings summary as label and value pairs in l: the
// e-mail and the lead line them up as text, the console as a list.
func SummaryRows(l i18n.Lang, s Summary) [][2]string {
	var rows [][2]string
	line := func(key, v string) { rows = append(rows, [2]string{i18n.T(l, key), v}) }
	notSet := i18n.T(l, "sum.not_set")
	line("sum.learn_url", or(s.LearnURL, notSet))
	if len(s.Departments) == 0 {
		line("sum.departments", i18n.T(l, "sum.none_selected"))
	} else {
		d := i18n.T(l, "sum.selected", len(s.Departments), joinIDs(s.Departments, 20))
		if len(s.Excluded) > 0 {
			d += i18n.T(l, "sum.excluded", len(s.Excluded), joinIDs(s.Excluded, 20))
		}
		line("sum.departments", d)
	}
	if s.EmployeesInScope >= 0 {
		line("sum.employees", strconv.Itoa(s.EmployeesInScope))
	} else {
		line("sum.employees", i18n.T(l, "sum.not_known"))
	}
	runs := or(s.FirstRun, notSet)
	if s.SecondRun != "" {
		runs += i18n.T(l, "sum.and") + s.SecondRun
	}
	line("sum.run_times", runs)
	line("sum.login_emails", yesNo(l, s.SendLoginEmail))
	line("sum.heads", yesNo(l, s.HeadsAsManagers))
	line("sum.parent_heads", yesNo(l, s.ParentHeads))
	return rows
}

// table is "label: value" lines with the values lined up.
type table struct{ rows [][2]string }

func (t *table) add(label, value string) { t.rows = append(t.rows, [2]string{label + ":", value}) }

func (t *table) write(b *strings.Builder, indent string) {
	w := 0
	for _, r := range t.rows {
		w = max(w, utf8.RuneCountInString(r[0]))
	}
	for _, r := range t.rows {
		fmt.Fprintf(b, "%s%-*s %s\n", indent, w, r[0], r[1]) // fmt pads in runes
	}
}

// CRMLead is the lead crm.lead.add gets for r, written in l.
func CRMLead(l i18n.Lang, r *Request) Lead {
	return Lead{
		Title:    i18n.T(l, "lead.title", r.PortalDomain),
		Name:     r.Name,
		Phone:    []Field{{Value: r.Phone, ValueType: "WORK"}},
		Email:    []Field{{Value: r.Email, ValueType: "WORK"}},
		Comments: i18n.T(l, "mail.portal") + ": " + r.PortalDomain + "\n" + SummaryText(l, r.Summary),
		SourceID: "WEB",
		Source:   i18n.T(l, "lead.source"),
	}
}

func joinIDs(ids []int64, max int) string {
	parts := make([]string, 0, min(len(ids), max)+1)
	for i, id := range ids {
		if i == max {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, strconv.FormatInt(id, 10))
	}
	return strings.Join(parts, ", ")
}

func yesNo(l i18n.Lang, b bool) string {
	if b {
		return i18n.T(l, "sum.yes")
	}
	return i18n.T(l, "sum.no")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
