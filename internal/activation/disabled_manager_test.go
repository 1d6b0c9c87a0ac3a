package activation

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"b24learn/internal/activation/smtptest"
	"b24learn/internal/apptest"
	"b24learn/internal/manager"
	"b24learn/internal/pgtest"
)

// An ex-employee's mailbox stays on MANAGER_EMAILS after the operator
// disables the console account: the admin's name, e-mail and phone must
// not reach it, and the request must not be lost when nobody is left.
func TestForwardLeavesOutDisabledManagers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	enq := enqueueInto(t, pool)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

	for _, email := range []string{"Leaver@ispring.example", "boss@ispring.example"} {
		if _, err := manager.CreateManager(ctx, pool, manager.DefaultHasher(), email, "a long enough password"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := manager.SetDisabled(ctx, pool, "leaver@ispring.example", true, now); err != nil {
		t.Fatal(err)
	}
	submit := func(t *testing.T, domain string) (int64, int64) {
		t.Helper()
		pid := mustPortal(t, pool, domain)
		res, err := Submit(ctx, pool, manager.DefaultLimits, now, Submission{PortalID: pid, Contact: contact}, enq)
		if err != nil {
			t.Fatal(err)
		}
		return pid, res.RequestID
	}
	forwarder := func(t *testing.T, to ...string) (*Forwarder, *smtptest.Server, *apptest.Logs) {
		t.Helper()
		srv := smtptest.Start(t, smtptest.Plain, "", "")
		m, err := NewMailer(srv.URL, "x@example.com", nil)
		if err != nil {
			t.Fatal(err)
		}
		logs := &apptest.Logs{}
		log := slog.New(slog.NewTextHandler(logs, nil))
		return &Forwarder{Log: log, Pool: pool, Mail: m, To: to, Now: func() time.Time { return now }}, srv, logs
	}
	// The log names the skipped manager's address and nothing of the admin's.
	noContact := func(t *testing.T, logs string) {
		t.Helper()
		for _, v := range []string{contact.Name, contact.Email, "+79123456789"} {
			if strings.Contains(logs, v) {
				t.Errorf("log carries the admin's %q:\n%s", v, logs)
			}
		}
	}

	t.Run("SomeDisabled", func(t *testing.T) {
		t.Parallel()
		// The address as written on MANAGER_EMAILS differs in case from
		// the account's, as the accounts allow.
		f, srv, logs := forwarder(t, "LEAVER@ispring.example", "boss@ispring.example", "sales@ispring.example")
		pid, id := submit(t, "some-disabled.bitrix24.ru")
		if err := f.Forward(ctx, pid, id, false); err != nil {
			t.Fatalf("Forward: %v", err)
		}
		msgs := srv.Messages()
		if len(msgs) != 1 {
			t.Fatalf("messages = %d, want 1", len(msgs))
		}
		if got := strings.Join(msgs[0].To, ","); got != "boss@ispring.example,sales@ispring.example" {
			t.Fatalf("recipients %q, want the disabled manager left out", got)
		}
		if h := msgs[0].Decode(t).Header.Get("To"); strings.Contains(strings.ToLower(h), "leaver") {
			t.Fatalf("To header names the disabled manager: %q", h)
		}
		r, err := GetRequest(ctx, pool, pid, id)
		if err != nil || r.EmailDelivery.State != DeliveryDelivered {
			t.Fatalf("request %+v, %v", r, err)
		}
		l := logs.String()
		if n := strings.Count(l, "disabled console account"); n != 1 || !strings.Contains(l, "LEAVER@ispring.example") {
			t.Fatalf("want one line naming the skipped address, got %d:\n%s", n, l)
		}
		noContact(t, l)
	})

	t.Run("AllDisabled", func(t *testing.T) {
		t.Parallel()
		f, srv, logs := forwarder(t, "leaver@ispring.example")
		pid, id := submit(t, "all-disabled.bitrix24.ru")
		if err := f.Forward(ctx, pid, id, true); err != nil {
			t.Fatalf("Forward: %v", err)
		}
		if n := len(srv.Messages()); n != 0 {
			t.Fatalf("messages = %d, want none", n)
		}
		// Still stored and open for the console, e-mail marked as not sent.
		r, err := GetRequest(ctx, pool, pid, id)
		if err != nil || !r.Open() || r.EmailDelivery.State != DeliverySkipped || r.Phone != "+79123456789" {
			t.Fatalf("request %+v, %v", r, err)
		}
		// Skipped for want of recipients, not of settings: the console
		// says which.
		if r.EmailDelivery.Skip != SkipNoRecipients {
			t.Fatalf("e-mail skipped as %q, want %q", r.EmailDelivery.Skip, SkipNoRecipients)
		}
		list, err := ListRequests(ctx, pool, StatusNew, pid, 10)
		if err != nil || len(list) != 1 || list[0].ID != id {
			t.Fatalf("console list %v, %v", list, err)
		}
		l := logs.String()
		if !strings.Contains(l, "level=WARN") || !strings.Contains(l, "not e-mailed") {
			t.Fatalf("log does not say the request went unsent:\n%s", l)
		}
		noContact(t, l)
	})
}
