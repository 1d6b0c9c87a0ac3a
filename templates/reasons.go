package templates

import (
	"strings"

	"b24learn/internal/i18n"
	"b24learn/internal/syncer"
)

// ReasonsText says a run item's reasons in lang, joined by "; ". A reason
// stored as English text before reasons had codes is shown as it is; a code
// the catalogue lacks, as the code and its arguments.
func ReasonsText(lang i18n.Lang, rs syncer.Reasons) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, reasonText(lang, r))
	}
	return strings.Join(parts, "; ")
}

func reasonText(lang i18n.Lang, r syncer.Reason) string {
	key := "reason_" + r.Code
	switch {
	case r.Code == syncer.ReasonText:
		return strings.Join(r.Args, " ")
	case !i18n.Has(key):
		return strings.TrimSpace(r.Code + " " + strings.Join(r.Args, ", "))
	}
	args := make([]any, len(r.Args))
	for i, a := range r.Args {
		args[i] = a
	}
	// Arguments that are codes themselves are said in lang too.
	switch {
	case r.Code == syncer.ReasonInvitedUnknown && len(args) > 0:
		args[0] = runText(lang, "invited_why_", r.Args[0])
	case r.Code == syncer.ReasonFieldLeftOut && len(args) > 1:
		args[1] = runText(lang, "field_problem_", r.Args[1])
	}
	return i18n.T(lang, key, args...)
}
