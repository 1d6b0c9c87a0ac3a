package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/apptest"

	"github.com/riverqueue/river"

	"b24learn/internal/activation"
	"b24learn/internal/activation/activationtest"
	"b24learn/internal/jobs"
	"b24learn/internal/manager"
)

// A request held back by the hourly bound across portals waits in the
// console, which says why and what to do, in both languages, on the list
// and on the portal's page. Once the hour is over and it is sent, nothing
// calls it deferred any more.
func TestConsoleShowsARequestDeferredByTheBound(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "anna@ispring.example", "long enough password"); err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	sinks := activationtest.Start(t, e.pool, 1, func() time.Time { return time.Unix(0, clock.Load()) }, slog.New(slog.DiscardHandler))
	submit := func(domain string) (int64, int64) {
		t.Helper()
		return e.request(domain, time.Now(), olgaAsks(domain))
	}
	pidFirst, idFirst := submit("first.bitrix24.ru")
	pidHeld, idHeld := submit("held.bitrix24.ru")
	if err := sinks.Forwarder.Forward(ctx, pidFirst, idFirst, false); err != nil {
		t.Fatal(err)
	}
	var deferred *activation.DeferredError
	if err := sinks.Forwarder.Forward(ctx, pidHeld, idHeld, false); !errors.As(err, &deferred) {
		t.Fatalf("forwarding past the bound: %v, want it deferred", err)
	}
	if mails, leads := sinks.Sent(); mails != 1 || leads != 1 {
		t.Fatalf("%d e-mails and %d leads sent, want 1 each within the bound", mails, leads)
	}

	b := e.browser("10.0.0.7")
	if rec := b.signIn("anna@ispring.example", "long enough password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	held := "/manager/portals/" + strconv.FormatInt(pidHeld, 10)
	langs := []struct{ lang, deferred, hint, delivered string }{
		{"en", "deferred: the hourly bound across all portals was reached; it goes out by itself when the hour is over",
			"More activation requests came in this hour than ACTIVATION_EMAILS_PER_HOUR or ACTIVATION_LEADS_PER_HOUR allow",
			"delivered "},
		{"ru", "отложено: достигнут часовой предел для всех порталов; отправится само, когда час закончится",
			"За этот час пришло больше заявок, чем разрешают ACTIVATION_EMAILS_PER_HOUR или ACTIVATION_LEADS_PER_HOUR",
			"доставлено "},
	}
	for _, l := range langs {
		list := b.requestsPage(l.lang)
		for where, row := range map[string]string{"list": requestRow(t, list, idHeld), "portal page": requestRow(t, b.do("GET", held, nil).Body.String(), idHeld)} {
			for _, ch := range []string{"email-delivery", "crm-delivery"} {
				if got := deliveryCell(t, row, ch); got != l.deferred {
					t.Errorf("%s, %s: %s %q, want %q", l.lang, where, ch, got, l.deferred)
				}
			}
			if hint := deliveryCell(t, row, "email-delivery-hint"); !strings.Contains(hint, l.hint) {
				t.Errorf("%s, %s: hint %q lacks %q", l.lang, where, hint, l.hint)
			}
		}
		// The request within the bound is not called deferred.
		first := requestRow(t, list, idFirst)
		if got := deliveryCell(t, first, "email-delivery"); !strings.HasPrefix(got, l.delivered) {
			t.Errorf("%s: the request within the bound shows e-mail %q, want delivered", l.lang, got)
		}
		if strings.Contains(first, l.deferred) {
			t.Errorf("%s: the request within the bound is shown as deferred:\n%s", l.lang, first)
		}
	}

	// The hour is over: the job's next run sends it, and the console (now in
	// Russian) no longer calls it deferred.
	clock.Add(int64(time.Hour))
	if err := sinks.Forwarder.Forward(ctx, pidHeld, idHeld, false); err != nil {
		t.Fatalf("forwarding once the hour is over: %v", err)
	}
	if mails, leads := sinks.Sent(); mails != 2 || leads != 2 {
		t.Fatalf("%d e-mails and %d leads sent, want 2 each", mails, leads)
	}
	ru := langs[1]
	for where, body := range map[string]string{"list": b.do("GET", "/manager/requests", nil).Body.String(), "portal page": b.do("GET", held, nil).Body.String()} {
		row := requestRow(t, body, idHeld)
		for _, ch := range []string{"email-delivery", "crm-delivery"} {
			if got := deliveryCell(t, row, ch); !strings.HasPrefix(got, ru.delivered) {
				t.Errorf("%s after sending: %s %q, want delivered", where, ch, got)
			}
		}
		if strings.Contains(body, ru.deferred) || strings.Contains(body, ru.hint) || strings.Contains(row, "delivery-hint") {
			t.Errorf("%s after sending still says deferred:\n%s", where, row)
		}
	}
}

