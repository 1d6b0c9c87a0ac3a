package b24sim

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Department and User are the portal's data as the simulator stores it.
type Department struct {
	ID     int64
	Name   string
	Parent int64 // 0 for the root
	Head   int64 // 0 when none
	Sort   int
}

type User struct {
	ID             int64
	Active         bool
	Name           string
	LastName       string
	SecondName     string
	Email          string // "" when missing
	WorkPosition   string
	PersonalMobile string
	WorkPhone      string
	Departments    []int64
	Extranet       bool
	Admin          bool
	DateRegister   time.Time
	PersonalCity   string
	Birthday       string // YYYY-MM-DD; sent as an ISO datetime
	// UF holds the values of the portal's own user fields (AddUserField):
	// a string, a number, a date as YYYY-MM-DD, or a list of them.
	UF map[string]any
}

// UserField is a custom user field of the portal, as user.userfield.list
// describes it.
type UserField struct {
	ID        int64
	FieldName string // UF_USR_...
	Type      string // USER_TYPE_ID: string, integer, double, date, datetime, boolean, enumeration, ...
	Multiple  bool
	Mandatory bool
	Label     string
}

// Org is a portal's structure.
type Org struct {
	Name        string
	Departments []Department
	Users       []User
}

// PortalOptions describes a portal to add.
type PortalOptions struct {
	// Domain is the portal's DOMAIN. Empty under Start: the portal gets its own
	// listener and its DOMAIN is that 127.0.0.1:port. A logical domain
	// ("acme.bitrix24.com") is served by path under /p/<domain>/ and /portal/<domain>/.
	Domain string
	// URL serves the portal at its own origin (e.g. "http://127.0.0.1:9001"),
	// routed by Host; Domain is then the URL's host.
	URL      string
	MemberID string // default: 32 random hex characters
	Status   string // app status F/L/T/P, default "F"
	Lang     string // default "en"
	Org      Org
	// Enterprise gives the portal a 5/s, burst 250 bucket.
	Enterprise bool
	// WebhookCode enables the inbound webhook /rest/1/<code>/crm.lead.add.
	WebhookCode string
	// AfterUninstall picks how the dead installation's tokens are refused
	// (see AfterUninstall); the zero value is GoneAppNotFound.
	AfterUninstall AfterUninstall
	// Region names the regional OAuth server (Server.StartRegion) that
	// issues and accepts the portal's tokens; "" is the main one.
	Region string
}

// AfterUninstall is how Bitrix24 answers the tokens of an uninstalled app.
// Which answer the real service gives is not documented, so the simulator
// offers each plausible one and the app must read all of them as "gone".
type AfterUninstall int

const (
	// GoneAppNotFound: REST 401 APPLICATION_NOT_FOUND, refresh invalid_grant.
	GoneAppNotFound AfterUninstall = iota
	// GoneInvalidToken: REST 401 invalid_token, refresh invalid_grant.
	GoneInvalidToken
	// GoneExpiredToken: REST 401 expired_token, refresh invalid_grant; only
	// the refused refresh tells that the app is gone.
	GoneExpiredToken
	// GonePaymentRequired: REST 401 invalid_token, refresh PAYMENT_REQUIRED.
	GonePaymentRequired
	// GonePortalNotFound: REST answers HTTP 404 (portal not found).
	GonePortalNotFound
	// GoneNotInstalled: app.info still answers the old tokens, with
	// INSTALLED false; other methods APPLICATION_NOT_FOUND, refresh invalid_grant.
	GoneNotInstalled
)

// AfterUninstalls lists every AfterUninstall, for tests that try them all.
var AfterUninstalls = []AfterUninstall{GoneAppNotFound, GoneInvalidToken, GoneExpiredToken,
	GonePaymentRequired, GonePortalNotFound, GoneNotInstalled}

