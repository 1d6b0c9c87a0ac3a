// Package connect builds a portal's clients: Bitrix24 on the portal's stored
// tokens, and iSpring Learn with the portal's stored credentials. Both share
// one rate limiter per portal within the process, obey the address rule of
// internal/netguard, and record every call in the call log.
package connect

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"b24learn/internal/bitrix24"
	"b24learn/internal/calllog"
	"b24learn/internal/learn"
	"b24learn/internal/netguard"
	"b24learn/internal/secret"
	"b24learn/internal/store"
	"b24learn/internal/tracing"
)

// Factory builds per-portal clients. It is safe for concurrent use.
type Factory struct {
	pool    *pgxpool.Pool
	keyring *secret.Keyring
	oauth   *bitrix24.OAuthServers
	calls   *calllog.Recorder // nil: calls are not logged
	log     *slog.Logger
	tracer  trace.TracerProvider // nil: calls are not traced

	allowPrivate bool
	// learnHTTP and b24HTTP obey the address rule (netguard): Learn URLs
	// and portal REST endpoints are chosen by tenants. oauthHTTP talks only
	// to the operator's B24_OAUTH_URL servers.
	learnHTTP *http.Client
	b24HTTP   *http.Client
	oauthHTTP *http.Client

	buckets *buckets
}

// Options configure a Factory.
type Options struct {
	Pool    *pgxpool.Pool
	Keyring *secret.Keyring
	// OAuthServers is the allow-list of OAuth servers; each portal's tokens
	// are refreshed at the server its stored server_endpoint names. nil:
	// OAuth is the only server.
	OAuthServers *bitrix24.OAuthServers
	OAuth        *bitrix24.OAuth
	CallLog      *calllog.Recorder
	Log          *slog.Logger
	// Tracer makes each Bitrix24 and Learn call a client span named by its
	// REST method or path (calllog.MethodOf); nil or no-op: none.
	Tracer trace.TracerProvider
	// Rate and Burst size each portal's Bitrix24 bucket (2/s and 50 by default).
	Rate  float64
	Burst int
	// AllowPrivateHosts lifts the SSRF rule for Learn (demo and tests).
	AllowPrivateHosts bool
	// B24AllowPrivateHosts lifts it for portal REST endpoints and their
	// redirects (demo, tests, on-premise portals).
	B24AllowPrivateHosts bool
	// B24Net, when set, replaces the rule's options for portals: tests use
	// it to let their own loopback portal through (Exempt) and trust its
	// certificate while every other address stays refused. nil: the rule
	// with B24AllowPrivateHosts.
	B24Net *netguard.Options
}

// New builds a Factory.
func New(o Options) *Factory {
	if o.Rate <= 0 {
		o.Rate = 2
	}
	if o.Burst <= 0 {
		o.Burst = 50
	}
	servers := o.OAuthServers
	if servers == nil {
		one := bitrix24.OAuth{}
		if o.OAuth != nil {
			one = *o.OAuth
		}
		if one.URL == "" {
			one.URL = "https://oauth.bitrix.info"
		}
		servers = bitrix24.MustOAuthServers(one)
	}
	return &Factory{
		pool: o.Pool, keyring: o.Keyring, oauth: servers, calls: o.CallLog, log: o.Log, tracer: o.Tracer,
		allowPrivate: o.AllowPrivateHosts,
		learnHTTP:    learn.NewHTTPClient(learn.DialerOptions{AllowPrivate: o.AllowPrivateHosts}),
		b24HTTP:      b24HTTP(o),
		oauthHTTP:    &http.Client{}, // bounded per call by bitrix24.OAuth.Timeout
		buckets:      newBuckets(o.Rate, o.Burst),
	}
}

func b24HTTP(o Options) *http.Client {
	n := netguard.Options{AllowPrivate: o.B24AllowPrivateHosts}
	if o.B24Net != nil {
		n = *o.B24Net
	}
	// No Timeout here: the bitrix24 client bounds each request, its body
	// included (bitrix24.Config.RequestTimeout).
	return netguard.NewHTTPClient(n)
}

// limiter is the portal's bucket: every client of the portal in this process
// draws from it, so parallel work cannot overrun Bitrix24's limit.
func (f *Factory) limiter(portalID int64) bitrix24.RateLimiter {
	return portalLimiter{b: f.buckets, portalID: portalID}
}

