// Package server is the app's HTTP surface: routes, handlers, middleware and
// sessions. Every route is listed in routes.go.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"

	"b24learn/internal/bitrix24"
	"b24learn/internal/calllog"
	"b24learn/internal/config"
	"b24learn/internal/connect"
	"b24learn/internal/manager"
	"b24learn/internal/metrics"
	"b24learn/internal/netguard"
	"b24learn/internal/store"
	"b24learn/internal/tracing"
)

// Deps are what the handlers need. All fields are required unless noted.
type Deps struct {
	Log     *slog.Logger
	Config  *config.Config
	Pool    *pgxpool.Pool
	River   *river.Client[pgx.Tx] // insert-only is enough for handlers
	Metrics *metrics.Metrics
	// Clients builds the per-portal Bitrix24 and Learn clients: the
	// workers' factory, so the page and the syncs share one token source,
	// one rate limiter per portal and the call log.
	Clients *connect.Factory
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Context is the process's lifetime: River UI's background work in the
	// console stops when it ends. nil means context.Background().
	Context context.Context
	// VerifyLimits bound the OAuth calls anonymous /b24/* requests can
	// cause; nil means DefaultVerifyLimits.
	VerifyLimits *VerifyLimits
	// Tracer traces requests and the handlers' own Bitrix24 calls; nil
	// traces nothing.
	Tracer trace.TracerProvider
}

// Server holds the dependencies of the handlers.
type Server struct {
	log     *slog.Logger
	cfg     *config.Config
	pool    *pgxpool.Pool
	river   *river.Client[pgx.Tx]
	metrics *metrics.Metrics
	clients *connect.Factory
	now     func() time.Time
	tracer  trace.TracerProvider

	sessions *sessionCodec // iframe session tokens
	// b24HTTP calls portals' REST endpoints under the address rule
	// (netguard, B24_ALLOW_PRIVATE_HOSTS); oauthHTTP calls only the
	// operator's B24_OAUTH_URL servers, through oauthServers.
	b24HTTP      *http.Client
	oauthHTTP    *http.Client
	oauthServers *bitrix24.OAuthServers
	gate         *verifyGate // bounds OAuth calls caused by anonymous requests
	app          *appGate    // bounds each portal user's and each portal's /app requests
	// admins are the users proven admins of their portal in this process,
	// who draw on shares of the buckets of their own (admin_share.go).
	admins *provenAdmins
	// verifyTimeout bounds the OAuth server's answer to a frame POST's or
	// event's verification (defaultVerifyTimeout).
	verifyTimeout time.Duration

	// The settings page's outside calls, behind interfaces so tests can
	// put simulators in their place.
	check  learnChecker
	org    orgSource
	fields fieldSource
	// profiles asks Bitrix24 who holds a user's access token, proofs
	// remembers its recent "admin" answers and proofCalls bounds the calls
	// per user and portal (admin_proof.go).
	profiles   profileSource
	proofs     *adminProofs
	proofCalls *appGate
	// frameCalls bounds the profile calls of frame opens per user and
	// portal (frame_calls.go).
	frameCalls *appGate

	// The managers' console: its cookie's codecs (none without
	// SECRET_KEYS), its sign-in limits and the bound on password hashing
	// (argon2id) at once in this process.
	managerCodecs []securecookie.Codec
	managerLimits manager.Limits
	hasher        *manager.Hasher
	riverUI       http.Handler // River UI, under riverUIPrefix
	crossOrigin   *http.CrossOriginProtection

	ready *readiness // /readyz's cached, single-flight database check
}

// defaultVerifyTimeout is the verification's bound: the user waits in the
// frame for it.
const defaultVerifyTimeout = 15 * time.Second

// New builds the router.
func New(d Deps) http.Handler {
	return newServer(d).routes()
}

// newServer builds the handlers' dependencies; tests replace the outside
// calls (the Learn check, the department tree) before taking routes().
func newServer(d Deps) *Server {
	s := &Server{log: d.Log, cfg: d.Config, pool: d.Pool, river: d.River, metrics: d.Metrics, clients: d.Clients, now: d.Now, tracer: d.Tracer}
	if s.now == nil {
		s.now = time.Now
	}
	s.sessions = newSessionCodec(d.Config.Keyring)
	limits := DefaultVerifyLimits()
	if d.VerifyLimits != nil {
		limits = *d.VerifyLimits
	}
	s.gate, s.verifyTimeout = newVerifyGate(limits), defaultVerifyTimeout
	// The gate's memory of proven admins is the one the other buckets ask.
	s.admins = s.gate.proven
	appKeys := limits.MaxKeys
	if appKeys <= 0 {
		appKeys = DefaultVerifyLimits().MaxKeys // as the verification gate does
	}
	s.app = newAppGate(appRequestLimits(), appKeys)
	s.b24HTTP = netguard.NewHTTPClient(netguard.Options{AllowPrivate: d.Config.B24AllowPrivateHosts, Timeout: 30 * time.Second})
	s.oauthHTTP = &http.Client{Timeout: 30 * time.Second}
	for _, hc := range []*http.Client{s.b24HTTP, s.oauthHTTP} {
		hc.Transport = tracing.Transport(d.Tracer, "bitrix24", func(r *http.Request) string { return calllog.MethodOf("bitrix24", r) }, hc.Transport)
	}
	s.oauthServers = d.Config.OAuthServers().WithHTTP(s.oauthHTTP)
	s.check = newLearnChecker(s.clients, d.Config.LearnAllowPrivateHosts)
	s.org = newTreeCache(bitrix24Org{client: s.portalB24Client}, s.now)
	s.fields = liveFields{s: s}
	s.profiles, s.proofs = liveProfiles{s: s}, newAdminProofs()
	s.proofCalls = newAppGate(adminProofCallLimits(), appKeys)
	s.frameCalls = newAppGate(frameCallLimits(), appKeys)
	s.managerCodecs, s.managerLimits = newManagerCodecs(d.Config), manager.DefaultLimits
	s.hasher = manager.DefaultHasher()
	s.ready = newReadiness(func(ctx context.Context) error { return store.Ready(ctx, s.pool) }, s.log)
	ctx := d.Context
	if ctx == nil {
		ctx = context.Background()
	}
	s.riverUI, s.crossOrigin = s.newRiverUI(ctx), http.NewCrossOriginProtection()
	return s
}

// maxBodyBytes bounds every request body; Bitrix24's iframe and event POSTs
// are a few kilobytes, the settings form with thousands of department ids a
// few hundred.
const maxBodyBytes = 1 << 20

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// publicMetrics serves /metrics on the public address only to a request
// with "Authorization: Bearer METRICS_TOKEN"; anything else, or no token
// configured, gets the same 404 as an unknown path, so a scan learns nothing.
func (s *Server) publicMetrics(next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := ""
		if s.cfg != nil {
			token = s.cfg.MetricsToken
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// Hashing first makes the comparison constant-time in the length too.
		want, have := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(got))
		if token == "" || !ok || subtle.ConstantTimeCompare(want[:], have[:]) != 1 {
			s.error(w, r, errNotFound)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	}
}