func (a AfterUninstall) String() string {
	switch a {
	case GoneAppNotFound:
		return "APPLICATION_NOT_FOUND"
	case GoneInvalidToken:
		return "invalid_token"
	case GoneExpiredToken:
		return "expired_token"
	case GonePaymentRequired:
		return "PAYMENT_REQUIRED"
	case GonePortalNotFound:
		return "portal 404"
	case GoneNotInstalled:
		return "INSTALLED false"
	}
	return fmt.Sprintf("AfterUninstall(%d)", int(a))
}

type installState int

const (
	stateNone       installState = iota // never installed or uninstalled
	stateInstalling                     // tokens issued, installFinish not called yet
	stateInstalled
)

type binding struct {
	id      int
	event   string
	handler string
}

// Delivery records one event POST to the app.
type Delivery struct {
	Event   string
	Handler string
	Form    url.Values
	Status  int
	Err     string
}

// Fault makes the next Count requests of Method ("" = any) fail with Status
// and Code.
type Fault struct {
	Method      string
	Status      int
	Code        string
	Description string
	Count       int
}

// Lead is a crm.lead.add call received on the inbound webhook.
type Lead struct {
	Fields map[string]any
	At     time.Time
}

// Portal is one simulated Bitrix24 portal. All methods are safe for concurrent use.
type Portal struct {
	sim      *Sim
	domain   string
	url      string // origin for hosted portals; base+"/p/"+domain otherwise
	hosted   bool
	memberID string
	status   string
	lang     string
	name     string
	webhook  string
	region   string

	state    installState
	gen      int // installation generation; tokens of older ones are dead
	gone     AfterUninstall
	appToken string
	version  int

	depts   map[int64]*Department
	users   map[int64]*User
	userIDs []int64 // sorted cache of users' keys
	nextUID int64
	nextDID int64

	bindings   []binding
	nextBind   int
	deliveries []Delivery
	leads      []Lead
	userFields []UserField

	rate, burst float64
	level       float64
	last        time.Time
	latency     time.Duration
	faults      []Fault
	opLimit     OperatingLimit
	ops         map[string]*opState // operating time by method
	opRefused   int                 // calls answered OPERATION_TIME_LIMIT

	requests map[string]int // HTTP requests per method (batch counts once)
	commands map[string]int // methods run, batch commands included
	throttle int
}

// AddPortal creates a portal with its org; the app is not installed yet.
func (s *Sim) AddPortal(o PortalOptions) *Portal {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &Portal{sim: s, memberID: o.MemberID, status: o.Status, lang: o.Lang, name: o.Org.Name, webhook: o.WebhookCode,
		depts: map[int64]*Department{}, users: map[int64]*User{}, requests: map[string]int{}, commands: map[string]int{},
		rate: s.opts.Rate, burst: float64(s.opts.Burst), latency: s.opts.Latency, version: 1, gone: o.AfterUninstall,
		region: o.Region, ops: map[string]*opState{}}
	if _, ok := s.regions[o.Region]; o.Region != "" && !ok {
		panic(fmt.Sprintf("b24sim: portal in region %q, which has no OAuth server", o.Region))
	}
	if o.Enterprise {
		p.rate, p.burst = 5, 250
	}
	if p.memberID == "" {
		p.memberID = newHex(16)
	}
	if p.status == "" {
		p.status = "F"
	}
	if p.lang == "" {
		p.lang = "en"
	}
	switch {
	case o.URL != "":
		u, err := url.Parse(o.URL)
		if err != nil || u.Host == "" {
			panic(fmt.Sprintf("b24sim: bad portal URL %q", o.URL))
		}
		p.domain, p.url, p.hosted = strings.ToLower(u.Host), strings.TrimRight(o.URL, "/"), true
	case o.Domain == "" && s.listen != nil:
		u := s.listen()
		p.domain, p.url, p.hosted = strings.TrimPrefix(u, "http://"), u, true
	case o.Domain == "":
		panic("b24sim: portal needs Domain or URL when the simulator was not started with Start")
	default:
		p.domain = strings.ToLower(o.Domain)
		p.url = s.base + "/p/" + p.domain
	}
	if p.name == "" {
		p.name = p.domain
	}
	for _, d := range o.Org.Departments {
		d := d
		p.depts[d.ID] = &d
		p.nextDID = max(p.nextDID, d.ID)
	}
	for _, u := range o.Org.Users {
		u := u
		u.Departments = slices.Clone(u.Departments)
		p.users[u.ID] = &u
		p.nextUID = max(p.nextUID, u.ID)
	}
	s.portals[p.domain] = p
	return p
}

