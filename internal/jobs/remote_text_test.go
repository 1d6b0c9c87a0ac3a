package jobs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

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
	}, false); err == nil {
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

// A failure's text may quote what a hostile portal sent: a NUL, bytes that
// are not UTF-8, a megabyte. PostgreSQL refuses the first two, and the
// failure would then go unrecorded: no count, no "needs attention", and
// the status panel would show an older error or none. It is stored clipped
// and readable instead.
func TestSyncFailureWithHostileTextIsRecorded(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	portal, _ := w.addPortal(10, "06:00", "")
	ctx := context.Background()
	sw := &syncWorkers{deps: Deps{Log: slog.New(slog.DiscardHandler), Pool: w.pool, Sync: syncerFor(w, w.pool)}}
	hostile := "portal said \x00 then \xff\xfe " + strings.Repeat("é", 1<<19) // 1 MB
	if err := sw.run(ctx, portal, func(context.Context) (*syncer.Report, error) {
		return nil, errors.New(hostile)
	}, false); err == nil {
		t.Fatal("the failing sync reported success")
	}
	var last string
	var failures int
	if err := w.pool.QueryRow(ctx, `SELECT coalesce(last_sync_error, ''), sync_failures FROM portals WHERE id = $1`,
		portal).Scan(&last, &failures); err != nil {
		t.Fatal(err)
	}
	if failures != 1 {
		t.Errorf("sync_failures = %d, want 1: the failure was not recorded", failures)
	}
	if !strings.HasPrefix(last, "portal said ? then ? é") || !utf8.ValidString(last) || strings.IndexByte(last, 0) >= 0 {
		t.Errorf("last_sync_error = %.80q, want the text with the NUL and the bad bytes replaced", last)
	}
	if len(last) > 2000 {
		t.Errorf("last_sync_error holds %d bytes of a 1 MB text, want it clipped", len(last))
	}
}
