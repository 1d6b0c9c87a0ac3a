package b24sim

import (
	"fmt"
	"net/url"
	"slices"
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
	Extranet       bool // an extranet user; one without departments reads as one anyway (external)
	Admin          bool
	DateRegister   time.Time
	PersonalCity   string
	Birthday       string // YYYY-MM-DD; sent as an ISO datetime
	// LastLogin is when the user last signed in (zero: never); user.get
	// sends it only under the full user scope.
	LastLogin time.Time
	// Invited: invited to the portal and not accepted yet, an ordinary
	// active row whose CONFIRM_CODE is set (docs/bitrix24-api.md, "Invited
	// users"); only user.search's filter tells it apart.
	Invited bool
	// UF holds the values of the portal's own user fields (AddUserField):
	// a string, a number, a date as YYYY-MM-DD, or a list of them.
	UF map[string]any
}

// external reports whether Bitrix24 types u as an extranet user: flagged
// so, or without a department (USER_TYPE is derived from UF_DEPARTMENT,
// docs/bitrix24-api.md, "Extranet users"), whatever Extranet says.
func (u *User) external() bool { return u.Extranet || len(u.Departments) == 0 }

// UserField is a custom user field of the portal, as user.userfield.list
// describes it.
type UserField struct {
	ID        int64
	FieldName string // UF_USR_...
	Type      string // USER_TYPE_ID: string, integer, double, date, datetime, boolean, enumeration, ...
	Multiple  bool
	Mandatory bool
	Label     string
	// Options are a list (enumeration) field's choices; a user's value of
	// such a field (User.UF) is an option's ID, or a list of IDs.
	Options []EnumOption
}

// EnumOption is one choice of a list field.
type EnumOption struct {
	ID    int64
	Value string
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
	// Legacy is an older portal: its frame POST has no APPLICATION_TOKEN or
	// APPLICATION_SCOPE (documented only since 2026), and ONAPPINSTALL does
	// not reach the app (whether it reaches an app with a UI is not
	// documented). The app then learns no application token before
	// ONAPPUNINSTALL, which carries one.
	Legacy bool
	// TimeZone is the portal's time zone: Bitrix24 writes dates and times
	// (DATE_REGISTER, PERSONAL_BIRTHDAY, LAST_LOGIN, date_start…) with the
	// portal's offset, so a birthday is midnight there, e.g.
	// 1990-05-01T00:00:00+03:00 (docs/bitrix24-api.md, "Answers"). nil is UTC.
	TimeZone *time.Location
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
	// GoneInvalidClient: REST 401 invalid_token, refresh 401 invalid_client,
	// which is also what every refresh gets when the app's client secret is
	// wrong.
	GoneInvalidClient
)

// AfterUninstalls lists every AfterUninstall, for tests that try them all.
var AfterUninstalls = []AfterUninstall{GoneAppNotFound, GoneInvalidToken, GoneExpiredToken,
	GonePaymentRequired, GonePortalNotFound, GoneNotInstalled, GoneInvalidClient}

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
	case GoneInvalidClient:
		return "invalid_client"
	}
	return fmt.Sprintf("AfterUninstall(%d)", int(a))
}

// Lapse is an installed app whose tokens stopped working without an
// uninstall: Bitrix24 refuses the refresh as it may refuse an uninstalled
// app's, so the answer alone cannot tell the two apart.
type Lapse int

const (
	// LapseNone: the tokens work.
	LapseNone Lapse = iota
	// LapseRefreshExpired: the refresh token outlived its 180 days (the
	// portal was idle): REST answers expired_token, refresh invalid_grant.
	LapseRefreshExpired
	// LapseUnpaid: the app's trial or paid period is over: REST answers
	// expired_token, refresh PAYMENT_REQUIRED.
	LapseUnpaid
)

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
	lapse    Lapse
	appToken string
	legacy   bool
	// installer is the pair of the admin's last frame POST to the
	// installer, which ONAPPINSTALL carries under InstallEventInstallers.
	installer *Token
	// firstFrame is the pair an early ONAPPINSTALL carried, which the
	// admin's first installer frame carries too (InstallEventEarly).
	firstFrame *Token
	loc        *time.Location // the portal's time zone
	version    int

	depts     map[int64]*Department
	deptOrder []*Department // depts in tree order, nil until asked after a change (deptsChanged)
	users     map[int64]*User
	userIDs   []int64 // sorted cache of users' keys
	nextUID   int64
	nextDID   int64

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

	// countRefused: refused requests fill the bucket too (SetCountRefused).
	countRefused bool
	// oauthEndpoint, when set, is the client_endpoint the OAuth server's
	// refresh answers name (SetOAuthClientEndpoint).
	oauthEndpoint string
	// access: the users the admin limited the app to (LimitAccess); nil
	// is everyone.
	access map[int64]bool

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
		region: o.Region, ops: map[string]*opState{}, legacy: o.Legacy, loc: o.TimeZone}
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
