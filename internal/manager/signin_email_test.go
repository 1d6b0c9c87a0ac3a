package manager

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"b24learn/internal/pgtest"
)

// The sign-in form's e-mail is whatever an anonymous client posts. One no
// account can have (longer than SMTP carries, a NUL, not UTF-8) is a wrong
// guess like any other: it takes its place in the address's count and
// becomes no key of an account's counters, where a NUL or a key too long to
// index failed the database, answered 500 and gave the address's place back,
// so nothing bounded such requests.
func TestSignInWithAnImpossibleEmailIsAWrongGuess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	if _, err := CreateManager(ctx, pool, DefaultHasher(), "ann@ispring.example", "ann's long password"); err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 30000) // random, so no compression fits it into an index
	_, _ = rand.Read(noise)
	impossible := []string{
		base64.RawURLEncoding.EncodeToString(noise) + "@ispring.example",
		"ann\x00@ispring.example",
		"ann\xff@ispring.example",
		strings.Repeat("a", 240) + "@ispring.example", // 256 bytes
	}
	l := DefaultLimits
	l.LoginPerIP = Limit{Max: len(impossible) + 1, Window: 15 * time.Minute}
	const ip = "203.0.113.44"
	for _, email := range impossible {
		if _, err := signIn(pool, l, now, email, "ann's long password", ip); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("sign-in as %.40q…: %v, want ErrBadCredentials", email, err)
		}
	}
	if _, err := signIn(pool, l, now, "ann@ispring.example", "a guess", ip); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	// Every one of them counted: the address is over its limit now.
	var rl *RateLimitedError
	if _, err := signIn(pool, l, now, "ann@ispring.example", "another guess", ip); !errors.As(err, &rl) {
		t.Fatalf("attempt past the address's limit: %v, want *RateLimitedError", err)
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM login_failures WHERE account <> 'ann@ispring.example')
		+ (SELECT count(*) FROM rate_limits WHERE key LIKE 'login:account:%' AND key <> 'login:account:ann@ispring.example')`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("%d account counters of impossible e-mails", rows)
	}
	// The rule is the one accounts are made under.
	if _, err := CreateManager(ctx, pool, DefaultHasher(), impossible[3], "a long enough password"); err == nil {
		t.Error("an account with a 256-byte e-mail was made")
	}
}
