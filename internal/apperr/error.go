// Package apperr is the app's one error type: a code that says what kind of
// failure it is and a message for the user. The HTTP layer turns the code
// into a status in one table; anything that is not an *Error counts as
// EINTERNAL, so its text never reaches a user.
package apperr

import (
	"errors"
	"fmt"
)

// Codes of app errors.
const (
	EFORBIDDEN    = "forbidden"    // the caller may not do this
	EINTERNAL     = "internal"     // our fault; details are logged, not shown
	EINVALID      = "invalid"      // the input was read but fails validation
	EMALFORMED    = "malformed"    // the request could not be read at all
	ECONFLICT     = "conflict"     // the state does not allow it now
	ENOTFOUND     = "not_found"    // no such thing (for this caller)
	ETOOLARGE     = "too_large"    // the request body is over the limit
	ETOOMANY      = "too_many"     // a rate limit refused it
	EUNAUTHORIZED = "unauthorized" // who is asking is not proven
	EUNAVAILABLE  = "unavailable"  // the service cannot answer now
	EUPSTREAM     = "upstream"     // a service we call failed or refused
)

// Error is a failure the user is told about: Message is shown as is (in the
// user's language where the page has one). Fields are messages keyed by
// form field, for a form that shows each next to its field.
type Error struct {
	Code    string
	Message string
	Fields  map[string]string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// New is an *Error with message as it is.
func New(code, message string) *Error {
	return &Error{Code: code, Message: message}
}

// Errorf is an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode is err's code: EINTERNAL for anything that is not an *Error,
// "" for nil.
func ErrorCode(err error) string {
	return read(err, func(e *Error) string { return e.Code }, EINTERNAL)
}

// ErrorMessage is what the user may see of err: an *Error's message, or
// "Internal error." for anything else.
func ErrorMessage(err error) string {
	return read(err, func(e *Error) string { return e.Message }, "Internal error.")
}

// read is field of the *Error in err's chain: "" for nil, other for an
// error that is not an *Error (its text never reaches a user).
func read(err error, field func(*Error) string, other string) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return field(e)
	}
	return other
}

// ErrorFields are an *Error's field messages, or nil.
func ErrorFields(err error) map[string]string {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}
