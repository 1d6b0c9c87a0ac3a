package jobs

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/syncer"
)

// What a portal writes in an error answer never reaches the texts the status
// panel and the run report show: they hold our words and the error code.
func TestSyncFailureStoresNoRemoteText(t *testing.T) {
	t.Parallel()
	const marker = "PORTAL-WROTE-THIS-4b7e"
	w := newWorld(t, 0)
	portal, bp := w.addPortal(10, "06:00", "")
	bp.InjectFault(b24sim.Fault{Status: 403, Code: "ACCESS_DENIED", Description: "<img src=x> " + marker, Count: 1000})
	ctx := context.Background()
	sw := &syncWorkers{deps: Deps{Log: slog.New(slog.DiscardHandler), Pool: w.pool, Sync: syncerFor(w, w.pool)}}
	if err := sw.run(ctx, portal, func(ctx context.Context) (*syncer.Report, error) {
		return sw.sync(ctx, portal, syncer.TriggerManual, 0)
	}); err == nil {
		t.Fatal("sync against a failing portal succeeded")
	}
	var last, runErr string
	if err := w.pool.QueryRow(ctx, `SELECT p.last_sync_error, r.error FROM portals p JOIN sync_runs r ON r.portal_id = p.id
		WHERE p.id = $1 ORDER BY r.id DESC LIMIT 1`, portal).Scan(&last, &runErr); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"last_sync_error": last, "run error": runErr} {
		if strings.Contains(s, marker) || strings.Contains(s, "<img") || !strings.Contains(s, "ACCESS_DENIED") {
			t.Errorf("%s = %q: want the code and nothing the portal wrote", name, s)
		}
	}
}