// Portal returns the portal with the given current domain, or nil.
func (s *Sim) Portal(domain string) *Portal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.portals[strings.ToLower(domain)]
}

func (p *Portal) installed() bool { return p.state != stateNone }

func (p *Portal) restURL() string { return p.url + "/rest/" }

// Domain is the portal's DOMAIN; MemberID its member_id.
func (p *Portal) Domain() string {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return p.domain
}

func (p *Portal) MemberID() string { return p.memberID }

// ClientEndpoint is the portal's REST base URL (client_endpoint).
func (p *Portal) ClientEndpoint() string {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return p.restURL()
}

// PageURL is the portal page that opens the app in an iframe.
func (p *Portal) PageURL() string {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return p.pageURL()
}

func (p *Portal) pageURL() string { // s.mu held
	if p.hosted {
		return p.url + "/"
	}
	return p.sim.base + "/portal/" + p.domain + "/"
}

// WebhookURL is the inbound webhook base (…/rest/1/<code>/), "" when disabled.
func (p *Portal) WebhookURL() string {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if p.webhook == "" {
		return ""
	}
	return p.restURL() + "1/" + p.webhook + "/"
}

// ApplicationToken is the current application_token ("" when not installed).
func (p *Portal) ApplicationToken() string {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return p.appToken
}

// Installed reports whether installFinish has been called.
func (p *Portal) Installed() bool {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return p.state == stateInstalled
}

// AdminID is the first active admin; NonAdminID the first active employee who
// is not an admin.
func (p *Portal) AdminID() int64 { return p.findUser(func(u *User) bool { return u.Admin }) }

func (p *Portal) NonAdminID() int64 {
	return p.findUser(func(u *User) bool { return !u.Admin && !u.Extranet })
}

func (p *Portal) findUser(f func(*User) bool) int64 {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	best := int64(0)
	for id, u := range p.users {
		if u.Active && f(u) && (best == 0 || id < best) {
			best = id
		}
	}
	return best
}

// Install is the admin installing the app from the Market: it creates the
// application_token and leaves the app "installing" until FinishInstall
// (BX24.installFinish). Installing again after an uninstall starts afresh.
// It returns a token pair for the admin.
func (p *Portal) Install() Token {
	s := p.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.state == stateNone {
		p.gen++
		p.appToken = newHex(16)
		p.state = stateInstalling
	}
	return s.issue(p, p.adminLocked())
}

func (p *Portal) adminLocked() int64 {
	best := int64(0)
	for id, u := range p.users {
		if u.Active && u.Admin && (best == 0 || id < best) {
			best = id
		}
	}
	if best == 0 {
		best = 1
	}
	return best
}

// Tokens issues a new token chain for userID, as Bitrix24 does when a user opens
// the app. It fails when the app is not installed.
func (p *Portal) Tokens(userID int64) (Token, error) {
	s := p.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.installed() {
		return Token{}, fmt.Errorf("app not installed on %s", p.domain)
	}
	return s.issue(p, userID), nil
}

// FinishInstall is BX24.installFinish(): the app counts as installed, and
// ONAPPINSTALL goes to the handlers bound meanwhile.
func (p *Portal) FinishInstall(ctx context.Context) {
	s := p.sim
	s.mu.Lock()
	if p.state != stateInstalling {
		s.mu.Unlock()
		return
	}
	p.state = stateInstalled
	tok := s.issue(p, p.adminLocked())
	form := p.eventForm("ONAPPINSTALL", url.Values{
		"data[VERSION]": {strconv.Itoa(p.version)}, "data[ACTIVE]": {"Y"}, "data[INSTALLED]": {"Y"}, "data[LANGUAGE_ID]": {p.lang},
	}, &tok)
	targets := p.handlersFor("ONAPPINSTALL")
	s.mu.Unlock()
	p.send(ctx, targets, form)
}

