package jobs

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"b24learn/internal/activation"
	"b24learn/internal/alert"
	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/connect"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/manager"
	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/internal/uninstall"
)

// mailbox keeps the alert e-mails the worker sends.
type mailbox struct {
	mu   sync.Mutex
	sent []activation.Mail
}

func (m *mailbox) Send(_ context.Context, msg activation.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return nil
}

// all is a copy of the e-mails sent so far.
func (m *mailbox) all() []activation.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}

// passingLapses are lapses of a portal that end with the app installed as
// before: its payment lapses and is paid again, or an update reopens the
// installer and its admin finishes it.
func passingLapses() map[string]struct{ lapse, mend func(*b24sim.Portal) } {
	return map[string]struct{ lapse, mend func(*b24sim.Portal) }{
		"Unpaid":            {func(p *b24sim.Portal) { p.SetLapse(b24sim.LapseUnpaid) }, func(p *b24sim.Portal) { p.SetLapse(b24sim.LapseNone) }},
		"InstallerReopened": {(*b24sim.Portal).ReopenInstaller, func(p *b24sim.Portal) { p.FinishInstall(context.Background()) }},
	}
}

func (m *mailbox) subjects() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, s := range m.sent {
		out = append(out, s.Subject)
	}
	return out
}

// retentionBundle is a database, a simulator whose ONAPPUNINSTALL reaches
// no one (the app's address is dead: every event is lost), and a River
// client working the maintenance, the erase and the alert e-mails, on one
// fake clock.
type retentionBundle struct {
	pool    *pgxpool.Pool
	keyring *secret.Keyring
	sim     *b24sim.Server
	clock   *fakeClock
	clients *connect.Factory
	rc      *river.Client[pgx.Tx]
	mail    *mailbox
}

func setupRetention(t *testing.T) *retentionBundle {
	t.Helper()
	b := &retentionBundle{pool: pgtest.NewPool(t), keyring: apptest.Keyring(t), clock: &fakeClock{now: time.Now().UTC().Truncate(time.Second)},
		mail: &mailbox{}}
	b.sim = b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Rate: -1, Now: b.clock.Now})
	t.Cleanup(b.sim.Close)
	log := slog.New(slog.DiscardHandler)
	b.clients = connect.New(connect.Options{Pool: b.pool, Keyring: b.keyring, Log: log, B24AllowPrivateHosts: true,
		OAuth: &bitrix24.OAuth{URL: b.sim.URL, ClientID: b.sim.ClientID(), ClientSecret: b.sim.ClientSecret()}})
	workers := river.NewWorkers()
	river.AddWorker(workers, &MaintenanceWorker{deps: Deps{Log: log, Config: &config.Config{ReportRetention: 90 * day}, Pool: b.pool},
		now: b.clock.Now, retain: &refusedRetention{pool: b.pool, clients: b.clients, log: log}})
	river.AddWorker(workers, &PortalCheckWorker{log: log, now: b.clock.Now, retain: &refusedRetention{pool: b.pool, clients: b.clients, log: log}})
	river.AddWorker(workers, &UninstallEraseWorker{Pool: b.pool, Clients: b.clients, Log: log})
	river.AddWorker(workers, &UninstallCheckWorker{Pool: b.pool, Clients: b.clients, Log: log, Now: b.clock.Now})
	river.AddWorker(workers, &alert.Worker{Log: log, Pool: b.pool, Mail: b.mail})
	b.rc = apptest.StartRiver(t, b.pool, &river.Config{Logger: log, Workers: workers,
		Queues: map[string]river.QueueConfig{queues.System: {MaxWorkers: 2}, queues.PortalCalls: {MaxWorkers: 2}}})
	return b
}

// addPortal installs a configured portal whose admin saved a confirmed
// alert address.
func (b *retentionBundle) addPortal(t *testing.T) (int64, *b24sim.Portal) {
	t.Helper()
	ctx := context.Background()
	bp := b.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 3, 1)})
	id := apptest.InstallPortal(t, b.pool, b.keyring, bp).ID
	bp.FinishInstall(ctx)
	apptest.Configure(t, b.pool, b.keyring, id, apptest.Settings{LearnURL: "https://acme.ispringlearn.com", LearnEmail: learnEmail,
		LearnPassword: learnPassword, FirstRun: "06:00", Selected: []int64{bp.Departments()[0].ID}}, true)
	if _, err := settings.Save(ctx, b.pool, b.keyring, id, 0, func(s *settings.Settings) { s.AlertEmail, s.AlertLang = alertTo, "en" }); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `INSERT INTO alert_confirmed (portal_id, address) VALUES ($1, lower($2))`, id, alertTo); err != nil {
		t.Fatal(err)
	}
	return id, bp
}

