package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"b24learn/internal/secret"
)

// ErrNotFound says the row asked for does not exist.
var ErrNotFound = errors.New("not found")

// Install states and activation states of a portal (migrations/001).
const (
	InstallInstalled   = "installed"
	InstallUninstalled = "uninstalled"

	ActivationInactive  = "inactive"  // installed, nothing asked yet
	ActivationRequested = "requested" // the admin sent a request
	ActivationActive    = "active"    // a manager activated it: syncs run
	ActivationSuspended = "suspended" // a manager stopped it
)

// Portal is one Bitrix24 portal (tenant) without its secrets; the tokens stay
// encrypted in the row and are read only by the code that uses them.
type Portal struct {
	ID int64
	PortalInfo
	InstallState    string
	ActivationState string
	NeedsReconnect  bool
	TokenExpiresAt  time.Time // zero when unknown or erased
	HasAppToken     bool      // an application_token is stored
	InstalledAt     time.Time
	UninstalledAt   time.Time // zero while installed
	CreatedAt       time.Time
	UpdatedAt       time.Time

	// InstallGeneration grows with every verified install; iframe sessions
	// carry it, so a reinstall ends the sessions minted before it.
	InstallGeneration int64

	Health
}

// Health is the scheduler's record of a portal's syncs, as the status
// panel, the console and the alerts read it.
type Health struct {
	// NeedsAttention: its scheduled syncs failed often enough, or in a way
	// only its admin can mend, that the admin is told.
	NeedsAttention bool
	SyncFailures   int    // failed scheduled runs in a row
	LastSyncError  string // the latest failed run's error, "" after a success
}

// Origin is the portal's scheme://host[:port], taken from client_endpoint
// (the OAuth server's word), falling back to https://domain.
func (p Portal) Origin() string {
	if u, err := url.Parse(p.ClientEndpoint); err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http") {
		return u.Scheme + "://" + u.Host
	}
	return "https://" + p.Domain
}

// Installed reports whether the app is currently installed on the portal.
func (p Portal) Installed() bool { return p.InstallState == InstallInstalled }

// Activated reports whether iSpring activated the portal (and has not
// suspended it): only then may it write to Learn.
func (p Portal) Activated() bool { return p.ActivationState == ActivationActive }

// PortalInfo is what an install verified by the OAuth server says of the
// portal: who it is, where it answers, the app's scope and the portal's
// language. Each install stores it again; Portal reads it back.
type PortalInfo struct {
	MemberID       string
	Domain         string
	ClientEndpoint string
	ServerEndpoint string
	Scope          string
	Lang           string
}

// PortalInstall is what an install verified by the OAuth server stores.
type PortalInstall struct {
	PortalInfo
	AccessToken      string
	RefreshToken     string
	TokenExpiresAt   time.Time
	ApplicationToken string // "" when the install POST did not carry one
}

const portalColumns = `id, member_id, domain, client_endpoint, server_endpoint, scope, lang,
	install_state, activation_state, needs_reconnect, token_expires_at, application_token IS NOT NULL,
	installed_at, uninstalled_at, created_at, updated_at, install_generation,
	needs_attention, sync_failures, last_sync_error`

