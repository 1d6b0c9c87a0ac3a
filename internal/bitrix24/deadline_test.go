package bitrix24

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// dripListener is a raw TCP server that reads a request's head, answers
// 200 with a Content-Length of 1000 and then sends one byte every `every`:
// an answer that never ends within any reasonable time.
func dripListener(t *testing.T, every time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for { // the request's head; its body is left unread
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				if _, err := conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")); err != nil {
					return
				}
				for {
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
					select {
					case <-done:
						return
					case <-time.After(every):
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestDripEndsAtTheDeadline: a portal that sends its headers and then
// drips the body fails the call with ErrTimeout at the request's deadline,
// even through an HTTP client without a timeout of its own.
func TestDripEndsAtTheDeadline(t *testing.T) {
	t.Parallel()
	const deadline = 300 * time.Millisecond
	u := dripListener(t, 50*time.Millisecond)
	c := New(Config{Endpoint: u + "/rest/", Tokens: staticTokens{Token{AccessToken: "a"}}, Limiter: NewLimiter(0, 0),
		HTTP: &http.Client{}, RequestTimeout: deadline})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	start := time.Now()
	err := c.Call(ctx, "user.get", nil, nil)
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the test's own deadline ended the call after %s: %v", took, err)
	}
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if took > deadline+time.Second {
		t.Errorf("call took %s, want about %s", took, deadline)
	}
}

// TestSlowPortalEndsTheRun: a portal that answers each request whole, but
// past half the deadline, gets MaxSlow requests; every later call fails
// with ErrTimeout without a request.
func TestSlowPortalEndsTheRun(t *testing.T) {
	t.Parallel()
	// Wide margins: each answer takes 0.2 s more than half the deadline
	// (slow), and a loaded machine under -race must not push it 0.8 s
	// further, past the deadline (a timeout, which costs more).
	const deadline = 2 * time.Second
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"result":`))
		w.(http.Flusher).Flush()
		time.Sleep(deadline * 6 / 10)
		_, _ = w.Write([]byte(`[],"total":0}`))
	}))
	t.Cleanup(srv.Close)
	c := New(Config{Endpoint: srv.URL + "/rest/", Tokens: staticTokens{Token{AccessToken: "a"}}, Limiter: NewLimiter(0, 0),
		HTTP: &http.Client{}, RequestTimeout: deadline, MaxSlow: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	calls := 0
	for calls < 40 && err == nil {
		calls++
		err = c.Call(ctx, "user.get", nil, nil)
	}
	if ctx.Err() != nil {
		t.Fatalf("the test's own deadline ended the run after %d calls: %v", calls, err)
	}
	if !errors.Is(err, ErrTimeout) || calls != 4 || served.Load() != 3 {
		t.Fatalf("call %d, %d served: err = %v, want ErrTimeout at call 4 after 3 served", calls, served.Load(), err)
	}
}

// TestOAuthDripEndsAtTheDeadline: the same bound holds for the OAuth server.
func TestOAuthDripEndsAtTheDeadline(t *testing.T) {
	t.Parallel()
	const deadline = 300 * time.Millisecond
	o := &OAuth{URL: dripListener(t, 50*time.Millisecond), ClientID: "id", ClientSecret: "secret", HTTP: &http.Client{}, Timeout: deadline}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	start := time.Now()
	_, err := o.Refresh(ctx, "refresh")
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the test's own deadline ended the refresh after %s: %v", took, err)
	}
	if !errors.Is(err, ErrTimeout) || took > deadline+time.Second {
		t.Fatalf("after %s: err = %v, want ErrTimeout within about %s", took, err, deadline)
	}
}

// TestProductionDeadlines: the figures docs/bitrix24-api.md ("Deadlines") gives.
func TestProductionDeadlines(t *testing.T) {
	t.Parallel()
	c := New(Config{Tokens: staticTokens{}})
	if c.cfg.RequestTimeout != time.Minute || c.cfg.MaxSlow != 20 {
		t.Errorf("request deadline %s, slow answers %d; want 1m0s and 20", c.cfg.RequestTimeout, c.cfg.MaxSlow)
	}
}

// A big, busy portal may answer a batch slowly now and then: a run that
// meets six answers past half the deadline, and no timeout, goes on.
func TestSlowButHealthyPortalKeepsItsClient(t *testing.T) {
	t.Parallel()
	// The margins of TestSlowPortalEndsTheRun: slow, yet never past the deadline.
	const deadline = 2 * time.Second
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(deadline * 6 / 10)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"result":[],"total":0}`))
	}))
	t.Cleanup(srv.Close)
	c := New(Config{Endpoint: srv.URL + "/rest/", Tokens: staticTokens{Token{AccessToken: "a"}}, Limiter: NewLimiter(0, 0),
		HTTP: &http.Client{}, RequestTimeout: deadline})
	for i := range 6 {
		if err := c.Call(context.Background(), "user.get", nil, nil); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
}
