package activation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/activation/smtptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
	"b24learn/internal/manager"
	"b24learn/internal/pgtest"
	"b24learn/internal/schedule"
	"b24learn/internal/settings"
)

func mustPortal(tb testing.TB, pool *pgxpool.Pool, domain string) int64 {
	tb.Helper()
	var id int64
	err := pool.QueryRow(context.Background(),
		`INSERT INTO portals (member_id, domain) VALUES ($1, $2) RETURNING id`, "m-"+domain, domain).Scan(&id)
	if err != nil {
		tb.Fatalf("insert portal: %v", err)
	}
	return id
}

func activationState(tb testing.TB, pool *pgxpool.Pool, portalID int64) string {
	tb.Helper()
	var s string
	if err := pool.QueryRow(context.Background(), `SELECT activation_state FROM portals WHERE id = $1`, portalID).Scan(&s); err != nil {
		tb.Fatal(err)
	}
	return s
}

// enqueueCount records enqueue calls in a table of the test database, so a
// rollback of the submission also rolls the "job" back.
func enqueueInto(tb testing.TB, pool *pgxpool.Pool) Enqueue {
	tb.Helper()
	if _, err := pool.Exec(context.Background(), `CREATE TABLE IF NOT EXISTS test_jobs (portal_id bigint, request_id bigint)`); err != nil {
		tb.Fatal(err)
	}
	return func(ctx context.Context, tx pgx.Tx, portalID, requestID int64) error {
		_, err := tx.Exec(ctx, `INSERT INTO test_jobs VALUES ($1, $2)`, portalID, requestID)
		return err
	}
}

