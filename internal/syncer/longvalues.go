package syncer

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"b24learn/internal/learn"
)

// How long a department name or a profile field may be in Learn is not
// documented, nor whether a longer one is kept, cut or refused
// (docs/learn-api.md, "Long values"); Bitrix24 takes hundreds of
// characters. The app sends at most maxTextRunes characters, cut on a word
// where one is near, so what it sends fits the common size of a name
// column. If Learn refuses a write carrying a value longer than one of
// shorterRunes, the write goes once more with its values cut to that. The
// mapping keeps the fingerprint of the value as planned either way, so a
// value Learn cut or that was sent shorter is in sync until Bitrix24
// changes it, and no run writes it again.
const maxTextRunes = 255

// shorterRunes are the lengths a refused write is cut to, in turn: two
// more writes at most, for an object whose values are that long.
var shorterRunes = [...]int{100, 50}

// zwj joins the emoji either side into one.
const zwj = '\u200d'

// fitText is s cut to at most n runes: at the last space when one is in
// the last fifth of the cut, so a cut name ends on a whole word. A value
// within n is returned as it is.
func fitText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut, i := 0, 0
	for k := range s {
		if i == n {
			cut = k
			break
		}
		i++
	}
	// A character of several runes (a letter and its accent, decomposed as
	// macOS writes them, or emoji joined by a zero-width joiner) goes whole
	// or not at all: not an и for a й. One that fills the whole cut (a
	// letter under hundreds of marks) is cut inside, not to nothing.
	for whole := cut; ; {
		if cut == 0 {
			cut = whole
			break
		}
		r, _ := utf8.DecodeRuneInString(s[cut:])
		prev, size := utf8.DecodeLastRuneInString(s[:cut])
		if !unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc) && r != zwj && prev != zwj {
			break
		}
		cut -= size
	}
	head := s[:cut]
	if r, _ := utf8.DecodeRuneInString(s[cut:]); !unicode.IsSpace(r) {
		if j := strings.LastIndexFunc(head, unicode.IsSpace); j > 0 && utf8.RuneCountInString(head[j:]) <= n/5 {
			head = head[:j]
		}
	}
	return strings.TrimRightFunc(head, unicode.IsSpace)
}

// sentTexts are the free-text values step s sends: a department's name,
// a user's profile fields but login and e-mail.
func (s *Step) sentTexts() []string {
	var out []string
	switch {
	case s.Kind == KindDepartment && s.Dept != nil:
		if s.Action == ActionCreate || slices.Contains(s.Changed, "name") {
			out = append(out, s.Dept.Name)
		}
	case s.Kind == KindUser && s.User != nil && (s.Action == ActionCreate || s.Action == ActionUpdate):
		for i, f := range s.User.fields() {
			name := userFieldNames[i]
			if name != "login" && name != "email" && (s.Action == ActionCreate || slices.Contains(s.Changed, name)) {
				out = append(out, *f)
			}
		}
		for k, v := range s.User.Extra {
			if s.Action == ActionCreate || slices.Contains(s.Changed, k) {
				out = append(out, v)
			}
		}
	}
	return out
}

// longerThan reports whether step s sends a value longer than n runes.
func (s *Step) longerThan(n int) bool {
	for _, v := range s.sentTexts() {
		if utf8.RuneCountInString(v) > n {
			return true
		}
	}
	return false
}

// shortened is step s sending its values cut to n runes; its fingerprint
// stays that of the values as planned, so the next run takes what Learn
// holds as in sync.
func (s Step) shortened(n int) Step {
	s.Fingerprint = s.fingerprint()
	var after map[string]string // a user create's is built from its spec
	if s.After != nil {
		after = maps.Clone(s.After)
		s.After = after
	}
	set := func(k, v string) {
		if _, ok := after[k]; ok {
			after[k] = v
		}
	}
	if s.Dept != nil {
		d := *s.Dept
		d.Name = fitText(d.Name, n)
		s.Dept = &d
		set("name", d.Name)
	}
	if s.User != nil {
		u := *s.User
		u.Extra = maps.Clone(u.Extra)
		for i, f := range u.fields() {
			if name := userFieldNames[i]; name != "login" && name != "email" {
				*f = fitText(*f, n)
				set(name, *f)
			}
		}
		for k, v := range u.Extra {
			u.Extra[k] = fitText(v, n)
			set(k, u.Extra[k])
		}
		s.User = &u
	}
	// One cut reason: the last length sent; any other reason stays.
	note := because(ReasonCut, strconv.Itoa(n))
	var kept Reasons
	for _, r := range s.Reason {
		if r.Code != ReasonCut {
			kept = append(kept, r)
		}
	}
	s.Reason = note
	if len(kept) > 0 {
		s.Reason = kept.and(note)
	}
	return s
}

// shorter sends step s again with its values cut to each of shorterRunes
// in turn while Learn refuses it; send is the write, err its first answer.
func shorter(s Step, err error, send func(Step) error) (Step, error) {
	for _, n := range shorterRunes {
		var invalid *learn.ValidationError
		if !errors.As(err, &invalid) || errors.Is(err, learn.ErrMaybeCreated) {
			// A create refused after its lost answer may have been made:
			// another create would make it twice.
			break
		}
		if !s.longerThan(n) {
			continue // a value of 80 characters goes cut to 50
		}
		s = s.shortened(n)
		err = send(s)
	}
	return s, err
}

// refusalOf is what to remember of step s that Learn refused with err, or
// nil: only a write sent with its values cut to the last of shorterRunes
// and refused at that length as invalid (400). Such a refusal may be about
// something else than length; the app cannot tell (a terse answer names
// nothing), and either way Learn would refuse the same values again. Any
// other last answer (403, 404, 409) is about the object or the credentials,
// which may change before the next run.
func refusalOf(s Step, err error, reason Reasons, account string) *Refusal {
	var invalid *learn.ValidationError
	if s.Reason.arg(ReasonCut) != strconv.Itoa(shorterRunes[len(shorterRunes)-1]) || !errors.As(err, &invalid) {
		return nil
	}
	return &Refusal{Kind: s.Kind, B24ID: s.B24ID, Part: PartValues, Fingerprint: s.fingerprint(), Reason: reason, Account: account}
}
