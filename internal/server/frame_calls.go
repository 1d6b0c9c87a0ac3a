package server

import (
	"net/http"
	"strconv"

	"b24learn/internal/bitrix24"
	"b24learn/internal/i18n"
)

// Every verified frame POST (/b24/install, /b24/app) asks Bitrix24's
// `profile` who opened it, from the portal's REST budget (about 2 requests
// a second) that its syncs need, and any employee can replay their own
// frame POST with a fresh token from their browser. The verification gate
// bounds the OAuth calls only, at rates that leave one user's script a
// quarter of the portal's budget and a few users' half; so the profile
// calls are bounded too, each taking a token of the opening user's bucket
// and one of the portal's (an appGate of their own, frameCallLimits)
// before it is made, keyed on what the OAuth server confirmed: the
// member_id, and the user its answer names (the portal's bucket alone when
// it names none). Past either the open is answered 429 with Retry-After,
// Bitrix24 not asked.
//
// The open's later calls come only after an admitted open, so the same
// tokens bound them: only an admin's open makes any (the event bindings'
// check, or an install's three bindings, and the page's user fields; the
// department tree is read once a minute per portal at most, tree_cache.go),
// a handful per open. So is its one database write (the admin answer,
// recordAdminCheck, one row per user); sessions are stateless tokens.

// admitFrameCalls takes the tokens of a verified frame open before its
// profile call: a proven admin's (provenAdmin) from the admins' share of
// the portal. When it returns false it has answered the request.
func (s *Server) admitFrameCalls(w http.ResponseWriter, r *http.Request, req bitrix24.AppRequest, v verified) bool {
	user := ""
	if v.token.UserID > 0 {
		user = strconv.FormatInt(v.token.UserID, 10)
	}
	admin, err := s.provenAdmin(r.Context(), v.token.MemberID, v.token.UserID)
	if err != nil {
		s.errorIn(w, r, i18n.FromBitrix24(req.Lang), err)
		return false
	}
	ok, wait := s.frameCalls.admitKeys(s.now(), v.token.MemberID, user, admin)
	if ok {
		return true
	}
	s.metrics.B24Refused.WithLabelValues(refusedFrameCalls).Inc()
	// Debug: a script past its bucket would write a line per request; the
	// metric counts them.
	s.log.DebugContext(r.Context(), "frame open refused: too many profile calls for the user or portal",
		"path", r.URL.Path, "user_id", v.token.UserID, "request_id", requestID(r))
	lang := i18n.FromBitrix24(req.Lang)
	s.error(w, r, errTooMany(msgFrameBusy.in(lang, retryAfterSeconds(wait)), wait))
	return false
}