// refuse is a sync meeting Bitrix24's refusal of the portal's tokens: a
// refused refresh flags the portal "needs reconnect" in the token source,
// a refused call in the failed run's health record (recordFailure).
func (b *retentionBundle) refuse(t *testing.T, portalID int64) {
	t.Helper()
	if err := callBitrix24(b.clients, portalID); !tokensRefused(err) {
		t.Fatalf("a call on refused tokens: %v, want them refused", err)
	}
	if _, err := b.pool.Exec(context.Background(), `UPDATE portals SET needs_reconnect = true WHERE id = $1`, portalID); err != nil {
		t.Fatal(err)
	}
	// The database's clock is the real one: the refusal is dated by the
	// test's clock, as it would have been at that moment.
	var at *time.Time
	if err := b.pool.QueryRow(context.Background(), `UPDATE portals SET tokens_refused_at = $2 WHERE id = $1
		RETURNING (SELECT tokens_refused_at FROM portals WHERE id = $1)`, portalID, b.clock.Now()).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if at == nil {
		t.Fatal("the refusal was not dated when the portal was flagged needs reconnect")
	}
}

// maintain runs one hourly maintenance as River runs it, and waits for the
// erases and e-mails it queued.
func (b *retentionBundle) maintain(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := b.rc.Insert(ctx, MaintenanceArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var open int
		var errs []string
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state NOT IN ('completed', 'cancelled', 'discarded')),
			coalesce(array_agg(errors::text) FILTER (WHERE errors IS NOT NULL), '{}')
			FROM river_job WHERE kind IN ('maintenance', 'portal_check', 'uninstall_erase', 'portal_alert', 'uninstall_check')`).Scan(&open, &errs); err != nil {
			t.Fatal(err)
		}
		if len(errs) > 0 {
			t.Fatalf("jobs failed: %v", errs)
		}
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs still open after a minute", open)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// advance moves the clock by d and runs the hourly maintenance.
func (b *retentionBundle) advance(t *testing.T, d time.Duration) {
	t.Helper()
	b.clock.advance(d)
	b.maintain(t)
}

// pastEraseDelay dates the portal's uninstall back past the erase delay;
// the database dates the uninstall by its own clock, not the test's.
func (b *retentionBundle) pastEraseDelay(t *testing.T, id int64) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), `UPDATE portals SET uninstalled_at = uninstalled_at - $2::interval WHERE id = $1`,
		id, uninstall.EraseDelay+time.Minute); err != nil {
		t.Fatal(err)
	}
}

// erased reports whether the portal's data was erased: it is uninstalled
// and has no settings left.
func (b *retentionBundle) erased(t *testing.T, portalID int64) bool {
	t.Helper()
	var state string
	var settingsLeft int
	if err := b.pool.QueryRow(context.Background(), `SELECT install_state,
		(SELECT count(*) FROM portal_settings WHERE portal_id = $1) FROM portals WHERE id = $1`, portalID).Scan(&state, &settingsLeft); err != nil {
		t.Fatal(err)
	}
	return state == store.InstallUninstalled && settingsLeft == 0
}

// An uninstall whose ONAPPUNINSTALL never arrived: Bitrix24 refuses the
// tokens from then on. 14 days before the retention ends the admin is
// warned (once), and past it the maintenance erases the portal as a clean
// uninstall: uninstalled, settings gone, an audit line for the managers. A
// portal refused later is kept, and not yet warned.
func TestRetentionErasesPortalRefusedTooLong(t *testing.T) {
	t.Parallel()
	b := setupRetention(t)
	gone, bp := b.addPortal(t)
	later, lbp := b.addPortal(t)
	bp.Uninstall(context.Background(), true) // the event is lost
	b.clock.advance(2 * time.Hour)           // the access token expired
	b.refuse(t, gone)

	b.advance(t, 20*day)
	lbp.SetLapse(b24sim.LapseUnpaid)
	b.refuse(t, later)
	b.advance(t, 55*day) // 75 days after the first refusal
	if len(b.mail.subjects()) != 0 || b.erased(t, gone) {
		t.Fatalf("75 days after the refusal: e-mails %q, erased %v; want none, false", b.mail.subjects(), b.erased(t, gone))
	}
	b.advance(t, 2*day) // 77 days: within the warning
	if got := b.mail.subjects(); len(got) != 1 || !strings.Contains(got[0], "will be erased") {
		t.Fatalf("e-mails at the warning: %q, want one erase warning", got)
	}
	row, err := manager.GetPortal(context.Background(), b.pool, gone)
	if err != nil {
		t.Fatal(err)
	}
	if want := b.clock.Now().Add(uninstall.RefusedWarning); !row.EraseAt().Equal(want) {
		t.Fatalf("the console's erase day: %v, want %v", row.EraseAt(), want)
	}
	if body := b.mail.sent[0].Body; !strings.Contains(body, row.EraseAt().UTC().Format("2006-01-02")) {
		t.Fatalf("the warning does not name the day of the erase: %q", body)
	}
	b.advance(t, time.Hour)
	if n := len(b.mail.subjects()); n != 1 || b.erased(t, gone) {
		t.Fatalf("an hour later: %d e-mails, erased %v; want the one warning, not erased", n, b.erased(t, gone))
	}
	b.advance(t, 14*day) // 91 days
	if !b.erased(t, gone) {
		t.Fatal("91 days after the refusal the portal's data is still there")
	}
	if b.erased(t, later) {
		t.Fatal("a portal refused 71 days ago was erased")
	}
	entries, err := manager.ListAudit(context.Background(), b.pool, gone, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Action != RetentionEraseAction {
		t.Fatalf("audit of the erased portal: %+v, want one %s line", entries, RetentionEraseAction)
	}
}

// Tokens that work again before the erase keep the data: a portal whose
// owner paid (the maintenance's check refreshes them), and one whose admin
// opened the app (fresh tokens stored). Each gets a warning first; none is
// erased long past the retention.
func TestRetentionKeepsRecoveredPortal(t *testing.T) {
	t.Parallel()
	for name, recover := range map[string]func(b *retentionBundle, t *testing.T, id int64, bp *b24sim.Portal){
		"Paid": func(b *retentionBundle, t *testing.T, id int64, bp *b24sim.Portal) { bp.SetLapse(b24sim.LapseNone) },
		"AdminOpenedTheApp": func(b *retentionBundle, t *testing.T, id int64, bp *b24sim.Portal) {
			bp.SetLapse(b24sim.LapseNone)
			tok := bp.Install() // what the app page proves and stores on an admin's open
			if err := store.SetPortalTokens(context.Background(), b.pool, b.keyring, id, tok.AccessToken, tok.RefreshToken, tok.Expires); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupRetention(t)
			id, bp := b.addPortal(t)
			bp.SetLapse(b24sim.LapseUnpaid)
			b.refuse(t, id)
			b.advance(t, 80*day)
			if n := len(b.mail.subjects()); n != 1 {
				t.Fatalf("%d e-mails 80 days after the refusal, want the warning", n)
			}
			recover(b, t, id, bp)
			b.advance(t, 11*day)
			b.advance(t, 30*day)
			if b.erased(t, id) {
				t.Fatal("a portal whose tokens work again was erased")
			}
			if err := callBitrix24(b.clients, id); err != nil {
				t.Fatalf("a call after the recovery: %v", err)
			}
			row, err := manager.GetPortal(context.Background(), b.pool, id)
			if err != nil {
				t.Fatal(err)
			}
			if row.NeedsReconnect || !row.EraseAt().IsZero() {
				t.Fatalf("after the recovery: needs reconnect %v, erase on %v; want neither", row.NeedsReconnect, row.EraseAt())
			}
		})
	}
}

// Nothing from outside starts or speeds the clock: only Bitrix24 refusing
// the app's own stored tokens does. A forged ONAPPUNINSTALL (any portal
// user knows the application token) makes the app ask Bitrix24 on those
// tokens (uninstall.Ask), which a working portal answers; a portal refused
// since day 10 asked again and again keeps its first refusal's day. Long
// past the retention from the forgeries, the working portal is untouched
// and the refused one goes only at its own time.
func TestRetentionCannotBeForgedOrSped(t *testing.T) {
	t.Parallel()
	b := setupRetention(t)
	ctx := context.Background()
	working, _ := b.addPortal(t)
	refused, rbp := b.addPortal(t)
	b.advance(t, 10*day)
	rbp.SetLapse(b24sim.LapseUnpaid)
	b.refuse(t, refused)
	refusedAt := func() *time.Time {
		t.Helper()
		var at *time.Time
		if err := b.pool.QueryRow(ctx, `SELECT tokens_refused_at FROM portals WHERE id = $1`, refused).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	first := refusedAt()
	for range 5 {
		b.advance(t, 15*day)
		for _, id := range []int64{working, refused} {
			if v, reason := uninstall.Ask(ctx, b.clients, id); (id == working) != (v == uninstall.Refuted) {
				t.Fatalf("portal %d asked: %v (%s)", id, v, reason)
			}
		}
	}
	if at := refusedAt(); at == nil || !at.Equal(*first) {
		t.Fatalf("the refusal's start moved from %v to %v", first, at)
	}
	// 75 days after the refusal, then 77 (warned) and 89: not erased.
	for _, d := range []time.Duration{0, 2 * day, 12 * day} {
		b.advance(t, d)
		if b.erased(t, refused) || b.erased(t, working) {
			t.Fatal("erased before the retention ended")
		}
	}
	b.advance(t, 2*day)
	if !b.erased(t, refused) || b.erased(t, working) {
		t.Fatalf("91 days after the refusal: refused erased %v, working erased %v; want true, false",
			b.erased(t, refused), b.erased(t, working))
	}
}

// Any portal user knows the application token and may send ONAPPUNINSTALL
// without CLEAN. Sent for a portal the retention is about to erase, Bitrix24
// answers the check by refusing the tokens, as it has for months; taken as
// an uninstall, the portal would be "uninstalled without CLEAN" and its data
// kept for ever. The event is left alone and the erase comes on its day.
func TestRetentionNotStoppedByUninstallWithoutClean(t *testing.T) {
	t.Parallel()
	b := setupRetention(t)
	ctx := context.Background()
	id, bp := b.addPortal(t)
	bp.SetLapse(b24sim.LapseUnpaid)
	b.refuse(t, id)
	b.advance(t, 80*day)
	if n := len(b.mail.subjects()); n != 1 {
		t.Fatalf("%d e-mails 80 days after the refusal, want the warning", n)
	}
	// The event as the app keeps it when it could not ask at once.
	ev, err := uninstall.Record(ctx, b.pool, id, false, "203.0.113.7", uninstall.StatePending, "not asked at once")
	if err != nil {
		t.Fatal(err)
	}
	// The database dates the event by its own clock; it came 80 days into
	// the refusal, as the test's clock says, and is judged as of then.
	if _, err := b.pool.Exec(ctx, `UPDATE uninstall_events SET received_at = $2, last_at = $2 WHERE id = $1`, ev, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.rc.Insert(ctx, UninstallCheckArgs{EventID: ev}, nil); err != nil {
		t.Fatal(err)
	}
	b.maintain(t)
	var state string
	if err := b.pool.QueryRow(ctx, `SELECT install_state FROM portals WHERE id = $1`, id).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != store.InstallInstalled {
		t.Fatalf("after the uninstall without CLEAN the portal is %s, want it left installed", state)
	}
	b.advance(t, 15*day) // 14 days after the warning
	if !b.erased(t, id) {
		t.Fatal("95 days after the refusal, 15 after the warning, the portal's data is still there")
	}
}

// The retention's erase is no uninstall event's: an event without CLEAN
// sent around it (any portal user may send one) does not drop it, as it
// drops the erase of a CLEAN event it may contradict.
func TestRetentionEraseNotDroppedByEventWithoutClean(t *testing.T) {
	t.Parallel()
	b := setupRetention(t)
	ctx := context.Background()
	id, _ := b.addPortal(t)
	var generation int64
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := uninstall.Confirm(ctx, tx, nil, id, false); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT install_generation FROM portals WHERE id = $1`, id).Scan(&generation)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uninstall.Record(ctx, b.pool, id, false, "203.0.113.7", uninstall.StateExpired, uninstall.ReasonAlreadyUninstalled); err != nil {
		t.Fatal(err)
	}
	w := &UninstallEraseWorker{Pool: b.pool, Log: slog.New(slog.DiscardHandler)}
	job := &river.Job[UninstallEraseArgs]{Args: UninstallEraseArgs{PortalID: id, Generation: generation, Retention: true}}
	if err := w.Work(ctx, job); err != nil {
		t.Fatal(err)
	}
	if !b.erased(t, id) {
		t.Fatal("the retention's erase was dropped by an uninstall event without CLEAN")
	}
}

