package syncer

import (
	"context"
	"fmt"
	"time"
)

// The people page's reads: one person's report rows, and the mappings and
// newest rows of the people a search found.

// PersonHistory is every report row of one Bitrix24 user across the
// portal's runs, newest first, with the run's trigger and start.
type PersonHistoryItem struct {
	RunItem
	Trigger   Trigger
	StartedAt time.Time
}

// PersonHistory reads the report rows of Bitrix24 user b24ID, newest first,
// at most limit of them.
func (s *Store) PersonHistory(ctx context.Context, portalID, b24ID int64, limit int) ([]PersonHistoryItem, error) {
	rows, err := s.pool.Query(ctx, `SELECT i.id, i.run_id, i.learn_id, i.action, i.before, i.after, i.reason, i.status,
			r.trigger, r.started_at
		FROM sync_run_items i JOIN sync_runs r ON r.id = i.run_id
		WHERE i.portal_id = $1 AND i.kind = 'user' AND i.b24_id = $2 AND r.trigger <> 'preview'
		ORDER BY i.id DESC LIMIT $3`, portalID, b24ID, limit)
	if err != nil {
		return nil, fmt.Errorf("query person history: %w", err)
	}
	defer rows.Close()
	var out []PersonHistoryItem
	for rows.Next() {
		it := PersonHistoryItem{RunItem: RunItem{Kind: KindUser, B24ID: b24ID}}
		var action, trigger string
		var before, after []byte
		if err := rows.Scan(&it.ID, &it.RunID, &it.LearnID, &action, &before, &after, &it.Reason, &it.Status,
			&trigger, &it.StartedAt); err != nil {
			return nil, fmt.Errorf("read person history: %w", err)
		}
		it.Action, it.Trigger = Action(action), Trigger(trigger)
		if it.Before, err = decodeState(before); err != nil {
			return nil, err
		}
		if it.After, err = decodeState(after); err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read person history: %w", err)
	}
	return out, nil
}

// UserMappings is the stored mappings of the Bitrix24 users ids, by id.
func (s *Store) UserMappings(ctx context.Context, portalID int64, ids []int64) (map[int64]*Mapping, error) {
	out := map[int64]*Mapping{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT b24_id, learn_id, fingerprint, licence_wait_since IS NOT NULL, adopted
		FROM sync_mappings WHERE portal_id = $1 AND kind = 'user' AND b24_id = ANY($2)`, portalID, ids)
	if err != nil {
		return nil, fmt.Errorf("query user mappings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		m := &Mapping{Kind: KindUser}
		if err := rows.Scan(&m.B24ID, &m.LearnID, &m.Fingerprint, &m.LicenceWait, &m.Adopted); err != nil {
			return nil, fmt.Errorf("read user mappings: %w", err)
		}
		out[m.B24ID] = m
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read user mappings: %w", err)
	}
	return out, nil
}

// LastPersonItems reads the newest report row (previews aside) of each of
// the Bitrix24 users ids, by id; users no run reported are absent.
func (s *Store) LastPersonItems(ctx context.Context, portalID int64, ids []int64) (map[int64]RunItem, error) {
	out := map[int64]RunItem{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (i.b24_id) i.id, i.run_id, i.b24_id, i.learn_id, i.action, i.reason, i.status, i.after
		FROM sync_run_items i JOIN sync_runs r ON r.id = i.run_id
		WHERE i.portal_id = $1 AND i.kind = 'user' AND i.b24_id = ANY($2) AND r.trigger <> 'preview'
		ORDER BY i.b24_id, i.id DESC`, portalID, ids)
	if err != nil {
		return nil, fmt.Errorf("query last person items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		it := RunItem{Kind: KindUser}
		var action string
		var after []byte
		if err := rows.Scan(&it.ID, &it.RunID, &it.B24ID, &it.LearnID, &action, &it.Reason, &it.Status, &after); err != nil {
			return nil, fmt.Errorf("read last person items: %w", err)
		}
		it.Action = Action(action)
		if it.After, err = decodeState(after); err != nil {
			return nil, err
		}
		out[it.B24ID] = it
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read last person items: %w", err)
	}
	return out, nil
}

// DepartmentIDs maps the Learn department ids learnIDs to the portal's
// Bitrix24 departments by the stored mapping: a history row names a
// department by its Learn id, the admin knows it by its Bitrix24 name.
// Ids no mapping holds are absent.
func (s *Store) DepartmentIDs(ctx context.Context, portalID int64, learnIDs []string) (map[string]int64, error) {
	out := map[string]int64{}
	if len(learnIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT learn_id, b24_id FROM sync_mappings
		WHERE portal_id = $1 AND kind = 'department' AND learn_id = ANY($2)`, portalID, learnIDs)
	if err != nil {
		return nil, fmt.Errorf("query department mappings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var b24 int64
		if err := rows.Scan(&id, &b24); err != nil {
			return nil, fmt.Errorf("read department mappings: %w", err)
		}
		out[id] = b24
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read department mappings: %w", err)
	}
	return out, nil
}
