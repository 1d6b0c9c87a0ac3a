package learn

import "time"

// Views of the limiter the tests use; the client waits through Acquire.

// PausedUntil is when permits are given again after the server asked to
// wait; zero or past when they are given now.
func (l *Limiter) PausedUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.paused
}

// TryAcquire gives a permit if one is free now; otherwise it returns how long
// the server asked to wait (0 when the limit is full: wait for a Done).
func (l *Limiter) TryAcquire() (*Permit, time.Duration) {
	return l.tryAcquire(false)
}
