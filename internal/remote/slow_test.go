package remote

import (
	"testing"
	"time"
)

// A healthy server slow now and then keeps its client; a server slow on
// purpose is cut off after four timeouts or twenty slow answers, and
// answers within half their deadline cost nothing.
func TestSlownessBudget(t *testing.T) {
	t.Parallel()
	const deadline = time.Minute
	for _, c := range []struct {
		name                 string
		timeouts, slow, fast int
		spent                bool
	}{
		{"fast answers cost nothing", 0, 0, 10_000, false},
		{"three timeouts", 3, 0, 0, false},
		{"four timeouts", 4, 0, 0, true},
		{"nineteen slow answers", 0, 19, 0, false},
		{"twenty slow answers", 0, 20, 0, true},
		{"three timeouts and five slow answers", 3, 5, 0, true},
	} {
		var s Slowness
		for range c.timeouts {
			s.Note(true, deadline, deadline)
		}
		for range c.slow {
			s.Note(false, deadline*3/4, deadline)
		}
		for range c.fast {
			s.Note(false, deadline/2, deadline)
		}
		if _, spent := s.Spent(DefaultSlowBudget); spent != c.spent {
			t.Errorf("%s: spent %v, want %v", c.name, spent, c.spent)
		}
	}
}
