// Package alert e-mails a portal's admin when the portal turns "needs
// attention", loses its Bitrix24 access or has a run held by the
// deactivation safeguard, and again when that state ends. Whoever changes
// one of these states calls Observe in the same transaction; Observe records
// the state in portal_alerts and, when it flipped, queues a River job (Args)
// in that transaction. The Worker sends the e-mail in the language of the
// admin who saved the settings, unless they turned alerts off, and only to
// an address its owner confirmed (confirm.go: double opt-in).
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/activation"
	"b24learn/internal/i18n"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/settings"
	"b24learn/internal/syncer"
	"b24learn/internal/uninstall"
)

// State is one of the alerted states of a portal; the values are
// portal_alerts.state.
type State string

const (
	// NeedsAttention: syncs failed the configured number of times in a row,
	// or once on refused Learn credentials (jobs' recordFailure); begun only
	// by a scheduled run, as the admin who started a run by hand sees it fail.
	NeedsAttention State = "needs_attention"
	// NeedsReconnect: Bitrix24 refuses the portal's tokens for good.
	NeedsReconnect State = "needs_reconnect"
	// Held: the latest run held deactivations for the admin's approval.
	Held State = "held"
	// EraseScheduled: Bitrix24 has refused the tokens for so long that the
	// portal's data will be erased unless an admin opens the app
	// (uninstall.RefusedRetention); begun by the hourly maintenance, ended
	// with the refusal.
	EraseScheduled State = "erase_scheduled"
	// UninstallPending: a CLEAN uninstall was taken while Bitrix24 only
	// refused the tokens (uninstall.TokensRefused); the data is erased
	// after uninstall.EraseDelay unless Bitrix24 shows the app working
	// again. Begun by the uninstall, ended by the restore, or lapsed by the
	// end of the recheck when an uninstall without CLEAN kept the data
	// (internal/jobs).
	UninstallPending State = "uninstall_pending"
	// UninstallKept: an uninstall without CLEAN was taken while Bitrix24
	// only refused the tokens; nothing is erased, and the syncs resume by
	// themselves if Bitrix24 shows the app working again within
	// uninstall.EraseDelay. Begun by the uninstall, ended by the restore.
	UninstallKept State = "uninstall_kept"
)

// States lists every state, in the order the console shows them.
var States = []State{NeedsAttention, NeedsReconnect, Held, EraseScheduled, UninstallPending, UninstallKept}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	return s == NeedsAttention || s == NeedsReconnect || s == Held || s == EraseScheduled || s == UninstallPending ||
		s == UninstallKept
}

// Inserter queues jobs in a transaction; *river.Client[pgx.Tx] is one.
type Inserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Observed is what the caller saw of the portal. Attention and Reconnect
// come from the portals row as the transaction leaves it; Held is nil when
// the caller learnt nothing about it (a failed run holds nothing back and
// releases nothing). Attention is nil when the caller may not begin the
// state (a run the admin started by hand shows its failure on the page:
// internal/jobs' recordHealth).
type Observed struct {
	Attention *bool
	Reconnect bool
	Held      *bool
	// EraseScheduled is nil when the caller learnt nothing about it; a
	// portal whose tokens work again has no erase scheduled.
	EraseScheduled *bool
}

// Observe records the portal's states and queues one e-mail job per state
// that flipped. Call it in the transaction that changed them, so the job is
// stored exactly when the change is.
func Observe(ctx context.Context, tx pgx.Tx, ins Inserter, portalID int64, o Observed) error {
	set := map[State]*bool{NeedsAttention: o.Attention, NeedsReconnect: &o.Reconnect, Held: o.Held,
		EraseScheduled: o.EraseScheduled}
	for _, st := range States {
		active := set[st]
		if active == nil {
			continue
		}
		flipped, err := record(ctx, tx, portalID, st, *active)
		if err != nil {
			return err
		}
		if !flipped {
			continue
		}
		if _, err := ins.InsertTx(ctx, tx, Args{PortalID: portalID, State: st, Active: *active}, nil); err != nil {
			return fmt.Errorf("queue %s alert of portal %d: %w", st, portalID, err)
		}
	}
	return nil
}

// Begin starts st for the portal afresh and queues its e-mail, even when a
// row says the state is on already: that row is left from an earlier
// episode that nothing observed ending (an admin's open of the app clears
// the refusal without a sync). The caller makes sure one episode begins
// once (portals.erase_warned_at).
func Begin(ctx context.Context, tx pgx.Tx, ins Inserter, portalID int64, st State) error {
	if _, err := tx.Exec(ctx, `UPDATE portal_alerts SET active = false, notified = false
		WHERE portal_id = $1 AND state = $2`, portalID, string(st)); err != nil {
		return fmt.Errorf("reset %s of portal %d: %w", st, portalID, err)
	}
	if _, err := record(ctx, tx, portalID, st, true); err != nil {
		return err
	}
	if _, err := ins.InsertTx(ctx, tx, Args{PortalID: portalID, State: st, Active: true}, nil); err != nil {
		return fmt.Errorf("queue %s alert of portal %d: %w", st, portalID, err)
	}
	return nil
}