// Update installs a new app version: bindings are dropped (docs/bitrix24-api.md, "Events"),
// the application_token changes and ONAPPUPDATE goes to the handlers bound
// before the update.
func (p *Portal) Update(ctx context.Context) {
	s := p.sim
	s.mu.Lock()
	if p.state != stateInstalled {
		s.mu.Unlock()
		return
	}
	prev := p.version
	p.version++
	p.appToken = newHex(16)
	tok := s.issue(p, p.adminLocked())
	form := p.eventForm("ONAPPUPDATE", url.Values{
		"data[VERSION]": {strconv.Itoa(p.version)}, "data[PREVIOUS_VERSION]": {strconv.Itoa(prev)}, "data[LANGUAGE_ID]": {p.lang},
	}, &tok)
	targets := p.handlersFor("ONAPPUPDATE")
	p.bindings = nil
	s.mu.Unlock()
	p.send(ctx, targets, form)
}

// SetAfterUninstall changes how the tokens of an uninstalled app are refused.
func (p *Portal) SetAfterUninstall(a AfterUninstall) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.gone = a
}

// Uninstall removes the app: ONAPPUNINSTALL (with data[CLEAN]) goes to bound
// handlers, bindings are deleted, and every token of the installation stops
// working, as the portal's AfterUninstall says (by default REST answers
// APPLICATION_NOT_FOUND, refresh invalid_grant). Bitrix24 revokes the tokens
// before it sends the event, and so does the simulator.
func (p *Portal) Uninstall(ctx context.Context, clean bool) {
	s := p.sim
	s.mu.Lock()
	if p.state == stateNone {
		s.mu.Unlock()
		return
	}
	var targets []string
	var form url.Values
	if p.state == stateInstalled {
		c := "0"
		if clean {
			c = "1"
		}
		form = p.eventForm("ONAPPUNINSTALL", url.Values{"data[LANGUAGE_ID]": {p.lang}, "data[CLEAN]": {c}}, nil)
		targets = p.handlersFor("ONAPPUNINSTALL")
	}
	p.state = stateNone
	p.bindings = nil
	p.appToken = ""
	s.mu.Unlock()
	p.send(ctx, targets, form)
}

// SendEvent delivers an arbitrary event (e.g. ONUSERADD) to bound handlers,
// with an auth block of userID's tokens minus the refresh token.
func (p *Portal) SendEvent(ctx context.Context, event string, data url.Values, userID int64) {
	s := p.sim
	s.mu.Lock()
	if p.state != stateInstalled {
		s.mu.Unlock()
		return
	}
	tok := s.issue(p, userID)
	tok.RefreshToken = ""
	form := p.eventForm(strings.ToUpper(event), data, &tok)
	targets := p.handlersFor(strings.ToUpper(event))
	s.mu.Unlock()
	p.send(ctx, targets, form)
}

func (p *Portal) send(ctx context.Context, targets []string, form url.Values) {
	for _, h := range targets {
		p.sim.deliver(ctx, p, h, form)
	}
}

func (p *Portal) handlersFor(event string) []string { // s.mu held
	var hs []string
	for _, b := range p.bindings {
		if b.event == event {
			hs = append(hs, b.handler)
		}
	}
	return hs
}

