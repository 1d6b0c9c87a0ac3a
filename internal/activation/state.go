package activation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/manager"
	"b24learn/internal/store"
)

// SetActivation activates or suspends a portal, with an optional note.
// Activating also marks the portal's open request activated. The scheduler
// reads activation_state at each slot, so the change applies from the next.
func SetActivation(ctx context.Context, pool *pgxpool.Pool, a manager.Actor, portalID int64, state string, note string, now time.Time) error {
	if state != store.ActivationActive && state != store.ActivationSuspended {
		return fmt.Errorf("unknown activation state %q", state)
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var domain string
		err := tx.QueryRow(ctx, `UPDATE portals SET activation_state = $2, updated_at = $3 WHERE id = $1 RETURNING domain`,
			portalID, state, now).Scan(&domain)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("set activation state: %w", err)
		}
		var reqID int64
		if state == store.ActivationActive {
			err := tx.QueryRow(ctx, `UPDATE activation_requests SET status = $3, updated_at = $2
				WHERE portal_id = $1 AND status IN ($4, $5) RETURNING id`, portalID, now, StatusActivated, StatusNew, StatusContacted).Scan(&reqID)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("close activation request: %w", err)
			}
		}
		action := "activate"
		if state == store.ActivationSuspended {
			action = "suspend"
		}
		return manager.Audit(ctx, tx, manager.AuditEntry{ManagerID: a.ManagerID, ManagerEmail: a.Email, Action: action,
			PortalID: portalID, PortalDomain: domain, RequestID: reqID, Note: note, IP: a.IP, At: now})
	})
}

// UpdateRequest sets a request's status and notes, recording what changed.
func UpdateRequest(ctx context.Context, pool *pgxpool.Pool, a manager.Actor, id int64, status Status, notes string, now time.Time) error {
	if _, ok := ParseStatus(string(status)); !ok {
		return fmt.Errorf("unknown request status %q", status)
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var (
			portalID       int64
			domain, oldNts string
			old            Status
		)
		err := tx.QueryRow(ctx, `SELECT r.portal_id, p.domain, r.status, r.notes FROM activation_requests r
			JOIN portals p ON p.id = r.portal_id WHERE r.id = $1 FOR UPDATE OF r`, id).Scan(&portalID, &domain, &old, &oldNts)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("load activation request: %w", err)
		}
		if old == status && oldNts == notes {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE activation_requests SET status = $2, notes = $3, updated_at = $4 WHERE id = $1`,
			id, status, notes, now)
		if err != nil {
			var pgErr interface{ SQLState() string }
			if errors.As(err, &pgErr) && pgErr.SQLState() == "23505" {
				return ErrOpenRequestExists
			}
			return fmt.Errorf("update activation request: %w", err)
		}
		e := manager.AuditEntry{ManagerID: a.ManagerID, ManagerEmail: a.Email, PortalID: portalID, PortalDomain: domain,
			RequestID: id, IP: a.IP, At: now}
		if old != status {
			e.Action, e.Note = "request_status", string(old)+" → "+string(status)
			if err := manager.Audit(ctx, tx, e); err != nil {
				return err
			}
		}
		if oldNts != notes {
			e.Action, e.Note = "request_notes", notes
			if err := manager.Audit(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// ErrOpenRequestExists: reopening a closed request while the portal has
// another open one would break "one open request per portal".
var ErrOpenRequestExists = errors.New("the portal has another open request")
