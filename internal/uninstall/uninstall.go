// Package uninstall decides whether an ONAPPUNINSTALL event is genuine and
// acts on it. The event's only credential, the application_token, reaches
// every portal user in the iframe POST, so it cannot tell the portal's admin
// removing the app from an employee forging the event. What can is Bitrix24
// itself: once the app is really gone, it refuses the tokens the app stored
// for the portal. So an event with the right application_token is acted on
// only when a call on the stored tokens is refused (Ask says Confirmed); an
// event whose tokens still work changes nothing and is recorded for the
// managers (Refuted); and when Bitrix24 cannot be asked, the event waits for
// a River job to ask again for a bounded time (Unknown, then pending).
package uninstall

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/bitrix24"
	"b24learn/internal/connect"
	"b24learn/internal/remote"
	"b24learn/internal/store"
)

// Verdict is what Bitrix24's answer to the stored tokens says about the app.
type Verdict int

const (
	// Unknown: Bitrix24 gave no usable answer (unreachable, 5xx, rate limit,
	// or an answer that names no uninstall); ask again later.
	Unknown Verdict = iota
	// Confirmed: Bitrix24 refused the stored tokens the way it refuses an
	// uninstalled app's, or app.info says the app is not installed.
	Confirmed
	// Refuted: the stored tokens work and the app is installed.
	Refuted
	// TokensRefused: Bitrix24 refused the stored tokens' refresh
	// (invalid_grant, invalid_client, PAYMENT_REQUIRED) as it may after an
	// uninstall, but as it also does while the app is installed and its
	// trial or paid period is over or its refresh token outlived 180 idle
	// days. So is app.info's INSTALLED false on tokens that still work.
	// The uninstall is acted on, but a clean one's data is erased only
	// after EraseDelay, and not if the app is installed again.
	TokensRefused
)

// EraseDelay is how long the data of a clean uninstall that Bitrix24
// confirmed only by refusing the tokens is kept: any employee can send the
// event, and the portal may merely have lapsed.
const EraseDelay = 30 * 24 * time.Hour

// RefusedRetention is how long the data of a portal stays while Bitrix24
// refuses its tokens without a break and no admin opens the app: then the
// hourly maintenance erases it as a clean uninstall's (internal/jobs,
// retention.go). ONAPPUNINSTALL is sent once, so an uninstall whose event
// was lost would otherwise keep the employees' names and e-mails, the
// Learn credentials and the run reports for ever. An installed portal
// whose trial or paid period ended gets the same refusals, so the period is
// three times EraseDelay: a customer who pays within a quarter finds
// everything as it was, as does one whose admin opens the app. It is also
// the run reports' default retention, so a portal's own reports would be
// gone by then anyway.
const RefusedRetention = 90 * 24 * time.Hour

// RefusedWarning is how long before that erase the portal's admin is
// alerted and asked to open the app.
const RefusedWarning = 14 * 24 * time.Hour

// RefusedEraseAt is when the data of a portal whose tokens have been
// refused since refusedAt is erased: RefusedRetention after the refusal,
// and never sooner than RefusedWarning after the admin was warned
// (warnedAt; zero while not warned, when the warning is still to come), so
// a warning sent late still gives the admin its full time.
func RefusedEraseAt(refusedAt, warnedAt time.Time) time.Time {
	at := refusedAt.Add(RefusedRetention)
	if !warnedAt.IsZero() && warnedAt.Add(RefusedWarning).After(at) {
		at = warnedAt.Add(RefusedWarning)
	}
	return at
}

// RefusedUnanswered is how long past RefusedRetention the erase waits
// while Bitrix24 gives no answer to the last check (its OAuth server
// unreachable): an answer that the tokens work again keeps the data, but
// no answer at all must not keep it for ever.
const RefusedUnanswered = 7 * 24 * time.Hour

// SettleDelay is how long the data of a clean uninstall is kept even when
// Bitrix24 says the app is gone. Bitrix24 vouches that the app is gone, not
// for the event's CLEAN flag: a forged CLEAN event checked while the admin
// removes the app without CLEAN is confirmed just the same. The erase is
// dropped when an uninstall without CLEAN comes in around it (jobs'
// UninstallEraseWorker), so an employee can at worst keep the data, never
// erase it against the admin's choice.
const SettleDelay = 10 * time.Minute

func (v Verdict) String() string {
	switch v {
	case Confirmed:
		return "confirmed"
	case Refuted:
		return "refuted"
	case TokensRefused:
		return "tokens refused"
	}
	return "unknown"
}

// ReasonNotInstalled records app.info's INSTALLED false on working tokens.
const ReasonNotInstalled = "app.info: INSTALLED false"

