package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"b24learn/internal/activation"
	"b24learn/internal/activation/activationtest"
	"b24learn/internal/apptest"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/manager"
	"b24learn/internal/pgtest"
)

// TestActivationFloodStaysWithinBounds plays the attacker: many portals,
// each within its own limit, send activation requests at once. The
// managers get no more e-mails and the CRM no more leads than the hourly
// bounds; every request is stored, the held-back ones say why, and each
// following hour sends the next ones within the bound until none is left.
// The log names the requests by id only.
func TestActivationFloodStaysWithinBounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	var logs apptest.Logs
	const portals, bound = 12, 3
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	sinks := activationtest.Start(t, pool, bound, now, slog.New(slog.NewTextHandler(&logs, nil)))
	srv, crm := sinks.SMTP, sinks.CRM

	workers := river.NewWorkers()
	river.AddWorker(workers, &LeadForwardWorker{Forwarder: sinks.Forwarder})
	client := apptest.StartRiver(t, pool, &river.Config{Workers: workers, RetryPolicy: fastRetry{}, Queues: queues.Config(), TestOnly: true})

	// Every portal at once, as a script would.
	var wg sync.WaitGroup
	errs := make(chan error, portals)
	for i := range portals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			domain := fmt.Sprintf("flood%02d.bitrix24.ru", i)
			var pid int64
			if err := pool.QueryRow(ctx, `INSERT INTO portals (member_id, domain) VALUES ($1, $1) RETURNING id`, domain).Scan(&pid); err != nil {
				errs <- err
				return
			}
			_, err := activation.Submit(ctx, pool, manager.DefaultLimits, now(), activation.Submission{PortalID: pid,
				Contact: activation.Contact{Name: "Flood Victim", Email: fmt.Sprintf("victim%02d@attacker.example", i), Phone: "+7 912 345 67 89"}},
				func(ctx context.Context, tx pgx.Tx, portalID, requestID int64) error {
					_, err := client.InsertTx(ctx, tx, LeadForwardArgs{PortalID: portalID, RequestID: requestID}, nil)
					return err
				})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// counts is how many requests each channel delivered and held back.
	type counts struct{ mailed, mailHeld, leads, leadsHeld, stored int }
	count := func() counts {
		t.Helper()
		rs, err := activation.ListRequests(ctx, pool, "", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		c := counts{stored: len(rs)}
		for _, r := range rs {
			held := func(ch activation.Channel) bool {
				return ch.State == activation.DeliveryPending && ch.Skip == activation.SkipOverLimit
			}
			switch {
			case r.EmailDelivery.State == activation.DeliveryDelivered:
				c.mailed++
			case held(r.EmailDelivery):
				c.mailHeld++
			}
			switch {
			case r.CRMDelivery.State == activation.DeliveryDelivered:
				c.leads++
			case held(r.CRMDelivery):
				c.leadsHeld++
			}
		}
		return c
	}
	settle := func(sent int) {
		t.Helper()
		want := counts{mailed: sent, mailHeld: portals - sent, leads: sent, leadsHeld: portals - sent, stored: portals}
		deadline := time.Now().Add(30 * time.Second)
		for {
			c := count()
			if c == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("requests %+v, want %+v (messages %d, leads %d)", c, want, len(srv.Messages()), len(crm.Leads()))
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // anything over the bound would show now
		if n := len(srv.Messages()); n != sent {
			t.Fatalf("%d e-mails sent, want %d", n, sent)
		}
		if n := len(crm.Leads()); n != sent {
			t.Fatalf("%d leads added, want %d", n, sent)
		}
		if c := count(); c != want {
			t.Fatalf("after settling: %+v, want %+v", c, want)
		}
	}
	settle(bound)

	// The held-back jobs wait without spending attempts; each hour that
	// passes sends the next ones within the bound, until none is left.
	for sent := 2 * bound; sent <= portals; sent += bound {
		// A request may have been e-mailed and its lead held back, or the
		// other way round: its job waits for the one held. River records a
		// job's snooze after the job's own writes, so the two are polled
		// until they agree.
		var scheduled, waiting int
		want := portals - sent + bound
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'lead_forward' AND state = 'scheduled'
				AND attempt < max_attempts`).Scan(&scheduled); err != nil {
				t.Fatal(err)
			}
			rs, err := activation.ListRequests(ctx, pool, "", 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			waiting = 0
			for _, r := range rs {
				if r.EmailDelivery.Skip == activation.SkipOverLimit || r.CRMDelivery.Skip == activation.SkipOverLimit {
					waiting++
				}
			}
			if waiting >= want && scheduled == waiting {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d forwarding jobs waiting, want one for each of the %d requests held back (at least %d)", scheduled, waiting, want)
			}
		}
		clock.Add(int64(time.Hour))
		if _, err := pool.Exec(ctx, `UPDATE river_job SET scheduled_at = now() WHERE kind = 'lead_forward' AND state = 'scheduled'`); err != nil {
			t.Fatal(err)
		}
		settle(sent)
	}

	out := logs.String()
	if !strings.Contains(out, "over the hourly bound") || !strings.Contains(out, "request_id=") {
		t.Fatalf("the held-back requests are not logged by id:\n%s", out)
	}
	for _, personal := range []string{"attacker.example", "Flood Victim", "79123456789"} {
		if strings.Contains(out, personal) {
			t.Fatalf("the log holds personal data %q:\n%s", personal, out)
		}
	}
}