// eventForm builds an event payload shaped like the event samples (docs/bitrix24-api.md, "Events") (s.mu held).
func (p *Portal) eventForm(event string, data url.Values, tok *Token) url.Values {
	f := url.Values{"event": {event}, "ts": {strconv.FormatInt(p.sim.now().Unix(), 10)}}
	for _, b := range p.bindings {
		if b.event == event {
			f.Set("event_handler_id", strconv.Itoa(b.id))
			break
		}
	}
	for k, v := range data {
		f[k] = v
	}
	f.Set("auth[domain]", p.domain)
	f.Set("auth[server_endpoint]", p.sim.serverBase(p)+"/rest/")
	f.Set("auth[client_endpoint]", p.restURL())
	f.Set("auth[member_id]", p.memberID)
	f.Set("auth[application_token]", p.appToken)
	if tok != nil {
		f.Set("auth[access_token]", tok.AccessToken)
		f.Set("auth[expires]", strconv.FormatInt(tok.Expires.Unix(), 10))
		f.Set("auth[expires_in]", strconv.Itoa(int(p.sim.opts.AccessTTL.Seconds())))
		f.Set("auth[scope]", tok.Scope)
		f.Set("auth[status]", p.status)
		f.Set("auth[user_id]", strconv.FormatInt(tok.UserID, 10))
		if tok.RefreshToken != "" {
			f.Set("auth[refresh_token]", tok.RefreshToken)
		}
	}
	return f
}

// Deliveries returns the event POSTs made so far.
func (p *Portal) Deliveries() []Delivery {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return slices.Clone(p.deliveries)
}

// Bindings returns "EVENT handler" strings of the current event bindings.
func (p *Portal) Bindings() []string {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	var out []string
	for _, b := range p.bindings {
		out = append(out, b.event+" "+b.handler)
	}
	return out
}

// Leads returns the crm.lead.add calls received on the webhook.
func (p *Portal) Leads() []Lead {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return slices.Clone(p.leads)
}

// Requests returns HTTP requests per method (a batch counts once, as "batch").
func (p *Portal) Requests() map[string]int {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return maps.Clone(p.requests)
}

// TotalRequests is the number of REST HTTP requests; Throttled how many of
// them were refused with QUERY_LIMIT_EXCEEDED.
func (p *Portal) TotalRequests() int {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	n := 0
	for _, v := range p.requests {
		n += v
	}
	return n
}

func (p *Portal) Throttled() int {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return p.throttle
}

// Commands returns methods run per name, batch commands included.
func (p *Portal) Commands() map[string]int {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return maps.Clone(p.commands)
}

// ResetCounters zeroes request counters.
func (p *Portal) ResetCounters() {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.requests, p.commands, p.throttle = map[string]int{}, map[string]int{}, 0
}

// SetRateLimit changes the bucket (rate ≤ 0 disables it) and empties it.
func (p *Portal) SetRateLimit(rate float64, burst int) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.rate, p.burst, p.level = rate, float64(burst), 0
}

// FillBucket makes the bucket full, as if other apps had used it.
func (p *Portal) FillBucket() {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.level, p.last = p.burst, time.Now()
}

// SetLatency sets the delay added to each REST request.
func (p *Portal) SetLatency(d time.Duration) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.latency = d
}

// InjectFault queues a fault.
func (p *Portal) InjectFault(f Fault) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if f.Count <= 0 {
		f.Count = 1
	}
	p.faults = append(p.faults, f)
}

// ExpireTokens makes every access token of the portal expired.
func (p *Portal) ExpireTokens() {
	s := p.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.now().Add(-time.Second)
	for _, at := range s.access {
		if at.portal == p {
			at.expires = past
		}
	}
}

// Rename moves the portal to a new domain; the old address answers 302. For a
// hosted portal under Start the new domain is a new listener and newDomain is
// ignored. It returns the new domain.
func (p *Portal) Rename(newDomain string) string {
	s := p.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	old := p.domain
	if p.hosted {
		if s.listen == nil {
			panic("b24sim: renaming a hosted portal needs Start")
		}
		u := s.listen()
		p.domain, p.url = strings.TrimPrefix(u, "http://"), u
	} else {
		p.domain = strings.ToLower(newDomain)
		p.url = s.base + "/p/" + p.domain
	}
	delete(s.portals, old)
	s.portals[p.domain] = p
	for k, v := range s.renamed {
		if v == old { // a portal renamed twice still redirects from its first name
			s.renamed[k] = p.domain
		}
	}
	s.renamed[old] = p.domain
	return p.domain
}

