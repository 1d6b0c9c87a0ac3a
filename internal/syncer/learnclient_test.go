package syncer

import (
	"context"

	"b24learn/internal/learn"
)

// newLearnClient is a Config.NewLearn for tests: a plain *learn.Client for
// the portal's stored account and admin credentials, sent to opts.BaseURL
// (a simulator) when set. The service builds its clients in
// internal/connect instead, with the portal's limiter and call log.
func newLearnClient(opts learn.Options) func(ctx context.Context, portalID int64, s Settings) (Learn, error) {
	return func(ctx context.Context, portalID int64, s Settings) (Learn, error) {
		o := opts
		if o.BaseURL == "" {
			o.BaseURL = s.LearnAPIURL
		}
		c, err := learn.New(s.LearnCredentials(), o)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}
