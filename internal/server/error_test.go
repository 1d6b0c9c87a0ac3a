package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"b24learn/internal/apperr"
	"b24learn/internal/i18n"
)

// Every app error code answers its status with the error's own message;
// anything else answers 500 with a generic text and is logged.
func TestErrorAnswer(t *testing.T) {
	t.Parallel()
	secretText := "dial tcp 10.0.0.5:5432: password authentication failed for user b24learn"
	for _, c := range []struct {
		err    error
		status int
		msg    string
		logged bool
	}{
		{apperr.Errorf(apperr.EMALFORMED, "Bad form."), http.StatusBadRequest, "Bad form.", false},
		{apperr.Errorf(apperr.EUNAUTHORIZED, "Sign in again."), http.StatusUnauthorized, "Sign in again.", false},
		{apperr.Errorf(apperr.EFORBIDDEN, "Admins only."), http.StatusForbidden, "Admins only.", false},
		{apperr.Errorf(apperr.ENOTFOUND, "Report not found."), http.StatusNotFound, "Report not found.", false},
		{apperr.Errorf(apperr.ECONFLICT, "Save the settings first."), http.StatusConflict, "Save the settings first.", false},
		{apperr.Errorf(apperr.ETOOLARGE, "Request body too large."), http.StatusRequestEntityTooLarge, "Request body too large.", false},
		{apperr.Errorf(apperr.EINVALID, "Correct the fields."), http.StatusUnprocessableEntity, "Correct the fields.", false},
		{apperr.Errorf(apperr.ETOOMANY, "Too many requests."), http.StatusTooManyRequests, "Too many requests.", false},
		{apperr.Errorf(apperr.EUPSTREAM, "Bitrix24 could not be reached."), http.StatusBadGateway, "Bitrix24 could not be reached.", false},
		{apperr.Errorf(apperr.EUNAVAILABLE, "Needs SECRET_KEYS."), http.StatusServiceUnavailable, "Needs SECRET_KEYS.", false},
		{apperr.Errorf(apperr.EINTERNAL, "Internal error."), http.StatusInternalServerError, "Internal error.", false},
		{apperr.Errorf("no-such-code", "Odd."), http.StatusInternalServerError, "Odd.", false},
		{fmt.Errorf("load report: %w", apperr.Errorf(apperr.ENOTFOUND, "Gone.")), http.StatusNotFound, "Gone.", false},
		{errors.New(secretText), http.StatusInternalServerError, "Internal error.", true},
		{fmt.Errorf("load settings: %w", errors.New(secretText)), http.StatusInternalServerError, "Internal error.", true},
	} {
		for _, f := range []errorFormat{asText, asJSON} {
			t.Run(fmt.Sprintf("%s/%d", apperr.ErrorCode(c.err), f), func(t *testing.T) {
				var logs bytes.Buffer
				s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
				w := httptest.NewRecorder()
				s.answerError(w, httptest.NewRequest(http.MethodGet, "/app/x", nil), c.err, f, i18n.EN)
				if w.Code != c.status {
					t.Errorf("status %d, want %d", w.Code, c.status)
				}
				body := w.Body.String()
				if strings.Contains(body, "10.0.0.5") || strings.Contains(body, "load ") {
					t.Errorf("internal details in the answer: %q", body)
				}
				switch {
				case f == asText || c.status == http.StatusInternalServerError:
					if body != c.msg+"\n" {
						t.Errorf("body %q, want %q", body, c.msg+"\n")
					}
					if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
						t.Errorf("Content-Type %q", ct)
					}
				default:
					var got errorBody
					if err := json.Unmarshal([]byte(body), &got); err != nil || got.OK || got.Message != c.msg {
						t.Errorf("body %q (%v), want message %q", body, err, c.msg)
					}
					if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
						t.Errorf("Content-Type %q", ct)
					}
				}
				if logged := strings.Contains(logs.String(), "request failed"); logged != c.logged {
					t.Errorf("logged %v, want %v: %s", logged, c.logged, logs.String())
				}
				if c.logged && !strings.Contains(logs.String(), "10.0.0.5") {
					t.Errorf("the log lacks the error: %s", logs.String())
				}
			})
		}
	}
}

// On the pages Bitrix24 frames an internal error is said in the page's
// language, still logged and never shown.
func TestErrorAnswerInLanguage(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	w := httptest.NewRecorder()
	s.errorIn(w, httptest.NewRequest(http.MethodPost, "/b24/app", nil), i18n.RU, fmt.Errorf("load portal: %w", errors.New("dial tcp 10.0.0.5:5432")))
	if want := i18n.T(i18n.RU, "msg.internal") + "\n"; w.Code != http.StatusInternalServerError || w.Body.String() != want {
		t.Errorf("%d %q, want 500 %q", w.Code, w.Body.String(), want)
	}
	if !strings.Contains(logs.String(), "10.0.0.5") {
		t.Errorf("the log lacks the error: %s", logs.String())
	}
}

// A form's field messages travel in the JSON answer next to the message.
func TestErrorAnswerFields(t *testing.T) {
	t.Parallel()
	s := &Server{log: slog.New(slog.DiscardHandler)}
	w := httptest.NewRecorder()
	err := &apperr.Error{Code: apperr.EINVALID, Message: "Nothing was saved.", Fields: map[string]string{"learn_url": "Enter the address."}}
	s.errorJSON(w, httptest.NewRequest(http.MethodPost, "/app/settings", nil), err)
	want := `{"ok":false,"message":"Nothing was saved.","errors":{"learn_url":"Enter the address."}}` + "\n"
	if w.Code != http.StatusUnprocessableEntity || w.Body.String() != want {
		t.Errorf("%d %q, want 422 %q", w.Code, w.Body.String(), want)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Error("JSON error answer without no-store")
	}
}