// When a portal's data is erased, the managers' notes about it go too: the
// activation and suspension notes and the request's notes (in the audit
// trail and on the request), wherever they were stored. The audit lines
// stay, without their text. Another portal's notes stay.
func TestEraseRemovesManagerNotes(t *testing.T) {
	t.Parallel()
	b := setupRetention(t)
	ctx := context.Background()
	gone, bp := b.addPortal(t)
	other, _ := b.addPortal(t)
	olga := manager.Actor{Email: "olga@ispring.example", IP: "192.0.2.7"}
	now := time.Now()
	const (
		activateNote = "Ivan Petrov promised to pay by Friday"
		suspendNote  = "suspended: Petrov's phone +79991234567 off"
		requestNote  = "called Maria Sidorova, the HR head"
		otherNote    = "Anna Kuznetsova of the other portal"
	)
	var req int64
	if err := b.pool.QueryRow(ctx, `INSERT INTO activation_requests (portal_id, name, email, phone)
		VALUES ($1, 'Ivan Petrov', 'ivan@acme.test', '+79991234567') RETURNING id`, gone).Scan(&req); err != nil {
		t.Fatal(err)
	}
	if err := activation.UpdateRequest(ctx, b.pool, olga, req, "contacted", requestNote, now); err != nil {
		t.Fatal(err)
	}
	if err := activation.SetActivation(ctx, b.pool, olga, gone, store.ActivationActive, activateNote, now); err != nil {
		t.Fatal(err)
	}
	if err := activation.SetActivation(ctx, b.pool, olga, gone, store.ActivationSuspended, suspendNote, now); err != nil {
		t.Fatal(err)
	}
	if err := activation.SetActivation(ctx, b.pool, olga, other, store.ActivationSuspended, otherNote, now); err != nil {
		t.Fatal(err)
	}
	bp.Uninstall(ctx, true)
	b.clock.advance(2 * time.Hour)
	b.refuse(t, gone)
	b.advance(t, 80*day) // warned
	b.advance(t, 14*day)
	if !b.erased(t, gone) {
		t.Fatal("the portal was not erased")
	}
	for _, text := range []string{"Petrov", "Sidorova", "+79991234567"} {
		if where := tablesHolding(t, b.pool, text); len(where) > 0 {
			t.Errorf("%q is still stored in %v", text, where)
		}
	}
	if where := tablesHolding(t, b.pool, otherNote); len(where) != 1 || where[0] != "manager_audit" {
		t.Errorf("the other portal's note is in %v, want manager_audit", where)
	}
	entries, err := manager.ListAudit(ctx, b.pool, gone, 10)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, e := range entries {
		actions[e.Action] = true
		if e.Action != "request_status" && e.Action != RetentionEraseAction && (e.Note != "" || e.NoteErased.IsZero()) {
			t.Errorf("audit line %s after the erase: note %q, erased at %v", e.Action, e.Note, e.NoteErased)
		}
		if e.ManagerEmail == "" || e.At.IsZero() {
			t.Errorf("audit line %s lost who or when: %+v", e.Action, e)
		}
	}
	for _, a := range []string{"activate", "suspend", "request_notes", "request_status", RetentionEraseAction} {
		if !actions[a] {
			t.Errorf("the audit line %s is gone; the trail: %+v", a, entries)
		}
	}
}

