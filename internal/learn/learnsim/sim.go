// Package learnsim is an in-process iSpring Learn server for tests, benchmarks and
// the demo, faithful to docs/learn-api.md (the sample traffic is its spec):
//
//   - several accounts in one process, chosen by the X-Auth-Account-Url header
//     (header auth with X-Auth-Email / X-Auth-Password), or by a bearer token from
//     POST /api/v3/token (client_credentials) sent as "Authorization: Bearer t" or bare
//     (Unsettled.TokenForm), living Options.TokenLifetime; header auth may be retired
//     (Unsettled.HeaderAuthRetired);
//   - JSON (Accept: application/json) or XML (the default) answers; JSON or XML bodies;
//   - departments and users with pageToken paging (GET /departments, GET /users[/v2]),
//     fields written as a lowercase object and read back as an UPPERCASE name/value list;
//   - 409 on a duplicate login or email on create, 400 with a message on invalid input,
//     required profile fields, one undeletable root, no deletion of non-empty
//     departments nor of ones a department administrator or author manages
//     (manageableDepartmentIds, SetManaged), subordination and coSubordination, statuses 1/3/5 (v1 reads show 5
//     as 3), and the plan limit (users created past it are inactive);
//   - latency and fault injection (500s, 429s with Retry-After, slow answers, writes
//     applied but answered 500), deterministic for a seed;
//   - counters of calls per route, Snapshot of an account's state, and a read-only
//     HTML view at GET /_sim/ (accounts) and GET /_sim/account?url=… (tree and users).
//
// Where the API is served follows Options.Mount: at the root of an API host
// (api-learn.<domain>, or the whole listener), under /api/v2 and
// /index.php/api/v2 of an account's own host (see Mount).
package learnsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults inject failures into authenticated API calls. Rates are shares in [0, 1].
type Faults struct {
	ErrorRate           float64       // answered 500 before anything is applied
	RateLimitRate       float64       // refused for load before anything is applied, as Unsettled.Throttle says
	RetryAfter          time.Duration // sent in Retry-After, whole seconds (0 is sent as "0")
	AfterWriteErrorRate float64       // writes applied, then answered 500 (a lost answer)
	SlowRate            float64       // answered after SlowLatency on top of Latency
	SlowLatency         time.Duration
	// Refuse answers 400 to every call of these routes ("POST
	// /user/{id}/subordination") before anything is applied: Learn
	// refusing a kind of write for good, whatever it carries.
	Refuse []string
}

// Options configure a Sim.
type Options struct {
	Latency time.Duration // added to every API answer
	Faults  Faults
	Hostile Hostile
	Seed    uint64 // faults and IDs are deterministic for a seed
	Logger  *slog.Logger
	Now     func() time.Time

	// Unsettled picks among plausible answers where Learn's behaviour is not known.
	Unsettled Unsettled

	// Mount says where the API is served; WebPage how an account host answers
	// other paths (see Mount).
	Mount   Mount
	WebPage WebPage

	// TokenLifetime is how long an access token from POST /api/v3/token
	// is taken (and the expires_in it is given with, in whole seconds
	// rounded up); 0 is DefaultTokenLifetime. Tests shorten it.
	TokenLifetime time.Duration
}

// DefaultTokenLifetime is an access token's life: Learn gives expires_in
// 1800 (docs/learn-api.md, "Authentication").
const DefaultTokenLifetime = 1800 * time.Second

// OwnerRoleNone is an owner whose profile shows no role (AccountOptions).
const OwnerRoleNone = "-"

// AccountOptions describe one Learn account.
type AccountOptions struct {
	URL   string // e.g. https://acme.ispringlearn.ru; compared without scheme case or trailing slash
	Email string // admin (owner) email or login
	// Login is the owner's login when it is not Email. X-Auth-Email takes
	// either (docs/learn-api.md, "Whose credentials").
	Login    string
	Password string
	// OwnerRole is the role the owner's profile shows, which no source
	// documents: "" shows "administrator", OwnerRoleNone none at all.
	OwnerRole string
	// ClientID and ClientSecret enable token auth (POST /api/v3/token).
	ClientID, ClientSecret string
	RootName               string // default "Company"
	// RequiredFields replaces the default required set (login, first_name, last_name);
	// login is always required. Nil keeps the default.
	RequiredFields []string
	ExtraFields    []string // custom profile fields, e.g. "user_defined_field1"
	// FieldTypes gives fields a Learn type other than their default ("string"
	// for custom ones), e.g. {"user_defined_field2": "birthdate"}.
	FieldTypes     map[string]string
	MaxActiveUsers int  // plan limit; 0 = unlimited
	NoAPIAccess    bool // every call gets 403 (plan without the REST API)
	// SilentPlanLimit: an activation past the plan answers 200 and leaves the
	// users inactive (those that fit are activated). Without it such an
	// activation is refused with 400. Which one Learn does is not settled.
	SilentPlanLimit bool
}

