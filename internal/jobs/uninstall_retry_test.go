package jobs

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/store"
	"b24learn/internal/uninstall"
)

// pendingCheck records an uninstall event of the portal as the events
// handler does when Bitrix24 cannot be asked at once, and queues its check,
// whose first attempt finds Bitrix24 still unreachable (a 503 on app.info):
// it returns the event and its check job, left waiting for a retry.
func (b *retentionBundle) pendingCheck(t *testing.T, bp *b24sim.Portal, id int64, clean bool) (eventID, jobID int64) {
	t.Helper()
	ctx := context.Background()
	eventID, err := uninstall.Record(ctx, b.pool, id, clean, "203.0.113.7", uninstall.StatePending, "not asked at once")
	if err != nil {
		t.Fatal(err)
	}
	bp.InjectFault(b24sim.Fault{Method: "app.info", Status: http.StatusServiceUnavailable, Code: "INTERNAL_SERVER_ERROR", Count: 100})
	res, err := b.rc.Insert(ctx, UninstallCheckArgs{EventID: eventID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if state := b.waitJob(t, res.Job.ID); state != "retryable" {
		t.Fatalf("the check's first attempt, Bitrix24 unreachable, left the job %s, want retryable", state)
	}
	bp.ClearFaults()
	return eventID, res.Job.ID
}

// waitJob waits for River to finish working the job's attempt and returns
// its state.
func (b *retentionBundle) waitJob(t *testing.T, jobID int64) string {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; {
		var state string
		if err := b.pool.QueryRow(context.Background(), `SELECT state FROM river_job WHERE id = $1`, jobID).Scan(&state); err != nil {
			t.Fatal(err)
		}
		if state != "available" && state != "running" {
			return state
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d still %s after a minute", jobID, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hoursPass lets d go by between an event and its retry: the clocks stay at
// now (the database's is the real one), and what the event and the refusal
// recorded is dated back by d.
func (b *retentionBundle) hoursPass(t *testing.T, d time.Duration, eventID, portalID int64) {
	t.Helper()
	ctx := context.Background()
	if _, err := b.pool.Exec(ctx, `UPDATE uninstall_events SET received_at = received_at - $2::interval,
		last_at = last_at - $2::interval WHERE id = $1`, eventID, d); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `UPDATE portals SET tokens_refused_at = tokens_refused_at - $2::interval WHERE id = $1`,
		portalID, d); err != nil {
		t.Fatal(err)
	}
}

// retry has River work the job's next attempt now.
func (b *retentionBundle) retry(t *testing.T, jobID int64) string {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), `UPDATE river_job SET state = 'available', scheduled_at = now() WHERE id = $1`,
		jobID); err != nil {
		t.Fatal(err)
	}
	return b.waitJob(t, jobID)
}

// retriedCleanUninstall removes the app from the portal with CLEAN and has
// its check find Bitrix24 unreachable and be retried five hours later, when
// Bitrix24 answers. It returns when the portal was uninstalled, by the
// database's clock, when its erase is scheduled, and by how much the
// worker's clock, the test's, may run behind the database's.
func (b *retentionBundle) retriedCleanUninstall(t *testing.T, id int64, bp *b24sim.Portal) (uninstalledAt, eraseAt time.Time, slack time.Duration) {
	t.Helper()
	bp.Uninstall(context.Background(), true) // the event reaches no one: recorded below
	ev, check := b.pendingCheck(t, bp, id, true)
	b.hoursPass(t, 5*time.Hour, ev, id)
	before := time.Now()
	b.clock.advance(before.Sub(b.clock.Now()))
	if state := b.retry(t, check); state != "completed" {
		t.Fatalf("the retried check left the job %s, want completed", state)
	}
	if err := b.pool.QueryRow(context.Background(), `SELECT p.uninstalled_at, j.scheduled_at FROM portals p, river_job j
		WHERE p.id = $1 AND j.kind = 'uninstall_erase' AND (j.args->>'portal_id')::bigint = p.id`, id).
		Scan(&uninstalledAt, &eraseAt); err != nil {
		t.Fatalf("the portal's uninstall and its erase: %v", err)
	}
	return uninstalledAt, eraseAt, time.Since(before)
}

// The review's case: a CLEAN uninstall whose check found Bitrix24
// unreachable and was retried five hours later, when Bitrix24 refused the
// tokens. The admin's e-mail names the erase's day, EraseDelay from the
// uninstall; the erase must not come before it. Counted from when the event
// came, it came five hours early.
func TestRetriedCleanUninstallErasesNoEarlierThanAnnounced(t *testing.T) {
	t.Parallel()
	b := setupRetention(t)
	id, bp := b.addPortal(t)
	uninstalledAt, eraseAt, slack := b.retriedCleanUninstall(t, id, bp)
	announced := uninstalledAt.Add(uninstall.EraseDelay)
	for deadline := time.Now().Add(time.Minute); len(b.mail.all()) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if sent := b.mail.all(); len(sent) != 1 || !strings.Contains(sent[0].Body, announced.UTC().Format("2006-01-02")) {
		t.Fatalf("e-mails after the uninstall: %+v, want one naming the erase's day %s", sent, announced.UTC().Format("2006-01-02"))
	}
	if eraseAt.Before(announced.Add(-slack)) {
		t.Fatalf("the erase is scheduled at %s, %s before the day announced from the uninstall (%s)",
			eraseAt.UTC(), announced.Sub(eraseAt).Round(time.Second), announced.UTC())
	}
}

// The same retried check, Bitrix24 now saying the portal is gone: the
// erase still waits SettleDelay from the uninstall, in which an uninstall
// without CLEAN (the admin's, perhaps, while the CLEAN one was an
// employee's) keeps the data. Counted from when the event came, the wait
// was over before the uninstall was taken.
func TestRetriedCleanUninstallStillSettles(t *testing.T) {
	t.Parallel()
	b := setupRetention(t)
	id, bp := b.addPortal(t)
	bp.SetAfterUninstall(b24sim.GonePortalNotFound)
	uninstalledAt, eraseAt, slack := b.retriedCleanUninstall(t, id, bp)
	if settled := uninstalledAt.Add(uninstall.SettleDelay); eraseAt.Before(settled.Add(-slack)) {
		t.Fatalf("the erase is scheduled at %s, %s before SettleDelay from the uninstall (%s)",
			eraseAt.UTC(), settled.Sub(eraseAt).Round(time.Second), settled.UTC())
	}
}

// The admin removes the app without CLEAN an hour into a payment lapse;
// Bitrix24 cannot be asked, and the event waits. Meanwhile an employee's
// forged CLEAN event is confirmed (Bitrix24 refuses the tokens). The
// admin's event, retried five and a half hours later, finds the portal
// uninstalled: judged as of when it came, the refusal was an hour old, no
// sign that the event is stale, so it keeps the data. Judged at the retry,
// the refusal looks six and a half hours old, the event keeps nothing, and
// the forged CLEAN uninstall erases the data at the end of its wait.
func TestRetriedUninstallFindingThePortalGoneIsJudgedWhenItCame(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRetention(t)
	id, bp := b.addPortal(t)
	bp.SetLapse(b24sim.LapseUnpaid)
	b.refuse(t, id)
	b.hoursPass(t, time.Hour, 0, id) // the refusal began an hour before the event
	bp.Uninstall(ctx, false)         // the event reaches no one: recorded below
	ev, check := b.pendingCheck(t, bp, id, false)
	b.hoursPass(t, 5*time.Hour+30*time.Minute, ev, id)

	_, erase := b.uninstallAs(t, id, true) // the forged CLEAN event, confirmed
	if erase == 0 {
		t.Fatal("the CLEAN uninstall queued no erase")
	}
	if state := b.retry(t, check); state != "completed" {
		t.Fatalf("the retried check left the job %s, want completed", state)
	}
	var evState, reason string
	if err := b.pool.QueryRow(ctx, `SELECT state, reason FROM uninstall_events WHERE id = $1`, ev).Scan(&evState, &reason); err != nil {
		t.Fatal(err)
	}
	if evState != uninstall.StateExpired || reason == uninstall.ReasonRefusalRuns {
		t.Fatalf("the admin's event ended %s (%q), want expired as one that keeps the data", evState, reason)
	}

	// The 30 days are over and Bitrix24 still refuses the tokens: the end
	// of the wait keeps the data, as the admin's event asked.
	if state := b.retry(t, erase); state != "completed" {
		t.Fatalf("the end of the wait left the job %s, want completed", state)
	}
	if _, _, kept := b.recheckState(t, id); !kept || b.erased(t, id) {
		t.Fatal("the forged CLEAN uninstall erased the data the admin's uninstall without CLEAN kept")
	}
}

// This host's clock three hours ahead of the database's: the deferred
// erase is still scheduled exactly its delay after the uninstall as the
// database recorded it, the time the admin's e-mail and the console count
// from. Counted from this host's clock, it came three hours early.
func TestEraseCountsFromTheUninstallAsStored(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		verdict uninstall.Verdict
		delay   time.Duration
	}{
		"TokensRefused": {uninstall.TokensRefused, uninstall.EraseDelay},
		"Confirmed":     {uninstall.Confirmed, uninstall.SettleDelay},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupRetention(t)
			id, _ := b.addPortal(t)
			b.clock.advance(3 * time.Hour)
			err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
				p, err := store.LockPortal(ctx, tx, id)
				if err != nil {
					return err
				}
				return ConfirmUninstall(ctx, tx, b.rc, b.pool, p, true, c.verdict)
			})
			if err != nil {
				t.Fatal(err)
			}
			var uninstalledAt, eraseAt time.Time
			if err := b.pool.QueryRow(ctx, `SELECT p.uninstalled_at, j.scheduled_at FROM portals p, river_job j
				WHERE p.id = $1 AND j.kind = 'uninstall_erase' AND (j.args->>'portal_id')::bigint = p.id`, id).
				Scan(&uninstalledAt, &eraseAt); err != nil {
				t.Fatalf("the portal's uninstall and its erase: %v", err)
			}
			if want := uninstalledAt.Add(c.delay); !eraseAt.Equal(want) {
				t.Fatalf("the erase is scheduled at %s, want %s: %s off the uninstall as stored",
					eraseAt.UTC(), want.UTC(), eraseAt.Sub(want))
			}
		})
	}
}
