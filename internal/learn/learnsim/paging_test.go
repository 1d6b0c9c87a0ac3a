package learnsim

import (
	"math"
	"strconv"
	"testing"
	"time"
)

// TestListingPageCostsItsPage: finding a users page near the end of 100,000
// users, from its page token's position, takes about as long as the first page, so a full
// listing is linear in the users (a page that walked from the start would make
// it quadratic).
func TestListingPageCostsItsPage(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 100,000 users")
	}
	const n = 100_000
	a := newAccount("acme", AccountOptions{RootName: "Learn"}, 1, time.Now)
	for i := range n {
		id := "u" + strconv.Itoa(i)
		a.putUser(&user{ID: id, DeptID: "root", Status: 1, Role: "learner", Fields: map[string]string{"login": id}})
	}
	fastest := func(from int) time.Duration {
		best := time.Duration(math.MaxInt64)
		for range 7 {
			start := time.Now()
			ids, _ := a.matchUsers(userQuery{}, from, 1000)
			best = min(best, time.Since(start))
			if len(ids) != 1000 {
				t.Fatalf("page at %d: %d users", from, len(ids))
			}
		}
		return best
	}
	first, last := fastest(0), fastest(n-1000)
	if last > 5*first+200*time.Microsecond {
		t.Errorf("the last page took %v, the first %v: a page is not found by its position", last, first)
	}
	t.Logf("first page %v, last page %v", first, last)
}
