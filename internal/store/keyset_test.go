package store_test

import (
	"strings"
	"testing"
	"time"

	"b24learn/internal/store"
)

// A key reads back as the row it came from, to the microsecond, and only a
// key String wrote is read at all.
func TestParseKey(t *testing.T) {
	t.Parallel()
	for _, k := range []store.Key{
		{At: time.Date(2026, 12, 3, 6, 0, 0, 123456000, time.UTC), ID: 42},
		{At: time.Date(1969, 7, 20, 20, 17, 40, 1000, time.UTC), ID: 1},
		{At: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), ID: 1<<63 - 1},
		{At: time.Unix(0, 0).UTC(), ID: 7},
	} {
		got, err := store.ParseKey(k.String())
		if err != nil || !got.At.Equal(k.At) || got.ID != k.ID {
			t.Errorf("ParseKey(%q) = %v, %v; want %v", k.String(), got, err, k)
		}
	}
	for _, s := range []string{"", "1", "1.", ".1", "1.0", "1.-1", "+1.1", "01.1", "1.01", "-0.1", "--1.1", "-.1",
		"1.1.1", "1e3.1", " 1.1", "1.1 ", "1,1", "٣.١", "253402300800000000.1", "-62135596800000001.1",
		"9223372036854775808.1", "1.9223372036854775808", strings.Repeat("1", 30) + "." + strings.Repeat("1", 11)} {
		if k, err := store.ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) = %v, want an error", s, k)
		}
	}
}

func TestContains(t *testing.T) {
	t.Parallel()
	if got := store.Contains(`a%b_c\d`); got != `%a\%b\_c\\d%` {
		t.Errorf("Contains = %q", got)
	}
}