func count(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func mustSchedule(t *testing.T, first, second string) schedule.Schedule {
	t.Helper()
	s, err := schedule.Parse(first, second)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var contact = Contact{Name: "Ivan Petrov", Email: "ivan@acme.example", Phone: "+7 (912) 345-67-89"}

func TestSubmit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	enq := enqueueInto(t, pool)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	limits := manager.DefaultLimits

	t.Run("StoresRequestJobAndState", func(t *testing.T) {
		pid := mustPortal(t, pool, "store.bitrix24.ru")
		if _, err := settings.Save(ctx, pool, nil, pid, 1, func(s *settings.Settings) {
			s.LearnURL, s.Schedule = "https://acme.ispringlearn.com", mustSchedule(t, "06:00", "18:30")
			s.Departments = settings.Scope{Selected: []int64{1, 5}, Excluded: []int64{7}}
		}); err != nil {
			t.Fatal(err)
		}
		emp := 42
		res, err := Submit(ctx, pool, limits, now, Submission{PortalID: pid, B24UserID: 1, IP: "10.0.0.1",
			Contact: contact, EmployeesInScope: &emp}, enq)
		if err != nil {
			t.Fatalf("Submit: %v", err)
		}
		if res.Updated {
			t.Fatal("first submission reported as update")
		}
		r, err := GetRequest(ctx, pool, pid, res.RequestID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Phone != "+79123456789" || r.Name != "Ivan Petrov" || r.Status != StatusNew || r.PortalDomain != "store.bitrix24.ru" {
			t.Fatalf("stored %+v", r)
		}
		s := r.Summary
		if s.LearnURL != "https://acme.ispringlearn.com" || s.FirstRun != "06:00" || s.SecondRun != "18:30" ||
			fmt.Sprint(s.Departments) != "[1 5]" || fmt.Sprint(s.Excluded) != "[7]" || s.EmployeesInScope != 42 {
			t.Fatalf("summary %+v", s)
		}
		if r.EmailDelivery.State != DeliveryPending || r.CRMDelivery.State != DeliveryPending {
			t.Fatalf("delivery states %q %q", r.EmailDelivery.State, r.CRMDelivery.State)
		}
		if n := count(t, pool, `SELECT count(*) FROM test_jobs WHERE request_id = $1`, res.RequestID); n != 1 {
			t.Fatalf("jobs = %d, want 1", n)
		}
		if st := activationState(t, pool, pid); st != "requested" {
			t.Fatalf("activation_state = %q, want requested", st)
		}
	})

	t.Run("RepeatUpdatesOpenRequest", func(t *testing.T) {
		pid := mustPortal(t, pool, "repeat.bitrix24.ru")
		first, err := Submit(ctx, pool, limits, now, Submission{PortalID: pid, Contact: contact}, enq)
		if err != nil {
			t.Fatal(err)
		}
		c2 := contact
		c2.Phone = "+44 20 7946 0958"
		second, err := Submit(ctx, pool, limits, now.Add(time.Minute), Submission{PortalID: pid, Contact: c2}, enq)
		if err != nil {
			t.Fatal(err)
		}
		if second.RequestID != first.RequestID || !second.Updated {
			t.Fatalf("second = %+v, want update of %d", second, first.RequestID)
		}
		if n := count(t, pool, `SELECT count(*) FROM activation_requests WHERE portal_id = $1`, pid); n != 1 {
			t.Fatalf("requests = %d, want 1", n)
		}
		r, _ := GetRequest(ctx, pool, pid, first.RequestID)
		if r.Phone != "+442079460958" || r.Revision != 2 || r.Submissions != 2 {
			t.Fatalf("after update: %+v", r)
		}
		// Once closed, a new submission opens a new request.
		if _, err := pool.Exec(ctx, `UPDATE activation_requests SET status = 'rejected' WHERE id = $1`, r.ID); err != nil {
			t.Fatal(err)
		}
		third, err := Submit(ctx, pool, limits, now.Add(2*time.Minute), Submission{PortalID: pid, Contact: c2}, enq)
		if err != nil {
			t.Fatal(err)
		}
		if third.RequestID == first.RequestID || third.Updated {
			t.Fatalf("third = %+v, want a new request", third)
		}
	})

	t.Run("ActivePortalStaysActive", func(t *testing.T) {
		pid := mustPortal(t, pool, "active.bitrix24.ru")
		if _, err := pool.Exec(ctx, `UPDATE portals SET activation_state = 'active' WHERE id = $1`, pid); err != nil {
			t.Fatal(err)
		}
		if _, err := Submit(ctx, pool, limits, now, Submission{PortalID: pid, Contact: contact}, enq); err != nil {
			t.Fatal(err)
		}
		if st := activationState(t, pool, pid); st != "active" {
			t.Fatalf("activation_state = %q, want active", st)
		}
	})

	t.Run("InvalidStoresNothing", func(t *testing.T) {
		pid := mustPortal(t, pool, "invalid.bitrix24.ru")
		_, err := Submit(ctx, pool, limits, now, Submission{PortalID: pid, Contact: Contact{Name: "x", Email: "bad", Phone: "123"}}, enq)
		var fe FieldErrors
		if !errors.As(err, &fe) || len(fe) != 2 {
			t.Fatalf("err = %v, want email and phone errors", err)
		}
		if n := count(t, pool, `SELECT count(*) FROM activation_requests WHERE portal_id = $1`, pid); n != 0 {
			t.Fatalf("requests = %d, want 0", n)
		}
		if st := activationState(t, pool, pid); st != "inactive" {
			t.Fatalf("activation_state = %q", st)
		}
	})

	t.Run("EnqueueFailureRollsBack", func(t *testing.T) {
		pid := mustPortal(t, pool, "rollback.bitrix24.ru")
		boom := func(context.Context, pgx.Tx, int64, int64) error { return errors.New("queue down") }
		if _, err := Submit(ctx, pool, limits, now, Submission{PortalID: pid, Contact: contact}, boom); err == nil {
			t.Fatal("Submit succeeded without its job")
		}
		if n := count(t, pool, `SELECT count(*) FROM activation_requests WHERE portal_id = $1`, pid); n != 0 {
			t.Fatalf("requests = %d, want 0: request stored without its forwarding job", n)
		}
		if st := activationState(t, pool, pid); st != "inactive" {
			t.Fatalf("activation_state = %q, want inactive", st)
		}
	})

	t.Run("RateLimitPerPortal", func(t *testing.T) {
		pid := mustPortal(t, pool, "flood.bitrix24.ru")
		l := limits
		l.SubmitPerPortal = manager.Limit{Max: 3, Window: time.Hour}
		for i := range 3 {
			if _, err := Submit(ctx, pool, l, now, Submission{PortalID: pid, IP: fmt.Sprintf("10.1.0.%d", i), Contact: contact}, enq); err != nil {
				t.Fatalf("submission %d: %v", i+1, err)
			}
		}
		_, err := Submit(ctx, pool, l, now.Add(10*time.Minute), Submission{PortalID: pid, IP: "10.1.0.9", Contact: contact}, enq)
		var rl *manager.RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("4th submission: err = %v, want rate limited", err)
		}
		if rl.Minutes() != 50 {
			t.Fatalf("retry in %d min, want 50 (end of the hour window)", rl.Minutes())
		}
		// The next window admits again.
		if _, err := Submit(ctx, pool, l, now.Add(time.Hour), Submission{PortalID: pid, Contact: contact}, enq); err != nil {
			t.Fatalf("next window: %v", err)
		}
	})

	t.Run("RateLimitPerIP", func(t *testing.T) {
		l := limits
		l.SubmitPerIP = manager.Limit{Max: 2, Window: time.Hour}
		for i := range 2 {
			pid := mustPortal(t, pool, fmt.Sprintf("ip%d.bitrix24.ru", i))
			if _, err := Submit(ctx, pool, l, now, Submission{PortalID: pid, IP: "192.0.2.7", Contact: contact}, enq); err != nil {
				t.Fatal(err)
			}
		}
		pid := mustPortal(t, pool, "ip3.bitrix24.ru")
		_, err := Submit(ctx, pool, l, now, Submission{PortalID: pid, IP: "192.0.2.7", Contact: contact}, enq)
		var rl *manager.RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("3rd portal from one IP: err = %v, want rate limited", err)
		}
		if n := count(t, pool, `SELECT count(*) FROM activation_requests WHERE portal_id = $1`, pid); n != 0 {
			t.Fatal("a refused submission was stored")
		}
	})

	// Addresses in one IPv6 /64 (one subscriber's) share the per-address limit.
	t.Run("RateLimitPerIPv6Subnet", func(t *testing.T) {
		l := limits
		l.SubmitPerIP = manager.Limit{Max: 2, Window: time.Hour}
		for i := range 2 {
			pid := mustPortal(t, pool, fmt.Sprintf("v6-%d.bitrix24.ru", i))
			ip := fmt.Sprintf("2001:db8:1:2::%d", i+1)
			if _, err := Submit(ctx, pool, l, now, Submission{PortalID: pid, IP: ip, Contact: contact}, enq); err != nil {
				t.Fatal(err)
			}
		}
		pid := mustPortal(t, pool, "v6-3.bitrix24.ru")
		_, err := Submit(ctx, pool, l, now, Submission{PortalID: pid, IP: "2001:db8:1:2::3", Contact: contact}, enq)
		var rl *manager.RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("3rd portal from one /64: err = %v, want rate limited", err)
		}
		pid = mustPortal(t, pool, "v6-4.bitrix24.ru")
		if _, err := Submit(ctx, pool, l, now, Submission{PortalID: pid, IP: "2001:db8:1:3::1", Contact: contact}, enq); err != nil {
			t.Fatalf("from the neighbouring /64: %v", err)
		}
	})
}

