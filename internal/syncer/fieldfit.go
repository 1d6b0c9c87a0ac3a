package syncer

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"b24learn/internal/fieldmap"
	"b24learn/internal/learn"
)

// profileFielder reads the Learn account's profile field definitions;
// *learn.Client has it.
type profileFielder interface {
	ProfileFields(ctx context.Context) ([]learn.FieldInfo, error)
}

// fitFieldMap re-checks a saved field mapping against Learn's fields as they
// are now (read once per run): a mapping that no longer fits its field's type
// is left out of this run, so its value is never sent, and each one gets a
// report row. The fixed mapping (nil) is not checked: it fills only Learn's
// standard fields, whose types do not change.
func (s *Syncer) fitFieldMap(ctx context.Context, portalID, runID int64, lc Learn, m map[string]string) (map[string]string, error) {
	pf, ok := lc.(profileFielder)
	if m == nil || !ok {
		return m, nil
	}
	defs, err := pf.ProfileFields(ctx)
	if err != nil {
		return nil, fmt.Errorf("read learn profile fields: %w", err)
	}
	targets := make([]fieldmap.Target, len(defs))
	for i, d := range defs {
		targets[i] = fieldmap.Target{Name: d.Name, Type: d.Type, Required: d.Required}
	}
	fits, left := fieldmap.Fit(targets, m)
	if len(left) == 0 {
		return m, nil
	}
	var items []RunItem
	for _, name := range slices.Sorted(maps.Keys(left)) {
		// A run-level row: no employee (b24_id 0), the field and the source
		// it was mapped from in before/after.
		items = append(items, RunItem{Kind: KindUser, Action: ActionRefuse, Status: ItemRefused,
			Before: map[string]string{name: m[name]},
			Reason: because(ReasonFieldLeftOut, name, left[name])})
	}
	if err := s.store.RecordItems(ctx, portalID, runID, items); err != nil {
		return nil, fmt.Errorf("record left-out fields: %w", err)
	}
	return fits, nil
}