// Sim is the simulator. Safe for concurrent use.
type Sim struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux

	mu       sync.RWMutex
	accounts map[string]*account
	order    []string
	tokens   map[string]tokenInfo

	faultMu sync.Mutex
	faults  Faults
	hostile Hostile
	rng     *mrand.Rand
}

type tokenInfo struct {
	acct    *account
	expires time.Time
}

// New returns an empty simulator; add accounts with AddAccount.
func New(opts Options) *Sim {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sim{
		opts: opts, log: opts.Logger, accounts: map[string]*account{}, tokens: map[string]tokenInfo{},
		faults: opts.Faults, hostile: opts.Hostile, rng: mrand.New(mrand.NewPCG(opts.Seed, opts.Seed+1)),
	}
	s.routes()
	return s
}

// accountKey normalises an account URL for lookup.
func accountKey(u string) string {
	u = strings.ToLower(strings.TrimSpace(u))
	u = strings.TrimSuffix(u, "/")
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	return u
}

// AddAccount creates an account with its root department and owner user, and
// returns the root department's ID.
func (s *Sim) AddAccount(o AccountOptions) (string, error) {
	key := accountKey(o.URL)
	if key == "" || o.Email == "" || o.Password == "" {
		return "", fmt.Errorf("add account: url, email and password are required")
	}
	if o.RootName == "" {
		o.RootName = "Company"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accounts[key] != nil {
		return "", fmt.Errorf("add account %s: already exists", o.URL)
	}
	a := newAccount(key, o, s.opts.Seed+uint64(len(s.order))*7919+1, s.opts.Now)
	s.accounts[key] = a
	s.order = append(s.order, key)
	return a.rootID, nil
}

// AddAlias makes the account at accountURL answer at alias too, as one
// Learn account answers on its iSpring address and on a custom domain
// (docs/learn-api.md, "Where the API answers"): both reach the same
// departments, users and credentials.
func (s *Sim) AddAlias(accountURL, alias string) error {
	key := accountKey(alias)
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountKey(accountURL)]
	switch {
	case a == nil:
		return fmt.Errorf("add alias: no account %s", accountURL)
	case key == "":
		return fmt.Errorf("add alias of %s: no address", accountURL)
	case s.accounts[key] != nil:
		return fmt.Errorf("add alias %s: already an account", alias)
	}
	s.accounts[key] = a
	return nil
}

func (s *Sim) account(u string) *account {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.accounts[accountKey(u)]
}

