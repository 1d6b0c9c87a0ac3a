package alert

import (
	"context"
	"fmt"
	"time"

	"b24learn/internal/store"
)

// Prune deletes, for the hourly maintenance, the rows of the caps and links
// that no longer count: confirmation sends and alert sends older than twice
// their window, and links expired for TokenTTL (their page has said "expired"
// for a week). The senders prune only their own portal's rows as they go,
// so the rows of a portal that stopped sending, and those an erase detached
// from their portal, would keep the addresses for ever.
func Prune(ctx context.Context, db store.DBTX, now time.Time) (int64, error) {
	var n int64
	for _, q := range []struct {
		what, sql string
		cut       time.Time
	}{
		{"confirmation sends", `DELETE FROM alert_confirm_sends WHERE sent_at < $1`, now.Add(-2 * ConfirmWindow)},
		{"confirmation links", `DELETE FROM alert_confirm_tokens WHERE expires_at < $1`, now.Add(-TokenTTL)},
		{"alert sends", `DELETE FROM alert_sends WHERE sent_at < $1`, now.Add(-2 * SendWindow)},
	} {
		tag, err := db.Exec(ctx, q.sql, q.cut)
		if err != nil {
			return n, fmt.Errorf("prune %s: %w", q.what, err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
