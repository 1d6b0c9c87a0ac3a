package syncer

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/pgtest"
)

func mustPortal(tb testing.TB, pool *pgxpool.Pool, member string) int64 {
	tb.Helper()
	var id int64
	err := pool.QueryRow(context.Background(),
		`INSERT INTO portals (member_id, domain) VALUES ($1, $1 || '.bitrix24.test') RETURNING id`, member).Scan(&id)
	if err != nil {
		tb.Fatalf("insert portal: %v", err)
	}
	return id
}

func TestStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := NewStore(pool)
	p1, p2 := mustPortal(t, pool, "a1"), mustPortal(t, pool, "b2")

	run, err := s.StartRun(ctx, p1, TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	m := &Mapping{Kind: KindUser, B24ID: 7, LearnID: "u-7", Fingerprint: "f1"}
	it := RunItem{Kind: KindUser, B24ID: 7, LearnID: "u-7", Action: ActionCreate, After: map[string]string{"email": "a@b.test"}, Status: ItemApplied}
	if err := s.RecordStep(ctx, p1, run, it, m); err != nil {
		t.Fatal(err)
	}
	m.Fingerprint = "f2"
	if err := s.RecordStep(ctx, p1, run, RunItem{Kind: KindUser, B24ID: 7, LearnID: "u-7", Action: ActionUpdate, Status: ItemApplied}, m); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordItems(ctx, p1, run, []RunItem{{Kind: KindUser, B24ID: 8, Action: ActionRefuse, Reason: because(ReasonNoEmail), Status: ItemRefused}}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, p1, run, RunHeld, map[string]int{"user.create": 1}, "", []int64{9, 10}); err != nil {
		t.Fatal(err)
	}

	ms, err := s.Mappings(ctx, p1)
	if err != nil || len(ms) != 1 || ms[0] != *m {
		t.Fatalf("mappings %+v %v", ms, err)
	}
	if ms, _ := s.Mappings(ctx, p2); len(ms) != 0 {
		t.Fatalf("portal 2 sees %+v", ms)
	}
	items, err := s.RunItems(ctx, p1, run)
	if err != nil || len(items) != 3 || items[0].After["email"] != "a@b.test" || items[2].Reason.String() != ReasonNoEmail || items[1].Before != nil {
		t.Fatalf("items %+v %v", items, err)
	}
	if items, _ := s.RunItems(ctx, p2, run); len(items) != 0 {
		t.Fatalf("portal 2 reads portal 1's items")
	}
	if _, err := s.Run(ctx, p2, run); err != ErrRunNotFound {
		t.Fatalf("portal 2 reads portal 1's run: %v", err)
	}
	if err := s.FinishRun(ctx, p2, run, RunFailed, nil, "x", nil); err == nil {
		t.Fatal("portal 2 finished portal 1's run")
	}

	held, err := s.LatestHeld(ctx, p1)
	if err != nil || held == nil || held.ID != run || fmt.Sprint(held.Held) != "[9 10]" || held.Counts["user.create"] != 1 {
		t.Fatalf("held %+v %v", held, err)
	}
	approved, _ := s.StartRun(ctx, p1, TriggerApproved)
	if err := s.ResolveHeld(ctx, p1, run, approved); err != nil {
		t.Fatal(err)
	}
	if held, _ := s.LatestHeld(ctx, p1); held != nil {
		t.Fatalf("still held: %+v", held)
	}

	// Retention keeps recent and running runs.
	old, _ := s.StartRun(ctx, p2, TriggerScheduled)
	_ = s.FinishRun(ctx, p2, old, RunSucceeded, nil, "", nil)
	if _, err := pool.Exec(ctx, `UPDATE sync_runs SET started_at = now() - interval '91 days' WHERE id = $1`, old); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeRuns(ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("purged %d %v", n, err)
	}
	runs, _ := s.Runs(ctx, p1, 10)
	if len(runs) != 2 {
		t.Fatalf("portal 1 runs %d", len(runs))
	}
	if _, err := s.PurgeRuns(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
}

// A mapping remembers whether it adopted its Learn user: a later step on
// the same link (which does not know) never clears it, and a link to
// another Learn user (a create after the user was deleted) sets it anew.
func TestMappingKeepsHowItWasMade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := NewStore(pool)
	p := mustPortal(t, pool, "ad1")
	run, err := s.StartRun(ctx, p, TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		learnID string
		adopted bool
		want    bool
	}{{"u-1", true, true}, {"u-1", false, true}, {"u-2", false, false}, {"u-2", true, false}} {
		m := &Mapping{Kind: KindUser, B24ID: 7, LearnID: c.learnID, Fingerprint: "f", Adopted: c.adopted}
		if err := s.RecordStep(ctx, p, run, RunItem{Kind: KindUser, B24ID: 7, LearnID: c.learnID, Action: ActionUpdate, Status: ItemApplied}, m); err != nil {
			t.Fatal(err)
		}
		ms, err := s.Mappings(ctx, p)
		if err != nil || len(ms) != 1 || ms[0].LearnID != c.learnID || ms[0].Adopted != c.want {
			t.Fatalf("after %+v: mappings %+v %v", c, ms, err)
		}
		one, err := s.PersonMapping(ctx, p, 7)
		if err != nil || one == nil || one.Adopted != c.want {
			t.Fatalf("after %+v: person mapping %+v %v", c, one, err)
		}
		byID, err := s.UserMappings(ctx, p, []int64{7})
		if err != nil || byID[7] == nil || byID[7].Adopted != c.want {
			t.Fatalf("after %+v: user mappings %+v %v", c, byID, err)
		}
	}
}

