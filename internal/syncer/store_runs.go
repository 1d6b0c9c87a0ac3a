// Run reports in the store: sync_runs and sync_run_items, written as a run applies, read by the pages.

package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/remote"
	"b24learn/internal/store"
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
	// Items is how many report rows the run has (sync_run_items), as
	// counted when they were written.
	Items int
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
	Reason  Reasons
	Status  string
}

// StartRun inserts a running run and returns its id. The caller holds the
// portal's sync lock, so a run still marked running was interrupted (a
// killed process) and is closed as failed.
func (s *Store) StartRun(ctx context.Context, portalID int64, trigger Trigger) (int64, error) {
	if _, err := s.pool.Exec(ctx, `UPDATE sync_runs SET status = 'failed', finished_at = now(), error = $2
		WHERE portal_id = $1 AND status = 'running'`, portalID, RunInterrupted); err != nil {
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

// itemColumns are insertItem's columns, in itemArgs' order, for COPY.
var itemColumns = []string{"run_id", "portal_id", "kind", "b24_id", "learn_id", "action", "before", "after", "reason", "status"}

// countItems adds n report rows to a run's total and, while it runs, their
// counts (deltas, keyed as itemCounts keys them) to its counts: the status
// panel reads both from the run's row instead of counting its items.
const countItems = `UPDATE sync_runs SET items = items + $3,
	counts = CASE WHEN status = 'running' THEN counts || COALESCE((SELECT jsonb_object_agg(d.key, COALESCE((counts->>d.key)::int, 0) + d.value::int)
		FROM jsonb_each_text($4::jsonb) d), '{}') ELSE counts END
	WHERE portal_id = $1 AND id = $2`

// itemCounts keys report rows as a finished run's counts are: kind.action
// for applied (or planned) steps, kind.status for the others.
func itemCounts(items []RunItem) []byte {
	out := map[string]int{}
	for _, it := range items {
		switch it.Status {
		case ItemApplied, ItemPlanned:
			out[string(it.Kind)+"."+string(it.Action)]++
		default:
			out[string(it.Kind)+"."+it.Status]++
		}
	}
	b, _ := json.Marshal(out) // a map of ints always marshals
	return b
}

func itemArgs(portalID, runID int64, it RunItem) []any {
	return []any{runID, portalID, string(it.Kind), it.B24ID, it.LearnID, string(it.Action),
		jsonOrNil(it.Before), jsonOrNil(it.After), it.Reason, it.Status}
}

// jsonOrNil is a report row's before or after as jsonb, which takes no NUL
// character: a Learn server's names may hold one, and the row (with the
// run's record) must still be written.
func jsonOrNil(m map[string]string) []byte {
	if m == nil {
		return nil
	}
	for k, v := range m {
		if strings.ContainsRune(v, 0) || strings.ContainsRune(k, 0) {
			m = withoutNUL(m)
			break
		}
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return b
}

func withoutNUL(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ReplaceAll(k, "\x00", "")] = strings.ReplaceAll(v, "\x00", "")
	}
	return out
}

// StepRecord is the outcome of one applied step: its report row and, when
// not nil, the mapping it makes.
type StepRecord struct {
	Item    RunItem
	Mapping *Mapping
	// Account is the Learn account key (AccountOf) of a user mapping being
	// written, so that the store records this portal as the user's owner.
	// It is not a field of Mapping: the 100,000 mappings a run reads have
	// none.
	Account string
	// Refusal, when set, is remembered for later runs (sync_refusals).
	Refusal *Refusal
}

// RecordSteps stores the outcomes of several applied steps in one
// transaction and one round trip: all of them or none.
func (s *Store) RecordSteps(ctx context.Context, portalID, runID int64, recs []StepRecord) error {
	if len(recs) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	items := make([]RunItem, 0, len(recs))
	for _, r := range recs {
		if m := r.Mapping; m != nil {
			batch.Queue(upsertMapping, portalID, string(m.Kind), m.B24ID, m.LearnID, m.Fingerprint, m.Adopted)
			if m.Kind == KindUser && r.Account != "" {
				batch.Queue(insertOwner, r.Account, m.LearnID, portalID)
			}
		}
		if f := r.Refusal; f != nil {
			batch.Queue(upsertRefusal, portalID, string(f.Kind), f.B24ID, string(f.Part), f.Fingerprint, f.Reason, f.Account)
		}
		batch.Queue(insertItem, itemArgs(portalID, runID, r.Item)...)
		items = append(items, r.Item)
	}
	batch.Queue(countItems, portalID, runID, len(items), itemCounts(items))
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, batch).Close()
	}); err != nil {
		return fmt.Errorf("record steps: %w", err)
	}
	return nil
}

