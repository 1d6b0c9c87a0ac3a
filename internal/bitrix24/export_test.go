package bitrix24

import "context"

// UsersPaged is the naive listing: one HTTP request per page of 50 with
// start=N. It exists as the baseline of BenchmarkListUsers (10,000 users: 200
// requests); the app uses Users.
func (c *Client) UsersPaged(ctx context.Context, filter map[string]any) ([]User, error) {
	return followNext[User](ctx, c, "list users", "user.get", 0, c.cfg.MaxUsers, false, func(start int) map[string]any {
		return map[string]any{"FILTER": cloneMap(filter), "SORT": "ID", "ORDER": "ASC", "ADMIN_MODE": true, "start": start}
	}, nil)
}
