package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"b24learn/internal/bitrix24"
)

// chain is n departments, 1 the root and each the parent of the next; with
// heads, department i is headed by user 1,000,000 + i.
func chain(n int, heads bool) map[int64]Department {
	byID := make(map[int64]Department, n)
	for i := 1; i <= n; i++ {
		d := Department{ID: int64(i), Parent: int64(i - 1)}
		if heads {
			d.Head = int64(1_000_000 + i)
		}
		byID[d.ID] = d
	}
	return byID
}

// The person page's walk to the heads looks at each department once
// however many departments the person is said to be in, and stops at the
// heads one request can read: a portal's chain of 100,000 departments
// costs at most one look each. Counted, not timed.
func TestPersonHeadsLinear(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{2_000, 8_000} {
		// Headed all the way up: the nearest heads fill the page.
		w := personWalk{byID: chain(n, true)}
		if _, err := w.heads(ctx, []int64{int64(n)}, 7); err != nil {
			t.Fatal(err)
		}
		t.Logf("chain of %d headed departments, person in the bottom one: %d looked at", n, w.looked)
		if w.looked > personMaxHeads {
			t.Errorf("chain of %d headed departments: %d looked at, want at most %d", n, w.looked, personMaxHeads)
		}
		// No heads, the person in the bottom 1,000 departments.
		var deps []int64
		for j := range 1_000 {
			deps = append(deps, int64(n-j))
		}
		w = personWalk{byID: chain(n, false)}
		if _, err := w.heads(ctx, deps, 7); err != nil {
			t.Fatal(err)
		}
		t.Logf("chain of %d departments without heads, person in %d: %d looked at", n, len(deps), w.looked)
		if lim := n + personMaxDepartments; w.looked > lim {
			t.Errorf("chain of %d departments, person in %d: %d looked at, want at most %d", n, len(deps), w.looked, lim)
		}
	}
}

// A long walk stops when the request is gone.
func TestPersonHeadsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := personWalk{byID: chain(20_000, false)}
	if _, err := w.heads(ctx, []int64{20_000}, 7); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

type headsB24 struct {
	ds    []bitrix24.Department
	depts []int64
	asked [][]int64 // the ids of each user.get asking for a list
}

func (c *headsB24) Departments(context.Context) ([]bitrix24.Department, error) { return c.ds, nil }

func (c *headsB24) Users(_ context.Context, f map[string]any) ([]bitrix24.User, error) {
	if id, ok := f["ID"].(int64); ok {
		return []bitrix24.User{{ID: id, Active: true, UserType: "employee", Departments: c.depts}}, nil
	}
	if ids, ok := f["@ID"].([]int64); ok {
		c.asked = append(c.asked, slices.Clone(ids))
	}
	return nil, nil
}

// Past one page of heads, the person page reads the nearest: those of the
// person's own departments and the levels right above them, which decide
// their managers, not the lowest user ids.
func TestReadPersonNearestHeads(t *testing.T) {
	b := &headsB24{}
	// Two chains of 60 headed departments under the root 1: 2–61 and
	// 62–121; department i is headed by user 1,000,000 + i.
	b.ds = append(b.ds, bitrix24.Department{ID: 1, Head: 1_000_001})
	for i := int64(2); i <= 121; i++ {
		p := i - 1
		if i == 62 {
			p = 1
		}
		b.ds = append(b.ds, bitrix24.Department{ID: i, Parent: p, Head: 1_000_000 + i})
	}
	b.depts = []int64{61, 121} // the bottom of each chain
	if _, err := ReadPerson(context.Background(), b, 7); err != nil {
		t.Fatal(err)
	}
	if len(b.asked) != 1 {
		t.Fatalf("heads asked %d times, want once", len(b.asked))
	}
	var want []int64
	for i := range int64(personMaxHeads / 2) {
		want = append(want, 1_000_061-i, 1_000_121-i)
	}
	slices.Sort(want)
	if got := b.asked[0]; !slices.Equal(got, want) {
		t.Errorf("heads asked %v, want the 25 nearest of each department %v", got, want)
	}
}

// BenchmarkReadPersonChain is the person page's read against a chain of n
// headed departments, the person in the bottom 10 (docs/benchmarks.md,
// "Hostile org shapes").
func BenchmarkReadPersonChain(b *testing.B) {
	for _, n := range []int{10_000, 40_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := &headsB24{}
			for i := 1; i <= n; i++ {
				c.ds = append(c.ds, bitrix24.Department{ID: int64(i), Parent: int64(i - 1), Head: int64(1_000_000 + i)})
			}
			for j := range 10 {
				c.depts = append(c.depts, int64(n-j))
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ReadPerson(context.Background(), c, 7); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
