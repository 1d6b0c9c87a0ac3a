package lead

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/store"
)

// AuditEntry is one line of the console's audit trail.
type AuditEntry struct {
	ID           int64
	ManagerID    int64
	ManagerEmail string
	Action       string // sign_in, sign_out, activate, suspend, request_status, request_notes
	PortalID     int64  // 0 when none
	PortalDomain string
	RequestID    int64 // 0 when none
	Note         string
	IP           string
	At           time.Time
}

// Audit appends e to the trail.
func Audit(ctx context.Context, db store.DBTX, e AuditEntry) error {
	_, err := db.Exec(ctx, `
		INSERT INTO manager_audit (manager_id, manager_email, action, portal_id, portal_domain, request_id, note, ip, created_at)
		VALUES (NULLIF($1, 0), $2, $3, NULLIF($4, 0), $5, NULLIF($6, 0), $7, $8, $9)`,
		e.ManagerID, e.ManagerEmail, e.Action, e.PortalID, e.PortalDomain, e.RequestID, e.Note, e.IP, e.At)
	if err != nil {
		return fmt.Errorf("write audit: %w", err)
	}
	return nil
}

// ListAudit returns the trail, newest first; portalID 0 means every portal.
func ListAudit(ctx context.Context, db store.DBTX, portalID int64, limit int) ([]AuditEntry, error) {
	rows, err := db.Query(ctx, `
		SELECT id, coalesce(manager_id, 0), manager_email, action, coalesce(portal_id, 0), portal_domain,
		       coalesce(request_id, 0), note, ip, created_at
		FROM manager_audit WHERE $1 = 0 OR portal_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2`, portalID, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := row.Scan(&e.ID, &e.ManagerID, &e.ManagerEmail, &e.Action, &e.PortalID, &e.PortalDomain,
			&e.RequestID, &e.Note, &e.IP, &e.At)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}

// Run is a sync run as the console shows it.
type Run struct {
	ID         int64
	Trigger    string
	Status     string
	StartedAt  time.Time
	FinishedAt *time.Time
	Error      string
}

// Portal is a portal as the console shows it.
type Portal struct {
	ID              int64
	Domain          string
	MemberID        string
	InstallState    string
	ActivationState string
	LearnURL        string
	NeedsReconnect  bool
	NeedsAttention  bool
	CreatedAt       time.Time
	LastRun         *Run
}

// Attention says whether the portal needs someone to look at it.
func (p *Portal) Attention() bool {
	return p.NeedsAttention || p.NeedsReconnect || (p.LastRun != nil && p.LastRun.Status == "failed")
}

const portalQuery = `
	SELECT p.id, p.domain, p.member_id, p.install_state, p.activation_state, coalesce(s.learn_url, ''),
	       p.needs_reconnect, p.needs_attention, p.created_at,
	       r.id, r.trigger, r.status, r.started_at, r.finished_at, r.error
	FROM portals p
	LEFT JOIN portal_settings s ON s.portal_id = p.id
	LEFT JOIN LATERAL (
		SELECT id, trigger, status, started_at, finished_at, error FROM sync_runs
		WHERE portal_id = p.id AND trigger <> 'preview' ORDER BY started_at DESC, id DESC LIMIT 1
	) r ON true`

func scanPortal(row pgx.Row) (*Portal, error) {
	var p Portal
	var (
		runID              *int64
		trig, status, rerr *string
		started            *time.Time
		finished           *time.Time
	)
	err := row.Scan(&p.ID, &p.Domain, &p.MemberID, &p.InstallState, &p.ActivationState, &p.LearnURL,
		&p.NeedsReconnect, &p.NeedsAttention, &p.CreatedAt, &runID, &trig, &status, &started, &finished, &rerr)
	if err != nil {
		return nil, err
	}
	if runID != nil {
		p.LastRun = &Run{ID: *runID, Trigger: *trig, Status: *status, StartedAt: *started, FinishedAt: finished, Error: *rerr}
	}
	return &p, nil
}

// ListPortals lists every portal for the console, newest first.
func ListPortals(ctx context.Context, db store.DBTX, limit int) ([]*Portal, error) {
	rows, err := db.Query(ctx, portalQuery+` ORDER BY p.created_at DESC, p.id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list portals: %w", err)
	}
	defer rows.Close()
	var out []*Portal
	for rows.Next() {
		p, err := scanPortal(rows)
		if err != nil {
			return nil, fmt.Errorf("list portals: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list portals: %w", err)
	}
	return out, nil
}

// GetPortal loads one portal for the console.
func GetPortal(ctx context.Context, db store.DBTX, id int64) (*Portal, error) {
	p, err := scanPortal(db.QueryRow(ctx, portalQuery+` WHERE p.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load portal: %w", err)
	}
	return p, nil
}

// Actor is who does something in the console.
type Actor struct {
	ManagerID int64
	Email     string
	IP        string
}

// Activation states a manager can set.
const (
	StateActive    = "active"
	StateSuspended = "suspended"
)

// SetActivation activates or suspends a portal, with an optional note.
// Activating also marks the portal's open request activated. The scheduler
// reads activation_state at each slot, so the change applies from the next.
func SetActivation(ctx context.Context, pool *pgxpool.Pool, a Actor, portalID int64, state, note string, now time.Time) error {
	if state != StateActive && state != StateSuspended {
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
		if state == StateActive {
			err := tx.QueryRow(ctx, `UPDATE activation_requests SET status = 'activated', updated_at = $2
				WHERE portal_id = $1 AND status IN ('new', 'contacted') RETURNING id`, portalID, now).Scan(&reqID)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("close activation request: %w", err)
			}
		}
		action := "activate"
		if state == StateSuspended {
			action = "suspend"
		}
		return Audit(ctx, tx, AuditEntry{ManagerID: a.ManagerID, ManagerEmail: a.Email, Action: action,
			PortalID: portalID, PortalDomain: domain, RequestID: reqID, Note: note, IP: a.IP, At: now})
	})
}

// UpdateRequest sets a request's status and notes, recording what changed.
func UpdateRequest(ctx context.Context, pool *pgxpool.Pool, a Actor, id int64, status, notes string, now time.Time) error {
	if !ValidStatus(status) {
		return fmt.Errorf("unknown request status %q", status)
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var (
			portalID            int64
			domain, old, oldNts string
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
		e := AuditEntry{ManagerID: a.ManagerID, ManagerEmail: a.Email, PortalID: portalID, PortalDomain: domain,
			RequestID: id, IP: a.IP, At: now}
		if old != status {
			e.Action, e.Note = "request_status", old+" → "+status
			if err := Audit(ctx, tx, e); err != nil {
				return err
			}
		}
		if oldNts != notes {
			e.Action, e.Note = "request_notes", notes
			if err := Audit(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// ErrOpenRequestExists: reopening a closed request while the portal has
// another open one would break "one open request per portal".
var ErrOpenRequestExists = errors.New("the portal has another open request")
