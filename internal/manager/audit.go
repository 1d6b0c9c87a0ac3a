package manager

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/store"
)

// AuditEntry is one line of the console's audit trail.
type AuditEntry struct {
	ID           int64
	ManagerID    int64
	ManagerEmail string
	// sign_in, sign_out, totp_enable, activate, suspend, request_status,
	// request_notes, river_ui, retention_erase (the hourly maintenance);
	// from the shell (ManagerEmail CLIActor, the account in Note):
	// totp_reset, password_set, disable, enable.
	Action       string
	PortalID     int64 // 0 when none
	PortalDomain string
	RequestID    int64 // 0 when none
	Note         string
	// NoteErased: the portal's data was erased and the note with it
	// (store.ErasePortalData); zero when not.
	NoteErased time.Time
	IP         string
	At         time.Time
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

const auditColumns = `id, coalesce(manager_id, 0), manager_email, action, coalesce(portal_id, 0), portal_domain,
	coalesce(request_id, 0), note, note_erased_at, ip, created_at`

func scanAudit(row pgx.Row) (AuditEntry, error) {
	var e AuditEntry
	var erased *time.Time
	err := row.Scan(&e.ID, &e.ManagerID, &e.ManagerEmail, &e.Action, &e.PortalID, &e.PortalDomain,
		&e.RequestID, &e.Note, &erased, &e.IP, &e.At)
	if erased != nil {
		e.NoteErased = *erased
	}
	return e, err
}

// ListAudit returns the trail, newest first; portalID 0 means every portal.
func ListAudit(ctx context.Context, db store.DBTX, portalID int64, limit int) ([]AuditEntry, error) {
	return store.QueryAll(ctx, db, "list audit", scanAudit, `SELECT `+auditColumns+`
		FROM manager_audit WHERE $1 = 0 OR portal_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2`, portalID, limit)
}

// PageAudit reads one page of the trail, newest first, with its count;
// portalID 0 means every portal.
func PageAudit(ctx context.Context, db store.DBTX, portalID int64, c store.Cursor, size int) (store.Page[AuditEntry], error) {
	l := store.List{What: "list audit", Select: `SELECT ` + auditColumns + ` FROM manager_audit`,
		CountFrom: "manager_audit", Where: "true", At: "created_at", ID: "id"}
	if portalID != 0 {
		// A condition of its own rather than "$1 = 0 OR ...", so the
		// planner can use manager_audit_portal.
		l.Where, l.Args = "portal_id = $1", []any{portalID}
	}
	return store.PageOf(ctx, db, l, c, size, scanAudit, func(e AuditEntry) store.Key {
		return store.Key{At: e.At, ID: e.ID}
	})
}

// Actor is who does something in the console.
type Actor struct {
	ManagerID int64
	Email     string
	IP        string
}