// tablesHolding lists the tables of the database with a row whose text
// holds s, River's included.
func tablesHolding(t *testing.T, pool *pgxpool.Pool, s string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, table := range tables {
		var n int
		q := `SELECT count(*) FROM ` + pgx.Identifier{table}.Sanitize() + ` x WHERE strpos(x::text, $1) > 0`
		if err := pool.QueryRow(ctx, q, s).Scan(&n); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if n > 0 {
			out = append(out, table)
		}
	}
	return out
}

// A retention check claimed for an old refusal runs after an admin's open
// ended it and a new refusal began: the admin is not warned of an erase
// about a refusal minutes old.
func TestRetentionCheckOfANewRefusalWarnsNotYet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRetention(t)
	id, bp := b.addPortal(t)
	bp.SetLapse(b24sim.LapseUnpaid)
	b.clock.advance(2 * time.Hour) // the access token expired
	b.refuse(t, id)
	if _, err := b.rc.Insert(ctx, PortalCheckArgs{PortalID: id, Check: checkRetention}, nil); err != nil {
		t.Fatal(err)
	}
	b.maintain(t)
	var warned *time.Time
	if err := b.pool.QueryRow(ctx, `SELECT erase_warned_at FROM portals WHERE id = $1`, id).Scan(&warned); err != nil {
		t.Fatal(err)
	}
	if warned != nil || len(b.mail.subjects()) != 0 {
		t.Errorf("a refusal of 0 days: warned at %v, e-mails %q; want no warning", warned, b.mail.subjects())
	}
}
