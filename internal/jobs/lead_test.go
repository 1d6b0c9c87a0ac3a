package jobs

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"b24learn/internal/apptest"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/activation"
	"b24learn/internal/jobs/queues"

	"b24learn/internal/activation/smtptest"
	"b24learn/internal/manager"
	"b24learn/internal/pgtest"
)

// fastRetry retries failed jobs after 50 ms instead of River's attempt⁴ s.
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(50 * time.Millisecond) }

// TestLeadForwardSurvivesSMTPOutage: the request and its job are stored
// while no worker runs (a process killed right after storing), the SMTP
// server refuses the first attempts, and the e-mail arrives once it is back.
// A second request whose SMTP never recovers shows as failed after its last
// attempt.
func TestLeadForwardSurvivesSMTPOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	log := slog.New(slog.DiscardHandler)
	srv := smtptest.Start(t, smtptest.Plain, "", "")
	srv.SetDown(true)

	// Insert-only client: stores the jobs without working them.
	inserter := apptest.Inserter(t, pool)
	submit := func(domain string, opts *river.InsertOpts) (int64, int64) {
		t.Helper()
		var pid int64
		if err := pool.QueryRow(ctx, `INSERT INTO portals (member_id, domain) VALUES ($1, $1) RETURNING id`, domain).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		res, err := activation.Submit(ctx, pool, manager.DefaultLimits, time.Now(), activation.Submission{PortalID: pid,
			Contact: activation.Contact{Name: "Ivan", Email: "ivan@acme.example", Phone: "+7 912 345 67 89"}},
			func(ctx context.Context, tx pgx.Tx, portalID, requestID int64) error {
				_, err := inserter.InsertTx(ctx, tx, LeadForwardArgs{PortalID: portalID, RequestID: requestID}, opts)
				return err
			})
		if err != nil {
			t.Fatal(err)
		}
		return pid, res.RequestID
	}
	pid, id := submit("outage.bitrix24.ru", nil)

	mailer, err := activation.NewMailer(srv.URL, "x@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The "restarted" process: a worker client on the same database.
	workers := river.NewWorkers()
	river.AddWorker(workers, &LeadForwardWorker{Forwarder: &activation.Forwarder{Log: log, Pool: pool, Mail: mailer,
		To: []string{"sales@ispring.example"}}})
	apptest.StartRiver(t, pool, &river.Config{Workers: workers, RetryPolicy: fastRetry{}, Queues: queues.Config(), TestOnly: true})

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("two refused attempts", func() bool { return srv.Refused() >= 2 })
	// The worker records an attempt just after the refused connection.
	var r *activation.Request
	waitFor("the refused attempts recorded", func() bool {
		r, err = activation.GetRequest(ctx, pool, pid, id)
		return err == nil && r.EmailDelivery.Attempts >= 2
	})
	if r.EmailDelivery.State != activation.DeliveryPending || r.EmailDelivery.Error == "" {
		t.Fatalf("during the outage: %+v", r.EmailDelivery)
	}
	srv.SetDown(false)
	waitFor("the e-mail", func() bool { return len(srv.Messages()) == 1 })
	waitFor("delivered state", func() bool {
		r, _ = activation.GetRequest(ctx, pool, pid, id)
		return r.EmailDelivery.State == activation.DeliveryDelivered
	})
	if r.CRMDelivery.State != activation.DeliverySkipped {
		t.Fatalf("crm without LEAD_WEBHOOK_URL: %q, want skipped", r.CRMDelivery.State)
	}

	// Never recovers: after its last attempt the request shows as failed.
	srv.SetDown(true)
	pid2, id2 := submit("dead.bitrix24.ru", &river.InsertOpts{MaxAttempts: 2})
	waitFor("failed state", func() bool {
		r, _ := activation.GetRequest(ctx, pool, pid2, id2)
		return r != nil && r.EmailDelivery.State == activation.DeliveryFailed
	})
	r2, _ := activation.GetRequest(ctx, pool, pid2, id2)
	if r2.EmailDelivery.Attempts != 2 || !r2.Failed() {
		t.Fatalf("after the last attempt: %+v", r2.EmailDelivery)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("messages = %d, want only the first request's", n)
	}
}
