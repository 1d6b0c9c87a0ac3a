package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/apptest"
	"b24learn/internal/config"
	"b24learn/internal/metrics"
	"b24learn/internal/pgtest"
	"b24learn/internal/store"
)

// A flood of /readyz checks the database at most once a second, however
// many requests come at once, and a failing database is logged once when it
// starts failing and once when it is back, not once a hit.
func TestReadyzChecksTheDatabaseOncePerSecond(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	var logs apptest.Logs
	s := newServer(Deps{Log: slog.New(slog.NewTextHandler(&logs, nil)), Config: &config.Config{}, Pool: pool,
		River: apptest.Inserter(t, pool), Metrics: metrics.New(), Context: t.Context()})
	var checks atomic.Int64
	var down atomic.Bool
	s.ready.check = func(ctx context.Context) error {
		checks.Add(1)
		time.Sleep(50 * time.Millisecond) // the requests pile up behind it
		if down.Load() {
			return errors.New("dial tcp 127.0.0.1:5432: connection refused")
		}
		return store.Ready(ctx, pool)
	}
	var offset atomic.Int64
	s.ready.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	h := s.routes()

	const hits = 64
	flood := func(want int) {
		t.Helper()
		var wg sync.WaitGroup
		codes := make(chan int, hits)
		for range hits {
			wg.Go(func() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
				codes <- rec.Code
			})
		}
		wg.Wait()
		close(codes)
		for c := range codes {
			if c != want {
				t.Fatalf("/readyz = %d, want %d", c, want)
			}
		}
	}
	step := func(wantCode int, wantChecks int64) {
		t.Helper()
		flood(wantCode)
		flood(wantCode) // within the second: the answer given again
		if n := checks.Load(); n != wantChecks {
			t.Fatalf("%d concurrent hits, twice, checked the database %d times in all, want %d", hits, n, wantChecks)
		}
		offset.Add(int64(readyFor + time.Millisecond))
	}
	step(http.StatusOK, 1)
	down.Store(true)
	step(http.StatusServiceUnavailable, 2)
	step(http.StatusServiceUnavailable, 3)
	if n := strings.Count(logs.String(), `msg="not ready"`); n != 1 {
		t.Fatalf("the failing database was logged %d times, want once:\n%s", n, logs.String())
	}
	down.Store(false)
	step(http.StatusOK, 4)
	step(http.StatusOK, 5)
	if n := strings.Count(logs.String(), `msg="ready again"`); n != 1 {
		t.Fatalf("the recovery was logged %d times, want once:\n%s", n, logs.String())
	}

	// As time passes (the clock above, moved no more): a steady flood checks
	// at most once a second, and again after each second.
	before, start := checks.Load(), time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for time.Since(start) < 2500*time.Millisecond {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
				if rec.Code != http.StatusOK {
					t.Errorf("/readyz = %d", rec.Code)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n, most := checks.Load()-before, int64(elapsed/readyFor)+1; n > most || n < 2 {
		t.Fatalf("a flood of %s checked the database %d times, want 2 to %d", elapsed.Round(time.Millisecond), n, most)
	}
}

// A check that panics answers "not ready" to those waiting for it, and the
// next check runs: no later /readyz waits on a check that never ended.
func TestReadyzCheckThatPanicsIsNotReady(t *testing.T) {
	t.Parallel()
	var checks atomic.Int64
	r := newReadiness(func(context.Context) error {
		if checks.Add(1) == 1 {
			panic("boom")
		}
		return nil
	}, slog.New(slog.DiscardHandler))
	var offset atomic.Int64
	r.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	ask := func() error {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		err := r.get(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("/readyz waited on a check that never ended")
		}
		return err
	}
	if err := ask(); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("a check that panicked answered %v, want not ready", err)
	}
	offset.Add(int64(readyFor + time.Millisecond))
	if err := ask(); err != nil {
		t.Fatalf("the check after a panic answered %v, want ready", err)
	}
	if n := checks.Load(); n != 2 {
		t.Fatalf("%d checks ran, want 2", n)
	}
}
