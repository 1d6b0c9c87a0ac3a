package learn

import (
	"fmt"
	"testing"
	"time"
)

func (r *Limiters) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// A portal's admin chooses the Learn address, so anyone who can save the
// settings can make the app write to new accounts: the registry keeps a
// limiter only while it is used, and no more than limitersMax at once,
// without ever dropping one with a write in flight or used of late.
func TestLimitersForgetIdleAccounts(t *testing.T) {
	t.Parallel()
	c := newClock()
	r := NewLimiters(LimiterOptions{Now: c.now})
	// busy has a write in flight all along; steady writes every minute.
	busy := r.Get("busy.ispringlearn.ru", 0)
	inflight, _ := busy.TryAcquire()
	if inflight == nil {
		t.Fatal("no permit on a new limiter")
	}
	steady := r.Get("steady.ispringlearn.ru", 0)
	write := func(l *Limiter) {
		p, _ := l.TryAcquire()
		if p == nil {
			t.Fatal("no permit")
		}
		c.add(10 * time.Millisecond)
		p.Done(Outcome{})
	}
	write(steady)
	steadyLimit := steady.Limit()

	// A new account every second for five and a half hours.
	for i := range 20_000 {
		write(r.Get(fmt.Sprintf("a%d.example.com", i), 0))
		c.add(time.Second)
		if i%60 == 0 {
			write(steady)
		}
	}
	if n := r.len(); n > 2*int(limitersIdle/time.Second)+3 {
		t.Fatalf("%d limiters after 20,000 accounts one a second; want those of the last %v", n, 2*limitersIdle)
	}
	if r.Get("busy.ispringlearn.ru", 0) != busy {
		t.Fatal("the limiter of a write in flight was dropped")
	}
	if l := r.Get("steady.ispringlearn.ru", 0); l != steady || l.Limit() < steadyLimit {
		t.Fatal("the limiter of an account writing every minute was dropped")
	}

	// As many new accounts at one instant as the cap three times over.
	for i := range 3 * limitersMax {
		r.Get(fmt.Sprintf("b%d.example.com", i), 0)
		if n := r.len(); n > limitersMax {
			t.Fatalf("%d limiters, over the cap of %d", n, limitersMax)
		}
	}
	if r.Get("busy.ispringlearn.ru", 0) != busy {
		t.Fatal("the limiter of a write in flight was dropped at the cap")
	}
	inflight.Done(Outcome{})

	// Idle past the horizon, an account starts afresh.
	c.add(2 * limitersIdle)
	r.Get("c.example.com", 0)
	if r.Get("busy.ispringlearn.ru", 0) == busy {
		t.Fatal("a limiter idle past the horizon is still kept")
	}
}

// A run holds its account's limiter from before its first write to after
// its last, with moments between writes when none is in flight. At the cap
// the registry must not drop it then: the account's next run would get a
// second limiter and the account twice the writes. Accounts that come in
// at once are what fills the registry, so they are newer than the run's
// last write and the oldest-first drop takes the run's limiter first.
func TestLimitersKeepAHeldLimiterAtTheCap(t *testing.T) {
	t.Parallel()
	c := newClock()
	r := NewLimiters(LimiterOptions{Now: c.now})
	held, release := r.Hold("held.ispringlearn.ru", 0)
	p, _ := held.TryAcquire()
	if p == nil {
		t.Fatal("no permit on a new limiter")
	}
	c.add(10 * time.Millisecond)
	p.Done(Outcome{})
	c.add(time.Second)
	for i := range 2 * limitersMax {
		r.Get(fmt.Sprintf("b%d.example.com", i), 0)
	}
	if l, rel := r.Hold("held.ispringlearn.ru", 0); l != held {
		t.Fatal("a held limiter was dropped at the cap")
	} else {
		rel()
	}
	release()
	c.add(2 * limitersIdle)
	r.Get("c.example.com", 0)
	if l, rel := r.Hold("held.ispringlearn.ru", 0); l == held {
		t.Fatal("a released limiter idle past the horizon is still kept")
	} else {
		rel()
	}
}
