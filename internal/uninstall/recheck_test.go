package uninstall

import (
	"testing"
	"time"
)

// Working tokens restore at any time; a refusal or a portal gone erases at
// the erase; no answer waits until RecheckUnanswered past EraseDelay.
func TestRecheck(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	due, bound := at.Add(EraseDelay), at.Add(EraseDelay+RecheckUnanswered)
	for _, c := range []struct {
		name  string
		v     Verdict
		now   time.Time
		erase bool
		want  RecheckAction
	}{
		{"RefutedDuringTheWait", Refuted, at.Add(time.Hour), false, RecheckRestore},
		{"RefutedAtTheErase", Refuted, due, true, RecheckRestore},
		{"RefusedDuringTheWait", TokensRefused, at.Add(time.Hour), false, RecheckWait},
		{"GoneDuringTheWait", Confirmed, at.Add(time.Hour), false, RecheckWait},
		{"RefusedAtTheErase", TokensRefused, due, true, RecheckErase},
		{"GoneAtTheErase", Confirmed, due, true, RecheckErase},
		{"UnansweredAtTheErase", Unknown, due, true, RecheckWait},
		{"UnansweredPastTheBound", Unknown, bound, true, RecheckErase},
	} {
		if got := Recheck(c.v, at, c.now, c.erase); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
