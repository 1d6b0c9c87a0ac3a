package uninstall

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/connect"
	"b24learn/internal/store"
)

// An uninstall taken on a TokensRefused verdict may be no uninstall at
// all: a portal whose payment lapsed for a day, or whose app update shows
// the installer again, gets the same answers, and any portal user can send
// the event then, with CLEAN or without. So such a portal keeps its tokens
// until the end of EraseDelay (ConfirmRefused), Bitrix24 is asked again on
// them every hour and once more at that end (AskAgain), and when they work
// and app.info says the app is installed the portal is restored (Restore):
// installed, its syncs dispatched again, the event recorded as refuted
// late. Otherwise, at that end, a CLEAN uninstall's data is erased and one
// without CLEAN keeps its data, as any uninstall without CLEAN does, and
// drops the tokens.

// ReasonRefutedLate is the reason an uninstall event taken on refused
// tokens is recorded with once Bitrix24 accepts the tokens again and says
// the app is installed (Restore).
const ReasonRefutedLate = "refuted late: Bitrix24 accepts the tokens again and app.info says installed"

// RecheckAction is what becomes of a portal uninstalled on refused tokens
// after Bitrix24 was asked again (Recheck).
type RecheckAction int

const (
	// RecheckWait: nothing yet; ask again later.
	RecheckWait RecheckAction = iota
	// RecheckRestore: the app is installed and its tokens work.
	RecheckRestore
	// RecheckErase: the refusal stands or the portal is gone.
	RecheckErase
)

// RecheckUnanswered is how long past EraseDelay the erase of a portal
// uninstalled on refused tokens waits while Bitrix24 gives no answer at
// all: as long as the retention's (RefusedUnanswered).
const RecheckUnanswered = RefusedUnanswered

// Recheck decides, at the deferred erase (erase true) or during the wait
// before it, on Bitrix24's new answer v about a portal uninstalled at
// uninstalledAt on a TokensRefused verdict. Working tokens with the app
// installed restore it at any time. A refusal, or a portal gone, erases at
// the erase and waits before it. No answer waits, at the erase too, until
// RecheckUnanswered past EraseDelay, and then erases: an answer that the
// tokens work keeps the data, but no answer must not keep it for ever.
func Recheck(v Verdict, uninstalledAt, now time.Time, erase bool) RecheckAction {
	switch {
	case v == Refuted:
		return RecheckRestore
	case !erase:
		return RecheckWait
	case v == Confirmed || v == TokensRefused:
		return RecheckErase
	case !now.Before(uninstalledAt.Add(EraseDelay + RecheckUnanswered)):
		return RecheckErase
	}
	return RecheckWait
}

// AskAgain is Ask for a portal uninstalled on refused tokens, whose tokens
// were kept to ask with (ConfirmRefused).
func AskAgain(ctx context.Context, clients *connect.Factory, portalID int64) (v Verdict, reason string) {
	return ask(ctx, clients.Bitrix24Recheck, portalID)
}

// ConfirmRefused acts in tx on an uninstall Bitrix24 confirmed only with a
// TokensRefused verdict: as Confirm without the erase, but the portal's
// tokens are kept and it is marked for AskAgain, with whether the uninstall
// had CLEAN. The caller schedules the end of the wait EraseDelay after the
// time it returns, the uninstall's by the database's clock.
func ConfirmRefused(ctx context.Context, tx pgx.Tx, jobs JobCanceller, portalID int64, clean bool) (time.Time, error) {
	if jobs != nil {
		if err := jobs.CancelPortalJobs(ctx, tx, portalID); err != nil {
			return time.Time{}, err
		}
	}
	return store.MarkPortalUninstalledForRecheck(ctx, tx, portalID, clean)
}

// Restore undoes in tx the uninstall of portal p (locked) taken on refused
// tokens, once AskAgain found them working with the app installed: the
// portal is installed again, as a new install generation (so its
// scheduled erase erases nothing, and a later uninstall schedules an erase
// of its own), and the events that uninstalled it are recorded as refuted
// late. restored is false when the
// portal is no longer waiting for a recheck (installed again, or erased).
func Restore(ctx context.Context, tx pgx.Tx, p store.Portal) (restored bool, err error) {
	tag, err := tx.Exec(ctx, `UPDATE portals SET install_state = 'installed', uninstalled_at = NULL,
		uninstall_recheck = false, needs_reconnect = false, install_generation = install_generation + 1, updated_at = now()
		WHERE id = $1 AND install_state = 'uninstalled' AND uninstall_recheck AND install_generation = $2`,
		p.ID, p.InstallGeneration)
	if err != nil {
		return false, fmt.Errorf("restore portal: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE uninstall_events SET state = 'refuted', reason = $3, last_at = now()
		WHERE portal_id = $1 AND state = 'confirmed' AND resolved_at >= $2`,
		p.ID, p.UninstalledAt, ReasonRefutedLate); err != nil {
		return false, fmt.Errorf("record the uninstall refuted: %w", err)
	}
	return true, nil
}
