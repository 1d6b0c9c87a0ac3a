package learn

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// What a Learn server writes in an error answer stays out of the error's
// text, which reaches the status panel and run reports.
func TestErrorTextsHoldNoRemoteBody(t *testing.T) {
	t.Parallel()
	const marker = "REMOTE-BODY-5d1e"
	for _, c := range []struct {
		status int
		body   string
	}{
		{400, `{"code":12,"message":"` + marker + `"}`},
		{409, `<response><code>3</code><message>` + marker + `</message></response>`},
		{418, `<html><body>` + marker + `</body></html>`},
		{403, `{"message":"` + marker + `"}`},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(c.status)
			io.WriteString(w, c.body)
		}))
		cl, err := New(Credentials{AccountURL: srv.URL, Email: "a", Password: "b"}, Options{AllowHTTP: true, Retry: fastRetry})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.ListDepartments(context.Background())
		srv.Close()
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != c.status {
			t.Fatalf("%d: err = %v", c.status, err)
		}
		if strings.Contains(err.Error(), marker) {
			t.Errorf("%d: error text shows the body: %v", c.status, err)
		}
		if !strings.Contains(RemoteMessage(err), marker) {
			t.Errorf("%d: RemoteMessage = %q, want the excerpt for debug logs", c.status, RemoteMessage(err))
		}
		var ve *ValidationError
		if c.status == 400 && (!errors.As(err, &ve) || ve.Code != 12 || strings.Contains(ve.Error(), marker)) {
			t.Errorf("400: validation error %v", ve)
		}
	}
	// A refusal the client makes itself still says what is wrong.
	if s := (&ValidationError{Message: "fields.login is required"}).Error(); !strings.Contains(s, "fields.login") {
		t.Errorf("local validation error: %q", s)
	}
}

// A 409 on a department is not about a login or an e-mail: the report row an
// admin reads must not say it is.
func TestConflictWordsFitTheObject(t *testing.T) {
	for _, tc := range []struct {
		path, want, not string
	}{
		{"/user", "duplicate login or email", ""},
		{"/users/v2", "duplicate login or email", ""},
		{"/department", "refused as a conflict", "login"},
		{"/department/{id}/subordination", "refused as a conflict", "login"},
	} {
		err := error(&APIError{Method: "POST", Path: tc.path, Status: 409, Code: 409})
		if !errors.Is(err, ErrDuplicate) {
			t.Errorf("%s: a 409 is no longer ErrDuplicate", tc.path)
		}
		if got := err.Error(); !strings.Contains(got, tc.want) || tc.not != "" && strings.Contains(got, tc.not) {
			t.Errorf("%s: %q, want it to say %q", tc.path, got, tc.want)
		}
	}
}
