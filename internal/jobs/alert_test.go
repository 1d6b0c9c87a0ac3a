package jobs

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"b24learn/internal/activation/smtptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
	"b24learn/internal/settings"
	"b24learn/internal/syncer"
)

const alertTo = "anna@acme.test"

// alertWorld is a world whose processes send e-mail to an in-process SMTP
// server, with one portal whose admin saved alertTo in lang, confirmed.
func alertWorld(t *testing.T, employees int, lang string, edit func(*settings.Settings)) (*world, *smtptest.Server, int64, *b24sim.Portal, *process) {
	t.Helper()
	return alertWorldOf(t, newWorld(t, 0), employees, lang, edit)
}

// alertWorldOf is alertWorld in w, set up by the caller.
func alertWorldOf(t *testing.T, w *world, employees int, lang string, edit func(*settings.Settings)) (*world, *smtptest.Server, int64, *b24sim.Portal, *process) {
	t.Helper()
	srv := smtptest.Start(t, smtptest.Plain, "", "")
	w.smtp = srv.URL
	portal, bp := w.addPortal(employees, "06:00", "")
	if _, err := settings.Save(context.Background(), w.pool, w.keyring, portal, 0, func(s *settings.Settings) {
		s.AlertEmail, s.AlertLang = alertTo, lang
		if edit != nil {
			edit(s)
		}
	}); err != nil {
		t.Fatal(err)
	}
	// Its owner confirmed it (the double opt-in is server's and alert's to test).
	if _, err := w.pool.Exec(context.Background(), `INSERT INTO alert_confirmed (portal_id, address) VALUES ($1, lower($2))`,
		portal, alertTo); err != nil {
		t.Fatal(err)
	}
	return w, srv, portal, bp, w.startProcess()
}

// syncOnce runs one scheduled sync job of a single attempt, each of a slot
// of its own, so each job is one success or one failure, and waits for it
// and any alert it queued.
func (w *world) syncOnce(p *process, portal int64) {
	w.t.Helper()
	slot := fmt.Sprintf("test-%d", slots.Add(1))
	if _, err := p.client.Insert(context.Background(), ScheduledSyncArgs{PortalID: portal, Slot: slot},
		&river.InsertOpts{MaxAttempts: 1}); err != nil {
		w.t.Fatal(err)
	}
	w.waitJobsDone("sync_scheduled", "portal_alert")
}

var slots atomic.Int64

// syncByHand is syncOnce for a "Sync now" job.
func (w *world) syncByHand(p *process, portal int64) {
	w.t.Helper()
	if _, err := p.client.Insert(context.Background(), SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual},
		&river.InsertOpts{MaxAttempts: 1}); err != nil {
		w.t.Fatal(err)
	}
	w.waitJobsDone("sync", "portal_alert")
}

func setLearnPassword(t *testing.T, w *world, portal int64, password string) {
	t.Helper()
	if _, err := settings.Save(context.Background(), w.pool, w.keyring, portal, 0, func(s *settings.Settings) { s.Password = password }); err != nil {
		t.Fatal(err)
	}
}

type gotMail struct{ to, subject, body string }

// mails decodes the accepted messages' recipient, subject and body.
func mails(t *testing.T, srv *smtptest.Server) []gotMail {
	t.Helper()
	var out []gotMail
	for _, m := range srv.Messages() {
		d := m.Decode(t)
		out = append(out, gotMail{to: strings.Join(m.To, ","), subject: d.Subject, body: d.Body})
	}
	return out
}

