package syncer

import (
	"context"
	"fmt"

	"b24learn/internal/settings"
)

// apiFinder is a Learn client that can find where the account's API answers
// (*learn.Client).
type apiFinder interface {
	FindAPI(ctx context.Context) (string, error)
}

// findLearnAPI gives a portal without a stored API base (saved before the
// base was kept) one: the client looks for it, and it is stored so that the
// next runs do not look again. A client that cannot look is left as it is.
func (s *Syncer) findLearnAPI(ctx context.Context, portalID int64, set Settings, lc Learn) error {
	if set.LearnAPIURL != "" {
		return nil
	}
	f, ok := lc.(apiFinder)
	if !ok {
		return nil
	}
	base, err := f.FindAPI(ctx)
	if err != nil {
		return fmt.Errorf("find the learn api: %w", err)
	}
	return settings.SetLearnAPIURL(ctx, s.store.pool, portalID, set.LearnURL, base)
}
