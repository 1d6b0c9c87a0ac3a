package templates

import (
	"testing"
	"time"

	"b24learn/internal/i18n"
)

func TestLeftText(t *testing.T) {
	for _, c := range []struct {
		left   time.Duration
		known  bool
		en, ru string
	}{
		{0, false, "estimating the time left…", "оцениваем оставшееся время…"},
		{time.Hour, false, "estimating the time left…", "оцениваем оставшееся время…"},
		{0, true, "less than a minute left", "осталось меньше минуты"},
		{59 * time.Second, true, "less than a minute left", "осталось меньше минуты"},
		{time.Minute, true, "about 1 min left", "осталось около 1 мин"},
		{61 * time.Second, true, "about 2 min left", "осталось около 2 мин"},
		{270 * time.Second, true, "about 5 min left", "осталось около 5 мин"},
		{59*time.Minute + time.Second, true, "about 1 h left", "осталось около 1 ч"},
		{80 * time.Minute, true, "about 1 h 20 min left", "осталось около 1 ч 20 мин"},
	} {
		if got := LeftText(i18n.EN, c.left, c.known); got != c.en {
			t.Errorf("EN %v %v: %q, want %q", c.left, c.known, got, c.en)
		}
		if got := LeftText(i18n.RU, c.left, c.known); got != c.ru {
			t.Errorf("RU %v %v: %q, want %q", c.left, c.known, got, c.ru)
		}
	}
}