// --- org mutations -------------------------------------------------------

// Departments and Users return copies of the portal's data.
func (p *Portal) Departments() []Department {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	out := make([]Department, 0, len(p.depts))
	for _, d := range p.depts {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Department) int { return int(a.ID - b.ID) })
	return out
}

func (p *Portal) Users() []User {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	out := make([]User, 0, len(p.users))
	for _, u := range p.users {
		c := *u
		c.Departments = slices.Clone(u.Departments)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b User) int { return int(a.ID - b.ID) })
	return out
}

// RenameDepartment, MoveDepartment and SetHead change a department.
func (p *Portal) RenameDepartment(id int64, name string) error {
	return p.withDept(id, func(d *Department) { d.Name = name })
}

func (p *Portal) MoveDepartment(id, parent int64) error {
	p.sim.mu.Lock()
	_, ok := p.depts[parent]
	p.sim.mu.Unlock()
	if !ok {
		return fmt.Errorf("no department %d", parent)
	}
	return p.withDept(id, func(d *Department) { d.Parent = parent })
}

func (p *Portal) SetHead(id, userID int64) error {
	return p.withDept(id, func(d *Department) { d.Head = userID })
}

func (p *Portal) withDept(id int64, f func(*Department)) error {
	return withEntry(p, p.depts, id, "department", f)
}

// withEntry applies f to entry id of table under the simulator's lock.
func withEntry[T any](p *Portal, table map[int64]*T, id int64, what string, f func(*T)) error {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	e, ok := table[id]
	if !ok {
		return fmt.Errorf("no %s %d", what, id)
	}
	f(e)
	return nil
}

// AddUserField adds a custom user field; its name gets the UF_USR_ prefix
// when it lacks it, as user.userfield.add does. It returns the full name.
func (p *Portal) AddUserField(f UserField) string {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if !strings.HasPrefix(f.FieldName, "UF_USR_") {
		f.FieldName = "UF_USR_" + strings.TrimPrefix(f.FieldName, "UF_")
	}
	f.ID = int64(100 + len(p.userFields))
	p.userFields = append(p.userFields, f)
	return f.FieldName
}

// AddDepartment adds a department and returns its ID.
func (p *Portal) AddDepartment(name string, parent, head int64) int64 {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.nextDID++
	p.depts[p.nextDID] = &Department{ID: p.nextDID, Name: name, Parent: parent, Head: head, Sort: 500}
	return p.nextDID
}

// FireUser, RehireUser and MoveUser change a user.
func (p *Portal) FireUser(id int64) error   { return p.withUser(id, func(u *User) { u.Active = false }) }
func (p *Portal) RehireUser(id int64) error { return p.withUser(id, func(u *User) { u.Active = true }) }
func (p *Portal) MoveUser(id int64, depts ...int64) error {
	return p.withUser(id, func(u *User) { u.Departments = slices.Clone(depts); u.Extranet = len(depts) == 0 })
}

// UpdateUser applies f to a copy-free pointer under the lock.
func (p *Portal) UpdateUser(id int64, f func(*User)) error { return p.withUser(id, f) }

func (p *Portal) withUser(id int64, f func(*User)) error {
	return withEntry(p, p.users, id, "user", f)
}

// AddUser adds a user (ID assigned when 0) and returns the ID.
func (p *Portal) AddUser(u User) int64 {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if u.ID == 0 {
		p.nextUID++
		u.ID = p.nextUID
	}
	p.nextUID = max(p.nextUID, u.ID)
	if u.DateRegister.IsZero() {
		u.DateRegister = time.Now().UTC().Truncate(time.Second)
	}
	u.Departments = slices.Clone(u.Departments)
	p.users[u.ID] = &u
	return u.ID
}
