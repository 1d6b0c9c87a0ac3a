package bitrix24

import (
	"errors"
	"fmt"
	"strings"

	"b24learn/internal/remote"
)

// APIError is an error answered by Bitrix24 (portal REST or OAuth server):
// {"error": Code, "error_description": Description} with its HTTP status.
//
// Its text holds only our words and the code: error texts end up on the
// admin's status panel and in run reports, and a portal (or whatever its
// endpoint points to) chooses what it answers. Description is kept for
// decisions in code and for debug logs (see excerpt), never for display.
type APIError struct {
	Code        string
	Description string
	HTTPStatus  int
	// OAuth: the OAuth server answered (a token refresh), not the portal's
	// REST. Its statuses say nothing of the portal: a 404 there is no
	// deleted portal, a 503 no rate limit of the portal's.
	OAuth bool
}

func (e *APIError) Error() string {
	return fmt.Sprintf("bitrix24: error %s (http %d)", displayCode(e.Code), e.HTTPStatus)
}

// displayCode passes a code that looks like one (HTTP_503,
// QUERY_LIMIT_EXCEEDED, invalid_grant) and replaces anything else.
func displayCode(code string) string {
	if code == "" || len(code) > 64 {
		return "(unreadable code)"
	}
	for _, c := range code {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return "(unreadable code)"
		}
	}
	return code
}

// excerpt is a bounded piece of the remote description inside err, for
// debug logs only.
func excerpt(err error) string {
	var ae *APIError
	if !errors.As(err, &ae) {
		return ""
	}
	return remote.Excerpt(ae.Description)
}

// Is matches another *APIError by code, case-insensitively, because Bitrix24
// answers codes in both cases. This makes errors.Is(err, ErrExpiredToken) work.
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	if !ok || t.Code == "" {
		return false
	}
	return strings.EqualFold(e.Code, t.Code)
}

// Sentinels for errors.Is. Only Code is compared.
var (
	ErrExpiredToken        = &APIError{Code: "expired_token"}
	ErrInvalidToken        = &APIError{Code: "invalid_token"}
	ErrInvalidGrant        = &APIError{Code: "invalid_grant"}
	ErrInvalidClient       = &APIError{Code: "invalid_client"}
	ErrNoAuthFound         = &APIError{Code: "NO_AUTH_FOUND"}
	ErrInsufficientScope   = &APIError{Code: "insufficient_scope"}
	ErrApplicationNotFound = &APIError{Code: "APPLICATION_NOT_FOUND"}
	ErrAccessDenied        = &APIError{Code: "ACCESS_DENIED"}
	ErrPaymentRequired     = &APIError{Code: "PAYMENT_REQUIRED"}
	ErrQueryLimitExceeded  = &APIError{Code: "QUERY_LIMIT_EXCEEDED"}
	ErrOperationTimeLimit  = &APIError{Code: "OPERATION_TIME_LIMIT"}
	ErrOverloadLimit       = &APIError{Code: "OVERLOAD_LIMIT"}
	ErrMethodNotFound      = &APIError{Code: "ERROR_METHOD_NOT_FOUND"}
	ErrAuthorization       = &APIError{Code: "authorization_error"}
	// ErrUserAccess: the portal's admin limited the app to users the
	// token's user is not among; it lasts until they give it access.
	ErrUserAccess = &APIError{Code: "user_access_error"}
)

// ErrClientRefused means the OAuth server refuses this app's client id or
// secret for every token (an operator's configuration, see OAuth.Refresh):
// unlike ErrInvalidClient it says nothing about a portal.
var ErrClientRefused = errors.New("bitrix24: the OAuth server refuses the app's client id or secret (B24_CLIENT_ID, B24_CLIENT_SECRET)")

// ErrorCode returns the Bitrix24 error code inside err, or "".
func ErrorCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// IsPermanentAuthError reports whether err means the stored tokens can never work
// again without an admin opening the app (reinstall, reauthorisation or payment).
func IsPermanentAuthError(err error) bool {
	for _, s := range []*APIError{ErrInvalidGrant, ErrInvalidClient, ErrApplicationNotFound, ErrPaymentRequired, ErrNoAuthFound, ErrAuthorization} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// OAuthUnavailable reports whether err is an answer of the OAuth server's
// that refuses nothing: one without an error code (an error page, an empty
// body: statusCode, see OAuth.Refresh) or a load limit's code. The server
// failed or is busy; the token it was asked about may well be good.
func OAuthUnavailable(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || !ae.OAuth {
		return false
	}
	return ae.Code == statusCode(ae.HTTPStatus) ||
		ae.Is(ErrQueryLimitExceeded) || ae.Is(ErrOverloadLimit) || ae.Is(ErrOperationTimeLimit)
}

// ErrBadRequest wraps decoding failures of Bitrix24 payloads sent to the app.
var ErrBadRequest = errors.New("bitrix24: malformed request")

// ErrTimeout: the portal (or OAuth server) took the connection but had not
// sent its whole answer when the request's deadline came
// (remote.TimeoutError, see docs/bitrix24-api.md, "Deadlines").
var ErrTimeout = errors.New("bitrix24: the portal did not answer in time")