// withCallLog records the portal's calls in the call log and, outside it,
// traces them; the span's name is the call log's, which holds no secret.
func (f *Factory) withCallLog(hc *http.Client, portalID int64, service string) *http.Client {
	if f.calls == nil && !tracing.On(f.tracer) {
		return hc
	}
	c := *hc
	if f.calls != nil {
		c.Transport = f.calls.Transport(portalID, service, c.Transport)
	}
	c.Transport = tracing.Transport(f.tracer, service, func(r *http.Request) string { return calllog.MethodOf(service, r) },
		c.Transport, attribute.Int64("portal_id", portalID))
	return &c
}

// Bitrix24 returns a client for the portal on its stored tokens. A renamed
// portal's new address is stored as soon as the client learns it.
func (f *Factory) Bitrix24(ctx context.Context, portalID int64) (*bitrix24.Client, error) {
	return f.bitrix24(ctx, portalID, false, false)
}

// Bitrix24Check returns a client on the stored tokens for asking Bitrix24
// whether the app is still installed: unlike Bitrix24 it tries them even on
// a portal flagged "needs reconnect" (a refresh refused once is refused
// again, and one that now works clears the flag), and it makes one attempt
// at rate limits, so that a check does not wait minutes for an answer.
func (f *Factory) Bitrix24Check(ctx context.Context, portalID int64) (*bitrix24.Client, error) {
	return f.bitrix24(ctx, portalID, true, false)
}

// Bitrix24Recheck is Bitrix24Check for a portal uninstalled on refused
// tokens whose tokens were kept to ask again (uninstall.AskAgain).
func (f *Factory) Bitrix24Recheck(ctx context.Context, portalID int64) (*bitrix24.Client, error) {
	return f.bitrix24(ctx, portalID, true, true)
}

func (f *Factory) bitrix24(ctx context.Context, portalID int64, check, recheck bool) (*bitrix24.Client, error) {
	p, err := store.GetPortal(ctx, f.pool, portalID)
	if err != nil {
		return nil, fmt.Errorf("load portal: %w", err)
	}
	if !p.Installed() && !recheck {
		return nil, fmt.Errorf("portal %d is not installed", portalID)
	}
	maxRetries := 0 // the client's default
	if check {
		maxRetries = 1
	}
	servers := f.oauth.WithHTTP(f.withCallLog(f.oauthHTTP, portalID, "bitrix24"))
	return bitrix24.New(bitrix24.Config{
		Endpoint:   p.ClientEndpoint,
		Tokens:     &Tokens{Pool: f.pool, Keyring: f.keyring, Servers: servers, PortalID: portalID, IgnoreReconnect: check},
		Limiter:    f.limiter(portalID),
		HTTP:       f.withCallLog(f.b24HTTP, portalID, "bitrix24"),
		Logger:     f.log,
		MaxRetries: maxRetries,
		OnEndpointChange: func(ctx context.Context, endpoint string) {
			f.storeEndpoint(ctx, portalID, endpoint)
		},
	}), nil
}

// storeEndpoint records a renamed portal's new address, from the redirect
// its REST calls got. The domain goes into the pages, URLs and the CSP
// header, so an endpoint whose host is no host name
// (bitrix24.EndpointHost) is not stored: the portal keeps its old address.
func (f *Factory) storeEndpoint(ctx context.Context, portalID int64, endpoint string) {
	host, ok := bitrix24.EndpointHost(endpoint)
	if !ok {
		f.log.WarnContext(ctx, "portal moved to an endpoint without a host name; the old address is kept",
			"portal_id", portalID)
		return
	}
	if err := store.SetPortalAddress(ctx, f.pool, portalID, host, endpoint, ""); err != nil {
		f.log.WarnContext(ctx, "store new portal endpoint", "portal_id", portalID, "error", err)
	}
}

// Learn returns a client for a Learn account on behalf of the portal.
// apiURL is where the account's API answered before ("" unknown: the
// client's FindAPI looks for it).
func (f *Factory) Learn(portalID int64, creds learn.Credentials, apiURL string) (*learn.Client, error) {
	return learn.New(creds, learn.Options{
		HTTPClient: f.LearnHTTPFor(portalID),
		Logger:     f.log,
		AllowHTTP:  f.allowPrivate,
		BaseURL:    apiURL,
	})
}

// LearnHTTP is the SSRF-safe HTTP client for Learn calls made for no portal.
func (f *Factory) LearnHTTP() *http.Client { return f.learnHTTP }

// LearnHTTPFor is the SSRF-safe HTTP client for Learn calls made for the
// portal (the settings page's connection check): its calls are logged.
func (f *Factory) LearnHTTPFor(portalID int64) *http.Client {
	return f.withCallLog(f.learnHTTP, portalID, "learn")
}
