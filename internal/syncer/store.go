package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
)

// DefaultRetention is how long run reports are kept (docs/architecture.md,
// "Sync rules the code relies on").
const DefaultRetention = 90 * 24 * time.Hour

// RunRecord is one row of sync_runs.
type RunRecord struct {
	ID         int64
	PortalID   int64
	Trigger    Trigger
	Status     string
	StartedAt  time.Time
	FinishedAt *time.Time
	Counts     map[string]int
	Error      string
	Held       []int64
	ResolvedBy *int64
}

// RunItem is one row of sync_run_items: an object changed, refused or held.
type RunItem struct {
	ID      int64
	RunID   int64
	Kind    Kind
	B24ID   int64
	LearnID string
	Action  Action
	Before  map[string]string
	After   map[string]string
	Reason  string
	Status  string
}

// Store keeps mappings and run reports in PostgreSQL. Every method takes the
// portal id first and every query filters on it.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore wraps a pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Mappings returns the portal's whole mapping.
func (s *Store) Mappings(ctx context.Context, portalID int64) ([]Mapping, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT kind, b24_id, learn_id, fingerprint, licence_wait_since IS NOT NULL
		FROM sync_mappings WHERE portal_id = $1 ORDER BY kind, b24_id`, portalID)
	if err != nil {
		return nil, fmt.Errorf("query mappings: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Mapping, error) {
		var m Mapping
		var kind string
		err := r.Scan(&kind, &m.B24ID, &m.LearnID, &m.Fingerprint, &m.LicenceWait)
		m.Kind = Kind(kind)
		switch m.Kind { // the constants, not a copy per row
		case KindUser:
			m.Kind = KindUser
		case KindDepartment:
			m.Kind = KindDepartment
		}
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("read mappings: %w", err)
	}
	return out, nil
}

// StartRun inserts a running run and returns its id. The caller holds the
// portal's sync lock, so a run still marked running was interrupted (a
// killed process) and is closed as failed.
func (s *Store) StartRun(ctx context.Context, portalID int64, trigger Trigger) (int64, error) {
	if _, err := s.pool.Exec(ctx, `UPDATE sync_runs SET status = 'failed', finished_at = now(), error = 'interrupted'
		WHERE portal_id = $1 AND status = 'running'`, portalID); err != nil {
		return 0, fmt.Errorf("close interrupted runs: %w", err)
	}
	var id int64
	err := s.pool.QueryRow(ctx,
		`INSERT INTO sync_runs (portal_id, trigger) VALUES ($1, $2) RETURNING id`, portalID, trigger).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert run: %w", err)
	}
	return id, nil
}

const insertItem = `INSERT INTO sync_run_items
	(run_id, portal_id, kind, b24_id, learn_id, action, before, after, reason, status)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

func itemArgs(portalID, runID int64, it RunItem) []any {
	return []any{runID, portalID, string(it.Kind), it.B24ID, it.LearnID, string(it.Action),
		jsonOrNil(it.Before), jsonOrNil(it.After), it.Reason, it.Status}
}

func jsonOrNil(m map[string]string) []byte {
	if m == nil {
		return nil
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return b
}

// StepRecord is the outcome of one applied step: its report row and, when
// not nil, the mapping it makes.
type StepRecord struct {
	Item    RunItem
	Mapping *Mapping
}

const upsertMapping = `INSERT INTO sync_mappings (portal_id, kind, b24_id, learn_id, fingerprint, updated_at)
	VALUES ($1, $2, $3, $4, $5, now())
	ON CONFLICT (portal_id, kind, b24_id)
	DO UPDATE SET learn_id = EXCLUDED.learn_id, fingerprint = EXCLUDED.fingerprint, updated_at = now()`

// The applier claimed an existing user before writing to it; a user it
// created is claimed here, with its mapping.
const insertOwner = `INSERT INTO learn_user_owners (learn_account, learn_id, portal_id)
	VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`

// RecordStep stores the outcome of one applied step in one transaction,
// right after its Learn write.
func (s *Store) RecordStep(ctx context.Context, portalID, runID int64, it RunItem, m *Mapping) error {
	return s.RecordSteps(ctx, portalID, runID, []StepRecord{{Item: it, Mapping: m}})
}

// RecordSteps stores the outcomes of several applied steps in one
// transaction and one round trip: all of them or none.
func (s *Store) RecordSteps(ctx context.Context, portalID, runID int64, recs []StepRecord) error {
	if len(recs) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, r := range recs {
		if m := r.Mapping; m != nil {
			batch.Queue(upsertMapping, portalID, string(m.Kind), m.B24ID, m.LearnID, m.Fingerprint)
			if m.Kind == KindUser && m.Account != "" {
				batch.Queue(insertOwner, m.Account, m.LearnID, portalID)
			}
		}
		batch.Queue(insertItem, itemArgs(portalID, runID, r.Item)...)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin record steps: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("record steps: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit record steps: %w", err)
	}
	return nil
}

// RecordItems stores report rows that change no mapping (refused, held,
// planned) in one batch.
func (s *Store) RecordItems(ctx context.Context, portalID, runID int64, items []RunItem) error {
	if len(items) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, it := range items {
		batch.Queue(insertItem, itemArgs(portalID, runID, it)...)
	}
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("insert run items: %w", err)
	}
	return nil
}

// FinishRun closes a run with its result.
func (s *Store) FinishRun(ctx context.Context, portalID, runID int64, status string, counts map[string]int, errText string, held []int64) error {
	if counts == nil {
		counts = map[string]int{}
	}
	if held == nil {
		held = []int64{}
	}
	c, _ := json.Marshal(counts)
	h, _ := json.Marshal(held)
	tag, err := s.pool.Exec(ctx, `UPDATE sync_runs SET status = $3, finished_at = now(), counts = $4, error = $5, held = $6
		WHERE portal_id = $1 AND id = $2`, portalID, runID, status, c, errText, h)
	if err != nil {
		return fmt.Errorf("finish run: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("finish run %d: not found", runID)
	}
	return nil
}

const runColumns = `id, portal_id, trigger, status, started_at, finished_at, counts, error, held, resolved_by`

func scanRun(r pgx.Row) (RunRecord, error) {
	var rr RunRecord
	var counts, held []byte
	if err := r.Scan(&rr.ID, &rr.PortalID, &rr.Trigger, &rr.Status, &rr.StartedAt, &rr.FinishedAt,
		&counts, &rr.Error, &held, &rr.ResolvedBy); err != nil {
		return rr, err
	}
	if err := json.Unmarshal(counts, &rr.Counts); err != nil {
		return rr, fmt.Errorf("decode counts: %w", err)
	}
	if err := json.Unmarshal(held, &rr.Held); err != nil {
		return rr, fmt.Errorf("decode held: %w", err)
	}
	return rr, nil
}

// ErrRunNotFound is returned for a run id the portal does not have.
var ErrRunNotFound = errors.New("run not found")

// Run returns one run of the portal.
func (s *Store) Run(ctx context.Context, portalID, runID int64) (RunRecord, error) {
	rr, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM sync_runs WHERE portal_id = $1 AND id = $2`, portalID, runID))
	if errors.Is(err, pgx.ErrNoRows) {
		return rr, ErrRunNotFound
	}
	if err != nil {
		return rr, fmt.Errorf("read run: %w", err)
	}
	return rr, nil
}

// Runs lists the portal's latest runs, newest first.
func (s *Store) Runs(ctx context.Context, portalID int64, limit int) ([]RunRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM sync_runs WHERE portal_id = $1
		ORDER BY started_at DESC, id DESC LIMIT $2`, portalID, limit)
	if err != nil {
		return nil, fmt.Errorf("query runs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunRecord, error) { return scanRun(r) })
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	return out, nil
}

// LatestHeld returns the newest held run not yet released by an approved
// run, or nil.
func (s *Store) LatestHeld(ctx context.Context, portalID int64) (*RunRecord, error) {
	rr, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM sync_runs
		WHERE portal_id = $1 AND status = 'held' AND resolved_by IS NULL
		ORDER BY started_at DESC, id DESC LIMIT 1`, portalID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read held run: %w", err)
	}
	return &rr, nil
}

// ResolveHeld marks held runs of the portal as released by an approved run.
func (s *Store) ResolveHeld(ctx context.Context, portalID, heldRunID, byRunID int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE sync_runs SET resolved_by = $3
		WHERE portal_id = $1 AND status = 'held' AND resolved_by IS NULL AND id <= $2`, portalID, heldRunID, byRunID)
	if err != nil {
		return fmt.Errorf("resolve held runs: %w", err)
	}
	return nil
}

// RunItems returns a run's report rows in the order they were written.
func (s *Store) RunItems(ctx context.Context, portalID, runID int64) ([]RunItem, error) {
	return s.runItems(ctx, portalID, runID, nil)
}

// runItems reads a run's report rows, at most *limit of them when limit is
// set (LIMIT NULL is no limit).
func (s *Store) runItems(ctx context.Context, portalID, runID int64, limit *int) ([]RunItem, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, run_id, kind, b24_id, learn_id, action, before, after, reason, status
		FROM sync_run_items WHERE portal_id = $1 AND run_id = $2 ORDER BY id LIMIT $3`, portalID, runID, limit)
	if err != nil {
		return nil, fmt.Errorf("query run items: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunItem, error) {
		var it RunItem
		var kind, action string
		var before, after []byte
		if err := r.Scan(&it.ID, &it.RunID, &kind, &it.B24ID, &it.LearnID, &action, &before, &after, &it.Reason, &it.Status); err != nil {
			return it, err
		}
		it.Kind, it.Action = Kind(kind), Action(action)
		if before != nil {
			if err := json.Unmarshal(before, &it.Before); err != nil {
				return it, fmt.Errorf("decode before: %w", err)
			}
		}
		if after != nil {
			if err := json.Unmarshal(after, &it.After); err != nil {
				return it, fmt.Errorf("decode after: %w", err)
			}
		}
		return it, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read run items: %w", err)
	}
	return out, nil
}

// DeleteMappings forgets the portal's mapping (uninstall with CLEAN=1) and
// with it the Learn users it owns, which another portal may then claim.
func (s *Store) DeleteMappings(ctx context.Context, portalID int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sync_mappings WHERE portal_id = $1`, portalID); err != nil {
		return fmt.Errorf("delete mappings: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM learn_user_owners WHERE portal_id = $1`, portalID); err != nil {
		return fmt.Errorf("delete ownership: %w", err)
	}
	return nil
}

// PurgeRuns deletes run reports (with their items) that started before now
// minus keep, across all portals: retention is the operator's policy, not a
// tenant's, so this one query deliberately spans portals. Runs still running
// are kept.
func (s *Store) PurgeRuns(ctx context.Context, keep time.Duration) (int64, error) {
	if keep <= 0 {
		keep = DefaultRetention
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM sync_runs WHERE started_at < now() - $1::interval AND status <> 'running'`,
		fmt.Sprintf("%d seconds", int64(keep/time.Second)))
	if err != nil {
		return 0, fmt.Errorf("purge runs: %w", err)
	}
	return tag.RowsAffected(), nil
}

// AccountKey is how a Learn account is named in the ownership tables: its
// address lowercased, without scheme and trailing slash, so that two portals
// typing the same account differently share it.
func AccountKey(learnURL string) string {
	u := strings.ToLower(strings.TrimSpace(learnURL))
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	return strings.TrimRight(u, "/")
}

// Owners reads who owns the account's Learn users: the ids this portal owns,
// and the others with their owner portal's domain.
func (s *Store) Owners(ctx context.Context, account string, portalID int64) (own map[string]bool, foreign map[string]string, err error) {
	rows, err := s.pool.Query(ctx, `SELECT o.learn_id, o.portal_id, p.domain
		FROM learn_user_owners o JOIN portals p ON p.id = o.portal_id WHERE o.learn_account = $1`, account)
	if err != nil {
		return nil, nil, fmt.Errorf("query owners: %w", err)
	}
	defer rows.Close()
	own, foreign = map[string]bool{}, map[string]string{}
	for rows.Next() {
		var id, domain string
		var owner int64
		if err := rows.Scan(&id, &owner, &domain); err != nil {
			return nil, nil, fmt.Errorf("read owners: %w", err)
		}
		if owner == portalID {
			own[id] = true
		} else {
			foreign[id] = domain
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read owners: %w", err)
	}
	return own, foreign, nil
}

// ErrOwnedElsewhere is a Learn user another portal owns.
type ErrOwnedElsewhere struct {
	LearnID string
	Domain  string // the owner portal's domain
}

func (e *ErrOwnedElsewhere) Error() string {
	return fmt.Sprintf("Learn user %s belongs to portal %s, which synced it first; this portal leaves it alone", e.LearnID, e.Domain)
}

// Claim makes the portal the owner of a Learn user unless another portal
// owns it already, which it reports as *ErrOwnedElsewhere. The primary key
// decides between concurrent claims.
func (s *Store) Claim(ctx context.Context, account, learnID string, portalID int64) error {
	var owner int64
	var domain string
	// DO UPDATE (a no-op) rather than DO NOTHING: it returns the winner's
	// row even when a concurrent claim committed after this statement began.
	err := s.pool.QueryRow(ctx, `INSERT INTO learn_user_owners (learn_account, learn_id, portal_id) VALUES ($1, $2, $3)
		ON CONFLICT (learn_account, learn_id) DO UPDATE SET portal_id = learn_user_owners.portal_id
		RETURNING portal_id`, account, learnID, portalID).Scan(&owner)
	if err != nil {
		return fmt.Errorf("claim learn user: %w", err)
	}
	if owner == portalID {
		return nil
	}
	if err := s.pool.QueryRow(ctx, `SELECT domain FROM portals WHERE id = $1`, owner).Scan(&domain); err != nil {
		return fmt.Errorf("read owner portal: %w", err)
	}
	return &ErrOwnedElsewhere{LearnID: learnID, Domain: domain}
}

// Conflict is an employee of one portal whose Learn user another portal owns.
type Conflict struct {
	B24ID   int64
	LearnID string
}

// RecordConflicts replaces the portal's recorded conflicts in the account
// with this run's, so the owners' reports can name this portal.
func (s *Store) RecordConflicts(ctx context.Context, account string, portalID int64, cs []Conflict) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ids := make([]int64, len(cs))
		for i, c := range cs {
			ids[i] = c.B24ID
		}
		if _, err := tx.Exec(ctx, `DELETE FROM learn_user_conflicts WHERE portal_id = $1 AND NOT (b24_id = ANY($2))`,
			portalID, ids); err != nil {
			return fmt.Errorf("clear conflicts: %w", err)
		}
		for _, c := range cs {
			if _, err := tx.Exec(ctx, `INSERT INTO learn_user_conflicts (learn_account, learn_id, portal_id, b24_id, owner_portal_id)
				SELECT $1, $2, $3, $4, o.portal_id FROM learn_user_owners o WHERE o.learn_account = $1 AND o.learn_id = $2
				ON CONFLICT (portal_id, b24_id) DO UPDATE SET learn_account = EXCLUDED.learn_account,
					learn_id = EXCLUDED.learn_id, owner_portal_id = EXCLUDED.owner_portal_id, seen_at = now()`,
				account, c.LearnID, portalID, c.B24ID); err != nil {
				return fmt.Errorf("record conflict: %w", err)
			}
		}
		return nil
	})
}

// Contest is a Learn user this portal owns that another portal's employee
// also matches.
type Contest struct {
	B24ID   int64 // this portal's employee
	LearnID string
	Domain  string // the other portal
}

// Contested lists the portal's Learn users in the account that other
// portals' last runs reported as conflicts.
func (s *Store) Contested(ctx context.Context, account string, portalID int64) ([]Contest, error) {
	rows, err := s.pool.Query(ctx, `SELECT coalesce(m.b24_id, 0), c.learn_id, p.domain
		FROM learn_user_conflicts c JOIN portals p ON p.id = c.portal_id
		LEFT JOIN sync_mappings m ON m.portal_id = c.owner_portal_id AND m.kind = 'user' AND m.learn_id = c.learn_id
		WHERE c.owner_portal_id = $1 AND c.learn_account = $2 ORDER BY c.learn_id, p.domain`, portalID, account)
	if err != nil {
		return nil, fmt.Errorf("query contested users: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Contest, error) {
		var c Contest
		return c, r.Scan(&c.B24ID, &c.LearnID, &c.Domain)
	})
	if err != nil {
		return nil, fmt.Errorf("read contested users: %w", err)
	}
	return out, nil
}

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
	rows, err := s.pool.Query(ctx, `SELECT b24_id, licence_wait_since, coalesce(licence_tried_at, 'epoch'::timestamptz)
		FROM sync_mappings WHERE portal_id = $1 AND kind = 'user' AND licence_wait_since IS NOT NULL
		ORDER BY licence_wait_since, b24_id`, portalID)
	if err != nil {
		return nil, fmt.Errorf("query licence waits: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LicenceWait, error) {
		var w LicenceWait
		return w, r.Scan(&w.B24ID, &w.Since, &w.Tried)
	})
	if err != nil {
		return nil, fmt.Errorf("read licence waits: %w", err)
	}
	return out, nil
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
