package activation

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Contact is what the admin typed into the activation form.
type Contact struct {
	Name  string
	Email string
	Phone string
}

// FieldErrors maps a form field ("name", "email", "phone") to the code of
// what is wrong with it: name_required, name_too_long, name_invalid,
// email_required, email_invalid, phone_required, phone_intl, phone_invalid.
// The server shows the sentence for the code (internal/i18n, "contact."+code)
// next to the field, in the admin's language.
type FieldErrors map[string]string

func (fe FieldErrors) Error() string {
	parts := make([]string, 0, len(fe))
	for _, f := range []string{"name", "email", "phone"} {
		if m, ok := fe[f]; ok {
			parts = append(parts, f+": "+m)
		}
	}
	return "invalid activation request: " + strings.Join(parts, "; ")
}

const (
	maxNameLen  = 200
	maxEmailLen = 254 // RFC 5321 path limit
)

// Validate checks and normalises c: trimmed name, the bare e-mail address and
// the phone in E.164. A bad field makes the error FieldErrors.
func Validate(c Contact) (Contact, error) {
	fe := FieldErrors{}
	out := Contact{Name: strings.Join(strings.Fields(c.Name), " ")}

	switch {
	case out.Name == "":
		fe["name"] = "name_required"
	case utf8.RuneCountInString(out.Name) > maxNameLen:
		fe["name"] = "name_too_long"
	case !utf8.ValidString(out.Name) || strings.IndexFunc(out.Name, unicode.IsControl) >= 0 || hasHiddenFormatting(out.Name):
		fe["name"] = "name_invalid"
	}

	email, code := normaliseEmail(c.Email)
	if code != "" {
		fe["email"] = code
	}
	out.Email = email

	phone, code := NormalisePhone(c.Phone)
	if code != "" {
		fe["phone"] = code
	}
	out.Phone = phone

	if len(fe) > 0 {
		return out, fe
	}
	return out, nil
}

// normaliseEmail accepts a bare address only ("Bob <bob@x.com>" is not what
// the field asks for): a Mailbox.
func normaliseEmail(raw string) (string, string) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", "email_required"
	}
	if !Mailbox(s) {
		return s, "email_invalid"
	}
	return s, ""
}

// Mailbox reports whether s is one bare address (name@domain) as SMTP takes
// it, the one rule for every address a portal admin types (the activation
// form's, the alert address): no display name, no list, nothing that would
// break a header; a dotted domain DNS can spell, not an address literal
// ([10.0.0.1]), which would send mail through our relay to any host and give
// one mail server as many spellings as it likes; nothing that shows another
// address than the one stored (hasHiddenFormatting).
func Mailbox(s string) bool {
	if len(s) > maxEmailLen || !utf8.ValidString(s) || hasHiddenFormatting(s) {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	domain := s[strings.LastIndexByte(s, '@')+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.HasPrefix(domain, "[") {
		return false
	}
	_, err = idna.Lookup.ToASCII(domain)
	return err == nil
}

// hasHiddenFormatting reports an invisible formatting character in s (Unicode
// category Cf: bidi overrides and isolates, zero-width spaces), which would
// make a name or an address look like another wherever it is shown. The
// zero-width (non-)joiners are kept: some scripts spell names with them.
func hasHiddenFormatting(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d'
	}) >= 0
}

// NoteText reports whether s may be kept as a manager's note: text
// PostgreSQL stores (valid UTF-8, no NUL, which fail the write), with no
// control characters but the line breaks and tabs notes are written with,
// and nothing that shows other managers another text than the one stored
// (hasHiddenFormatting).
func NoteText(s string) bool {
	return utf8.ValidString(s) && !hasHiddenFormatting(s) && strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t'
	}) < 0
}

// NoteLen is a note's length as the form's maxlength counts it and the
// limits' messages say: characters, not bytes (a Cyrillic letter is two),
// with a line break the browser sends as CRLF counted once.
func NoteLen(s string) int {
	return utf8.RuneCountInString(s) - strings.Count(s, "\r\n")
}

// NormalisePhone turns a phone written in international form into E.164:
// "+7 (912) 345-67-89" → "+79123456789". "00" stands for "+". Spaces,
// dashes, dots and parentheses are separators; anything else is refused, as is
// a number without its country code (a leading + or 00).
func NormalisePhone(raw string) (string, string) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", "phone_required"
	}
	var digits strings.Builder
	plus := false
	for i, r := range s {
		switch {
		case r == '+' && i == 0:
			plus = true
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '\u00a0':
		default:
			return s, "phone_invalid"
		}
	}
	d := digits.String()
	if !plus {
		if !strings.HasPrefix(strings.TrimLeft(s, " ("), "00") {
			return s, "phone_intl"
		}
		d = strings.TrimPrefix(d, "00")
	}
	if len(d) < 8 || len(d) > 15 {
		return s, "phone_invalid"
	}
	if d[0] == '0' {
		return s, "phone_intl" // no country code starts with 0
	}
	return "+" + d, ""
}
