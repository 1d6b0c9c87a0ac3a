package uninstall

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/store"
)

// States of a recorded event (migrations/060).
const (
	StatePending   = "pending"
	StateConfirmed = "confirmed"
	StateRefuted   = "refuted"
	StateExpired   = "expired"
)

// RetryWindow is how long a pending event is asked about again; after it,
// the event expires and changes nothing.
const RetryWindow = 6 * time.Hour

// Event is one recorded ONAPPUNINSTALL.
type Event struct {
	ID         int64
	PortalID   int64
	Clean      bool
	SourceIP   string
	State      string
	Reason     string
	Repeats    int
	ReceivedAt time.Time
	LastAt     time.Time
	ResolvedAt time.Time // zero while pending
}

// Unconfirmed reports whether the event was not acted on.
func (e Event) Unconfirmed() bool { return e.State == StateRefuted || e.State == StateExpired }

const eventColumns = `id, portal_id, clean, source_ip, state, reason, repeats, received_at, last_at, resolved_at`

func scanEvent(row pgx.Row) (Event, error) {
	var e Event
	var resolved *time.Time
	err := row.Scan(&e.ID, &e.PortalID, &e.Clean, &e.SourceIP, &e.State, &e.Reason, &e.Repeats,
		&e.ReceivedAt, &e.LastAt, &resolved)
	if resolved != nil {
		e.ResolvedAt = *resolved
	}
	return e, err
}

// Record stores an event in the given state and returns its id. A refuted
// or expired event repeating one of the portal with the same CLEAN and
// state within the hour adds to that row's repeats, so a flood of forgeries
// stays one line; so does a
// pending one repeating a still-pending event, which then shares that
// event's one check job. The address does not split them: every portal user
// knows the application token and may send from as many addresses as they
// hold, and each pending row costs a job and Bitrix24 calls. The row keeps
// the first address. An expired one joins only a row of its own reason: a
// reason decides whether the row keeps a CLEAN uninstall's data (KeptSince),
// and a late repeat must not rewrite the reason of one that did.
func Record(ctx context.Context, db store.DBTX, portalID int64, clean bool, sourceIP, state, reason string) (int64, error) {
	var id int64
	if state == StateRefuted || state == StatePending || state == StateExpired {
		err := db.QueryRow(ctx, `UPDATE uninstall_events SET repeats = repeats + 1, last_at = now(), reason = $3
			WHERE id = (SELECT id FROM uninstall_events
				WHERE portal_id = $1 AND clean = $2 AND state = $4
					AND (state = 'pending' OR last_at > now() - interval '1 hour')
					AND (state <> 'expired' OR reason = $3)
				ORDER BY id DESC LIMIT 1)
			RETURNING id`, portalID, clean, reason, state).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("record uninstall event: %w", err)
		}
	}
	err := db.QueryRow(ctx, `INSERT INTO uninstall_events (portal_id, clean, source_ip, state, reason, resolved_at)
		VALUES ($1, $2, $3, $4, $5, CASE WHEN $4 = 'pending' THEN NULL ELSE now() END) RETURNING id`,
		portalID, clean, sourceIP, state, reason).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record uninstall event: %w", err)
	}
	return id, nil
}

// RecordKept records an event without CLEAN for a portal uninstalled
// already (reason says why it changed nothing), as expired: it drops a
// CLEAN uninstall's erase still waiting (KeptSince), unless Bitrix24 had
// refused the tokens long before it came (ReasonRefusalRuns).
func RecordKept(ctx context.Context, db store.DBTX, portalID int64, sourceIP, reason string, now time.Time) error {
	reason, err := keptReason(ctx, db, portalID, now, reason)
	if err != nil {
		return err
	}
	_, err = Record(ctx, db, portalID, false, sourceIP, StateExpired, reason)
	return err
}

// ResolveUninstalled ends a pending event of a portal uninstalled
// meanwhile, as expired: like RecordKept, one without CLEAN that came long
// into Bitrix24's refusal is recorded so that it keeps no data. It is
// judged as of when it came (e.ReceivedAt), not when its check ran: a
// retry runs up to RetryWindow later, by when a refusal that began with
// the uninstall looks long, and the admin's own event without CLEAN would
// keep nothing.
func ResolveUninstalled(ctx context.Context, db store.DBTX, e Event) error {
	reason := "the portal was uninstalled meanwhile"
	if !e.Clean {
		var err error
		if reason, err = keptReason(ctx, db, e.PortalID, e.ReceivedAt, reason); err != nil {
			return err
		}
	}
	return Resolve(ctx, db, e.ID, StateExpired, reason)
}

// LockPending loads a pending event and locks its row in tx; found is false
// when the event is gone or no longer pending.
func LockPending(ctx context.Context, tx pgx.Tx, id int64) (e Event, found bool, err error) {
	e, err = scanEvent(tx.QueryRow(ctx, `SELECT `+eventColumns+` FROM uninstall_events
		WHERE id = $1 AND state = 'pending' FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("load uninstall event %d: %w", id, err)
	}
	return e, true, nil
}

// KeptSince reports whether an uninstall event without CLEAN for the portal
// was received or repeated at or after since, other than one refuted (the
// app was still installed when it was checked, so it was not the admin's)
// or one that came long into Bitrix24's refusal (ReasonRefusalRuns) or long
// after the uninstall (ReasonNotInstalledLongBefore): a CLEAN uninstall's
// erase is then dropped (SettleDelay).
func KeptSince(ctx context.Context, db store.DBTX, portalID int64, since time.Time) (bool, error) {
	var kept bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM uninstall_events
		WHERE portal_id = $1 AND NOT clean AND state <> 'refuted' AND reason <> ALL($3) AND last_at >= $2)`,
		portalID, since, []string{ReasonRefusalRuns, ReasonNotInstalledLongBefore}).Scan(&kept); err != nil {
		return false, fmt.Errorf("uninstall events without clean: %w", err)
	}
	return kept, nil
}

// Resolve ends a pending event with state and Bitrix24's reason.
func Resolve(ctx context.Context, db store.DBTX, id int64, state, reason string) error {
	_, err := db.Exec(ctx, `UPDATE uninstall_events SET state = $2, reason = $3, resolved_at = now(), last_at = now()
		WHERE id = $1 AND state = 'pending'`, id, state, reason)
	if err != nil {
		return fmt.Errorf("resolve uninstall event %d: %w", id, err)
	}
	return nil
}

// EventRetention is how long a resolved event is kept. Anyone who installs
// the app on a portal of their own knows its application token and may send
// forged events for ever (a row an hour or so each, refuted), so the record
// cannot be kept for ever; it outlives the longest wait of a deferred erase
// (EraseDelay), which reads the events around the uninstall (KeptSince).
const EventRetention = 90 * 24 * time.Hour

// PurgeEvents deletes resolved events last seen before now - EventRetention;
// pending ones are the check jobs' until their window ends.
func PurgeEvents(ctx context.Context, db store.DBTX, now time.Time) (int64, error) {
	tag, err := db.Exec(ctx, `DELETE FROM uninstall_events WHERE state <> 'pending' AND last_at < $1`, now.Add(-EventRetention))
	if err != nil {
		return 0, fmt.Errorf("purge uninstall events: %w", err)
	}
	return tag.RowsAffected(), nil
}

// List returns the portal's newest events.
func List(ctx context.Context, db store.DBTX, portalID int64, limit int) ([]Event, error) {
	return store.QueryAll(ctx, db, "list uninstall events", scanEvent, `SELECT `+eventColumns+` FROM uninstall_events
		WHERE portal_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2`, portalID, limit)
}