// edit runs change on the account at accountURL under its write lock: the
// one way the control methods (SeedUser, SetRole and the like) change an
// account directly, with no call counted. op, the method's name in words,
// prefixes every error, a missing account's included.
func (s *Sim) edit(op, accountURL string, change func(a *account) error) error {
	a := s.account(accountURL)
	if a == nil {
		return fmt.Errorf("%s: no account %s", op, accountURL)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := change(a); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// SetMaxActiveUsers changes an account's plan limit (0 = unlimited), as when
// the customer buys more licences; users already inactive stay so.
func (s *Sim) SetMaxActiveUsers(accountURL string, n int) error {
	return s.edit("set plan limit", accountURL, func(a *account) error {
		a.opts.MaxActiveUsers = n
		return nil
	})
}

// SetAPIKey replaces the account's API key, as an admin who deletes the key
// in Learn and makes a new one; an empty clientID removes it. The tokens the
// old key was given are refused from then on: whether Learn honours them
// until they expire is not known, and either way the client meets a 401 and
// a refused fetch, only later.
func (s *Sim) SetAPIKey(accountURL, clientID, clientSecret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountKey(accountURL)]
	if a == nil {
		return fmt.Errorf("set api key: no account %s", accountURL)
	}
	a.mu.Lock()
	a.opts.ClientID, a.opts.ClientSecret = clientID, clientSecret
	a.mu.Unlock()
	for t, ti := range s.tokens {
		if ti.acct == a {
			delete(s.tokens, t)
		}
	}
	return nil
}

// SetFaults replaces the fault injection settings (tests switch faults on after setup).
func (s *Sim) SetFaults(f Faults) {
	s.faultMu.Lock()
	s.faults = f
	s.faultMu.Unlock()
}

// Handler serves the API (where Options.Mount says) and the HTML view.
func (s *Sim) Handler() http.Handler {
	return http.HandlerFunc(s.route)
}

// ctxKey carries the authenticated account to handlers.
type ctxKey struct{}

func acctFrom(r *http.Request) *account { return r.Context().Value(ctxKey{}).(*account) }

// authenticate finds the account of a request, or the refusal (with the account
// when it is known, so the refusal is counted).
func (s *Sim) authenticate(r *http.Request) (*account, *apiErr) {
	u := unsettledFrom(r)
	if h := strings.TrimSpace(r.Header.Get("Authorization")); h != "" && r.Header.Get("X-Auth-Account-Url") == "" {
		tok := u.TokenForm.token(h)
		s.mu.RLock()
		ti, ok := s.tokens[tok]
		s.mu.RUnlock()
		if tok == "" || !ok || !s.opts.Now().Before(ti.expires) {
			return nil, errf(401, "Invalid or expired access token")
		}
		return ti.acct, nil
	}
	a := s.account(r.Header.Get("X-Auth-Account-Url"))
	if u.HeaderAuthRetired {
		return a, errf(401, "Authentication with a login and password is not supported; use an API key")
	}
	if a == nil {
		return nil, errf(401, "Authentication failed: unknown account")
	}
	email, pass := strings.TrimSpace(r.Header.Get("X-Auth-Email")), r.Header.Get("X-Auth-Password")
	if !a.opts.signsIn(email) && !a.callerSignsIn(email) || pass != a.opts.Password {
		return a, errf(401, "Authentication failed: wrong email or password") // a: counted as rejected
	}
	return a, nil
}

// api wraps a handler: auth, counting, latency, faults.
func (s *Sim) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r = s.withUnsettled(r)
		a, aerr := s.authenticate(r)
		if aerr == nil && a.opts.NoAPIAccess {
			aerr = errf(403, "Permission denied: the REST API is not available")
		}
		write := r.Method != http.MethodGet
		route := r.Pattern
		if a != nil {
			a.cnt.add(route, write, aerr != nil)
		}
		f := s.currentFaults()
		delay := s.opts.Latency
		roll := s.roll(5)
		if roll[0] < f.SlowRate {
			delay += f.SlowLatency
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
			// The time the server took, as a server may say it: a client
			// can tell it from its own delays.
			w.Header().Add("Server-Timing", "latency;dur="+strconv.FormatFloat(float64(delay.Microseconds())/1000, 'f', 1, 64))
		}
		if aerr != nil {
			s.log.Debug("learnsim refused", "route", route, "status", aerr.status)
			writeErr(w, r, aerr)
			return
		}
		switch {
		case slices.Contains(f.Refuse, route):
			writeErr(w, r, errf(400, "Refused by the simulator"))
			return
		case roll[1] < f.ErrorRate:
			a.cnt.fault()
			writeErr(w, r, errf(500, "Internal server error"))
			return
		case roll[2] < f.RateLimitRate:
			a.cnt.fault()
			unsettledFrom(r).Throttle.writeThrottled(w, r, f.RetryAfter, s.opts.Now())
			return
		}
		if hz := s.currentHostile(); hz.applies(r.Pattern) {
			serveHostile(w, r, hz)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, a))
		if write && roll[3] < f.AfterWriteErrorRate {
			a.cnt.fault()
			h(&discardWriter{h: http.Header{}}, r) // applied; the answer is lost
			writeErr(w, r, errf(500, "Internal server error"))
			return
		}
		h(w, r)
	}
}

// SetHostile switches the hostile listing modes (see Hostile) on or off.
func (s *Sim) SetHostile(h Hostile) {
	s.faultMu.Lock()
	s.hostile = h
	s.faultMu.Unlock()
}

func (s *Sim) currentHostile() Hostile {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.hostile
}

func (s *Sim) currentFaults() Faults {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faults
}

