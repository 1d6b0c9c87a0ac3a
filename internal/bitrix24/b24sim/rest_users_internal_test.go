package b24sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestIDRangeKeepsWhatTheFilterKeeps: narrowing the walk by the ID bounds
// drops only IDs an ID term would refuse, for any mix of terms.
func TestIDRangeKeepsWhatTheFilterKeeps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []int64{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144}
	ops := []string{">", ">=", "<", "<=", "", "=", "!", "@"}
	vals := []any{"0", "1", "5", "6", "144", "145", "-3", "", "abc", "7.9", float64(13), []any{"5", "8"},
		strconv.FormatInt(math.MaxInt64, 10), strconv.FormatInt(math.MinInt64, 10)}
	for range 5000 {
		var terms []term
		for range rng.IntN(4) {
			field := "ID"
			if rng.IntN(4) == 0 {
				field = "ACTIVE"
			}
			terms = append(terms, term{ops[rng.IntN(len(ops))], field, vals[rng.IntN(len(vals))]})
		}
		idOK := func(id int64) bool {
			for _, tm := range terms {
				if tm.field == "ID" && !isEmpty(tm.v) && !cmpInt(tm.op, id, tm.v) {
					return false
				}
			}
			return true
		}
		want := slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { return !idOK(id) })
		got := slices.DeleteFunc(slices.Clone(idRange(ids, terms)), func(id int64) bool { return !idOK(id) })
		if !slices.Equal(got, want) {
			t.Fatalf("terms %v: walk keeps %v, the filter %v", terms, got, want)
		}
	}
}

// TestKeysetPageCostsItsPage: a start=-1 page filtered by >ID near the end of
// 100,000 users takes about as long as the first page, not the walk over
// every user before it (which made a full listing quadratic).
func TestKeysetPageCostsItsPage(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 100,000 users")
	}
	sim := Start(Options{})
	defer sim.Close()
	org := GenerateOrg(7, 100_000, 50)
	p := sim.AddPortal(PortalOptions{Org: org})
	var admin int64
	for _, u := range org.Users {
		if u.Admin {
			admin = u.ID
			break
		}
	}
	ids := p.sortedUserIDs()
	fastest := func(after int64) time.Duration {
		best := time.Duration(math.MaxInt64)
		for range 7 {
			params := map[string]any{"start": -1, "FILTER": map[string]any{"USER_TYPE": "employee", ">ID": after}}
			start := time.Now()
			ok, e := p.userGet(admin, params, userScope{})
			best = min(best, time.Since(start))
			if e != nil || len(ok.result.([]any)) == 0 {
				t.Fatalf(">ID %d: %v, %d rows", after, e, len(ok.result.([]any)))
			}
		}
		return best
	}
	first, last := fastest(0), fastest(ids[len(ids)-200])
	if last > 5*first+time.Millisecond {
		t.Errorf("page after ID %d took %v, the first page %v: the walk is not bounded by >ID", ids[len(ids)-200], last, first)
	}
	t.Logf("first page %v, page near the end %v", first, last)
}
