package syncer

import (
	"context"
	"fmt"
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
	return s.store.SetLearnAPIURL(ctx, portalID, set.LearnURL, base)
}

// SetLearnAPIURL stores where the API of the account at learnURL answers,
// unless the settings moved to another account meanwhile or already have a
// base (a save found one).
func (s *Store) SetLearnAPIURL(ctx context.Context, portalID int64, learnURL, apiURL string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE portal_settings SET learn_api_url = $3
		WHERE portal_id = $1 AND learn_url = $2 AND learn_api_url = ''`, portalID, learnURL, apiURL); err != nil {
		return fmt.Errorf("store learn api url: %w", err)
	}
	return nil
}
