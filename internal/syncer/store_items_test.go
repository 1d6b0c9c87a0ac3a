package syncer

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"b24learn/internal/pgtest"
)

// planned is n preview rows shaped as a first sync's user creates.
func planned(n int) []RunItem {
	items := make([]RunItem, n)
	for i := range items {
		items[i] = RunItem{Kind: KindUser, B24ID: int64(i + 1), Action: ActionCreate, Status: ItemPlanned,
			After: map[string]string{"login": fmt.Sprintf("user%d@example.com", i), "firstName": "Anna",
				"lastName": "Schmidt", "departmentId": "d-0001", "jobTitle": "Engineer"}}
	}
	return items
}

// TestRecordedItemsReadBackAsWritten: what COPY stores (no before, reasons
// with arguments, the order) is what the report reads.
func TestRecordedItemsReadBackAsWritten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := NewStore(pool)
	portal := mustPortal(t, pool, "copy1")
	want := []RunItem{
		{Kind: KindDepartment, B24ID: 5, LearnID: "d-5", Action: ActionUpdate, Status: ItemPlanned,
			Before: map[string]string{"name": "QA"}, After: map[string]string{"name": "Quality"}},
		{Kind: KindUser, B24ID: 7, Action: ActionCreate, Status: ItemRefused,
			Reason: because(ReasonEmailOwned, "a@b.test").and(because(ReasonText, "it's \"quoted\"\n"))},
		{Kind: KindUser, B24ID: 8, LearnID: "u-8", Action: ActionDeactivate, Status: ItemHeld, Reason: because(ReasonHeld)},
	}
	for _, record := range []func(context.Context, int64, int64, []RunItem) error{s.RecordItems, s.RecordPreview} {
		run, err := s.StartRun(ctx, portal, TriggerPreview)
		if err != nil {
			t.Fatal(err)
		}
		if err := record(ctx, portal, run, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.RunItems(ctx, portal, run)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			got[i].ID, got[i].RunID = 0, 0
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("read back\n%+v\nwant\n%+v", got, want)
		}
		// jsonb takes no NUL, which a Learn server's names may hold: the
		// row is written without it.
		if err := record(ctx, portal, run, []RunItem{{Kind: KindUser, B24ID: 9, Action: ActionUpdate, Status: ItemPlanned,
			Before: map[string]string{"first_name": "An\x00na"}}}); err != nil {
			t.Fatalf("a NUL in a Learn name: %v", err)
		}
		if got, err := s.RunItems(ctx, portal, run); err != nil || len(got) != 4 || got[3].Before["first_name"] != "Anna" {
			t.Errorf("the row with a NUL read back as %+v (%v)", got, err)
		}
		rec, err := s.Run(ctx, portal, run)
		if err != nil || rec.Items != len(want)+1 {
			t.Errorf("run counts %d items (%v), want %d", rec.Items, err, len(want)+1)
		}
	}
}

// BenchmarkRecordPreview stores a 100,000-row preview: the memory it takes
// is what a large portal's preview costs the worker on top of its plan.
func BenchmarkRecordPreview(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.NewPool(b)
	s := NewStore(pool)
	portal := mustPortal(b, pool, "bench-preview")
	items := planned(100_000)
	b.ReportAllocs()
	for b.Loop() {
		run, err := s.StartRun(ctx, portal, TriggerPreview)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.RecordPreview(ctx, portal, run, items); err != nil {
			b.Fatal(err)
		}
	}
}
