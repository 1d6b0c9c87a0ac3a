package b24sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a simulator. Zero values give the reference's defaults.
type Options struct {
	ClientID     string // default "app.573ad8a0346747.09223434"
	ClientSecret string // default "sim-secret"
	// AppURL is the app's base URL; the portal page posts the iframe form to
	// AppURL+"/b24/install" (first open) or AppURL+"/b24/app".
	AppURL     string
	InstallURL string // overrides AppURL+"/b24/install"
	AppPageURL string // overrides AppURL+"/b24/app"
	AppCode    string // app.info CODE, default "vendor.ispringsync"
	Scope      string // default "user_basic,department"

	AccessTTL  time.Duration // default 1 h
	RefreshTTL time.Duration // default 180 days
	// Now is the token clock (default time.Now); see also Sim.Advance.
	Now func() time.Time

	// Rate and Burst shape each portal's leaky bucket (default 2/s, 50);
	// a negative Rate disables it.
	Rate  float64
	Burst int
	// Latency is added to every REST request.
	Latency time.Duration
	// EnumListOmitted: user.userfield.list leaves out a list (enumeration)
	// field's LIST of options. Whether Bitrix24 sends it is not documented;
	// without it a client cannot tell an option's text from its id.
	EnumListOmitted bool
	// InvitedFilter is what user.search does with a CONFIRM_CODE filter,
	// which is not settled (docs/bitrix24-api.md, "Invited users").
	InvitedFilter InvitedFilter
	// Unsettled picks an answer where Bitrix24's is not known.
	Unsettled Unsettled

	HTTP   *http.Client // for event delivery; default 10 s timeout
	Logger *slog.Logger
}

// InvitedFilter is one plausible answer of user.search to a filter on
// CONFIRM_CODE, the field that marks invited users who have not accepted.
type InvitedFilter int

const (
	// InvitedFilterHonoured: the filter selects by the code, so
	// "!CONFIRM_CODE" with an empty value returns only invited users.
	InvitedFilterHonoured InvitedFilter = iota
	// InvitedFilterIgnored: the unknown key is dropped and the rest of the
	// filter answers, every user it matches.
	InvitedFilterIgnored
	// InvitedFilterRefused: the call fails with an error answer.
	InvitedFilterRefused
)

// Sim is the OAuth server and all portals. It is an http.Handler.
type Sim struct {
	opts Options
	log  *slog.Logger
	hc   *http.Client

	mu        sync.Mutex
	base      string
	offset    time.Duration
	portals   map[string]*Portal // by current domain
	renamed   map[string]string  // old domain → new domain
	access    map[string]*accessToken
	refresh   map[string]*refreshToken
	refreshes int
	listen    func() string // starts a listener for a new portal (Start mode)
	servers   []*httptest.Server
	// regions are the OAuth servers besides the main one, by name; a
	// portal belongs to one, and its tokens work only there.
	regions    map[string]*region
	oauthCalls map[string]int            // /oauth/token/ requests by region ("" the main server)
	oauthFault []OAuthFault              // InjectOAuth's faults still to give
	switches   atomic.Pointer[Unsettled] // Options.Unsettled, or SetUnsettled's
}

// Region is a regional OAuth server: Bitrix24 runs one per region (the
// west oauth.bitrix.info and the east oauth.bitrix24.tech), and an app may
// have other credentials in another region.
type Region struct {
	Name         string
	ClientID     string // default: Options.ClientID
	ClientSecret string // default: Options.ClientSecret
}

type region struct {
	Region
	base string
}

type accessToken struct {
	portal  *Portal
	userID  int64
	expires time.Time
	gen     int
	revoked bool
}

type refreshToken struct {
	portal *Portal
	userID int64
	access string
	issued time.Time
	gen    int
	used   bool
}

