package learn

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A retry's wait (here the 30 s a 503 asks for) ends when the caller's
// context does: the call returns the context's error at once and sends no
// further request, so a cancelled or shut-down sync does not sit in a wait.
func TestRetryWaitEndsWithTheContext(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	answered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
		select {
		case answered <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()
	retry := fastRetry
	retry.MaxRetryAfter = time.Minute
	c, err := New(Credentials{AccountURL: "https://x.example.com", Email: "a", Password: "b"},
		Options{BaseURL: srv.URL, AllowHTTP: true, Retry: retry})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-answered
		time.Sleep(100 * time.Millisecond) // the client is in its wait by now
		cancel()
	}()
	start := time.Now()
	_, err = c.ListDepartments(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the call returned %v after it started, want soon after the cancel", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d requests, want 1: none after the context ended", n)
	}
}
