package syncer

import (
	"context"
	"fmt"
)

// FirstRunItems returns the first n report rows of a run, in the order they
// were written, and how many rows the whole report has: the status panel
// shows the head of a preview and links to the rest.
func (s *Store) FirstRunItems(ctx context.Context, portalID, runID int64, n int) ([]RunItem, int, error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM sync_run_items WHERE portal_id = $1 AND run_id = $2`,
		portalID, runID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count run items: %w", err)
	}
	items, err := s.runItems(ctx, portalID, runID, &n)
	if err != nil {
		return nil, 0, err
	}
	return items, total, nil
}

// ProgressCounts counts the report rows a running run has written so far,
// keyed as a finished run's counts are: kind.action for applied (or
// planned) steps, kind.status for the others.
func (s *Store) ProgressCounts(ctx context.Context, portalID, runID int64) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, action, status, count(*) FROM sync_run_items
		WHERE portal_id = $1 AND run_id = $2 GROUP BY kind, action, status`, portalID, runID)
	if err != nil {
		return nil, fmt.Errorf("count run items: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var kind, action, status string
		var n int
		if err := rows.Scan(&kind, &action, &status, &n); err != nil {
			return nil, fmt.Errorf("count run items: %w", err)
		}
		switch status {
		case ItemApplied, ItemPlanned:
			out[kind+"."+action] += n
		default:
			out[kind+"."+status] += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count run items: %w", err)
	}
	return out, nil
}