// A sync Learn refused the saved password for sends the portal's admin
// one alert at once, in the language they saved the settings in, with the
// refusal as the last error: the password will not fix itself. A second
// refusal sends none; the first success after the admin saves the right
// password sends one "working again".
func TestAlertOnRefusedPasswordAndOnRecovery(t *testing.T) {
	t.Parallel()
	w, srv, portal, _, p := alertWorld(t, 10, "ru", func(s *settings.Settings) { s.Password = "wrong password" })
	w.syncOnce(p, portal)
	got := mails(t, srv)
	if len(got) != 1 {
		t.Fatalf("after one refused password: %d e-mails, want 1: %+v", len(got), got)
	}
	if got[0].to != alertTo || !strings.Contains(got[0].subject, "требует внимания") ||
		!strings.Contains(got[0].body, "Последняя ошибка: iSpring Learn отклонил e-mail (логин) или пароль.") ||
		!strings.Contains(got[0].body, "\nПодробности для службы поддержки: ") {
		t.Fatalf("alert e-mail = %+v, want a Russian needs-attention alert to %s with the last error", got[0], alertTo)
	}
	w.syncOnce(p, portal)
	if got := mails(t, srv); len(got) != 1 {
		t.Fatalf("a second refusal sent e-mail: %+v", got[1:])
	}
	setLearnPassword(t, w, portal, learnPassword)
	w.syncOnce(p, portal)
	got = mails(t, srv)
	if len(got) != 2 || !strings.Contains(got[1].subject, "снова работает") {
		t.Fatalf("after recovery: %+v, want one \"working again\" e-mail", got)
	}
	w.syncOnce(p, portal)
	if got := mails(t, srv); len(got) != 2 {
		t.Fatalf("a second success sent e-mail: %+v", got[2:])
	}
}

// "Sync now" that Learn refuses the saved password for marks the portal
// "needs attention" but e-mails nothing: the admin who pressed it sees the
// error on the page. The scheduled run that meets the same refusal sends
// the alert, once; the admin's "Sync now" after fixing the password ends it
// with the "working again" e-mail.
func TestNoAlertForRefusedPasswordOfSyncNow(t *testing.T) {
	t.Parallel()
	w, srv, portal, _, p := alertWorld(t, 10, "en", func(s *settings.Settings) { s.Password = "wrong password" })
	attention := func() bool {
		t.Helper()
		var on bool
		if err := w.pool.QueryRow(context.Background(), `SELECT needs_attention FROM portals WHERE id = $1`, portal).Scan(&on); err != nil {
			t.Fatal(err)
		}
		return on
	}
	w.syncByHand(p, portal)
	if got := mails(t, srv); len(got) != 0 || !attention() {
		t.Fatalf("after Sync now was refused: needs attention %v, e-mails %+v; want the mark and no e-mail", attention(), got)
	}
	w.syncOnce(p, portal)
	if got := mails(t, srv); len(got) != 1 || !strings.Contains(got[0].subject, "needs attention") {
		t.Fatalf("after the scheduled run was refused too: e-mails %+v, want one needs-attention alert", got)
	}
	w.syncByHand(p, portal)
	if got := mails(t, srv); len(got) != 1 {
		t.Fatalf("a second refused Sync now sent e-mail: %+v", got[1:])
	}
	setLearnPassword(t, w, portal, learnPassword)
	w.syncByHand(p, portal)
	if got := mails(t, srv); len(got) != 2 || !strings.Contains(got[1].subject, "working again") || attention() {
		t.Fatalf("after the fix: needs attention %v, e-mails %+v, want one \"working again\" e-mail", attention(), got)
	}
}

// A portal whose syncs fail on Learn answering 503 sends its admin one
// alert at the third failure in a row, not before: an outage may pass.
func TestAlertAfterThreeOutageFailures(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	w.learnRetry = learn.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
	down, _ := w.learnOutage()
	w, srv, portal, _, p := alertWorldOf(t, w, 10, "en", nil)
	down.Store(true)
	for i := 1; i <= 3; i++ {
		w.syncOnce(p, portal)
		if got := mails(t, srv); len(got) != map[bool]int{true: 1, false: 0}[i == 3] {
			t.Fatalf("after failure %d: %d e-mails: %+v", i, len(got), got)
		}
	}
	if got := mails(t, srv)[0]; got.to != alertTo || !strings.Contains(got.subject, "needs attention") ||
		!strings.Contains(got.body, "503") {
		t.Fatalf("alert e-mail = %+v, want a needs-attention alert to %s with the 503", got, alertTo)
	}
}

