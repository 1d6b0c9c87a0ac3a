package syncer

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// FirstRunItems returns the first n report rows of a run, in the order they
// were written, and how many rows the whole report has: the status panel
// shows the head of a preview and links to the rest. The total is the one
// stored on the run, not a count of its rows: the panel is polled.
func (s *Store) FirstRunItems(ctx context.Context, portalID, runID int64, n int) ([]RunItem, int, error) {
	var total int
	err := s.pool.QueryRow(ctx, `SELECT items FROM sync_runs WHERE portal_id = $1 AND id = $2`, portalID, runID).Scan(&total)
	if errors.Is(err, pgx.ErrNoRows) {
		// A newer preview deleted the run since the caller listed it.
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read run item total: %w", err)
	}
	items, err := s.runItems(ctx, portalID, runID, 0, &n)
	if err != nil {
		return nil, 0, err
	}
	return items, total, nil
}
