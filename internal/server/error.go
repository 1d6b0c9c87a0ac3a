package server

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"b24learn/internal/apperr"
	"b24learn/internal/i18n"
)

// errorStatus is the one table from app error codes to HTTP statuses; a
// code not in it answers 500.
var errorStatus = map[string]int{
	apperr.ECONFLICT:     http.StatusConflict,
	apperr.EFORBIDDEN:    http.StatusForbidden,
	apperr.EINTERNAL:     http.StatusInternalServerError,
	apperr.EINVALID:      http.StatusUnprocessableEntity,
	apperr.EMALFORMED:    http.StatusBadRequest,
	apperr.ENOTFOUND:     http.StatusNotFound,
	apperr.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	apperr.ETOOMANY:      http.StatusTooManyRequests,
	apperr.EUNAUTHORIZED: http.StatusUnauthorized,
	apperr.EUNAVAILABLE:  http.StatusServiceUnavailable,
	apperr.EUPSTREAM:     http.StatusBadGateway,
}

// statusOf is the HTTP status of err.
func statusOf(err error) int { return codeStatus(apperr.ErrorCode(err)) }

// codeStatus is the HTTP status of an app error code. Pages that show an
// error inside a re-rendered form take their status from here.
func codeStatus(code string) int {
	if status, ok := errorStatus[code]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// formStatus is the status of a page that shows a form again: 200 when
// nothing failed, else the status of the failure, whose message the page
// shows next to the form.
func formStatus(fail error) int {
	if fail == nil {
		return http.StatusOK
	}
	return statusOf(fail)
}

// errNotFound is net/http's own 404 text, so a missing id answers like an
// unknown path.
var errNotFound = apperr.Errorf(apperr.ENOTFOUND, "404 page not found")

// notFoundAs is err with a domain's "no such row" (missing) turned into
// errNotFound, so a handler answers both with one s.error.
func notFoundAs(err, missing error) error {
	if errors.Is(err, missing) {
		return errNotFound
	}
	return err
}

// retryLater is an answer to be asked again after wait (a rate limit's
// refusal, Bitrix24 down): answerError adds the Retry-After header to it.
type retryLater struct {
	err  error
	wait time.Duration
}

func (e *retryLater) Error() string { return e.err.Error() }
func (e *retryLater) Unwrap() error { return e.err }

// errTooMany is a 429 with message, to be asked again after wait.
func errTooMany(message string, wait time.Duration) error {
	return &retryLater{err: apperr.New(apperr.ETOOMANY, message), wait: wait}
}

// retryAfterSeconds is wait in whole seconds, rounded up, at least 1: a
// client that comes back when told finds a token.
func retryAfterSeconds(wait time.Duration) int {
	return max(int(math.Ceil(wait.Seconds())), 1)
}

// errorBody is the JSON answer of a failed request of the page's scripts;
// it has the fields of the successful answers' ok and message.
type errorBody struct {
	OK      bool              `json:"ok"`
	Message string            `json:"message"`
	Errors  map[string]string `json:"errors,omitempty"`
}

// errorFormat is how an error answer is written: the format the route
// answers in when it succeeds.
type errorFormat int

const (
	asText errorFormat = iota // text/plain, as http.Error writes it
	asJSON                    // errorBody
)

// error answers err as plain text.
func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	s.answerError(w, r, err, asText, i18n.EN)
}

// errorIn answers err as plain text in lang: on the pages Bitrix24 opens in
// its iframe the answer is the page, so an internal error is said in the
// portal's language too.
func (s *Server) errorIn(w http.ResponseWriter, r *http.Request, lang i18n.Lang, err error) {
	s.answerError(w, r, err, asText, lang)
}

// errorJSON answers err as an errorBody, for the page's scripts.
func (s *Server) errorJSON(w http.ResponseWriter, r *http.Request, err error) {
	s.answerError(w, r, err, asJSON, i18n.EN)
}

// answerError is the one place an error becomes an answer: the status from
// errorStatus, the user-facing message of an *apperr.Error, and for anything
// else "Internal error." in lang with the details logged, never shown. An
// *apperr.Error with EINTERNAL is made by code that has logged what it knows.
// Internal errors are plain text in every format: the page's script shows
// its own text, in the page's language, for an answer that is not JSON.
func (s *Server) answerError(w http.ResponseWriter, r *http.Request, err error, f errorFormat, lang i18n.Lang) {
	status, msg := statusOf(err), apperr.ErrorMessage(err)
	var appErr *apperr.Error
	if !errors.As(err, &appErr) {
		s.log.ErrorContext(r.Context(), "request failed", "error", err, "path", logText(r.URL.Path), "request_id", requestID(r))
		msg = msgInternal.in(lang)
	}
	var later *retryLater
	if errors.As(err, &later) {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(later.wait)))
	}
	switch {
	case f == asJSON && status != http.StatusInternalServerError:
		writeJSON(w, status, errorBody{Message: msg, Errors: apperr.ErrorFields(err)})
	default:
		http.Error(w, msg, status)
	}
}
