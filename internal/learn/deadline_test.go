package learn

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/learn/learnsim"
)

// dripHandler sends a 200 and its headers at once, then one byte of body
// every `every` until the client hangs up: an answer that never ends.
func dripHandler(every time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		f := w.(http.Flusher)
		body := []byte(`{"departments":[{"departmentId":"`)
		for i := 0; ; i++ {
			if _, err := w.Write(body[i%len(body) : i%len(body)+1]); err != nil {
				return
			}
			f.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(every):
			}
		}
	})
}

// TestDripEndsAtTheDeadline: a server that drips its answer a byte at a
// time fails the call with ErrTimeout once every attempt has spent its
// deadline, whether the answer is read whole (one object) or decoded as it
// arrives (a listing); the drip does not stretch the deadline.
func TestDripEndsAtTheDeadline(t *testing.T) {
	t.Parallel()
	const deadline = 300 * time.Millisecond
	retry := RetryPolicy{MaxAttempts: 2, BaseDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond, Timeout: deadline}
	for name, call := range map[string]func(context.Context, *Client) error{
		"GetDepartment": func(ctx context.Context, c *Client) error {
			_, err := c.GetDepartment(ctx, "1")
			return err
		},
		"ListDepartments": func(ctx context.Context, c *Client) error {
			_, err := c.ListDepartments(ctx)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := hostileClient(t, dripHandler(50*time.Millisecond), retry)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			err := call(ctx, c)
			took := time.Since(start)
			if ctx.Err() != nil {
				t.Fatalf("the test's own deadline ended the call after %s: err = %v", took, err)
			}
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("err = %v, want ErrTimeout", err)
			}
			if bound := 2*deadline + time.Second; took > bound {
				t.Errorf("call took %s, want at most %s (2 attempts of %s)", took, bound, deadline)
			}
		})
	}
}

// TestSlowServerEndsTheRun: a server that answers every request whole but
// slowly, inside each attempt's deadline, cannot hold a run until the
// job's timeout: after MaxSlow slow answers the client sends nothing more
// and every call fails with ErrTimeout at once.
func TestSlowServerEndsTheRun(t *testing.T) {
	t.Parallel()
	// Wide margins: each answer takes 0.2 s more than half the deadline
	// (slow), and a loaded machine under -race must not push it 0.8 s
	// further, past the deadline (a timeout, which costs more).
	const deadline = 2 * time.Second
	var served atomic.Int64
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		_, _ = w.Write([]byte(`{"departmentId":"1",`))
		w.(http.Flusher).Flush()
		time.Sleep(deadline * 6 / 10) // within the deadline, past half of it
		_, _ = w.Write([]byte(`"name":"Root"}`))
	})
	c := hostileClient(t, slow, RetryPolicy{MaxAttempts: 2, BaseDelay: 10 * time.Millisecond, Timeout: deadline, MaxSlow: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	var err error
	calls := 0
	for calls < 40 && err == nil {
		calls++
		_, err = c.GetDepartment(ctx, "1")
	}
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the test's own deadline ended the run after %d calls, %s: err = %v", calls, took, err)
	}
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("after %d calls in %s: err = %v, want ErrTimeout", calls, took, err)
	}
	if calls != 4 || served.Load() != 3 {
		t.Errorf("failed at call %d after %d requests served, want call 4 with 3 served (MaxSlow)", calls, served.Load())
	}
}

// TestCheckAnswersInTime: the settings page's check of a server that
// drips its answers ends within the check's bound with CheckTimeout,
// whose sentence says the server did not answer in time.
func TestCheckAnswersInTime(t *testing.T) {
	t.Parallel()
	const bound = time.Second
	u, hc := hostileServer(t, dripHandler(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	start := time.Now()
	err := CheckConnection(ctx, Credentials{AccountURL: u, Email: testEmail, Password: testPassword},
		Options{HTTPClient: hc, CheckTimeout: bound})
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the test's own deadline ended the check after %s: err = %v", took, err)
	}
	checkCode(t, err, CheckTimeout)
	if took > bound+500*time.Millisecond {
		t.Errorf("check took %s, want at most about %s", took, bound)
	}
}

// TestProductionBounds: the figures docs/learn-api.md ("Deadlines") gives.
func TestProductionBounds(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{}.withDefaults()
	if p.Timeout != time.Minute || p.MaxSlow != 20 || DefaultCheckTimeout != 20*time.Second {
		t.Errorf("attempt %s, slow answers %d, check %s; docs/learn-api.md says 1m0s, 20, 20s", p.Timeout, p.MaxSlow, DefaultCheckTimeout)
	}
	c, err := New(Credentials{AccountURL: "https://acme.ispringlearn.ru"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.checkTO != DefaultCheckTimeout || probeRetry(c.checkTO).Timeout != 8*time.Second {
		t.Errorf("check bound %s, probe attempt %s; want 20s and 8s", c.checkTO, probeRetry(c.checkTO).Timeout)
	}
}

// A slow first API candidate may spend most of the check's bound before the
// next one answers: the sign-in user's read that follows then finds the
// bound spent. That is no "did not answer in time" from an API that just
// answered: the role is left to the run, which asks before it writes.
func TestCheckSpentOnTheProbeLeavesTheRoleToTheRun(t *testing.T) {
	t.Parallel()
	sim := learnsim.New(learnsim.Options{Mount: learnsim.MountAccountHost})
	var requests atomic.Int32
	u, hc := hostileServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) > 1 {
			time.Sleep(1500 * time.Millisecond) // past the check's bound
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	if _, err := sim.AddAccount(learnsim.AccountOptions{URL: u, Email: testEmail, Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	err := CheckConnection(context.Background(), Credentials{AccountURL: u, Email: testEmail, Password: testPassword},
		Options{HTTPClient: hc, CheckTimeout: time.Second})
	if err != nil {
		t.Fatalf("check: %v, want the account taken", err)
	}
	if n := requests.Load(); n < 2 {
		t.Fatalf("%d requests: the sign-in user was not asked for", n)
	}
}