// PersonMapping reads the one user's row: not a department with the same
// Bitrix24 id, not another portal's user.
func TestPersonMapping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := NewStore(pool)
	p1, p2 := mustPortal(t, pool, "pm1"), mustPortal(t, pool, "pm2")
	for _, r := range []struct {
		portal  int64
		kind    Kind
		learnID string
	}{{p1, KindDepartment, "d-7"}, {p1, KindUser, "u-7"}, {p2, KindUser, "other-7"}} {
		if _, err := pool.Exec(ctx, upsertMapping, r.portal, string(r.kind), 7, r.learnID, "f-"+r.learnID, false); err != nil {
			t.Fatal(err)
		}
	}
	m, err := s.PersonMapping(ctx, p1, 7)
	if err != nil || m == nil || *m != (Mapping{Kind: KindUser, B24ID: 7, LearnID: "u-7", Fingerprint: "f-u-7"}) {
		t.Fatalf("mapping of user 7: %+v %v", m, err)
	}
	if m, err := s.PersonMapping(ctx, p1, 8); err != nil || m != nil {
		t.Fatalf("mapping of an unmapped user: %+v %v", m, err)
	}
}

// TestRefusalsHoldForTheirAccountAndAWeek: a remembered refusal is read back
// by runs into the Learn account that gave it, not by runs into another one
// (the admin switched accounts) nor after refusalTTL (Learn may have
// changed), so neither keeps a write from being asked again; the week-old
// one is deleted.
func TestRefusalsHoldForTheirAccountAndAWeek(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := NewStore(pool)
	p := mustPortal(t, pool, "r1")
	run, err := s.StartRun(ctx, p, TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	a, b := AccountKey("https://a.ispringlearn.com"), AccountKey("https://b.ispringlearn.com")
	f := &Refusal{Kind: KindUser, B24ID: 7, Part: PartValues, Fingerprint: "fp", Reason: because(ReasonCut, "50"), Account: a}
	it := RunItem{Kind: KindUser, B24ID: 7, Action: ActionUpdate, Status: ItemRefused, Reason: because(ReasonCut, "50")}
	if err := s.RecordSteps(ctx, p, run, []StepRecord{{Item: it, Refusal: f}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.refusals(ctx, p, a); err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], *f) {
		t.Fatalf("account A: %+v, %v; want the refusal", got, err)
	}
	if got, err := s.refusals(ctx, p, b); err != nil || len(got) != 0 {
		t.Fatalf("account B: %+v, %v; want none", got, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE sync_refusals SET refused_at = now() - $1::interval - interval '1 minute'`, refusalTTL); err != nil {
		t.Fatal(err)
	}
	if got, err := s.refusals(ctx, p, a); err != nil || len(got) != 0 {
		t.Fatalf("a week later: %+v, %v; want none", got, err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sync_refusals WHERE portal_id = $1`, p).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d refusals older than a week are still stored (%v)", left, err)
	}
}
