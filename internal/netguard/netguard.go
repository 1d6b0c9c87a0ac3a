// Package netguard is the app's one rule for outgoing calls to addresses that
// tenants choose (a portal's REST endpoint, a Learn account URL): https only,
// and only to globally reachable addresses, checked when the socket connects
// so that DNS rebinding and redirects cannot reach the app's own network.
package netguard

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

// Sentinels for errors.Is.
var (
	ErrForbidden = errors.New("address not allowed")       // not globally reachable
	ErrInsecure  = errors.New("plain http is not allowed") // only https leaves the guard
)

// Options configure NewHTTPClient.
type Options struct {
	// AllowPrivate lifts the rule (LEARN_ALLOW_PRIVATE_HOSTS,
	// B24_ALLOW_PRIVATE_HOSTS): the demo, tests and on-premise setups.
	AllowPrivate bool
	// LookupIP resolves a host name; nil uses net.DefaultResolver.
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
	// TLSConfig for the transport (tests trust their httptest certificate).
	TLSConfig *tls.Config
	// MaxRedirects followed, default 3.
	MaxRedirects int
	// Timeout of a whole request, redirects included; 0 means none.
	Timeout time.Duration
	// StripOnHostChange lists request headers dropped when a redirect leaves
	// the first host (credentials). Authorization is always dropped.
	StripOnHostChange []string
	// Exempt lets single ip:port pairs through despite the rule, so a test can
	// reach its own loopback server while every other address stays refused.
	// Production code leaves it nil.
	Exempt func(netip.AddrPort) bool
}

// ForbiddenAddrError says that the rule refused a destination; it matches
// ErrForbidden. Its text names the host (what the caller asked for) but not
// the address it resolved to, so the message can be shown without telling
// anyone what an internal name resolves to.
type ForbiddenAddrError struct {
	Host string
	Addr netip.Addr // for logs and tests
}

func (e *ForbiddenAddrError) Error() string {
	return fmt.Sprintf("%s: address not allowed (not a public internet address)", e.Host)
}

func (e *ForbiddenAddrError) Is(target error) bool { return target == ErrForbidden }

// AddrAllowed reports whether the rule lets a connection to a through.
func AddrAllowed(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.Zone() != "" || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsUnspecified() || a.IsMulticast() {
		return false
	}
	table := blocked4
	if a.Is6() {
		// Only 2000::/3 is allocated as global unicast; the rest is
		// reserved or unallocated, and some of it (::ffff:0:a.b.c.d) a
		// translator on the operator's network maps to private IPv4.
		if !globalUnicast6.Contains(a) {
			return false
		}
		table = blocked6
	}
	for _, p := range table {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// maxResponseHeaderBytes bounds an answer's headers; Bitrix24's and
// Learn's are a few kilobytes.
const maxResponseHeaderBytes = 256 << 10

// Guard applies the rule; build it with New.
type Guard struct {
	o Options
}

// New returns a Guard; Options.MaxRedirects defaults to 3.
func New(o Options) *Guard {
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = 3
	}
	if o.LookupIP == nil {
		o.LookupIP = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	return &Guard{o: o}
}

// NewHTTPClient returns an HTTP client whose every connection passes the rule.
// Unless AllowPrivate is set, its dialer resolves the host itself and connects
// only to allowed addresses (dialing the checked IP, not the name again), a
// net.Dialer Control hook checks the socket address once more right before
// connect(2), and requests other than https are refused. Proxies from the
// environment are ignored (a proxy would hide the destination from the check).
func NewHTTPClient(o Options) *http.Client { return New(o).HTTPClient() }

// HTTPClient builds the client described at NewHTTPClient.
func (g *Guard) HTTPClient() *http.Client {
	d := &net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}
	if !g.o.AllowPrivate {
		d.Control = g.control
	}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return g.dial(ctx, d, network, addr)
		},
		TLSClientConfig:       g.o.TLSConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 90 * time.Second,
		// Go's default is 10 MB, parsed at about three times that: a
		// tenant's server could make every call cost 30 MB.
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	return &http.Client{Transport: &schemeGuard{g: g, base: tr}, CheckRedirect: g.CheckRedirect, Timeout: g.o.Timeout}
}

// CheckRedirect is the redirect policy of the guarded client: bounded, never
// to plain http, and without credentials once the redirect leaves the first
// host. Where a redirect goes is checked by the dialer like any request.
func (g *Guard) CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= g.o.MaxRedirects {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	if err := g.CheckScheme(req.URL.Scheme); err != nil {
		return fmt.Errorf("redirect: %w", err)
	}
	if !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
		req.Header.Del("Authorization")
		for _, h := range g.o.StripOnHostChange {
			req.Header.Del(h)
		}
	}
	return nil
}

// CheckScheme refuses anything but https unless AllowPrivate is set.
func (g *Guard) CheckScheme(scheme string) error {
	if g.o.AllowPrivate || strings.EqualFold(scheme, "https") {
		return nil
	}
	return fmt.Errorf("%s: %w", scheme, ErrInsecure)
}

// schemeGuard refuses plain http before anything is sent, also for clients
// that follow redirects by hand.
type schemeGuard struct {
	g    *Guard
	base http.RoundTripper
}

func (s *schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := s.g.CheckScheme(req.URL.Scheme); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return s.base.RoundTrip(req)
}

func (g *Guard) allowed(ap netip.AddrPort) bool {
	return g.o.AllowPrivate || AddrAllowed(ap.Addr()) || (g.o.Exempt != nil && g.o.Exempt(ap))
}

// dial resolves host itself, refuses forbidden addresses before dialing, and
// dials the checked IP so that the check and the connect agree.
func (g *Guard) dial(ctx context.Context, d *net.Dialer, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else if addrs, err = g.o.LookupIP(ctx, host); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	portNum, err := net.LookupPort(network, port)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	var lastErr error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap(), uint16(portNum))
		if !g.allowed(ap) {
			lastErr = &ForbiddenAddrError{Host: host, Addr: ap.Addr()}
			continue
		}
		conn, err := d.DialContext(ctx, network, ap.String())
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
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("control %s: %w", address, err)
	}
	if !g.allowed(ap) {
		return &ForbiddenAddrError{Host: ap.Addr().String(), Addr: ap.Addr()}
	}
	return nil
}
