// Package i18n settles the language of a page once and holds every sentence
// the portal's users read: the iframe pages, the settings form's and the
// activation form's errors, the Learn connection check; and what iSpring's
// managers read: the console and the activation e-mail. The app speaks
// Russian and English only.
//
// The language comes from Bitrix24's LANG when a session is made
// (FromBitrix24) and travels in the session; handlers and templates pass it
// to T. Domain packages return codes (learn.CheckError.Code,
// activation.FieldErrors), which the server turns into sentences here.
package i18n

import (
	"fmt"
	"strings"
)

// Lang is a language the app speaks: RU or EN.
type Lang string

const (
	EN Lang = "en"
	RU Lang = "ru"
)

// FromBitrix24 maps a Bitrix24 LANG to the app's language. Bitrix24 writes
// "ua" for Ukrainian and "by"/"kz" for portals of Belarus and Kazakhstan;
// their admins read Russian more readily than English, so these, and the ISO
// codes uk, be and kk, get Russian, as ru does. Everything else (en, de, la,
// br, ...) and an empty LANG gets English. A region suffix ("ru-RU",
// "uk_UA") is ignored. It is idempotent: FromBitrix24(string(l)) == l.
func FromBitrix24(code string) Lang {
	code = strings.ToLower(strings.TrimSpace(code))
	if i := strings.IndexAny(code, "-_"); i >= 0 {
		code = code[:i]
	}
	switch code {
	case "ru", "ua", "uk", "by", "be", "kz", "kk":
		return RU
	}
	return EN
}

// String is the language's code, as the page's lang attribute takes it.
func (l Lang) String() string { return string(l.norm()) }

// norm treats anything but RU as EN, so that a zero Lang reads English.
func (l Lang) norm() Lang {
	if l == RU {
		return RU
	}
	return EN
}

// T is the text for key in l. With args, the text is a format for
// fmt.Sprintf. A key the catalogue lacks comes back as it is, so a missing
// text shows on the page instead of a blank (TestKeysInUse catches it).
func T(l Lang, key string, args ...any) string {
	e, ok := catalogue[key]
	if !ok {
		return key
	}
	s := e[0]
	if l.norm() == RU {
		s = e[1]
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// Has says whether the catalogue has key.
func Has(key string) bool {
	_, ok := catalogue[key]
	return ok
}

// N is the text for n things: key+".one", ".few" or ".many", as the
// language's plural rule picks, formatted with n.
func N(l Lang, key string, n int) string {
	return T(l, key+"."+plural(l.norm(), n), n)
}

// plural is the form of n: English has one and many; Russian has one (1,
// 21, 31...), few (2-4, 22-24...) and many (0, 5-20, 25...).
func plural(l Lang, n int) string {
	if n < 0 {
		n = -n
	}
	if l != RU {
		if n == 1 {
			return "one"
		}
		return "many"
	}
	switch n10, n100 := n%10, n%100; {
	case n10 == 1 && n100 != 11:
		return "one"
	case n10 >= 2 && n10 <= 4 && (n100 < 12 || n100 > 14):
		return "few"
	}
	return "many"
}

// Keys lists the catalogue's keys, for tests that look for a text of the
// other language on a page.
func Keys() []string {
	out := make([]string, 0, len(catalogue))
	for k := range catalogue {
		out = append(out, k)
	}
	return out
}
