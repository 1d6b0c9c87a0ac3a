package templates

import (
	"testing"

	"b24learn/internal/i18n"
)

// The attacker: an activation request whose contact address carries
// mailto headers in its (legal) local part. The console's link must mail
// that one address and add no recipient.
func TestMailtoAddsNoHeaders(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"anna@customer.example":                "mailto:anna@customer.example",
		"a?cc=boss@evil.example@customer.test": "mailto:a%3Fcc=boss@evil.example@customer.test",
		"a&bcc=x@evil.example":                 "mailto:a%26bcc=x@evil.example",
		"100%#x@customer.test":                 "mailto:100%25%23x@customer.test",
	} {
		if got := mgrMailto(in); got != want {
			t.Errorf("mgrMailto(%q) = %q, want %q", in, got, want)
		}
	}
}

// A list's count reads as each language groups thousands.
func TestMgrNumber(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		n      int
		en, ru string
	}{{0, "0", "0"}, {999, "999", "999"}, {3412, "3,412", "3\u00a0412"}, {1234567, "1,234,567", "1\u00a0234\u00a0567"}} {
		if got := mgrNumber(i18n.EN, c.n); got != c.en {
			t.Errorf("mgrNumber(en, %d) = %q, want %q", c.n, got, c.en)
		}
		if got := mgrNumber(i18n.RU, c.n); got != c.ru {
			t.Errorf("mgrNumber(ru, %d) = %q, want %q", c.n, got, c.ru)
		}
	}
	p := ListPager{First: 51, Last: 100, Total: 3412}
	if got := mgrRange(i18n.EN, p); got != "51–100 of 3,412" {
		t.Errorf("mgrRange = %q", got)
	}
	// Past the count's bound (store.DefaultCountMax) the total is a floor,
	// and a page beyond it has no known place.
	for _, c := range []struct {
		p      ListPager
		en, ru string
	}{
		{ListPager{First: 51, Last: 100, Total: 10000, More: true}, "51–100 of 10,000+", "51–100 из 10\u00a0000+"},
		{ListPager{Total: 10000, More: true, Past: true}, "Past the first 10,000 of 10,000+", "После первых 10\u00a0000 из 10\u00a0000+"},
	} {
		if got := mgrRange(i18n.EN, c.p); got != c.en {
			t.Errorf("mgrRange(en, %+v) = %q, want %q", c.p, got, c.en)
		}
		if got := mgrRange(i18n.RU, c.p); got != c.ru {
			t.Errorf("mgrRange(ru, %+v) = %q, want %q", c.p, got, c.ru)
		}
	}
}
