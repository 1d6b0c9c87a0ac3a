package manager

import (
	"context"
	"errors"
	"testing"
	"time"

	"b24learn/internal/pgtest"
)

// A new password (the demo's, made on every start) replaces the old one and
// ends the sessions signed in with it; an unknown account is not created.
func TestSetPasswordReplacesItAndEndsSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	now := time.Now()
	if _, err := CreateManager(ctx, pool, DefaultHasher(), "demo@ispring.example", "the first password"); err != nil {
		t.Fatal(err)
	}
	s, err := signIn(pool, DefaultLimits, now, "demo@ispring.example", "the first password", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(ctx, pool, DefaultHasher(), "Demo@ispring.example", "the second password"); err != nil {
		t.Fatal(err)
	}
	if _, err := LookupSession(ctx, pool, s.Token, now.Add(time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session of the old password: %v, want ErrNotFound", err)
	}
	if _, err := signIn(pool, DefaultLimits, now, "demo@ispring.example", "the first password", "10.0.0.1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old password: %v, want ErrBadCredentials", err)
	}
	if _, err := signIn(pool, DefaultLimits, now, "demo@ispring.example", "the second password", "10.0.0.1"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if err := SetPassword(ctx, pool, DefaultHasher(), "nobody@ispring.example", "a long password"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown account: %v, want ErrNotFound", err)
	}
	if err := SetPassword(ctx, pool, DefaultHasher(), "demo@ispring.example", "short"); err == nil {
		t.Fatal("a short password was accepted")
	}
}