// ReasonAlreadyUninstalled records an event for a portal already
// uninstalled: nothing is asked nor done, but one without CLEAN drops a
// pending erase (SettleDelay).
const ReasonAlreadyUninstalled = "already uninstalled"

// ReasonReinstalled records an event left alone because the app was
// installed again while Bitrix24 was asked: the answer was about the tokens
// of the installation before, and says nothing about the new one.
const ReasonReinstalled = "installed again while Bitrix24 was asked"

// ReasonRefusalRuns records an uninstall without CLEAN left alone because
// Bitrix24 had refused the portal's tokens before it came (RefusalRuns).
const ReasonRefusalRuns = "tokens refused before the event: the data retention applies"

// RefusalRuns reports whether an uninstall event without CLEAN that Bitrix24
// only answered by refusing the tokens (TokensRefused) is left alone, the
// portal staying installed and "needs reconnect" so that RefusedRetention
// keeps running: it is when Bitrix24 had been refusing the tokens for more
// than RetryWindow when the event came (at). Bitrix24 sends
// ONAPPUNINSTALL as the app is removed, so a genuine one comes at the start
// of the refusal (a sync may meet the refusal a little before it); one long
// after is no news, and every portal user knows the application token. Acted
// on, it would turn a portal the retention is to erase into one uninstalled
// without CLEAN, whose data stays for ever. (A portal removed during a payment
// lapse also comes late; without CLEAN it then keeps its data only as long as
// the lapse alone would.) A CLEAN one is acted on even late: a lapsed
// portal's admin who removes the app and asks for the erase gets it after
// EraseDelay, as the alert tells them. Call it in the transaction that
// locked the portal.
func RefusalRuns(ctx context.Context, db store.DBTX, portalID int64, clean bool, v Verdict, at time.Time) (bool, error) {
	if clean || v != TokensRefused {
		return false, nil
	}
	return RefusedLongBefore(ctx, db, portalID, at)
}

// RefusedLongBefore reports whether Bitrix24 had been refusing the portal's
// tokens for more than RetryWindow at now: an uninstall event without CLEAN
// coming then is no news of the uninstall (RefusalRuns). Recorded with
// ReasonRefusalRuns, such an event does not keep an uninstalled portal's
// data either (KeptSince): any portal user could otherwise keep a portal
// whose refusal was taken as a CLEAN uninstall for ever.
func RefusedLongBefore(ctx context.Context, db store.DBTX, portalID int64, now time.Time) (bool, error) {
	var old bool
	if err := db.QueryRow(ctx, `SELECT coalesce(needs_reconnect AND tokens_refused_at < $2, false) FROM portals WHERE id = $1`,
		portalID, now.Add(-RetryWindow)).Scan(&old); err != nil {
		return false, fmt.Errorf("read the portal's refusal: %w", err)
	}
	return old, nil
}

// ReasonNotInstalledLongBefore records an event without CLEAN that came
// more than RetryWindow after an uninstall app.info confirmed
// (ReasonNotInstalled): like ReasonRefusalRuns, it keeps no data.
const ReasonNotInstalledLongBefore = "uninstalled long before the event: app.info said INSTALLED false"

