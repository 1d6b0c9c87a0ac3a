package netguard

import "net/netip"

// The tables below are the IANA special-purpose address registries
// (iana-ipv4-special-registry, iana-ipv6-special-registry; RFC 6890 and its
// updates): every entry that is not globally reachable, plus the few that
// are reachable but can lead back into private space or have no business as
// a REST endpoint. A block that contains a globally reachable anycast entry
// (192.0.0.9, 2001:1::1…) is refused whole: no tenant endpoint lives there.
// Multicast and the deprecated IPv6 forms are added for the same reason.
var blocked4 = prefixes(
	"0.0.0.0/8",          // "this network" (RFC 791), 0.0.0.0/32 included
	"10.0.0.0/8",         // private-use (RFC 1918)
	"100.64.0.0/10",      // shared address space, CGNAT (RFC 6598)
	"127.0.0.0/8",        // loopback (RFC 1122)
	"169.254.0.0/16",     // link-local, cloud metadata 169.254.169.254 (RFC 3927)
	"172.16.0.0/12",      // private-use (RFC 1918)
	"192.0.0.0/24",       // IETF protocol assignments, DS-Lite, NAT64 discovery (RFC 6890, 7335, 8880)
	"192.0.2.0/24",       // documentation TEST-NET-1 (RFC 5737)
	"192.88.99.0/24",     // deprecated 6to4 relay anycast (RFC 7526)
	"192.168.0.0/16",     // private-use (RFC 1918)
	"198.18.0.0/15",      // benchmarking (RFC 2544)
	"198.51.100.0/24",    // documentation TEST-NET-2 (RFC 5737)
	"203.0.113.0/24",     // documentation TEST-NET-3 (RFC 5737)
	"224.0.0.0/4",        // multicast (RFC 5771)
	"240.0.0.0/4",        // reserved (RFC 1112)
	"255.255.255.255/32", // limited broadcast (RFC 919)
)

var blocked6 = prefixes(
	"::/128",         // unspecified (RFC 4291)
	"::1/128",        // loopback (RFC 4291)
	"::/96",          // deprecated IPv4-compatible ::a.b.c.d (RFC 4291)
	"::ffff:0:0/96",  // IPv4-mapped; addresses are unmapped before the check, kept for safety
	"64:ff9b::/96",   // NAT64 well-known prefix (RFC 6052): reachable, but leads to any IPv4 address
	"64:ff9b:1::/48", // local-use IPv4/IPv6 translation (RFC 8215)
	"100::/64",       // discard-only (RFC 6666)
	"100:0:0:1::/64", // dummy IPv6 prefix (RFC 9780)
	"2001::/23",      // IETF protocol assignments: Teredo, benchmarking, ORCHID… (RFC 2928)
	"2001:db8::/32",  // documentation (RFC 3849)
	"2002::/16",      // 6to4 (RFC 3056): embeds any IPv4 address
	"3fff::/20",      // documentation (RFC 9637)
	"5f00::/16",      // segment routing SIDs (RFC 9602)
	"fc00::/7",       // unique local, AWS metadata fd00:ec2::254 (RFC 4193)
	"fe80::/10",      // link-local (RFC 4291)
	"fec0::/10",      // deprecated site-local (RFC 3879)
	"ff00::/8",       // multicast (RFC 4291)
)

// globalUnicast6 is IANA's global unicast allocation (RFC 4291, 2.4): no
// IPv6 address outside it is a public server.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}
