package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"b24learn/internal/apptest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"b24learn/internal/activation"

	"b24learn/internal/manager"
	"b24learn/internal/pgtest"
	"b24learn/internal/schedule"
	"b24learn/internal/secret"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

type dispatchBundle struct {
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
	disp   *Dispatcher
	kr     *secret.Keyring
	now    time.Time
}

func setupDispatch(t testing.TB) *dispatchBundle {
	t.Helper()
	pool := pgtest.NewPool(t)
	client := apptest.Inserter(t, pool)
	kr, err := secret.NewKeyring("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	b := &dispatchBundle{pool: pool, client: client, kr: kr}
	b.disp = &Dispatcher{Log: slog.New(slog.DiscardHandler), Pool: pool, CatchUpWindow: 3 * time.Hour, Now: func() time.Time { return b.now }}
	return b
}

// addPortal inserts a portal with settings; state tweaks what makes it
// (un)syncable.
func (b *dispatchBundle) addPortal(t testing.TB, member, install, activation, first, second string, configured bool) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := b.pool.QueryRow(ctx, `INSERT INTO portals (member_id, domain, install_state, activation_state)
		VALUES ($1, $1 || '.bitrix24.ru', $2, $3) RETURNING id`, member, install, activation).Scan(&id); err != nil {
		t.Fatal(err)
	}
	runs, err := schedule.Parse(first, second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := settings.Save(ctx, b.pool, b.kr, id, 0, func(s *settings.Settings) {
		s.LearnURL, s.LearnEmail, s.Password, s.Schedule = "https://acme.ispringlearn.ru", "admin@acme.test", "pw", runs
		s.Departments.Selected = []int64{1}
		if !configured {
			s.LearnURL, s.Departments.Selected = "", []int64{}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (b *dispatchBundle) tick(t testing.TB) int {
	t.Helper()
	n, err := b.disp.Tick(context.Background(), b.client)
	if err != nil {
		t.Fatalf("tick at %s: %v", b.now, err)
	}
	return n
}

func (b *dispatchBundle) slots(t testing.TB, portalID int64) []string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(),
		`SELECT args->>'slot' FROM river_job WHERE kind = 'sync_scheduled' AND (args->>'portal_id')::bigint = $1 ORDER BY id`, portalID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runDay ticks every minute from start for the given minutes, skipping the
// minutes in which the service is down.
func (b *dispatchBundle) runDay(t testing.TB, start time.Time, minutes int, down func(time.Time) bool) {
	for m := 0; m <= minutes; m++ {
		b.now = start.Add(time.Duration(m) * time.Minute)
		if down != nil && down(b.now) {
			continue
		}
		b.tick(t)
	}
}

func TestDispatchTwoSlotsInADay(t *testing.T) {
	t.Parallel()
	b := setupDispatch(t)
	id := b.addPortal(t, "m1", "installed", "active", "06:00", "18:00", true)
	b.runDay(t, at("2026-11-25 00:00"), 24*60-1, nil)
	got := b.slots(t, id)
	if fmt.Sprint(got) != "[2026-11-25T06:00Z 2026-11-25T18:00Z]" {
		t.Fatalf("slots = %v, want 06:00 and 18:00 once each", got)
	}
}

func TestDispatchCatchUpAfterDowntime(t *testing.T) {
	t.Parallel()
	b := setupDispatch(t)
	id := b.addPortal(t, "m1", "installed", "active", "06:00", "18:00", true)
	down := func(now time.Time) bool {
		return now.After(at("2026-11-25 05:50")) && now.Before(at("2026-11-25 07:30"))
	}
	b.runDay(t, at("2026-11-25 00:00"), 12*60, down)
	got := b.slots(t, id)
	if fmt.Sprint(got) != "[2026-11-25T06:00Z]" {
		t.Fatalf("slots = %v, want exactly one catch-up run for 06:00", got)
	}
}

func TestDispatchSkipsPortalsThatMayNotSync(t *testing.T) {
	t.Parallel()
	b := setupDispatch(t)
	ok := b.addPortal(t, "ok", "installed", "active", "06:00", "", true)
	skipped := []int64{
		b.addPortal(t, "inactive", "installed", "inactive", "06:00", "", true),
		b.addPortal(t, "requested", "installed", "requested", "06:00", "", true),
		b.addPortal(t, "suspended", "installed", "suspended", "06:00", "", true),
		b.addPortal(t, "uninstalled", "uninstalled", "active", "06:00", "", true),
		b.addPortal(t, "unconfigured", "installed", "active", "06:00", "", false),
	}
	reconnect := b.addPortal(t, "reconnect", "installed", "active", "06:00", "", true)
	if _, err := b.pool.Exec(context.Background(), `UPDATE portals SET needs_reconnect = true WHERE id = $1`, reconnect); err != nil {
		t.Fatal(err)
	}
	skipped = append(skipped, reconnect)
	b.runDay(t, at("2026-11-25 05:55"), 10, nil)
	if got := b.slots(t, ok); len(got) != 1 {
		t.Fatalf("active portal got %v", got)
	}
	for _, id := range skipped {
		if got := b.slots(t, id); len(got) != 0 {
			t.Errorf("portal %d got sync jobs %v", id, got)
		}
	}
}

func TestDispatchScheduleChangeTakesEffectFromNextSlot(t *testing.T) {
	t.Parallel()
	b := setupDispatch(t)
	id := b.addPortal(t, "m1", "installed", "active", "06:00", "", true)
	b.runDay(t, at("2026-11-25 00:00"), 11*60, nil) // until 11:00, 06:00 ran
	// At 11:00 the admin moves the run to 10:00: today's 10:00 has passed.
	if _, err := settings.Save(context.Background(), b.pool, b.kr, id, 0, func(s *settings.Settings) {
		s.Schedule, _ = schedule.Parse("10:00", "")
	}); err != nil {
		t.Fatal(err)
	}
	b.runDay(t, at("2026-11-25 11:01"), 23*60, nil) // until 10:01 next day
	if got := b.slots(t, id); fmt.Sprint(got) != "[2026-11-25T06:00Z 2026-11-26T10:00Z]" {
		t.Fatalf("slots = %v", got)
	}
}

func TestDispatchTwoDispatchersRunEachSlotOnce(t *testing.T) {
	t.Parallel()
	b := setupDispatch(t)
	id := b.addPortal(t, "m1", "installed", "active", "06:00", "18:00", true)
	other := &Dispatcher{Log: b.disp.Log, Pool: pgtest.Reopen(t, b.pool), CatchUpWindow: time.Hour, Now: func() time.Time { return b.now }}
	for m := 0; m < 24*60; m += 2 {
		b.now = at("2026-11-25 00:00").Add(time.Duration(m) * time.Minute)
		errs := make(chan error, 2)
		go func() { _, err := b.disp.Tick(context.Background(), b.client); errs <- err }()
		go func() { _, err := other.Tick(context.Background(), b.client); errs <- err }()
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := b.slots(t, id); fmt.Sprint(got) != "[2026-11-25T06:00Z 2026-11-25T18:00Z]" {
		t.Fatalf("slots = %v", got)
	}
}

// BenchmarkDispatch10000Portals measures one tick that finds 10,000 portals
// due at once and inserts their jobs.
func BenchmarkDispatch10000Portals(b *testing.B) {
	d := setupDispatch(b)
	ctx := context.Background()
	if _, err := d.pool.Exec(ctx, `
		INSERT INTO portals (member_id, domain, activation_state)
		SELECT 'm' || g, 'p' || g || '.bitrix24.ru', 'active' FROM generate_series(1, 10000) g`); err != nil {
		b.Fatal(err)
	}
	// Saved as the settings page would, in one transaction to keep the
	// setup short.
	six, _ := schedule.Parse("06:00", "")
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		ids, err := pgx.CollectRows(must(tx.Query(ctx, `SELECT id FROM portals`)), pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := settings.Save(ctx, tx, d.kr, id, 0, func(s *settings.Settings) {
				s.LearnURL, s.LearnEmail, s.Password, s.Schedule = "https://acme.ispringlearn.ru", "a@b.c", "pw", six
				s.Departments.Selected = []int64{1}
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	day := at("2026-11-25 05:59")
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		// Each iteration is a fresh day so every tick inserts 10,000 jobs.
		start := day.AddDate(0, 0, i)
		if _, err := d.pool.Exec(ctx, `INSERT INTO dispatcher_state VALUES (true, $1) ON CONFLICT (id) DO UPDATE SET last_tick_at = $1`, start); err != nil {
			b.Fatal(err)
		}
		d.now = start.Add(time.Minute)
		b.StartTimer()
		n, err := d.disp.Tick(ctx, d.client)
		if err != nil || n != 10000 {
			b.Fatalf("tick: %d jobs, %v", n, err)
		}
	}
}

// A sync job left running by a dead process is handed back; one whose
// process holds the portal's lock, or that started moments ago, is not.
func TestReapOrphans(t *testing.T) {
	t.Parallel()
	b := setupDispatch(t)
	ctx := context.Background()
	orphan := b.addPortal(t, "orphan", "installed", "active", "06:00", "", true)
	alive := b.addPortal(t, "alive", "installed", "active", "06:00", "", true)
	fresh := b.addPortal(t, "fresh", "installed", "active", "06:00", "", true)
	running := func(portal int64, age time.Duration) int64 {
		res, err := b.client.Insert(ctx, SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(ctx, `UPDATE river_job SET state = 'running', attempt = 1,
			attempted_at = now() - make_interval(secs => $2) WHERE id = $1`, res.Job.ID, age.Seconds()); err != nil {
			t.Fatal(err)
		}
		return res.Job.ID
	}
	orphanJob := running(orphan, 5*time.Minute)
	aliveJob := running(alive, 5*time.Minute)
	freshJob := running(fresh, 5*time.Second)

	// The live process holds its portal's lock on a connection of its own.
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2::int)`, syncer.LockKey, alive); err != nil {
		t.Fatal(err)
	}

	n, err := ReapOrphans(ctx, b.pool, b.disp.Log)
	if err != nil || n != 1 {
		t.Fatalf("ReapOrphans = %d, %v; want 1", n, err)
	}
	for id, want := range map[int64]string{orphanJob: "available", aliveJob: "running", freshJob: "running"} {
		var state string
		if err := b.pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, id).Scan(&state); err != nil {
			t.Fatal(err)
		}
		if state != want {
			t.Errorf("job %d is %s, want %s", id, state, want)
		}
	}
}

// Activating a portal in the console gives its next slot a sync job;
// suspending it stops them.
func TestActivationInConsoleGovernsSlots(t *testing.T) {
	t.Parallel()
	b := setupDispatch(t)
	ctx := context.Background()
	id := b.addPortal(t, "m1", "installed", "requested", "06:00", "18:00", true)
	m, err := manager.CreateManager(ctx, b.pool, manager.DefaultHasher(), "manager@ispring.example", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	actor := manager.Actor{ManagerID: m.ID, Email: m.Email, IP: "127.0.0.1"}

	b.runDay(t, at("2026-11-25 00:00"), 7*60, nil) // 06:00 passes while the request waits
	if got := b.slots(t, id); len(got) != 0 {
		t.Fatalf("a portal waiting for activation got %v", got)
	}
	if err := activation.SetActivation(ctx, b.pool, actor, id, store.ActivationActive, "paid", at("2026-11-25 07:00")); err != nil {
		t.Fatal(err)
	}
	b.runDay(t, at("2026-11-25 07:01"), 12*60, nil) // until 19:01
	if got := b.slots(t, id); fmt.Sprint(got) != "[2026-11-25T18:00Z]" {
		t.Fatalf("after activation: %v, want the 18:00 slot", got)
	}
	if err := activation.SetActivation(ctx, b.pool, actor, id, store.ActivationSuspended, "unpaid", at("2026-11-25 19:02")); err != nil {
		t.Fatal(err)
	}
	b.runDay(t, at("2026-11-25 19:03"), 12*60, nil) // past the next 06:00
	if got := b.slots(t, id); fmt.Sprint(got) != "[2026-11-25T18:00Z]" {
		t.Fatalf("after suspension: %v, want no new slot", got)
	}
}
