package activation

import (
	"context"
	"errors"
	"testing"
	"time"

	"b24learn/internal/manager"
	"b24learn/internal/pgtest"
	"b24learn/internal/store"
)

// What a manager does to a portal's activation and its request, with the
// audit trail it leaves.
func TestManagerActions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	m, err := manager.CreateManager(ctx, pool, manager.DefaultHasher(), "anna@ispring.example", "long enough password")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ActivateSuspendAudit", func(t *testing.T) {
		pid := mustPortal(t, pool, "act.bitrix24.ru")
		res, err := Submit(ctx, pool, manager.DefaultLimits, now, Submission{PortalID: pid, Contact: contact},
			enqueueInto(t, pool))
		if err != nil {
			t.Fatal(err)
		}
		a := manager.Actor{ManagerID: m.ID, Email: m.Email, IP: "10.0.0.1"}
		if err := SetActivation(ctx, pool, a, pid, store.ActivationActive, "paid, contract 17", now); err != nil {
			t.Fatal(err)
		}
		if st := activationState(t, pool, pid); st != "active" {
			t.Fatalf("state %q", st)
		}
		r, _ := GetRequest(ctx, pool, pid, res.RequestID)
		if r.Status != StatusActivated {
			t.Fatalf("request status %q, want activated", r.Status)
		}
		if err := SetActivation(ctx, pool, a, pid, store.ActivationSuspended, "unpaid", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if st := activationState(t, pool, pid); st != "suspended" {
			t.Fatalf("state %q", st)
		}
		if err := SetActivation(ctx, pool, a, pid, "inactive", "", now); err == nil {
			t.Fatal("an unknown state was accepted")
		}
		if err := SetActivation(ctx, pool, a, 999999, store.ActivationActive, "", now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown portal: %v", err)
		}
		entries, err := manager.ListAudit(ctx, pool, pid, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 || entries[0].Action != "suspend" || entries[0].Note != "unpaid" ||
			entries[1].Action != "activate" || entries[1].ManagerEmail != m.Email || entries[1].RequestID != res.RequestID {
			t.Fatalf("audit %+v", entries)
		}
	})

	t.Run("UpdateRequest", func(t *testing.T) {
		pid := mustPortal(t, pool, "upd.bitrix24.ru")
		res, err := Submit(ctx, pool, manager.DefaultLimits, now, Submission{PortalID: pid, Contact: contact}, enqueueInto(t, pool))
		if err != nil {
			t.Fatal(err)
		}
		a := manager.Actor{ManagerID: m.ID, Email: m.Email}
		if err := UpdateRequest(ctx, pool, a, res.RequestID, StatusContacted, "called, wants a demo", now); err != nil {
			t.Fatal(err)
		}
		if err := UpdateRequest(ctx, pool, a, res.RequestID, "bogus", "", now); err == nil {
			t.Fatal("bogus status accepted")
		}
		r, _ := GetRequest(ctx, pool, pid, res.RequestID)
		if r.Status != StatusContacted || r.Notes != "called, wants a demo" {
			t.Fatalf("request %+v", r)
		}
		entries, _ := manager.ListAudit(ctx, pool, pid, 10)
		if len(entries) != 2 {
			t.Fatalf("audit entries = %d, want status and notes", len(entries))
		}
	})
}
