package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/store"
)

// Trigger says why a run happens, as stored in sync_runs and carried in the
// sync jobs' args.
type Trigger string

const (
	TriggerScheduled Trigger = "scheduled"
	TriggerManual    Trigger = "manual"
	TriggerApproved  Trigger = "approved"
	TriggerPreview   Trigger = "preview"
)

// Run statuses as stored in sync_runs.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunPartial   = "partial"
	RunHeld      = "held"
	RunFailed    = "failed"
	RunPreviewed = "previewed"
)

// Item statuses as stored in sync_run_items.
const (
	ItemApplied = "applied"
	ItemRefused = "refused"
	ItemHeld    = "held"
	ItemPlanned = "planned"
	ItemFailed  = "failed"
	// ItemWaiting: an employee waiting for a licence; not a failure.
	ItemWaiting = "waiting"
	// ItemConflict: a Learn user another portal owns (or, in the owner's
	// report, that another portal also claims).
	ItemConflict = "conflict"
	// ItemInvited: an employee not created until they accept their
	// Bitrix24 invitation; not a failure.
	ItemInvited = "invited"
	// ItemNotice: a remark on the run, not about one object (the one row
	// saying invited users could not be told apart).
	ItemNotice = "notice"
)

// Store keeps mappings and run reports in PostgreSQL. Every method takes the
// portal id first and every query filters on it.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore wraps a pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// LicenceWait is a user waiting for a licence, with when its reactivation
// was last tried (zero: never).
type LicenceWait struct {
	B24ID int64
	Since time.Time
	Tried time.Time
}

// LicenceWaits lists the portal's users waiting for a licence, longest
// waiting first.
func (s *Store) LicenceWaits(ctx context.Context, portalID int64) ([]LicenceWait, error) {
	return store.QueryAll(ctx, s.pool, "read licence waits", func(r pgx.Row) (LicenceWait, error) {
		var w LicenceWait
		err := r.Scan(&w.B24ID, &w.Since, &w.Tried)
		return w, err
	}, `SELECT b24_id, licence_wait_since, coalesce(licence_tried_at, 'epoch'::timestamptz)
		FROM sync_mappings WHERE portal_id = $1 AND kind = 'user' AND licence_wait_since IS NOT NULL
		ORDER BY licence_wait_since, b24_id`, portalID)
}

// SetLicenceWaits records the run's outcome: exactly the users in waiting
// wait for a licence (keeping when they started to), and the users in tried
// had their activation tried at now.
func (s *Store) SetLicenceWaits(ctx context.Context, portalID int64, waiting, tried []int64, now time.Time) error {
	if waiting == nil {
		waiting = []int64{}
	}
	if tried == nil {
		tried = []int64{}
	}
	_, err := s.pool.Exec(ctx, `UPDATE sync_mappings SET
			licence_wait_since = CASE WHEN b24_id = ANY($2) THEN coalesce(licence_wait_since, $4) END,
			licence_tried_at = CASE WHEN b24_id = ANY($3) THEN $4 WHEN b24_id = ANY($2) THEN licence_tried_at END
		WHERE portal_id = $1 AND kind = 'user' AND (licence_wait_since IS NOT NULL OR b24_id = ANY($2) OR b24_id = ANY($3))`,
		portalID, waiting, tried, now)
	if err != nil {
		return fmt.Errorf("record licence waits: %w", err)
	}
	return nil
}

// SetLearnActive records how many active users the Learn account had when
// the run ended.
func (s *Store) SetLearnActive(ctx context.Context, portalID, runID int64, n int) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sync_runs SET learn_active = $3 WHERE portal_id = $1 AND id = $2`,
		portalID, runID, n); err != nil {
		return fmt.Errorf("record learn active users: %w", err)
	}
	return nil
}

// LastLearnActive is the active-user count the portal's latest run that
// recorded one left, and whether there is one.
func (s *Store) LastLearnActive(ctx context.Context, portalID int64) (int, bool, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT learn_active FROM sync_runs WHERE portal_id = $1 AND learn_active IS NOT NULL
		ORDER BY started_at DESC, id DESC LIMIT 1`, portalID).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read learn active users: %w", err)
	}
	return n, true, nil
}

// WriteLimit is the write concurrency stored for a Learn account by its last
// run, 0 when none is stored.
func (s *Store) WriteLimit(ctx context.Context, account string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT write_limit FROM learn_write_limits WHERE learn_account = $1`, account).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load write limit: %w", err)
	}
	return n, nil
}

// SetWriteLimit stores the write concurrency a run found for a Learn account.
func (s *Store) SetWriteLimit(ctx context.Context, account string, limit int) error {
	if limit <= 0 {
		return fmt.Errorf("store write limit: %d is not a limit", limit)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO learn_write_limits (learn_account, write_limit) VALUES ($1, $2)
		ON CONFLICT (learn_account) DO UPDATE SET write_limit = EXCLUDED.write_limit, updated_at = now()`, account, limit); err != nil {
		return fmt.Errorf("store write limit: %w", err)
	}
	return nil
}