// End ends st for the portal and, when it was on, queues the e-mail saying
// so.
func End(ctx context.Context, tx pgx.Tx, ins Inserter, portalID int64, st State) error {
	return end(ctx, tx, ins, portalID, st, false)
}

// Lapse ends st for the portal without the fix its e-mail waited for (the
// app stopped waiting) and, when it was on, queues the e-mail saying so
// (LapsedMessage).
func Lapse(ctx context.Context, tx pgx.Tx, ins Inserter, portalID int64, st State) error {
	return end(ctx, tx, ins, portalID, st, true)
}

func end(ctx context.Context, tx pgx.Tx, ins Inserter, portalID int64, st State, lapsed bool) error {
	flipped, err := record(ctx, tx, portalID, st, false)
	if err != nil || !flipped {
		return err
	}
	if _, err := ins.InsertTx(ctx, tx, Args{PortalID: portalID, State: st, Active: false, Lapsed: lapsed}, nil); err != nil {
		return fmt.Errorf("queue %s alert of portal %d: %w", st, portalID, err)
	}
	return nil
}

// record stores the state and reports whether it flipped. A portal never
// seen in a state gets a row only when the state begins: its first healthy
// run is no news.
func record(ctx context.Context, tx pgx.Tx, portalID int64, st State, active bool) (bool, error) {
	var q string
	if active {
		q = `INSERT INTO portal_alerts (portal_id, state, active) VALUES ($1, $2, true)
			ON CONFLICT (portal_id, state) DO UPDATE SET active = true, changed_at = now()
			WHERE NOT portal_alerts.active`
	} else {
		q = `UPDATE portal_alerts SET active = false, changed_at = now()
			WHERE portal_id = $1 AND state = $2 AND active`
	}
	tag, err := tx.Exec(ctx, q, portalID, string(st))
	if err != nil {
		return false, fmt.Errorf("record %s of portal %d: %w", st, portalID, err)
	}
	return tag.RowsAffected() > 0, nil
}

// Args is one e-mail: the state began (Active) or ended. Unique among the
// jobs not yet finished by portal, state and direction, so a state that
// flaps while its e-mail waits queues nothing more.
type Args struct {
	PortalID int64 `json:"portal_id" river:"unique"`
	State    State `json:"state" river:"unique"`
	Active   bool  `json:"active" river:"unique"`
	// Lapsed: the state ended without its fix (Lapse). Not part of the
	// uniqueness: a state ends once, one way or the other.
	Lapsed bool `json:"lapsed,omitempty"`
}

func (Args) Kind() string { return "portal_alert" }

// attempts: with River's attempt⁴-second backoff, 12 attempts span about
// half a day of SMTP downtime.
const attempts = 12

func (Args) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queues.System, MaxAttempts: attempts, UniqueOpts: queues.WaitingOnce()}
}

// Sender delivers one e-mail (*activation.Mailer).
type Sender interface {
	Send(ctx context.Context, msg activation.Mail) error
}

// SendCap is the most alert e-mails one portal sends in SendWindow: even a
// confirmed address should not get a flood from a flapping portal.
const (
	SendCap    = 10
	SendWindow = 24 * time.Hour
)

// Worker sends the alert e-mails.
type Worker struct {
	river.WorkerDefaults[Args]
	Log  *slog.Logger
	Pool *pgxpool.Pool
	// Mail is nil when SMTP_URL is unset: the jobs complete unsent.
	Mail Sender
}

// Timeout covers one SMTP session, bounded at 30 s by the mailer.
func (w *Worker) Timeout(*river.Job[Args]) time.Duration { return time.Minute }

