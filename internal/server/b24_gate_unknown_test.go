package server

import (
	"fmt"
	"testing"
	"time"
)

// A few attacker addresses poll the frame routes with made-up member_ids as
// fast as the gate lets them, for 10 minutes. Each address alone is allowed
// PerAddress, and two of those together match all of Unknown's refill: without
// a per-address share of Unknown they take every token as it comes back, and
// the admin of a genuine new portal, installing from elsewhere and retrying
// every 5 s, never gets in. With it, the admin gets in within a minute, and
// the attack's OAuth calls stay within Unknown's bound.
func TestUnknownFloodFromFewAddressesDoesNotLockOutInstallers(t *testing.T) {
	t.Parallel()
	for _, attackers := range []int{2, 5} {
		t.Run(fmt.Sprintf("%d attackers", attackers), func(t *testing.T) {
			limits := DefaultVerifyLimits()
			g := newVerifyGate(limits)
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var addrs []string
			for i := range attackers {
				if i%2 == 0 {
					addrs = append(addrs, fmt.Sprintf("203.0.113.%d", i+1))
				} else {
					addrs = append(addrs, fmt.Sprintf("2001:db8:%x::1", 0xa0+i)) // a /48 each
				}
			}
			const (
				duration      = 10 * time.Minute
				tick          = 100 * time.Millisecond
				installerFrom = 2 * time.Minute // the attack is in its stride
				retry         = 5 * time.Second
			)
			var attacks, tries, admitted int
			firstIn := time.Duration(-1)
			for at := time.Duration(0); at < duration; at += tick {
				now := start.Add(at)
				for _, a := range addrs {
					for {
						r, _ := g.admit(now, a, randHex(16), false)
						if r != "" {
							break
						}
						attacks++
					}
				}
				if at >= installerFrom && (at-installerFrom)%retry == 0 {
					tries++
					if r, _ := g.admit(now, "198.51.100.7", randHex(16), false); r == "" {
						admitted++
						if firstIn < 0 {
							firstIn = at - installerFrom
						}
					}
				}
			}
			t.Logf("%d attackers: %d OAuth calls in %v; installer admitted %d of %d tries, first after %v",
				attackers, attacks, duration, admitted, tries, firstIn)
			if firstIn < 0 || firstIn >= time.Minute {
				t.Errorf("installer admitted %d of %d tries, first after %v; want within its first minute",
					admitted, tries, firstIn)
			}
			if bound := limits.Unknown.Burst + int(duration/limits.Unknown.Every); attacks+admitted > bound {
				t.Errorf("%d OAuth calls in %v, want at most Unknown's %d", attacks+admitted, duration, bound)
			}
		})
	}
}

// The share of Unknown is per IPv4 address or IPv6 /48: 256 addresses in
// different /64s of one /48 take UnknownPerAddress.Burst between them, and
// the rest, refused by the share, leave Unknown to another /48. Known
// portals and events take nothing from the share; at most MaxKeys shares
// are kept.
func TestVerifyGateUnknownShareIsPerSite(t *testing.T) {
	t.Parallel()
	g := newVerifyGate(VerifyLimits{
		PerAddress:        Bucket{Burst: 100, Every: time.Minute},
		PerPortal:         Bucket{Burst: 100, Every: time.Minute},
		Unknown:           Bucket{Burst: 5, Every: time.Minute},
		UnknownPerAddress: Bucket{Burst: 2, Every: 20 * time.Second},
		MaxKeys:           100,
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	admitted := 0
	for i := range 256 {
		r, wait := g.admit(now, fmt.Sprintf("2001:db8:5:%x::1", i*257), randHex(16), false)
		switch {
		case r == "":
			admitted++
		case r != refusedUnknownAddr || wait != 20*time.Second:
			t.Fatalf("address %d of the /48: %q after %v, want unknown_address_limit after 20s", i, r, wait)
		}
	}
	if admitted != 2 {
		t.Fatalf("256 addresses of one /48 admitted %d times, want UnknownPerAddress.Burst=2", admitted)
	}
	if got := g.unknown.TokensAt(now); got != 3 {
		t.Fatalf("Unknown holds %v tokens after the /48's flood, want 3", got)
	}
	member := randHex(16)
	for _, ip := range []string{"2001:db8:5::2", ""} {
		if r, _ := g.admit(now, ip, member, true); r != "" {
			t.Fatalf("known portal from %q refused: %s", ip, r)
		}
	}
	for i, want := range []string{"", "", refusedUnknownAddr} {
		if r, _ := g.admit(now, fmt.Sprintf("2001:db8:6:%x::1", i), randHex(16), false); r != want {
			t.Fatalf("another /48, request %d: %q, want %q", i, r, want)
		}
	}
	if r, _ := g.admit(now.Add(20*time.Second), "2001:db8:5:ffff::9", randHex(16), false); r != "" {
		t.Fatalf("the /48 after its share refilled: %s", r)
	}

	for i := range 1000 {
		g.admit(now, fmt.Sprintf("10.0.%d.%d", i>>8, i&255), randHex(16), false)
	}
	if g.sites.len() > 100 {
		t.Fatalf("%d shares kept, want at most MaxKeys=100", g.sites.len())
	}
}