// New builds a simulator. Call SetBaseURL with the URL it is served at (Start does).
func New(opts Options) *Sim {
	if opts.ClientID == "" {
		opts.ClientID = "app.573ad8a0346747.09223434"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "sim-secret"
	}
	if opts.AppCode == "" {
		opts.AppCode = "vendor.ispringsync"
	}
	if opts.Scope == "" {
		opts.Scope = "user_basic,department"
	}
	if opts.AccessTTL <= 0 {
		opts.AccessTTL = time.Hour
	}
	if opts.RefreshTTL <= 0 {
		opts.RefreshTTL = 180 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rate == 0 {
		opts.Rate = 2
	}
	if opts.Burst <= 0 {
		opts.Burst = 50
	}
	hc := opts.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{
		opts: opts, log: log, hc: hc,
		portals: map[string]*Portal{}, renamed: map[string]string{},
		access: map[string]*accessToken{}, refresh: map[string]*refreshToken{},
		regions: map[string]*region{}, oauthCalls: map[string]int{},
	}
	s.SetUnsettled(opts.Unsettled)
	return s
}

// StartRegion serves another regional OAuth server on its own loopback
// listener and returns its base URL. Portals added with its Name in
// PortalOptions.Region get their tokens from it, and only it accepts them.
func (s *Server) StartRegion(r Region) string {
	srv := httptest.NewServer(s.RegionHandler(r.Name))
	s.SetRegion(r, srv.URL)
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	return srv.URL
}

// SetRegion declares a regional OAuth server served at baseURL by
// RegionHandler(r.Name).
func (s *Sim) SetRegion(r Region, baseURL string) {
	s.mu.Lock()
	if r.ClientID == "" {
		r.ClientID = s.opts.ClientID
	}
	if r.ClientSecret == "" {
		r.ClientSecret = s.opts.ClientSecret
	}
	s.regions[r.Name] = &region{Region: r, base: strings.TrimRight(baseURL, "/")}
	s.mu.Unlock()
}

// RegionHandler serves the OAuth server of region name: /oauth/token/ and
// its REST (app.info).
func (s *Sim) RegionHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch path := r.URL.Path; {
		case path == "/oauth/token/" || path == "/oauth/token":
			s.serveOAuth(w, r, name)
		case strings.HasPrefix(path, "/rest/"):
			s.serveOAuthREST(w, r, name, strings.TrimPrefix(path, "/rest/"))
		default:
			http.NotFound(w, r)
		}
	})
}

// OAuthCalls counts the token requests (refused ones too) made at the OAuth
// server of region ("" for the main one).
func (s *Sim) OAuthCalls(region string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oauthCalls[region]
}

// serverBase is the base URL of the OAuth server of the portal's region (s.mu held).
func (s *Sim) serverBase(p *Portal) string {
	if r, ok := s.regions[p.region]; ok && p.region != "" {
		return r.base
	}
	return s.base
}

// credentials are the app's client_id and client_secret at region (s.mu held).
func (s *Sim) credentials(name string) (string, string) {
	if r, ok := s.regions[name]; ok && name != "" {
		return r.ClientID, r.ClientSecret
	}
	return s.opts.ClientID, s.opts.ClientSecret
}

// Server is a simulator running on loopback listeners.
type Server struct {
	*Sim
	URL string // the OAuth server's base URL (B24_OAUTH_URL)
}

// Start serves a new simulator on 127.0.0.1: one listener for the OAuth server
// and, for every portal added without Domain/URL, one listener of its own, so
// that the portal's DOMAIN is its real host:port as on Bitrix24.
func Start(opts Options) *Server {
	s := New(opts)
	main := httptest.NewServer(s)
	s.mu.Lock()
	s.base = main.URL
	s.servers = append(s.servers, main)
	s.listen = func() string {
		srv := httptest.NewServer(s)
		s.servers = append(s.servers, srv) // called with s.mu held
		return srv.URL
	}
	s.mu.Unlock()
	return &Server{Sim: s, URL: main.URL}
}

// Close stops the listeners started by Start.
func (s *Server) Close() {
	s.mu.Lock()
	srvs := s.servers
	s.servers = nil
	s.mu.Unlock()
	for _, srv := range srvs {
		srv.Close()
	}
}

// SetBaseURL tells the simulator where its OAuth server is reachable.
func (s *Sim) SetBaseURL(u string) {
	s.mu.Lock()
	s.base = strings.TrimRight(u, "/")
	s.mu.Unlock()
}

// BaseURL is the OAuth server's base URL (B24_OAUTH_URL).
func (s *Sim) BaseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

// ClientID and ClientSecret are the app's credentials known to the OAuth server.
func (s *Sim) ClientID() string { return s.opts.ClientID }

func (s *Sim) ClientSecret() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.ClientSecret
}

// RotateClientSecret replaces the app's client secret at the main OAuth
// server, as the vendor console does: from now on the old one is refused
// with invalid_client for every token.
func (s *Sim) RotateClientSecret(secret string) {
	s.mu.Lock()
	s.opts.ClientSecret = secret
	s.mu.Unlock()
}

