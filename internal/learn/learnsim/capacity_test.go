package learnsim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The service time includes the handler's own work: a worker is busy for
// ServiceTime per request, so the capacity is Workers / ServiceTime however
// slow the host; the answer says how long it was in the server.
func TestCapacityServiceTimeIncludesTheHandler(t *testing.T) {
	// The handler takes most of the service time, so that an answer with
	// the two added (1.9 s at least) stays far from one with the handler
	// inside (1 s): a loaded machine may add a lot to the round trip.
	const service, handler, bound = time.Second, 900 * time.Millisecond, 1800 * time.Millisecond
	slow := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(handler)
		w.Header().Set("X-Handler", "yes")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("done"))
	})
	srv := httptest.NewServer(NewCapacityLayer(slow, Capacity{Workers: 1, ServiceTime: service}))
	defer srv.Close()
	start := time.Now()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	took := time.Since(start)
	if took < service || took >= bound {
		t.Fatalf("a request took %v, want the %v service time (the handler's %v within it)", took, service, handler)
	}
	if res.StatusCode != http.StatusCreated || res.Header.Get("X-Handler") != "yes" {
		t.Fatalf("answer %d %v, want the handler's", res.StatusCode, res.Header)
	}
	st := res.Header.Get("Server-Timing")
	if !strings.HasPrefix(st, "capacity;dur=") {
		t.Fatalf("Server-Timing %q, want the time in the server", st)
	}
}

func TestCapacityCapAnswers429WithRetryAfter(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	held := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		entered <- struct{}{}
		<-release
	})
	srv := httptest.NewServer(NewCapacityLayer(held, Capacity{ConcurrencyCap: 1, RetryAfter: 2 * time.Second}))
	defer srv.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if res, err := http.Get(srv.URL); err == nil {
			res.Body.Close()
		}
	}()
	<-entered
	res, err := http.Get(srv.URL)
	close(release)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "2" {
		t.Fatalf("answer %d, Retry-After %q past a cap of 1 in the server, want 429 and 2", res.StatusCode, res.Header.Get("Retry-After"))
	}
}
