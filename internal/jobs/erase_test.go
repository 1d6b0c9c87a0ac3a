package jobs

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"b24learn/internal/apptest"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/alert"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/pgtest"
	"b24learn/internal/settings"
)

// The erase of a clean uninstall leaves none of the portal's finished River
// jobs behind: a confirmation e-mail's job names the alert address and a
// failed attempt keeps the remote's message, and River would keep them a day
// (completed, cancelled) or a week (discarded). Other portals' jobs stay.
func TestUninstallEraseDeletesThePortalsFinishedJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	var erased, other int64
	if err := pool.QueryRow(ctx, `INSERT INTO portals (member_id, domain, install_state, uninstalled_at)
		VALUES ('m-erased', 'erased.bitrix24.ru', 'uninstalled', now() - interval '1 hour') RETURNING id`).Scan(&erased); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO portals (member_id, domain) VALUES ('m-other', 'other.bitrix24.ru') RETURNING id`).Scan(&other); err != nil {
		t.Fatal(err)
	}
	if _, err := settings.Save(ctx, pool, apptest.Keyring(t), erased, 0, func(s *settings.Settings) { s.AlertEmail = "ivan@corp.example" }); err != nil {
		t.Fatal(err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &UninstallEraseWorker{Pool: pool, Log: slog.New(slog.DiscardHandler)})
	ins := apptest.Inserter(t, pool)
	finish := func(args river.JobArgs, state string) int64 {
		t.Helper()
		res, err := ins.Insert(ctx, args, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE river_job SET state = $2::river_job_state, finalized_at = CASE WHEN $2::river_job_state = 'running' THEN NULL ELSE now() END, attempt = 1,
			errors = ARRAY['{"at": "2026-01-01T00:00:00Z", "attempt": 1, "error": "550 <ivan@corp.example> unknown", "trace": ""}'::jsonb]
			WHERE id = $1`, res.Job.ID, state); err != nil {
			t.Fatal(err)
		}
		return res.Job.ID
	}
	finish(alert.ConfirmArgs{PortalID: erased, Address: "ivan@corp.example", Lang: "ru"}, "completed")
	finish(LeadForwardArgs{PortalID: erased, RequestID: 1}, "discarded")
	finish(SyncArgs{PortalID: erased}, "cancelled")
	kept := finish(alert.ConfirmArgs{PortalID: other, Address: "anna@other.example", Lang: "ru"}, "completed")
	// An uninstall check's args name the event, not the portal; its
	// errors quote Bitrix24's answer all the same.
	event := func(portal int64) int64 {
		t.Helper()
		var id int64
		if err := pool.QueryRow(ctx, `INSERT INTO uninstall_events (portal_id, clean, state) VALUES ($1, true, 'expired') RETURNING id`,
			portal).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	erasedCheck := finish(UninstallCheckArgs{EventID: event(erased)}, "completed")
	otherCheck := finish(UninstallCheckArgs{EventID: event(other)}, "discarded")
	// A job of the portal not finished is cancelled by the uninstall, not
	// deleted here: one still running must end on its own.
	running := finish(SyncArgs{PortalID: erased, Trigger: "manual"}, "running")

	// The erase runs as serve runs it: a job worked by River.
	res, err := ins.Insert(ctx, UninstallEraseArgs{PortalID: erased, Generation: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc := apptest.StartRiver(t, pool, &river.Config{Workers: workers, Queues: map[string]river.QueueConfig{queues.PortalCalls: {MaxWorkers: 1}}})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		j, err := rc.JobGet(ctx, res.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == rivertype.JobStateCompleted {
			break
		}
		if time.Now().After(deadline) || len(j.Errors) > 0 {
			t.Fatalf("erase job %s, errors %v", j.State, j.Errors)
		}
	}
	var settingsLeft int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM portal_settings WHERE portal_id = $1`, erased).Scan(&settingsLeft); err != nil || settingsLeft != 0 {
		t.Fatalf("the erase did not run: %d settings rows left, %v", settingsLeft, err)
	}
	rows, err := pool.Query(ctx, `SELECT id FROM river_job WHERE id <> $2 AND (args @> jsonb_build_object('portal_id', $1::bigint)
		OR args::text LIKE '%ivan@%' OR errors::text LIKE '%ivan@%') ORDER BY id`, erased, res.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	// The erase job itself names the portal and nothing more; the other
	// portal's jobs carry the same error text; the running job is left to end.
	if want := []int64{kept, otherCheck, running}; !slices.Equal(left, want) {
		t.Fatalf("river_job rows naming the erased portal or its data: %v, want only the other portal's jobs and the running job: %v",
			left, want)
	}
	var checksLeft []int64
	rows, err = pool.Query(ctx, `SELECT id FROM river_job WHERE kind = 'uninstall_check' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	if checksLeft, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		t.Fatal(err)
	}
	if len(checksLeft) != 1 || checksLeft[0] != otherCheck {
		t.Fatalf("uninstall checks left %v, want only the other portal's %d (the erased portal's was %d)", checksLeft, otherCheck, erasedCheck)
	}
}
