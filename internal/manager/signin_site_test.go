package manager

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"b24learn/internal/pgtest"
)

// An attacker holding one IPv6 /48 guesses from a fresh /64 each time, each
// well under its own /64's bound. Past the site's bound the guesses are
// refused before any argon2 hash is run and without a counter row for
// their /64, while a manager at another address still signs in.
func TestSignInSiteBoundBeforeHashing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	h := NewHasher(1, time.Hour)
	m, err := CreateManager(ctx, pool, h, "sara@ispring.example", "sara's long password")
	if err != nil {
		t.Fatal(err)
	}
	hashes := countHashes(h)
	l := siteBoundLimits()
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	const guesses = 40
	refused := 0
	for i := range guesses {
		ip := fmt.Sprintf("2001:db8:77:%x::1", i+1) // a new /64 of the same /48 each time
		before := hashes.Load()
		_, err := SignIn(ctx, pool, nil, h, l, now, Credentials{Email: fmt.Sprintf("guess%d@ispring.example", i), Password: "guess", IP: ip})
		switch {
		case errors.Is(err, ErrBadCredentials):
			if i >= l.LoginPerSite.Max {
				t.Fatalf("guess %d from the /48 was checked, site bound %d", i+1, l.LoginPerSite.Max)
			}
		case isLimited(err):
			refused++
			if n := hashes.Load() - before; n != 0 {
				t.Fatalf("refused guess %d ran %d hash(es)", i+1, n)
			}
			var rows int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM rate_limits WHERE key = $1`, "login:ip:2001:db8:77:"+fmt.Sprintf("%x", i+1)+"::/64").Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != 0 {
				t.Fatalf("refused guess %d left a counter row for its /64", i+1)
			}
		default:
			t.Fatalf("guess %d: %v", i+1, err)
		}
	}
	if got, want := hashes.Load(), int64(l.LoginPerSite.Max); got != want {
		t.Fatalf("%d guesses from one /48 ran %d hashes, want %d (the site bound)", guesses, got, want)
	}
	if refused != guesses-l.LoginPerSite.Max {
		t.Fatalf("%d guesses refused, want %d", refused, guesses-l.LoginPerSite.Max)
	}

	if _, err := SignIn(ctx, pool, nil, h, l, now, Credentials{Email: m.Email, Password: "sara's long password", IP: "2001:db8:78::5"}); err != nil {
		t.Fatalf("a manager in another /48: %v", err)
	}
	if _, err := SignIn(ctx, pool, nil, h, l, now, Credentials{Email: m.Email, Password: "sara's long password", IP: "192.0.2.10"}); err != nil {
		t.Fatalf("a manager at an IPv4 address: %v", err)
	}
}

// A flood from other /64s of a manager's /48 fills the site's bound; the
// manager still signs in from an address they signed in from before, while
// an unknown address of the /48 is still refused before any hash.
func TestSignInSiteBoundLetsKnownAddressIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	h := NewHasher(1, time.Hour)
	const password = "sara's long password"
	m, err := CreateManager(ctx, pool, h, "sara@ispring.example", password)
	if err != nil {
		t.Fatal(err)
	}
	hashes := countHashes(h)
	l := siteBoundLimits()
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	const home = "2001:db8:77:1::5"
	if _, err := SignIn(ctx, pool, nil, h, l, now.Add(-time.Hour), Credentials{Email: m.Email, Password: password, IP: home}); err != nil {
		t.Fatalf("first sign-in from home: %v", err)
	}
	for i := range 3 * l.LoginPerSite.Max {
		ip := fmt.Sprintf("2001:db8:77:%x::1", i+2)
		_, err := SignIn(ctx, pool, nil, h, l, now, Credentials{Email: m.Email, Password: "guess", IP: ip})
		if !errors.Is(err, ErrBadCredentials) && !isLimited(err) {
			t.Fatalf("guess %d: %v", i+1, err)
		}
	}
	if err := over(ctx, pool, "login:site:2001:db8:77::/48", l.LoginPerSite, now); !isLimited(err) {
		t.Fatalf("the flood left the site under its bound: %v", err)
	}

	t.Run("KnownAddress", func(t *testing.T) {
		if _, err := SignIn(ctx, pool, nil, h, l, now, Credentials{Email: m.Email, Password: password, IP: home}); err != nil {
			t.Fatalf("the manager at a known address of the flooded /48: %v", err)
		}
	})
	t.Run("UnknownAddress", func(t *testing.T) {
		before := hashes.Load()
		_, err := SignIn(ctx, pool, nil, h, l, now, Credentials{Email: m.Email, Password: password, IP: "2001:db8:77:ffff::9"})
		if !isLimited(err) {
			t.Fatalf("an unknown address of the flooded /48 got %v, want refused", err)
		}
		if n := hashes.Load() - before; n != 0 {
			t.Fatalf("the refused attempt ran %d hash(es)", n)
		}
	})
}

// The default hasher leaves half the cores to the pages and the workers.
func TestDefaultHasherLeavesCores(t *testing.T) {
	t.Parallel()
	if got, want := cap(DefaultHasher().slots), max(1, runtime.GOMAXPROCS(0)/2); got != want {
		t.Fatalf("default hasher has %d slots, want %d", got, want)
	}
}

// siteBoundLimits are the default limits with a site bound low enough for
// a test to pass it: 5 sign-ins per 15 minutes.
func siteBoundLimits() Limits {
	l := DefaultLimits
	l.LoginPerSite = Limit{Max: 5, Window: 15 * time.Minute}
	return l
}