// roll draws n numbers in [0,1) in one lock so a seed gives one sequence.
func (s *Sim) roll(n int) []float64 {
	out := make([]float64, n)
	s.faultMu.Lock()
	for i := range out {
		out[i] = s.rng.Float64()
	}
	s.faultMu.Unlock()
	return out
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// handleToken implements POST /api/v3/token (client_credentials).
func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		writeErr(w, r, errf(400, "Malformed form"))
		return
	}
	if s.opts.Unsettled.StrictRequests {
		if err := strictToken(r); err != nil {
			writeErr(w, r, err)
			return
		}
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if r.PostForm.Get("grant_type") != "client_credentials" {
		if s.opts.Unsettled.KeyRefusal.oauthCode() != "" {
			// A server that answers OAuth's shape for a key answers it
			// for the grant too.
			writeOAuthErr(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type")
			return
		}
		writeErr(w, r, errf(400, "Unsupported grant_type"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	for t, ti := range s.tokens {
		if !now.Before(ti.expires) {
			delete(s.tokens, t)
		}
	}
	for _, k := range s.order {
		a := s.accounts[k]
		if a.opts.ClientID != "" && a.opts.ClientID == id && a.opts.ClientSecret == secret {
			b := make([]byte, 24)
			_, _ = rand.Read(b)
			tok := hex.EncodeToString(b)
			life := s.opts.TokenLifetime
			if life <= 0 {
				life = DefaultTokenLifetime
			}
			s.tokens[tok] = tokenInfo{acct: a, expires: now.Add(life)}
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d,"token_type":"bearer"}`, tok, int((life+time.Second-1)/time.Second))
			return
		}
	}
	k := s.opts.Unsettled.KeyRefusal
	if code := k.oauthCode(); code != "" {
		writeOAuthErr(w, k.status(), code, "Client authentication failed")
		return
	}
	r.Header.Set("Accept", "application/json")
	writeErr(w, r, errf(k.status(), "Invalid client credentials"))
}

// --- counters ---

// Counts are the API calls an account received (faulted ones included).
type Counts struct {
	Reads    int64            // GET
	Writes   int64            // POST, DELETE (authenticated)
	Rejected int64            // refused with 401/403 (not in Reads/Writes)
	Faults   int64            // answered with an injected 500/429 or a lost answer
	ByRoute  map[string]int64 // "METHOD /pattern" → calls, e.g. "POST /user"
}

type counters struct {
	mu sync.Mutex
	c  Counts
}

func (c *counters) add(route string, write, rejected bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c.ByRoute == nil {
		c.c.ByRoute = map[string]int64{}
	}
	switch {
	case rejected:
		c.c.Rejected++
		return
	case write:
		c.c.Writes++
	default:
		c.c.Reads++
	}
	c.c.ByRoute[route]++
}

func (c *counters) fault() {
	c.mu.Lock()
	c.c.Faults++
	c.mu.Unlock()
}

func (c *counters) snapshot(reset bool) Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.c
	out.ByRoute = make(map[string]int64, len(c.c.ByRoute))
	for k, v := range c.c.ByRoute {
		out.ByRoute[k] = v
	}
	if reset {
		c.c = Counts{}
	}
	return out
}

// Counts returns the calls received by the account at accountURL (zero if unknown).
func (s *Sim) Counts(accountURL string) Counts {
	a := s.account(accountURL)
	if a == nil {
		return Counts{ByRoute: map[string]int64{}}
	}
	return a.cnt.snapshot(false)
}

// TotalCounts sums the counts of all accounts.
func (s *Sim) TotalCounts() Counts {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := Counts{ByRoute: map[string]int64{}}
	for _, k := range s.order { // an alias is not a second account
		c := s.accounts[k].cnt.snapshot(false)
		t.Reads += c.Reads
		t.Writes += c.Writes
		t.Rejected += c.Rejected
		t.Faults += c.Faults
		for k, v := range c.ByRoute {
			t.ByRoute[k] += v
		}
	}
	return t
}

// ResetCounts zeroes every account's counters and empties its Sent log.
func (s *Sim) ResetCounts() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, a := range s.accounts {
		a.cnt.snapshot(true)
		a.sent.snapshot(true)
	}
}

// signsIn says whether the X-Auth-Email value names the owner: its login
// or its e-mail, letter case aside.
func (o AccountOptions) signsIn(v string) bool {
	return v != "" && (strings.EqualFold(v, o.Email) || strings.EqualFold(v, o.Login))
}
