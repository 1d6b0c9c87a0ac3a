package learn

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"b24learn/internal/safe"
)

// The Learn URL is a portal admin's to choose, so Retry-After is too. Seconds
// that overflow a duration came out negative and panicked the retry's
// jitter, in a sync's writer goroutine: the whole process, every tenant's
// jobs with it. A wait is read as at most an hour.
func TestRetryAfterIsBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"120":                           2 * time.Minute,
		"9223372037":                    maxServerWait,
		"99999999999999999999":          0, // not a number Go reads: no wait named
		"Fri, 31 Dec 9999 23:59:59 GMT": maxServerWait,
		"Wed, 02 Dec 2026 10:00:30 GMT": 30 * time.Second,
		"-5":                            0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("Retry-After %q read as %v, want %v", v, got, want)
		}
	}
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "9223372037")
			w.WriteHeader(status)
		}))
		c, err := New(Credentials{AccountURL: "https://x.example.com", Email: "a", Password: "b"},
			Options{BaseURL: srv.URL, AllowHTTP: true, Retry: RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, call := range []func() error{
			func() error {
				return c.UpdateUser(ctx, "u1", UserUpdate{DepartmentID: "d", Fields: Fields{FieldLogin: "l"}})
			},
			func() error { _, err := c.GetDepartment(ctx, "d1"); return err },
		} {
			err := call() // before the bound: a panic
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != status || ae.RetryAfter != maxServerWait {
				t.Errorf("status %d: %v", status, err)
			}
		}
		cancel()
		srv.Close()
	}
}

// A panic in one of Parallel's calls is that call's error, not the end of the
// process (the reviewer's overflowing Retry-After killed the test binary
// through Parallel even with a recover in the caller).
func TestParallelRecoversAPanic(t *testing.T) {
	t.Parallel()
	err := Parallel(context.Background(), 4, []int{1, 2, 3}, func(_ context.Context, i int) error {
		if i == 2 {
			panic("a bad answer")
		}
		return nil
	})
	var pe *safe.PanicError
	if !errors.As(err, &pe) || pe.Value != "a bad answer" {
		t.Fatalf("Parallel returned %v", err)
	}
}