// Advance moves the token clock forward (expire tokens without waiting).
func (s *Sim) Advance(d time.Duration) {
	s.mu.Lock()
	s.offset += d
	s.mu.Unlock()
}

// Refreshes counts successful OAuth refreshes.
func (s *Sim) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

func (s *Sim) now() time.Time { return s.opts.Now().Add(s.offset) } // s.mu held

func newHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ServeHTTP routes: requests whose Host is a portal's domain go to that portal;
// otherwise /oauth/token/, /rest/app.info (OAuth server), /p/<domain>/… (portal
// REST by path) and /portal/<domain>/… (portal page by path).
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := strings.ToLower(r.Host)
	s.mu.Lock()
	p := s.portals[host]
	movedTo := ""
	if to, ok := s.portals[s.renamed[host]]; ok && to.hosted {
		movedTo = to.url
	}
	s.mu.Unlock()
	if p != nil && p.hosted {
		s.servePortal(w, r, p, r.URL.Path)
		return
	}
	if movedTo != "" {
		http.Redirect(w, r, movedTo+r.URL.RequestURI(), http.StatusFound)
		return
	}
	path := r.URL.Path
	switch {
	case path == "/oauth/token/" || path == "/oauth/token":
		s.serveOAuth(w, r, "")
	case strings.HasPrefix(path, "/rest/"):
		s.serveOAuthREST(w, r, "", strings.TrimPrefix(path, "/rest/"))
	case strings.HasPrefix(path, "/p/") || strings.HasPrefix(path, "/portal/"):
		prefix := "/p/"
		if strings.HasPrefix(path, "/portal/") {
			prefix = "/portal/"
		}
		rest := strings.TrimPrefix(path, prefix)
		domain, sub, _ := strings.Cut(rest, "/")
		domain = strings.ToLower(domain)
		s.mu.Lock()
		p := s.portals[domain]
		newDomain, ren := s.renamed[domain]
		s.mu.Unlock()
		if p == nil && ren {
			// Bitrix24 names the new address in full (docs/bitrix24-api.md, "Renamed portals").
			http.Redirect(w, r, s.BaseURL()+prefix+newDomain+"/"+sub+queryOf(r), http.StatusFound)
			return
		}
		if p == nil {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "NOT_FOUND", "error_description": "Portal not found"})
			return
		}
		if prefix == "/portal/" {
			sub = "portal/" + sub
		}
		s.servePortal(w, r, p, "/"+sub)
	case path == "/":
		s.serveIndex(w, r)
	default:
		http.NotFound(w, r)
	}
}

func queryOf(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return "?" + r.URL.RawQuery
}

func (s *Sim) servePortal(w http.ResponseWriter, r *http.Request, p *Portal, path string) {
	if strings.HasPrefix(path, "/rest/") {
		s.serveREST(w, r, p, strings.TrimPrefix(path, "/rest/"))
		return
	}
	s.servePage(w, r, p, strings.Trim(strings.TrimPrefix(path, "/portal"), "/"))
}

func (s *Sim) serveIndex(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var names []string
	links := map[string]string{}
	for d, p := range s.portals {
		names = append(names, d)
		links[d] = p.pageURL()
	}
	s.mu.Unlock()
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!doctype html><title>Bitrix24 simulator</title><h1>Bitrix24 simulator</h1><ul>")
	for _, n := range names {
		fmt.Fprintf(w, `<li><a href="%s">%s</a></li>`, htmlEscape(links[n]), htmlEscape(n))
	}
	fmt.Fprint(w, "</ul>")
}

// deliver posts an event form to handler; it never holds s.mu.
func (s *Sim) deliver(ctx context.Context, p *Portal, handler string, form url.Values) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, handler, strings.NewReader(form.Encode()))
	d := Delivery{Event: form.Get("event"), Handler: handler, Form: form}
	if err == nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", "Bitrix24 Webhook Engine")
		var resp *http.Response
		resp, err = s.hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			d.Status = resp.StatusCode
		}
	}
	if err != nil {
		d.Err = err.Error() // a failed delivery is not retried (docs/bitrix24-api.md, "Events")
	}
	s.mu.Lock()
	p.deliveries = append(p.deliveries, d)
	s.mu.Unlock()
}