// Work sends the e-mail if the state is still as the job says and the admin
// has not been told yet and the portal is under its e-mail cap, then records
// that they were. A send that succeeds
// but whose record fails is retried and may arrive twice; a lost alert
// would be worse.
func (w *Worker) Work(ctx context.Context, job *river.Job[Args]) error {
	a := job.Args
	log := w.Log.With("portal_id", a.PortalID, "state", string(a.State), "active", a.Active)
	var active, notified bool
	var domain, lastError string
	var refusedAt, warnedAt, uninstalledAt *time.Time
	err := w.Pool.QueryRow(ctx, `SELECT a.active, a.notified, p.domain, p.last_sync_error, p.tokens_refused_at, p.erase_warned_at,
		p.uninstalled_at
		FROM portal_alerts a JOIN portals p ON p.id = a.portal_id
		WHERE a.portal_id = $1 AND a.state = $2`, a.PortalID, string(a.State)).Scan(&active, &notified, &domain, &lastError,
		&refusedAt, &warnedAt, &uninstalledAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // the portal is gone
	}
	if err != nil {
		return fmt.Errorf("read alert state: %w", err)
	}
	if active != a.Active || notified == active {
		log.InfoContext(ctx, "alert not sent: the state changed back or the admin was told")
		return nil
	}
	st, err := settings.Load(ctx, w.Pool, nil, a.PortalID)
	if err != nil {
		return err
	}
	switch {
	case st.AlertsOff:
		log.InfoContext(ctx, "alert not sent: alerts are off")
		return nil
	case st.AlertEmail == "":
		log.InfoContext(ctx, "alert not sent: no address saved")
		return nil
	case w.Mail == nil:
		log.WarnContext(ctx, "alert not sent: SMTP_URL is not set")
		return nil
	}
	// Only an address its owner confirmed gets alerts (confirm.go).
	if ok, err := Confirmed(ctx, w.Pool, a.PortalID, st.AlertEmail); err != nil {
		return err
	} else if !ok {
		log.InfoContext(ctx, "alert not sent: the address is not confirmed yet")
		return nil
	}
	// Rows older than twice the window are no longer counted.
	if _, err := w.Pool.Exec(ctx, `DELETE FROM alert_sends WHERE portal_id = $1 AND sent_at < now() - 2 * $2::interval`,
		a.PortalID, SendWindow); err != nil {
		return fmt.Errorf("prune alert sends: %w", err)
	}
	var sent int
	if err := w.Pool.QueryRow(ctx, `SELECT count(*) FROM alert_sends WHERE portal_id = $1 AND sent_at > now() - $2::interval`,
		a.PortalID, SendWindow).Scan(&sent); err != nil {
		return fmt.Errorf("count alert sends: %w", err)
	}
	if sent >= SendCap {
		log.WarnContext(ctx, "alert not sent: the portal reached its e-mail cap", "sent", sent, "cap", SendCap, "window", SendWindow)
		return nil
	}
	var eraseAt time.Time
	if refusedAt != nil {
		var warned time.Time
		if warnedAt != nil {
			warned = *warnedAt
		}
		eraseAt = uninstall.RefusedEraseAt(*refusedAt, warned)
	}
	if a.State == UninstallPending && uninstalledAt != nil {
		eraseAt = uninstalledAt.Add(uninstall.EraseDelay)
	}
	lang := i18n.FromBitrix24(st.AlertLang)
	subject, body := Message(lang, a.State, a.Active, domain, lastError, eraseAt)
	if a.Lapsed && !a.Active {
		subject, body = LapsedMessage(lang, a.State, domain)
	}
	if err := w.Mail.Send(ctx, activation.Mail{To: []string{st.AlertEmail}, Subject: subject, Body: body}); err != nil {
		return fmt.Errorf("send %s alert: %w", a.State, err)
	}
	if _, err := w.Pool.Exec(ctx, `UPDATE portal_alerts SET notified = $3 WHERE portal_id = $1 AND state = $2`,
		a.PortalID, string(a.State), a.Active); err != nil {
		return fmt.Errorf("record alert sent: %w", err)
	}
	if _, err := w.Pool.Exec(ctx, `INSERT INTO alert_sends (portal_id) VALUES ($1)`, a.PortalID); err != nil {
		return fmt.Errorf("record alert send: %w", err)
	}
	log.InfoContext(ctx, "alert sent")
	return nil
}

// LapsedMessage is the e-mail's subject and body in lang saying that st
// ended without its fix (Lapse): the app stopped waiting for it.
func LapsedMessage(lang i18n.Lang, st State, domain string) (string, string) {
	return i18n.T(lang, "alert.lapsed.subject", domain),
		i18n.T(lang, "alert.lapsed."+string(st), domain) + "\n\n" + i18n.T(lang, "alert.footer")
}

// Message is the e-mail's subject and body in lang: the state that began
// (with the last sync error for "needs attention", the day of the erase
// for "erase scheduled" and "uninstall pending", how long the app keeps
// asking Bitrix24 for "uninstall kept", which erases nothing) or the one
// that ended.
func Message(lang i18n.Lang, st State, active bool, domain, lastError string, eraseAt time.Time) (string, string) {
	if !active {
		return i18n.T(lang, "alert.recovered.subject", domain),
			i18n.T(lang, "alert.recovered."+string(st), domain) + "\n\n" + i18n.T(lang, "alert.footer")
	}
	body := i18n.T(lang, "alert."+string(st)+".body", domain)
	switch st {
	case EraseScheduled, UninstallPending:
		body = i18n.T(lang, "alert."+string(st)+".body", domain, eraseAt.UTC().Format("2006-01-02"))
	case UninstallKept:
		body = i18n.T(lang, "alert."+string(st)+".body", domain, int(uninstall.EraseDelay/(24*time.Hour)))
	}
	if key, detail := syncer.RunErrorKey(lastError); st == NeedsAttention && key != "" {
		// The stored error is English, for support: a sentence in lang
		// comes first.
		if !i18n.Has(key) {
			key = "run_err_learn"
		}
		body += "\n\n" + i18n.T(lang, "alert.last_error", i18n.T(lang, key, syncer.RunErrorArgs(lastError)...))
		if detail {
			body += "\n" + i18n.T(lang, "run_err_detail") + " " + strings.TrimSpace(lastError)
		}
	}
	return i18n.T(lang, "alert."+string(st)+".subject", domain), body + "\n\n" + i18n.T(lang, "alert.footer")
}
