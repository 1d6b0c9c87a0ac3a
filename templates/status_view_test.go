package templates

import (
	"strings"
	"testing"

	"b24learn/internal/i18n"
)

// The Learn write-concurrency figures are not objects: they stay out of the
// counts sentence and get a line of their own; a run that wrote nothing has
// no such line.
func TestConcurrencyApartFromCounts(t *testing.T) {
	cs := []Count{{Key: "learn.parallel_max", N: 19}, {Key: "learn.parallel_mean", N: 13}, {Key: "learn.throttled", N: 2},
		{Key: "user.create", N: 29}}
	if got := countsText(i18n.EN, cs); got != "users created: 29" {
		t.Errorf("counts %q", got)
	}
	if got := countsText(i18n.EN, cs[:3]); got != "—" {
		t.Errorf("counts of a run with only concurrency figures %q", got)
	}
	if got := concurrencyText(i18n.RU, cs); !strings.Contains(got, "до 19 одновременно") || !strings.Contains(got, "2 раз") {
		t.Errorf("concurrency %q", got)
	}
	if got := concurrencyText(i18n.EN, cs[3:]); got != "" {
		t.Errorf("concurrency of a run without writes %q", got)
	}
}
