package syncer

import "context"

// Shorthands the tests use; the product records steps in batches
// (RecordSteps) and reads a run's rows a page at a time (RunItemsAfter).

// RecordStep stores the outcome of one applied step in one transaction,
// right after its Learn write.
func (s *Store) RecordStep(ctx context.Context, portalID, runID int64, it RunItem, m *Mapping) error {
	return s.RecordSteps(ctx, portalID, runID, []StepRecord{{Item: it, Mapping: m}})
}

// RunItems returns a run's report rows in the order they were written.
func (s *Store) RunItems(ctx context.Context, portalID, runID int64) ([]RunItem, error) {
	return s.runItems(ctx, portalID, runID, 0, nil)
}