// keptReason is the reason an event without CLEAN is recorded with when
// the portal is uninstalled already: ReasonRefusalRuns when the refusal is
// older than the event could be (RefusedLongBefore), and
// ReasonNotInstalledLongBefore when the uninstall is, having been confirmed
// by app.info's INSTALLED false on tokens that worked, which marks no
// refusal. Bitrix24 sends ONAPPUNINSTALL once, as the app is removed; a
// later one is some portal user's, and would keep for ever the data of a
// CLEAN uninstall whose erase waits EraseDelay.
func keptReason(ctx context.Context, db store.DBTX, portalID int64, now time.Time, reason string) (string, error) {
	old, err := RefusedLongBefore(ctx, db, portalID, now)
	if err != nil {
		return reason, err
	}
	if old {
		return ReasonRefusalRuns, nil
	}
	var late bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM portals p JOIN uninstall_events e ON e.portal_id = p.id
		WHERE p.id = $1 AND p.install_state = 'uninstalled' AND p.uninstalled_at < $2
		  AND e.state = 'confirmed' AND e.reason = $3 AND e.resolved_at >= p.uninstalled_at)`,
		portalID, now.Add(-RetryWindow), ReasonNotInstalled).Scan(&late); err != nil {
		return reason, fmt.Errorf("read the portal's uninstall: %w", err)
	}
	if late {
		return ReasonNotInstalledLongBefore, nil
	}
	return reason, nil
}

// AskTimeout bounds one check, a refresh included.
const AskTimeout = 30 * time.Second

// Ask calls app.info on the portal's stored tokens through the portal's
// token source, so a needed refresh is serialised with the syncs' and its new
// pair is stored. reason is Bitrix24's answer in short (an error code, never
// a token), for the log and the managers.
func Ask(ctx context.Context, clients *connect.Factory, portalID int64) (v Verdict, reason string) {
	return ask(ctx, clients.Bitrix24Check, portalID)
}

// ask calls app.info on the client open returns for the portal.
func ask(ctx context.Context, open func(context.Context, int64) (*bitrix24.Client, error), portalID int64) (v Verdict, reason string) {
	ctx, cancel := context.WithTimeout(ctx, AskTimeout)
	defer cancel()
	c, err := open(ctx, portalID)
	if err != nil {
		return Unknown, short(err.Error())
	}
	info, err := c.AppInfo(ctx)
	return Classify(info, err)
}

// goneCodes are the answers only an app that is no longer installed gets:
// a deleted portal.
var goneCodes = []*bitrix24.APIError{{Code: "PORTAL_DELETED"}}

// refusedCodes are a refresh refused with invalid_grant, invalid_client or
// PAYMENT_REQUIRED: Bitrix24 does not document which one it gives after an
// uninstall, so each counts, but each also comes to an installed app whose
// period is over or whose refresh token expired (TokensRefused).
// expired_token and invalid_token do not count: the token source refreshes
// on them, and only the refresh's refusal tells. An invalid_client reaches
// here only when the app's own credentials were found good
// (bitrix24.OAuth.Refresh); otherwise the error is
// bitrix24.ErrClientRefused, which leaves the verdict Unknown.
// REST's APPLICATION_NOT_FOUND is among them: Bitrix24 gives it to an app
// "not installed or inactive", and an unpaid app may be inactive.
var refusedCodes = []*bitrix24.APIError{bitrix24.ErrInvalidGrant, bitrix24.ErrInvalidClient, bitrix24.ErrPaymentRequired,
	bitrix24.ErrApplicationNotFound}

// Classify reads an app.info answer (or its error) as a Verdict.
func Classify(info bitrix24.AppInfo, err error) (Verdict, string) {
	if err == nil {
		if !info.Installed {
			// Working tokens that Bitrix24 says are not installed: after an
			// uninstall, or while an app update shows the installer again
			// (no source says which), so only the delayed erase may follow.
			return TokensRefused, ReasonNotInstalled
		}
		return Refuted, "app.info: installed"
	}
	for _, g := range goneCodes {
		if errors.Is(err, g) {
			return Confirmed, g.Code
		}
	}
	for _, r := range refusedCodes {
		if errors.Is(err, r) {
			return TokensRefused, r.Code
		}
	}
	var ae *bitrix24.APIError
	if errors.As(err, &ae) && !ae.OAuth && ae.HTTPStatus == http.StatusNotFound && !errors.Is(err, bitrix24.ErrMethodNotFound) {
		// The portal's address answers 404: the portal itself is gone. A
		// 404 of the OAuth server's (a refresh) says nothing of the portal.
		return Confirmed, "portal not found (http 404)"
	}
	if code := bitrix24.ErrorCode(err); code != "" {
		return Unknown, code
	}
	return Unknown, short(err.Error())
}

// short is a reason as it is stored with the event.
func short(s string) string { return remote.Clip(s, 200) }

// JobCanceller cancels a portal's unfinished jobs in tx; the jobs package's
// Queue is the one, as it owns the reads of River's tables.
type JobCanceller interface {
	CancelPortalJobs(ctx context.Context, tx pgx.Tx, portalID int64) error
}

// Confirm acts on a confirmed uninstall in tx: it cancels the portal's
// unfinished River jobs, marks the portal uninstalled and, for clean, erases
// its secrets, credentials and mapping data at once (callers with a River
// client defer the erase instead: jobs.ConfirmUninstall). jobs may be nil
// (no River client: jobs are left alone). It returns when the portal was
// uninstalled, by the database's clock, which every later deadline of the
// uninstall counts from.
func Confirm(ctx context.Context, tx pgx.Tx, jobs JobCanceller, portalID int64, clean bool) (time.Time, error) {
	if jobs != nil {
		if err := jobs.CancelPortalJobs(ctx, tx, portalID); err != nil {
			return time.Time{}, err
		}
	}
	at, err := store.MarkPortalUninstalled(ctx, tx, portalID)
	if err != nil {
		return time.Time{}, err
	}
	if clean {
		if err := store.ErasePortalData(ctx, tx, portalID); err != nil {
			return time.Time{}, fmt.Errorf("erase portal data: %w", err)
		}
	}
	return at, nil
}
