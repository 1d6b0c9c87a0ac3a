package learnsim

import (
	"encoding/json"
	"net/http"
	"strings"
)

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

// KeyRefusal is how POST /api/v3/token refuses a Client ID or Secret it
// does not know: the OAS lists 400, 401 and 403 for it and no source shows
// which Learn sends, nor whether its body is Learn's {"code","message"} or
// OAuth's {"error"} (docs/learn-api.md, "Authentication").
type KeyRefusal int

const (
	KeyRefused401             KeyRefusal = iota // 401, Learn's error body
	KeyRefused401OAuth                          // 401 {"error":"invalid_client"}
	KeyRefused400Client                         // 400 {"error":"invalid_client"}
	KeyRefused400Grant                          // 400 {"error":"invalid_grant"}
	KeyRefused400Unauthorized                   // 400 {"error":"unauthorized_client"}
	KeyRefused403                               // 403, Learn's error body
)

// oauthCode is the OAuth error code of k's body, "" for Learn's body.
func (k KeyRefusal) oauthCode() string {
	switch k {
	case KeyRefused401OAuth, KeyRefused400Client:
		return "invalid_client"
	case KeyRefused400Grant:
		return "invalid_grant"
	case KeyRefused400Unauthorized:
		return "unauthorized_client"
	}
	return ""
}

// status is the HTTP status of k.
func (k KeyRefusal) status() int {
	switch k {
	case KeyRefused400Client, KeyRefused400Grant, KeyRefused400Unauthorized:
		return http.StatusBadRequest
	case KeyRefused403:
		return http.StatusForbidden
	}
	return http.StatusUnauthorized
}

// writeOAuthErr writes an OAuth error body (RFC 6749, 5.2): the shape a
// token endpoint answers in when it does not use Learn's.
func writeOAuthErr(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	_, _ = w.Write(b)
}
