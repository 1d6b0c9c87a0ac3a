package learnsim

import (
	"net/http"
	"unicode/utf8"
)

// Codes is what Learn does with a department code past its (unknown)
// limits.
type Codes int

const (
	CodesKept         Codes = iota // any code is stored whole
	CodesCut                       // a code longer than the limit is cut silently
	CodesRefusedLong               // a code longer than the limit is refused with 400
	CodesRefusedChars              // a code with another character than [A-Za-z0-9._-] is refused with 400
)

// DefaultCodeLimit is the limit of Unsettled.CodeLimit's zero value: 32
// runes, a common size of a code column, shorter than the codes the app
// makes (a 32-character member ID, ':' and the Bitrix24 ID).
const DefaultCodeLimit = 32

// fitCode applies Codes to a department code: the code to store, or the
// refusal.
func (u Unsettled) fitCode(code string) (string, *apiErr) {
	limit := u.CodeLimit
	if limit <= 0 {
		limit = DefaultCodeLimit
	}
	switch u.Codes {
	case CodesCut, CodesRefusedLong:
		if utf8.RuneCountInString(code) <= limit {
			return code, nil
		}
		if u.Codes == CodesRefusedLong {
			return "", errf(http.StatusBadRequest, "Field code is too long: at most %d characters", limit)
		}
		n := 0
		for i := range code {
			if n == limit {
				return code[:i], nil
			}
			n++
		}
	case CodesRefusedChars:
		for _, c := range code {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return "", errf(http.StatusBadRequest, "Invalid value %q. Field code may hold only letters, digits, '-', '_' and '.'", code)
			}
		}
	}
	return code, nil
}

// KeptCode is what Learn keeps of a department code under Codes: the code,
// its cut, or "" for one it refuses (a client may then send none).
func (u Unsettled) KeptCode(code string) string {
	kept, err := u.fitCode(code)
	if err != nil {
		return ""
	}
	return kept
}
