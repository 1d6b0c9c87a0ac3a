package learn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// DialerOptions configure NewHTTPClient.
type DialerOptions struct {
	// AllowPrivate lifts the SSRF rule (LEARN_ALLOW_PRIVATE_HOSTS): demo and tests.
	AllowPrivate bool
	// LookupIP resolves a host name; nil uses net.DefaultResolver. Tests inject one.
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
	// TLSConfig for the transport (tests trust their httptest certificate).
	TLSConfig *tls.Config
	// MaxRedirects followed, default 3.
	MaxRedirects int
	// exempt permits single ip:port pairs despite the rule (tests only).
	exempt func(netip.AddrPort) bool
}

// blockedPrefixes are refused as destinations unless AllowPrivate is set.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network", unspecified
	netip.MustParsePrefix("10.0.0.0/8"),     // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),  // CGNAT
	netip.MustParsePrefix("127.0.0.0/8"),    // loopback
	netip.MustParsePrefix("169.254.0.0/16"), // link-local, cloud metadata 169.254.169.254
	netip.MustParsePrefix("172.16.0.0/12"),  // RFC 1918
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"), // RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("224.0.0.0/4"),    // multicast
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, broadcast
	netip.MustParsePrefix("::/128"),         // unspecified
	netip.MustParsePrefix("::1/128"),        // loopback
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64 can reach IPv4 private space
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64 (RFC 8215), likewise
	netip.MustParsePrefix("::/96"),          // deprecated IPv4-compatible ::a.b.c.d
	netip.MustParsePrefix("fc00::/7"),       // ULA, includes AWS metadata fd00:ec2::254
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("ff00::/8"),       // multicast
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("::ffff:0:0/96"),  // v4-mapped: checked after Unmap, kept for safety
	netip.MustParsePrefix("2002::/16"),      // 6to4 can embed private IPv4
	netip.MustParsePrefix("100::/64"),       // discard
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
	netip.MustParsePrefix("2001:10::/28"),   // ORCHID
	netip.MustParsePrefix("255.255.255.255/32"),
}

// AddrAllowed reports whether the SSRF rule lets the client connect to a.
func AddrAllowed(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// ForbiddenAddrError says which address the SSRF rule refused; it matches ErrForbiddenAddr.
type ForbiddenAddrError struct {
	Host string
	Addr netip.Addr
}

func (e *ForbiddenAddrError) Error() string {
	return fmt.Sprintf("learn: %s resolves to %s, a private, loopback, link-local or metadata address", e.Host, e.Addr)
}

func (e *ForbiddenAddrError) Is(target error) bool { return target == ErrForbiddenAddr }

// NewHTTPClient returns the HTTP client for Learn calls. Unless AllowPrivate is set,
// its dialer resolves the host itself and connects only to public addresses, and a
// net.Dialer Control hook checks the socket address once more right before
// connect, so DNS rebinding and redirects to internal hosts fail. Proxies from the
// environment are ignored (a proxy would hide the destination from the check).
// Redirects are limited and drop the X-Auth-* headers when they leave the host.
func NewHTTPClient(o DialerOptions) *http.Client {
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = 3
	}
	if o.LookupIP == nil {
		o.LookupIP = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	sd := &safeDialer{o: o, d: &net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}}
	if !o.AllowPrivate {
		sd.d.Control = sd.control
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           sd.DialContext,
		TLSClientConfig:       o.TLSConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 90 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= o.MaxRedirects {
				return fmt.Errorf("stopped after %d redirects", len(via))
			}
			if req.URL.Scheme != "https" && !o.AllowPrivate {
				return fmt.Errorf("redirect to %s: %w", req.URL.Scheme, ErrInsecureURL)
			}
			if !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
				for _, h := range []string{"X-Auth-Account-Url", "X-Auth-Email", "X-Auth-Password", "Authorization"} {
					req.Header.Del(h)
				}
			}
			return nil
		},
	}
}

type safeDialer struct {
	o DialerOptions
	d *net.Dialer
}

func (s *safeDialer) allowed(ap netip.AddrPort) bool {
	return s.o.AllowPrivate || AddrAllowed(ap.Addr()) || (s.o.exempt != nil && s.o.exempt(ap))
}

// DialContext resolves host itself, refuses forbidden addresses before dialing, and
// dials the checked IP (not the name again) so the check and the connect agree.
func (s *safeDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		if addrs, err = s.o.LookupIP(ctx, host); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
	}
	portNum, err := net.LookupPort(network, port)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	var lastErr error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap(), uint16(portNum))
		if !s.allowed(ap) {
			lastErr = &ForbiddenAddrError{Host: host, Addr: a.Unmap()}
			continue
		}
		conn, err := s.d.DialContext(ctx, network, ap.String())
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("resolve %s: no addresses", host)
	}
	return nil, lastErr
}

// control runs right before connect(2) with the final socket address.
func (s *safeDialer) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("control %s: %w", address, err)
	}
	if !s.allowed(ap) {
		return &ForbiddenAddrError{Host: address, Addr: ap.Addr()}
	}
	return nil
}

// isForbidden reports whether err comes from the SSRF rule.
func isForbidden(err error) bool { return errors.Is(err, ErrForbiddenAddr) }