// An admin who presses "Send" again with the same details while the
// request is open gets the same confirmation, and the managers get no
// second e-mail and no second lead. Changed details are forwarded again,
// within the hourly bound across portals.
func TestUnchangedActivationResubmissionIsNotSentAgain(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	pid := e.portal("again.bitrix24.ru")
	admin := e.token(pid, true, "en")
	at := time.Now() // one window of the bound, whatever the wall clock does
	sinks := activationtest.Start(t, e.pool, 2, func() time.Time { return at }, slog.New(slog.DiscardHandler))

	workers := river.NewWorkers()
	river.AddWorker(workers, &jobs.LeadForwardWorker{Forwarder: sinks.Forwarder})
	apptest.StartRiver(t, e.pool, &river.Config{Workers: workers, TestOnly: true})

	send := func(name, email, phone string) string {
		t.Helper()
		rec := e.post(admin, "/app/activation", url.Values{"name": {name}, "email": {email}, "phone": {phone}}, true)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, `data-testid="activation-sent"`) ||
			!strings.Contains(body, "Thank you! Your request has been sent.") {
			t.Fatalf("submission of %s: %d\n%s", phone, rec.Code, body)
		}
		if strings.Contains(body, `role="alert"`) || strings.Contains(body, "activation-notice") {
			t.Fatalf("submission of %s shows an error:\n%s", phone, body)
		}
		return body
	}
	// forwardJobs counts the forwarding jobs still to run and those completed.
	forwardJobs := func() (open, completed int) {
		t.Helper()
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state NOT IN ('completed', 'scheduled')),
			count(*) FILTER (WHERE state = 'completed') FROM river_job WHERE kind = 'lead_forward'`).Scan(&open, &completed); err != nil {
			t.Fatal(err)
		}
		return open, completed
	}
	// settle waits for the forwarding jobs to be done, then checks what went
	// out, giving anything extra the time to show.
	settle := func(what string, mails, leads, completed int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for open, _ := forwardJobs(); open > 0; open, _ = forwardJobs() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d forwarding jobs still to run", what, open)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		if m, l := sinks.Sent(); m != mails || l != leads {
			t.Fatalf("%s: %d e-mails and %d leads sent, want %d and %d", what, m, l, mails, leads)
		}
		if _, done := forwardJobs(); done != completed {
			t.Fatalf("%s: %d forwarding jobs ran, want %d", what, done, completed)
		}
	}

	send("Ivan Petrov", "ivan@again.example", "+7 912 345 67 89")
	settle("first request", 1, 1, 1)

	// The same details, as the admin may type them again: another case of
	// the e-mail, another way of writing the phone.
	body := send("Ivan Petrov", "Ivan@Again.example", "+7 (912) 345-67-89")
	if !strings.Contains(body, `value="+79123456789"`) || !strings.Contains(body, "Update request") {
		t.Fatalf("the answer does not show the details back with the form to correct them:\n%s", body)
	}
	settle("unchanged resubmission", 1, 1, 1)
	r, err := activation.LatestRequest(ctx, e.pool, pid)
	if err != nil {
		t.Fatal(err)
	}
	if r.EmailDelivery.State != activation.DeliveryDelivered || r.CRMDelivery.State != activation.DeliveryDelivered {
		t.Fatalf("after an unchanged resubmission: e-mail %+v, CRM %+v, want both still delivered", r.EmailDelivery, r.CRMDelivery)
	}

	// A corrected phone is what the managers need: it goes out again.
	send("Ivan Petrov", "ivan@again.example", "+7 912 345 67 00")
	settle("changed phone", 2, 2, 2)
	if leads := sinks.CRM.Leads(); !strings.Contains(fmt.Sprint(leads[len(leads)-1].Fields), "79123456700") {
		t.Errorf("the second lead does not carry the corrected phone: %v", leads[len(leads)-1].Fields)
	}

	// Changed again within the hour: over the bound of 2, it waits.
	send("Ivan Petrov", "ivan@again.example", "+7 912 345 67 11")
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err = activation.LatestRequest(ctx, e.pool, pid)
		if err != nil {
			t.Fatal(err)
		}
		if r.EmailDelivery.Skip == activation.SkipOverLimit && r.CRMDelivery.Skip == activation.SkipOverLimit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a change past the bound: e-mail %+v, CRM %+v, want both held back", r.EmailDelivery, r.CRMDelivery)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if m, l := sinks.Sent(); m != 2 || l != 2 {
		t.Fatalf("a change past the bound: %d e-mails and %d leads sent, want 2 each", m, l)
	}
}