// RecordItems stores report rows that change no mapping (refused, held,
// planned) in one transaction.
func (s *Store) RecordItems(ctx context.Context, portalID, runID int64, items []RunItem) error {
	if len(items) == 0 {
		return nil
	}
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return copyItems(ctx, tx, portalID, runID, items)
	}); err != nil {
		return fmt.Errorf("insert run items: %w", err)
	}
	return nil
}

// RecordPreview stores a preview's report rows and deletes the portal's
// older previews (with their rows) in the same transaction: a preview holds
// a row per planned step, up to hundreds of thousands, and the newest one
// says all an older one did. Nothing else refers to a preview: approving
// releases a held sync run, and people's histories skip previews.
func (s *Store) RecordPreview(ctx context.Context, portalID, runID int64, items []RunItem) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := copyItems(ctx, tx, portalID, runID, items); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM sync_runs WHERE portal_id = $1 AND trigger = 'preview' AND id < $2 AND status <> 'running'`,
			portalID, runID)
		return err
	})
	if err != nil {
		return fmt.Errorf("record preview: %w", err)
	}
	return nil
}

// copyItems inserts items with COPY, which streams them (a queued INSERT
// per row would hold every row's arguments at once: hundreds of MB for a
// large preview), and counts them on their run.
func copyItems(ctx context.Context, tx pgx.Tx, portalID, runID int64, items []RunItem) error {
	i := 0
	rows := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(items) {
			return nil, nil
		}
		i++
		return itemArgs(portalID, runID, items[i-1]), nil
	})
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"sync_run_items"}, itemColumns, rows); err != nil {
		return fmt.Errorf("copy run items: %w", err)
	}
	if _, err := tx.Exec(ctx, countItems, portalID, runID, len(items), itemCounts(items)); err != nil {
		return fmt.Errorf("count run items: %w", err)
	}
	return nil
}

// maxRunErrorBytes bounds a run's stored error text: real ones are a
// few hundred bytes, while a failure may quote what a portal or a Learn
// server sent (an address a redirect named).
const maxRunErrorBytes = 2 << 10

// FinishRun closes a run with its result. The error text is stored as
// valid UTF-8 without NUL and at most maxRunErrorBytes: PostgreSQL refuses
// a bad byte or a NUL, and a refused write would leave the run running.
func (s *Store) FinishRun(ctx context.Context, portalID, runID int64, status string, counts map[string]int, errText string, held []int64) error {
	errText = remote.Clip(errText, maxRunErrorBytes)
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

const runColumns = `id, portal_id, trigger, status, started_at, finished_at, counts, error, held, resolved_by, items`

func scanRun(r pgx.Row) (RunRecord, error) {
	var rr RunRecord
	var counts, held []byte
	if err := r.Scan(&rr.ID, &rr.PortalID, &rr.Trigger, &rr.Status, &rr.StartedAt, &rr.FinishedAt,
		&counts, &rr.Error, &held, &rr.ResolvedBy, &rr.Items); err != nil {
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
	return store.QueryAll(ctx, s.pool, "read runs", scanRun, `SELECT `+runColumns+` FROM sync_runs WHERE portal_id = $1
		ORDER BY started_at DESC, id DESC LIMIT $2`, portalID, limit)
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

// UnresolvedHeld returns the portal's held run runID while no approved run
// has released it, or nil.
func (s *Store) UnresolvedHeld(ctx context.Context, portalID, runID int64) (*RunRecord, error) {
	rr, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM sync_runs
		WHERE portal_id = $1 AND id = $2 AND status = 'held' AND resolved_by IS NULL`, portalID, runID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read held run %d: %w", runID, err)
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

// RunItemsAfter returns at most n report rows of a run written after the
// row with id after (0: from the first), in the order they were written.
func (s *Store) RunItemsAfter(ctx context.Context, portalID, runID, after int64, n int) ([]RunItem, error) {
	return s.runItems(ctx, portalID, runID, after, &n)
}

// runItems reads a run's report rows after the row with id after, at most
// *limit of them when limit is set (LIMIT NULL is no limit).
func (s *Store) runItems(ctx context.Context, portalID, runID, after int64, limit *int) ([]RunItem, error) {
	return store.QueryAll(ctx, s.pool, "read run items", scanRunItem, `SELECT id, run_id, kind, b24_id, learn_id, action, before, after, reason, status
		FROM sync_run_items WHERE portal_id = $1 AND run_id = $2 AND id > $3 ORDER BY id LIMIT $4`, portalID, runID, after, limit)
}

func scanRunItem(r pgx.Row) (RunItem, error) {
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