// With alerts off, neither the failures nor the recovery send anything.
func TestAlertsOffSendNone(t *testing.T) {
	t.Parallel()
	w, srv, portal, _, p := alertWorld(t, 10, "en", func(s *settings.Settings) {
		s.Password, s.AlertsOff = "wrong password", true
	})
	for range 3 {
		w.syncOnce(p, portal)
	}
	setLearnPassword(t, w, portal, learnPassword)
	w.syncOnce(p, portal)
	var attention bool
	if err := w.pool.QueryRow(context.Background(), `SELECT needs_attention FROM portals WHERE id = $1`, portal).Scan(&attention); err != nil {
		t.Fatal(err)
	}
	if got := mails(t, srv); len(got) != 0 || attention {
		t.Fatalf("alerts off: e-mails %+v, needs attention %v", got, attention)
	}
	var jobs int
	if err := w.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'portal_alert' AND state = 'completed'`).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	if jobs != 2 {
		t.Fatalf("%d alert jobs completed, want 2 (the alert and the recovery, both unsent)", jobs)
	}
}

// A run whose deactivations the safeguard holds sends one alert; the next
// held run sends none.
func TestAlertOnHeldRun(t *testing.T) {
	t.Parallel()
	w, srv, portal, bp, p := alertWorld(t, 40, "en", nil)
	w.syncOnce(p, portal)
	if got := mails(t, srv); len(got) != 0 {
		t.Fatalf("a first sync sent e-mail: %+v", got)
	}
	for _, u := range bp.Users() {
		if u.ID != bp.AdminID() {
			if err := bp.FireUser(u.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 2 {
		w.syncOnce(p, portal)
	}
	if runs := w.runs(portal); runs[len(runs)-1].status != syncer.RunHeld {
		t.Fatalf("runs %+v, want the last held", runs)
	}
	got := mails(t, srv)
	if len(got) != 1 || !strings.Contains(got[0].subject, "waiting for your approval") {
		t.Fatalf("e-mails %+v, want one held alert", got)
	}
}

// A portal whose Bitrix24 access is gone sends one alert; its syncs stop,
// and nothing more is sent.
func TestAlertOnLostBitrix24Access(t *testing.T) {
	t.Parallel()
	w, srv, portal, bp, p := alertWorld(t, 10, "en", nil)
	bp.Uninstall(context.Background(), false)
	for range 2 {
		w.syncOnce(p, portal)
	}
	var reconnect bool
	if err := w.pool.QueryRow(context.Background(), `SELECT needs_reconnect FROM portals WHERE id = $1`, portal).Scan(&reconnect); err != nil {
		t.Fatal(err)
	}
	got := mails(t, srv)
	if !reconnect || len(got) != 1 || !strings.Contains(got[0].subject, "lost its Bitrix24 access") {
		t.Fatalf("needs reconnect %v, e-mails %+v, want one lost-access alert", reconnect, got)
	}
}

// A portal that sent its cap of alert e-mails in the last 24 h sends no
// more: nine earlier sends (and one older than two days, which no longer
// counts and is deleted) let the failure alert through as the tenth, and
// the recovery, the eleventh, is not sent.
func TestAlertSendCap(t *testing.T) {
	t.Parallel()
	w, srv, portal, _, p := alertWorld(t, 10, "en", func(s *settings.Settings) { s.Password = "wrong password" })
	ctx := context.Background()
	if _, err := w.pool.Exec(ctx, `INSERT INTO alert_sends (portal_id, sent_at)
		SELECT $1::bigint, now() - interval '23 hours' FROM generate_series(1, 9)
		UNION ALL SELECT $1::bigint, now() - interval '3 days'`, portal); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w.syncOnce(p, portal)
	}
	if got := mails(t, srv); len(got) != 1 || !strings.Contains(got[0].subject, "needs attention") {
		t.Fatalf("e-mails %+v, want the needs-attention alert as the tenth send", got)
	}
	setLearnPassword(t, w, portal, learnPassword)
	w.syncOnce(p, portal)
	if got := mails(t, srv); len(got) != 1 {
		t.Fatalf("the eleventh alert in 24 h was sent: %+v", got[1:])
	}
	var rows, old int
	if err := w.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE sent_at < now() - interval '2 days')
		FROM alert_sends WHERE portal_id = $1`, portal).Scan(&rows, &old); err != nil {
		t.Fatal(err)
	}
	if rows != 10 || old != 0 {
		t.Fatalf("alert_sends has %d rows, %d older than two days; want 10 and 0", rows, old)
	}
}
