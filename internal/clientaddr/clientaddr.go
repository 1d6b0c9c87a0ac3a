// Package clientaddr is the one rule for keying per-address limits by a
// client's address: IPv4 as is, IPv6 by its /64. One subscriber is usually
// given a whole /64, so keying by the full IPv6 address would hand a single
// attacker 2^64 fresh buckets. Audit trails and "known address" checks keep
// the exact address; only limit keys use Key (or SiteKey).
package clientaddr

import "net/netip"

// Key is the limit key of the client address ip. An address that does not
// parse is its own key, so a limit still applies to it.
func Key(ip string) string { return key(ip, 64) }

// SiteKey is a coarser key, for a limit that one holder of many /64s must
// not multiply: IPv4 as is, IPv6 by its /48, which a site or even a home
// subscriber is commonly given.
func SiteKey(ip string) string { return key(ip, 48) }

func key(ip string, bits6 int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(bits6)
		return p.String()
	}
	return a.String()
}
