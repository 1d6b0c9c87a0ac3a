package learnsim

import "strings"

// TokenForm is the form of an access token in Authorization that Learn
// takes.
type TokenForm int

const (
	TokenFormEither TokenForm = iota // "Bearer <token>" or the bare token
	TokenFormBearer                  // "Bearer <token>" only
	TokenFormBare                    // the bare token only
)

// token is the access token an Authorization header h carries as f takes
// it, "" when f refuses its form.
func (f TokenForm) token(h string) string {
	h = strings.TrimSpace(h)
	bearer := len(h) > 7 && strings.EqualFold(h[:7], "bearer ")
	switch {
	case bearer && f == TokenFormBare, !bearer && f == TokenFormBearer:
		return ""
	case bearer:
		return strings.TrimSpace(h[7:])
	}
	return h
}
