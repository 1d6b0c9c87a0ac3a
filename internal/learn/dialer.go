package learn

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/netip"

	"b24learn/internal/netguard"
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

// AddrAllowed reports whether the SSRF rule (internal/netguard) lets the
// client connect to a.
func AddrAllowed(a netip.Addr) bool { return netguard.AddrAllowed(a) }

// ForbiddenAddrError says which address the SSRF rule refused; it matches ErrForbiddenAddr.
type ForbiddenAddrError = netguard.ForbiddenAddrError

// NewHTTPClient returns the HTTP client for Learn calls: the address rule of
// internal/netguard, checked at connect time, and redirects that drop the
// X-Auth-* headers when they leave the host.
func NewHTTPClient(o DialerOptions) *http.Client {
	return netguard.NewHTTPClient(netguard.Options{
		AllowPrivate: o.AllowPrivate, LookupIP: o.LookupIP, TLSConfig: o.TLSConfig,
		MaxRedirects: o.MaxRedirects, Exempt: o.exempt,
		StripOnHostChange: []string{"X-Auth-Account-Url", "X-Auth-Email", "X-Auth-Password"},
	})
}

// isForbidden reports whether err comes from the SSRF rule.
func isForbidden(err error) bool { return errors.Is(err, ErrForbiddenAddr) }