func TestForward(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	enq := enqueueInto(t, pool)
	log := slog.New(slog.DiscardHandler)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

	sim := b24sim.Start(b24sim.Options{})
	t.Cleanup(sim.Close)

	submit := func(t *testing.T, domain string) (int64, int64) {
		t.Helper()
		pid := mustPortal(t, pool, domain)
		if _, err := settings.Save(ctx, pool, nil, pid, 1, func(s *settings.Settings) {
			s.LearnURL, s.Schedule = "https://acme.ispringlearn.com", mustSchedule(t, "06:00", "")
			s.Departments.Selected = []int64{1, 12}
		}); err != nil {
			t.Fatal(err)
		}
		c := contact
		c.Name = "Иван <b>Петров</b>"
		res, err := Submit(ctx, pool, manager.DefaultLimits, now, Submission{PortalID: pid, Contact: c}, enq)
		if err != nil {
			t.Fatal(err)
		}
		return pid, res.RequestID
	}

	for _, mode := range []smtptest.Mode{smtptest.Plain, smtptest.StartTLS, smtptest.TLS} {
		t.Run("Mail_"+string(mode), func(t *testing.T) {
			// Credentials only over TLS: go-mail refuses AUTH on a plain connection.
			user, pass := "mailer", "s3cret"
			if mode == smtptest.Plain {
				user, pass = "", ""
			}
			srv := smtptest.Start(t, mode, user, pass)
			m, err := NewMailer(srv.URL, "fallback@example.com", srv.ClientTLS)
			if err != nil {
				t.Fatal(err)
			}
			pid, id := submit(t, "mail-"+strings.ReplaceAll(string(mode), "+", "-")+".bitrix24.ru")
			f := &Forwarder{Log: log, Pool: pool, Mail: m, To: []string{"sales@ispring.example", "boss@ispring.example"},
				ConsoleURL: "https://app.example/manager", Now: func() time.Time { return now }}
			if err := f.Forward(ctx, pid, id, false); err != nil {
				t.Fatalf("Forward: %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("messages = %d, want 1", len(msgs))
			}
			if got := strings.Join(msgs[0].To, ","); got != "sales@ispring.example,boss@ispring.example" {
				t.Fatalf("recipients %q", got)
			}
			if msgs[0].From != "b24learn@test.example" {
				t.Fatalf("envelope from %q", msgs[0].From)
			}
			d := msgs[0].Decode(t)
			hdr, body, subj := d.Header, d.Body, d.Subject
			domain := "mail-" + strings.ReplaceAll(string(mode), "+", "-") + ".bitrix24.ru"
			if subj != "Activation request: "+domain {
				t.Fatalf("subject %q", subj)
			}
			if rt := hdr.Get("Reply-To"); !strings.Contains(rt, "ivan@acme.example") {
				t.Fatalf("reply-to %q", rt)
			}
			for _, want := range []string{domain, "Иван <b>Петров</b>", "ivan@acme.example", "+79123456789",
				"https://acme.ispringlearn.com", "2 selected (ids 1, 12)", "06:00", "Employees in scope:          not known yet",
				"https://app.example/manager/requests?older=", fmt.Sprintf("#request-%d", id)} {
				if !strings.Contains(body, want) {
					t.Errorf("mail body lacks %q:\n%s", want, body)
				}
			}
			r, _ := GetRequest(ctx, pool, pid, id)
			if r.EmailDelivery.State != DeliveryDelivered || r.EmailDelivery.Attempts != 1 || r.CRMDelivery.State != DeliverySkipped {
				t.Fatalf("states: email %+v crm %+v", r.EmailDelivery, r.CRMDelivery)
			}
			// A delivered channel is not sent again.
			if err := f.Forward(ctx, pid, id, false); err != nil || len(srv.Messages()) != 1 {
				t.Fatalf("second Forward: err=%v messages=%d", err, len(srv.Messages()))
			}
		})
	}

	t.Run("WrongSMTPPassword", func(t *testing.T) {
		srv := smtptest.Start(t, smtptest.StartTLS, "mailer", "s3cret")
		u := *srv.URL
		u.User = url.UserPassword("mailer", "wrong")
		m, _ := NewMailer(&u, "x@example.com", srv.ClientTLS)
		pid, id := submit(t, "badauth.bitrix24.ru")
		f := &Forwarder{Log: log, Pool: pool, Mail: m, To: []string{"sales@ispring.example"}}
		if err := f.Forward(ctx, pid, id, true); err == nil {
			t.Fatal("Forward succeeded with a wrong SMTP password")
		}
		r, _ := GetRequest(ctx, pool, pid, id)
		if r.EmailDelivery.State != DeliveryFailed || r.EmailDelivery.Error == "" || !r.Failed() {
			t.Fatalf("after the final attempt: %+v", r.EmailDelivery)
		}
	})

	t.Run("CRMLead", func(t *testing.T) {
		portal := sim.AddPortal(b24sim.PortalOptions{WebhookCode: "abc123xyz"})
		hook, err := url.Parse(portal.WebhookURL())
		if err != nil || portal.WebhookURL() == "" {
			t.Fatalf("webhook url %q: %v", portal.WebhookURL(), err)
		}
		pid, id := submit(t, "crm.bitrix24.ru")
		f := &Forwarder{Log: log, Pool: pool, CRM: NewCRM(hook, nil)}
		if err := f.Forward(ctx, pid, id, false); err != nil {
			t.Fatalf("Forward: %v", err)
		}
		leads := portal.Leads()
		if len(leads) != 1 {
			t.Fatalf("leads = %d, want 1", len(leads))
		}
		fl := leads[0].Fields
		if fl["TITLE"] != "iSpring Learn sync activation: crm.bitrix24.ru" || fl["NAME"] != "Иван <b>Петров</b>" {
			t.Fatalf("TITLE/NAME: %v / %v", fl["TITLE"], fl["NAME"])
		}
		for key, want := range map[string]string{"PHONE": "+79123456789", "EMAIL": "ivan@acme.example"} {
			multi, ok := fl[key].([]any)
			if !ok || len(multi) != 1 {
				t.Fatalf("%s = %#v, want one multi-field value", key, fl[key])
			}
			v, _ := multi[0].(map[string]any)
			if v["VALUE"] != want || v["VALUE_TYPE"] != "WORK" {
				t.Fatalf("%s = %#v", key, v)
			}
		}
		comments, _ := fl["COMMENTS"].(string)
		for _, want := range []string{"crm.bitrix24.ru", "https://acme.ispringlearn.com", "2 selected", "06:00"} {
			if !strings.Contains(comments, want) {
				t.Errorf("COMMENTS lacks %q: %s", want, comments)
			}
		}
		r, _ := GetRequest(ctx, pool, pid, id)
		if r.CRMDelivery.State != DeliveryDelivered || r.CRMLeadID == "" || r.EmailDelivery.State != DeliverySkipped {
			t.Fatalf("states: crm %+v lead %q email %+v", r.CRMDelivery, r.CRMLeadID, r.EmailDelivery)
		}

		// LEAD_LANG=ru: iSpring's sales team reads the whole lead in Russian.
		pid, id = submit(t, "crm-ru.bitrix24.ru")
		f.LeadLang = i18n.RU
		if err := f.Forward(ctx, pid, id, false); err != nil {
			t.Fatalf("Forward: %v", err)
		}
		if leads = portal.Leads(); len(leads) != 2 {
			t.Fatalf("leads = %d, want 2", len(leads))
		}
		fl = leads[1].Fields
		comments, _ = fl["COMMENTS"].(string)
		if fl["TITLE"] != "Активация синхронизации с iSpring Learn: crm-ru.bitrix24.ru" || fl["SOURCE_DESCRIPTION"] != "Заявка на активацию из b24learn" ||
			!strings.Contains(comments, "Портал: crm-ru.bitrix24.ru") || !strings.Contains(comments, "выбрано 2") || strings.Contains(comments, "selected") {
			t.Fatalf("the Russian lead: %q, %q\n%s", fl["TITLE"], fl["SOURCE_DESCRIPTION"], comments)
		}
	})

	t.Run("CRMErrorThenRetryOnlyFailedChannel", func(t *testing.T) {
		portal := sim.AddPortal(b24sim.PortalOptions{WebhookCode: "def456"})
		hook, _ := url.Parse(portal.WebhookURL())
		portal.InjectFault(b24sim.Fault{Method: "crm.lead.add", Status: 500, Code: "INTERNAL_SERVER_ERROR", Description: "boom", Count: 1})
		srv := smtptest.Start(t, smtptest.Plain, "", "")
		m, _ := NewMailer(srv.URL, "x@example.com", nil)
		pid, id := submit(t, "crmfail.bitrix24.ru")
		f := &Forwarder{Log: log, Pool: pool, Mail: m, To: []string{"sales@ispring.example"}, CRM: NewCRM(hook, nil)}
		err := f.Forward(ctx, pid, id, false)
		if err == nil || !strings.Contains(err.Error(), "INTERNAL_SERVER_ERROR") {
			t.Fatalf("err = %v, want the CRM error", err)
		}
		r, _ := GetRequest(ctx, pool, pid, id)
		if r.EmailDelivery.State != DeliveryDelivered || r.CRMDelivery.State != DeliveryPending || r.CRMDelivery.Attempts != 1 {
			t.Fatalf("after first attempt: email %+v crm %+v", r.EmailDelivery, r.CRMDelivery)
		}
		if err := f.Forward(ctx, pid, id, false); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if len(srv.Messages()) != 1 || len(portal.Leads()) != 1 {
			t.Fatalf("messages=%d leads=%d, want 1 and 1 (the delivered e-mail not re-sent)", len(srv.Messages()), len(portal.Leads()))
		}
	})

	t.Run("ResubmittedWhileSending", func(t *testing.T) {
		srv := smtptest.Start(t, smtptest.Plain, "", "")
		m, _ := NewMailer(srv.URL, "x@example.com", nil)
		pid, id := submit(t, "race.bitrix24.ru")
		resend := &resubmitSender{Sender: m, pool: pool, pid: pid}
		f := &Forwarder{Log: log, Pool: pool, Mail: resend, To: []string{"sales@ispring.example"}}
		if err := f.Forward(ctx, pid, id, false); !errors.Is(err, ErrChanged) {
			t.Fatalf("err = %v, want ErrChanged", err)
		}
		if err := f.Forward(ctx, pid, id, false); err != nil {
			t.Fatal(err)
		}
		msgs := srv.Messages()
		if len(msgs) != 2 {
			t.Fatalf("messages = %d, want 2 (old details, then new)", len(msgs))
		}
		if body := msgs[1].Decode(t).Body; !strings.Contains(body, "+442079460958") {
			t.Fatalf("second mail lacks the new phone:\n%s", body)
		}
	})
}

// resubmitSender changes the request's phone during the first send, as a
// resubmission racing a running job would.
type resubmitSender struct {
	Sender
	pool *pgxpool.Pool
	pid  int64
	done bool
}

func (s *resubmitSender) Send(ctx context.Context, m Mail) error {
	if !s.done {
		s.done = true
		c := contact
		c.Phone = "+44 20 7946 0958"
		if _, err := Submit(ctx, s.pool, manager.DefaultLimits, time.Now(), Submission{PortalID: s.pid, Contact: c},
			func(context.Context, pgx.Tx, int64, int64) error { return nil }); err != nil {
			return err
		}
	}
	return s.Sender.Send(ctx, m)
}

// The webhook code in LEAD_WEBHOOK_URL is a credential of iSpring's own
// Bitrix24: a failed call must not carry it into logs, job errors or the
// console's delivery error.
func TestCRMErrorHidesWebhookCode(t *testing.T) {
	t.Parallel()
	u, err := url.Parse("http://127.0.0.1:1/rest/1/s3cretwebhookcode/")
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewCRM(u, nil).AddLead(context.Background(), Lead{Title: "t", Name: "n"})
	if err == nil {
		t.Fatal("a call to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cretwebhookcode") {
		t.Fatalf("error reveals the webhook code: %v", err)
	}
}