func scanPortal(row pgx.Row) (Portal, error) {
	var p Portal
	var expires, uninstalled *time.Time
	err := row.Scan(&p.ID, &p.MemberID, &p.Domain, &p.ClientEndpoint, &p.ServerEndpoint, &p.Scope, &p.Lang,
		&p.InstallState, &p.ActivationState, &p.NeedsReconnect, &expires, &p.HasAppToken,
		&p.InstalledAt, &uninstalled, &p.CreatedAt, &p.UpdatedAt, &p.InstallGeneration,
		&p.NeedsAttention, &p.SyncFailures, &p.LastSyncError)
	if errors.Is(err, pgx.ErrNoRows) {
		return Portal{}, ErrNotFound
	}
	if err != nil {
		return Portal{}, err
	}
	if expires != nil {
		p.TokenExpiresAt = *expires
	}
	if uninstalled != nil {
		p.UninstalledAt = *uninstalled
	}
	return p, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// UpsertPortal records an install keyed by member_id: a reinstall (or a
// repeated installer open) updates the one existing row, marks it installed,
// replaces its tokens and bumps its install generation (a reinstall whose
// uninstall event never arrived looks like a repeated open, so both count).
// A missing application token keeps the stored one while the app stays
// installed, and clears it after an uninstall, since every install gets a
// new one.
func UpsertPortal(ctx context.Context, db DBTX, kr *secret.Keyring, in PortalInstall) (Portal, error) {
	access, err := kr.EncryptString(in.AccessToken)
	if err != nil {
		return Portal{}, fmt.Errorf("encrypt access token: %w", err)
	}
	refresh, err := kr.EncryptString(in.RefreshToken)
	if err != nil {
		return Portal{}, fmt.Errorf("encrypt refresh token: %w", err)
	}
	appToken, err := kr.EncryptString(in.ApplicationToken)
	if err != nil {
		return Portal{}, fmt.Errorf("encrypt application token: %w", err)
	}
	lang := in.Lang
	if lang == "" {
		lang = "en"
	}
	row := db.QueryRow(ctx, `
		INSERT INTO portals (member_id, domain, client_endpoint, server_endpoint, scope, lang,
			access_token, refresh_token, token_expires_at, application_token, install_state)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'installed')
		ON CONFLICT (member_id) DO UPDATE SET
			domain = EXCLUDED.domain,
			client_endpoint = EXCLUDED.client_endpoint,
			server_endpoint = EXCLUDED.server_endpoint,
			scope = EXCLUDED.scope,
			lang = EXCLUDED.lang,
			access_token = EXCLUDED.access_token,
			refresh_token = EXCLUDED.refresh_token,
			token_expires_at = EXCLUDED.token_expires_at,
			application_token = CASE
				WHEN EXCLUDED.application_token IS NOT NULL THEN EXCLUDED.application_token
				WHEN portals.install_state = 'uninstalled' THEN NULL
				ELSE portals.application_token END,
			installed_at = CASE WHEN portals.install_state = 'uninstalled' THEN now() ELSE portals.installed_at END,
			install_state = 'installed',
			uninstalled_at = NULL,
			uninstall_recheck = false,
			erase_pending = false,
			erase_retention = false,
			needs_reconnect = false,
			install_generation = portals.install_generation + 1,
			updated_at = now()
		RETURNING `+portalColumns,
		in.MemberID, in.Domain, in.ClientEndpoint, in.ServerEndpoint, in.Scope, lang,
		access, refresh, nullTime(in.TokenExpiresAt), appToken)
	p, err := scanPortal(row)
	if err != nil {
		return Portal{}, fmt.Errorf("upsert portal: %w", err)
	}
	return p, nil
}

// GetPortal loads a portal by id.
func GetPortal(ctx context.Context, db DBTX, id int64) (Portal, error) {
	p, err := scanPortal(db.QueryRow(ctx, `SELECT `+portalColumns+` FROM portals WHERE id = $1`, id))
	if err != nil {
		return Portal{}, fmt.Errorf("get portal %d: %w", id, err)
	}
	return p, nil
}

// GetPortalByMemberID loads a portal by its Bitrix24 member_id.
func GetPortalByMemberID(ctx context.Context, db DBTX, memberID string) (Portal, error) {
	p, err := scanPortal(db.QueryRow(ctx, `SELECT `+portalColumns+` FROM portals WHERE member_id = $1`, memberID))
	if err != nil {
		return Portal{}, fmt.Errorf("get portal by member id: %w", err)
	}
	return p, nil
}

// LockPortal loads a portal by id and locks its row until the end of the
// transaction db belongs to.
func LockPortal(ctx context.Context, db DBTX, id int64) (Portal, error) {
	p, err := scanPortal(db.QueryRow(ctx, `SELECT `+portalColumns+` FROM portals WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return Portal{}, fmt.Errorf("lock portal %d: %w", id, err)
	}
	return p, nil
}

// LockPortalByMemberID loads a portal and locks its row until the end of the
// transaction db belongs to, so two events of one portal do not interleave.
func LockPortalByMemberID(ctx context.Context, db DBTX, memberID string) (Portal, error) {
	p, err := scanPortal(db.QueryRow(ctx, `SELECT `+portalColumns+` FROM portals WHERE member_id = $1 FOR UPDATE`, memberID))
	if err != nil {
		return Portal{}, fmt.Errorf("lock portal by member id: %w", err)
	}
	return p, nil
}

// SetApplicationToken stores a portal's application token (encrypted).
func SetApplicationToken(ctx context.Context, db DBTX, kr *secret.Keyring, id int64, token string) error {
	enc, err := kr.EncryptString(token)
	if err != nil {
		return fmt.Errorf("encrypt application token: %w", err)
	}
	return updatePortal(ctx, db, "set application token",
		`UPDATE portals SET application_token = $2, updated_at = now() WHERE id = $1`, id, enc)
}

// ApplicationToken returns a portal's stored application token, "" when none.
func ApplicationToken(ctx context.Context, db DBTX, kr *secret.Keyring, id int64) (string, error) {
	var enc []byte
	err := db.QueryRow(ctx, `SELECT application_token FROM portals WHERE id = $1`, id).Scan(&enc)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("read application token: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read application token: %w", err)
	}
	tok, err := kr.DecryptString(enc)
	if err != nil {
		return "", fmt.Errorf("decrypt application token: %w", err)
	}
	return tok, nil
}

// SetPortalTokens replaces a portal's token pair (an admin reopened the app
// and proved fresh tokens) and clears the "reconnect needed" flag.
func SetPortalTokens(ctx context.Context, db DBTX, kr *secret.Keyring, id int64, access, refresh string, expires time.Time) error {
	a, err := kr.EncryptString(access)
	if err != nil {
		return fmt.Errorf("encrypt access token: %w", err)
	}
	rt, err := kr.EncryptString(refresh)
	if err != nil {
		return fmt.Errorf("encrypt refresh token: %w", err)
	}
	return updatePortal(ctx, db, "set portal tokens", `UPDATE portals SET access_token = $2, refresh_token = $3, token_expires_at = $4,
		needs_reconnect = false, updated_at = now() WHERE id = $1`, id, a, rt, nullTime(expires))
}

// MarkPortalUninstalled records an uninstall and returns its time, by the
// database's clock. The tokens no longer work (Bitrix24 revoked them), so
// they are dropped too; the application token stays until a reinstall
// replaces it, so a repeated event still verifies.
func MarkPortalUninstalled(ctx context.Context, db DBTX, id int64) (time.Time, error) {
	return markUninstalled(ctx, db, `UPDATE portals SET install_state = 'uninstalled', uninstalled_at = now(),
		access_token = NULL, refresh_token = NULL, token_expires_at = NULL, uninstall_recheck = false, erase_pending = false, erase_retention = false,
		updated_at = now() WHERE id = $1 RETURNING uninstalled_at`, id)
}

// MarkPortalUninstalledForRecheck marks a portal uninstalled as
// MarkPortalUninstalled does, but keeps its tokens and sets
// uninstall_recheck, so that Bitrix24 can be asked again before the
// deferred erase, or before the data is kept without the tokens when the
// uninstall had no CLEAN (internal/uninstall, ConfirmRefused).
func MarkPortalUninstalledForRecheck(ctx context.Context, db DBTX, id int64, clean bool) (time.Time, error) {
	return markUninstalled(ctx, db, `UPDATE portals SET install_state = 'uninstalled', uninstalled_at = now(),
		uninstall_recheck = true, uninstall_clean = $2, erase_pending = false, erase_retention = false, updated_at = now()
		WHERE id = $1 RETURNING uninstalled_at`, id, clean)
}

// markUninstalled runs one of the two uninstall updates and returns the
// uninstall's time as stored: what the admin's e-mail and the console name,
// so that the deferred erase is counted from it too.
func markUninstalled(ctx context.Context, db DBTX, sql string, args ...any) (time.Time, error) {
	var at time.Time
	err := db.QueryRow(ctx, sql, args...).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, fmt.Errorf("mark portal uninstalled: %w", ErrNotFound)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("mark portal uninstalled: %w", err)
	}
	return at, nil
}

// MarkPortalErasePending records that the data of portal id, uninstalled
// with CLEAN and confirmed by Bitrix24, waits for its deferred erase, so
// that the erase is queued again when its job is lost. The erase
// (ErasePortalData), a reinstall (UpsertPortal) or an uninstall that keeps
// the data clears the mark.
func MarkPortalErasePending(ctx context.Context, db DBTX, id int64) error {
	return updatePortal(ctx, db, "mark portal erase pending",
		`UPDATE portals SET erase_pending = true, erase_retention = false, updated_at = now() WHERE id = $1`, id)
}

// MarkPortalRetentionErasePending records, as MarkPortalErasePending does,
// that the data of portal id waits for its erase, queued by the data
// retention of refused tokens rather than by an uninstall event: a lost job
// is queued again as the retention's erase.
func MarkPortalRetentionErasePending(ctx context.Context, db DBTX, id int64) error {
	return updatePortal(ctx, db, "mark portal retention erase pending",
		`UPDATE portals SET erase_pending = true, erase_retention = true, updated_at = now() WHERE id = $1`, id)
}

// KeepPortalData clears portal id's erase mark: its uninstall's erase was
// dropped and the data stays.
func KeepPortalData(ctx context.Context, db DBTX, id int64) error {
	return updatePortal(ctx, db, "keep portal data",
		`UPDATE portals SET erase_pending = false, erase_retention = false, updated_at = now() WHERE id = $1`, id)
}

// keptOnErase are per-portal tables a clean uninstall leaves: the portal
// row itself, and iSpring's own records, which are not the customer's data:
// what its managers did (who activated or suspended the portal and why) and
// the uninstall events received for the portal.
var keptOnErase = []string{"portals", "manager_audit", "uninstall_events"}

// detachedOnErase are per-portal tables whose rows an erase keeps without
// the portal's link or data, by a statement of their own: a confirmation
// e-mail sent counts against its recipient's cap across all portals
// (internal/alert, migrations/190), so erasing the sender and installing
// again must not reset the victim mailbox's count. The address goes; the
// recipient stays until the hourly maintenance finds the send too old to
// count (alert.Prune).
var detachedOnErase = map[string]string{
	"alert_confirm_sends": `UPDATE alert_confirm_sends SET portal_id = NULL, address = '' WHERE portal_id = $1`,
}

// auditNotesKept are the manager_audit actions whose note the app writes
// itself and which name no one (a request's old and new status, since when
// Bitrix24 refused the tokens of a portal erased by the retention). Every
// other note of the erased portal's lines is a manager's free text about
// the portal and its people (why it was activated or suspended, what its
// admin said on the phone), so an erase blanks it: the line stays, as
// iSpring's record of who did what and when, and note_erased_at says why
// its note is empty.
var auditNotesKept = []string{"request_status", "retention_erase", "uninstall_refuted"}

// ErasePortalData deletes what an uninstall with data[CLEAN]=1 asks to delete:
// every secret on the portal row, and every row of every other table that has
// a portal_id column (settings with the Learn password, mappings, runs, logs…)
// except the managers' audit trail and the uninstall events (keptOnErase);
// rows of detachedOnErase lose their portal and personal data instead, and
// the audit trail's lines of the portal lose their free-text notes
// (auditNotesKept).
// The tables are looked up in the catalog, so tables added by later migrations
// are covered without touching this function. The portal row itself stays
// (member_id, domain), so a reinstall finds it.
//
// Run it inside a transaction: a table whose foreign keys make it wait for
// another is retried after the others, under a savepoint.
func ErasePortalData(ctx context.Context, db DBTX, id int64) error {
	// The last sync error is a remote server's message about the portal's
	// data; the health it explains goes with it.
	if _, err := db.Exec(ctx, `UPDATE portals SET access_token = NULL, refresh_token = NULL,
		token_expires_at = NULL, application_token = NULL, uninstall_recheck = false, erase_pending = false, erase_retention = false, last_sync_error = '', sync_failures = 0,
		needs_attention = false, updated_at = now() WHERE id = $1`, id); err != nil {
		return fmt.Errorf("erase portal secrets: %w", err)
	}
	if _, err := db.Exec(ctx, `UPDATE manager_audit SET note = '', note_erased_at = now()
		WHERE portal_id = $1 AND note <> '' AND NOT (action = ANY($2))`, id, auditNotesKept); err != nil {
		return fmt.Errorf("erase manager notes: %w", err)
	}
	skipped := append([]string(nil), keptOnErase...)
	for table, detach := range detachedOnErase {
		if _, err := db.Exec(ctx, detach, id); err != nil {
			return fmt.Errorf("erase %s: %w", table, err)
		}
		skipped = append(skipped, table)
	}
	rows, err := db.Query(ctx, `
		SELECT c.table_name FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND c.column_name = 'portal_id'
			AND t.table_type = 'BASE TABLE' AND NOT (c.table_name = ANY($1))
		ORDER BY c.table_name`, skipped)
	if err != nil {
		return fmt.Errorf("list per-portal tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list per-portal tables: %w", err)
	}
	// A few passes settle any order that foreign keys between the tables need.
	for pass := 0; len(tables) > 0; pass++ {
		var later []string
		for _, table := range tables {
			err := deleteUnderSavepoint(ctx, db, table, id)
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23503" && pass < 5 { // foreign_key_violation
				later = append(later, table)
				continue
			}
			if err != nil {
				return fmt.Errorf("erase %s: %w", table, err)
			}
		}
		tables = later
	}
	return nil
}

func deleteUnderSavepoint(ctx context.Context, db DBTX, table string, id int64) error {
	if _, err := db.Exec(ctx, "SAVEPOINT erase_portal"); err != nil {
		return err
	}
	_, err := db.Exec(ctx, "DELETE FROM "+pgx.Identifier{table}.Sanitize()+" WHERE portal_id = $1", id)
	if err != nil {
		_, _ = db.Exec(ctx, "ROLLBACK TO SAVEPOINT erase_portal")
		return err
	}
	_, err = db.Exec(ctx, "RELEASE SAVEPOINT erase_portal")
	return err
}

// SetPortalAddress records a portal's new address after a rename, as the
// OAuth server reported it; member_id stays the key.
func SetPortalAddress(ctx context.Context, db DBTX, id int64, domain, clientEndpoint, serverEndpoint string) error {
	return updatePortal(ctx, db, "set portal address", `UPDATE portals SET domain = $2, client_endpoint = $3,
		server_endpoint = COALESCE(NULLIF($4, ''), server_endpoint), updated_at = now() WHERE id = $1`,
		id, domain, clientEndpoint, serverEndpoint)
}

// updatePortal runs sql, an UPDATE of the one portal row whose id is $1;
// what names the change in the error, ErrNotFound when no such portal.
func updatePortal(ctx context.Context, db DBTX, what, sql string, args ...any) error {
	tag, err := db.Exec(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}
