package bitrix24

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxFormBytes bounds the body read from a Bitrix24 POST; real payloads are a
// few kilobytes.
const MaxFormBytes = 64 << 10

// AppRequest is the iframe POST Bitrix24 sends to the installer and app pages
// (docs/bitrix24-api.md, "Frame POST"). Nothing in it is trusted until the
// OAuth server confirms it.
type AppRequest struct {
	Domain           string // portal host from the query, e.g. acme.bitrix24.com
	Protocol         string // "1" https, "0" http
	Lang             string
	AppSID           string // ties BX24.js to the parent window; not the application token
	AuthID           string // access token of the user who opened the frame
	AuthExpires      int    // seconds
	RefreshID        string
	ServerEndpoint   string
	ApplicationToken string // newer portals only
	ApplicationScope string // newer portals only, comma-separated
	MemberID         string
	Status           string
	Placement        string
	PlacementOptions string // raw JSON text, "undefined" or ""
}

// ParseAppRequest reads the query string and the form body of r (at most
// MaxFormBytes). Values in the body win over the query.
func ParseAppRequest(r *http.Request) (AppRequest, error) {
	var body url.Values
	if r.PostForm != nil {
		// The caller parsed the form already; the body is consumed.
		return ParseAppRequestValues(r.URL.Query(), r.PostForm)
	}
	if r.Body != nil {
		raw, err := io.ReadAll(io.LimitReader(r.Body, MaxFormBytes+1))
		if err != nil {
			return AppRequest{}, fmt.Errorf("read app request: %w", err)
		}
		if len(raw) > MaxFormBytes {
			return AppRequest{}, fmt.Errorf("app request body too large: %w", ErrBadRequest)
		}
		body, err = url.ParseQuery(string(raw))
		if err != nil {
			return AppRequest{}, fmt.Errorf("parse app request body: %w", ErrBadRequest)
		}
	}
	return ParseAppRequestValues(r.URL.Query(), body)
}

// ParseAppRequestValues decodes the fields from already parsed query and body
// values and checks that the fields the app needs are present and plausible.
func ParseAppRequestValues(query, body url.Values) (AppRequest, error) {
	get := func(k string) string {
		if v := strings.TrimSpace(body.Get(k)); v != "" {
			return v
		}
		return strings.TrimSpace(query.Get(k))
	}
	a := AppRequest{
		Domain:           strings.ToLower(get("DOMAIN")),
		Protocol:         get("PROTOCOL"),
		Lang:             get("LANG"),
		AppSID:           get("APP_SID"),
		AuthID:           get("AUTH_ID"),
		RefreshID:        get("REFRESH_ID"),
		ServerEndpoint:   get("SERVER_ENDPOINT"),
		ApplicationToken: get("APPLICATION_TOKEN"),
		ApplicationScope: get("APPLICATION_SCOPE"),
		MemberID:         get("member_id"),
		Status:           get("status"),
		Placement:        get("PLACEMENT"),
		PlacementOptions: get("PLACEMENT_OPTIONS"),
	}
	if n, err := strconv.Atoi(get("AUTH_EXPIRES")); err == nil {
		a.AuthExpires = n
	}
	switch {
	case a.AuthID == "":
		return a, fmt.Errorf("missing AUTH_ID: %w", ErrBadRequest)
	case a.MemberID == "":
		return a, fmt.Errorf("missing member_id: %w", ErrBadRequest)
	case a.RefreshID == "":
		// Both the installer and the app page need it to prove the request.
		return a, fmt.Errorf("missing REFRESH_ID: %w", ErrBadRequest)
	case !ValidMemberID(a.MemberID):
		return a, fmt.Errorf("bad member_id: %w", ErrBadRequest)
	case !ValidHost(a.Domain):
		return a, fmt.Errorf("bad DOMAIN: %w", ErrBadRequest)
	case !validToken(a.AuthID) || !validToken(a.RefreshID):
		return a, fmt.Errorf("bad token characters: %w", ErrBadRequest)
	case a.Lang != "" && !ValidLang(a.Lang):
		return a, fmt.Errorf("bad LANG: %w", ErrBadRequest)
	}
	return a, nil
}

// ValidMemberID reports whether s looks like a portal's member_id: 32 lower
// case hex characters, as every sample and capture shows. Checking the shape
// costs nothing and keeps garbage away from the OAuth server.
func ValidMemberID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidLang accepts a language code as Bitrix24 sends it ("en", "ru", "tc"),
// allowing a region after '-' or '_': 2 to 8 ASCII letters and digits in all,
// starting with two letters. The install stores it with the portal, so
// control characters, markup and other scripts never get that far.
func ValidLang(s string) bool {
	if len(s) < 2 || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // ASCII lower case; other bytes stay out of range
		switch {
		case c >= 'a' && c <= 'z':
		case i >= 2 && s[i] >= '0' && s[i] <= '9':
		case i >= 2 && i < len(s)-1 && (s[i] == '-' || s[i] == '_'):
		default:
			return false
		}
	}
	return true
}

// ValidHost accepts a host name (dot-separated labels of letters, digits, '-'
// and '_', lower case) with an optional numeric port and nothing else, so a
// DOMAIN can be put into a URL or a CSP header without injection.
func ValidHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if host, port, ok := strings.Cut(h, ":"); ok {
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return false
		}
		h = host
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				return false
			}
		}
	}
	return true
}

// EndpointHost is the host[:port] of an http(s) endpoint, such as an OAuth
// answer's client_endpoint or a renamed portal's redirect, when it is a host
// name by ValidHost: the portal's domain is taken from it and put into URLs
// and the CSP header. Only ASCII letters are lower-cased (host names are
// case-insensitive), so no Unicode folding (the Kelvin sign to k) turns a
// foreign host into an allowed one; user-info is refused.
func EndpointHost(endpoint string) (string, bool) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return "", false
	}
	host := strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, u.Host)
	if !ValidHost(host) {
		return "", false
	}
	return host, true
}

// maxTokenLen bounds an opaque token; real ones are 32 to 70 characters.
const maxTokenLen = 256

// validToken accepts opaque Bitrix24 tokens: their format is not promised, but
// they are non-empty printable ASCII without spaces or separators.
func validToken(s string) bool {
	if s == "" || len(s) > maxTokenLen {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c > '~' || strings.ContainsRune(`"'<>\;`, c) {
			return false
		}
	}
	return true
}

// Event is an event POST from Bitrix24 (ONAPPINSTALL, ONAPPUNINSTALL, ONAPPUPDATE,
// ONUSERADD…), form-encoded with PHP brackets (docs/bitrix24-api.md, "Events").
type Event struct {
	Name      string // upper case, e.g. ONAPPUNINSTALL
	HandlerID string
	TS        time.Time      // zero when absent
	Data      map[string]any // data[...] as decoded by ParseBrackets
	Auth      *EventAuth     // nil when the event carries no auth block
}

// EventAuth is the auth[...] block of an event. ONAPPUNINSTALL carries only
// Domain, ServerEndpoint, ClientEndpoint, MemberID and ApplicationToken.
type EventAuth struct {
	AccessToken      string
	RefreshToken     string
	Expires          time.Time // zero when absent
	ExpiresIn        int
	Scope            string
	Domain           string
	ServerEndpoint   string
	ClientEndpoint   string
	Status           string
	MemberID         string
	UserID           int64
	ApplicationToken string
}

// ParseEventRequest reads an event POST body (at most MaxFormBytes).
func ParseEventRequest(r *http.Request) (Event, error) {
	if r.PostForm != nil {
		return ParseEvent(r.PostForm)
	}
	if r.Body == nil {
		return Event{}, fmt.Errorf("empty event: %w", ErrBadRequest)
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, MaxFormBytes+1))
	if err != nil {
		return Event{}, fmt.Errorf("read event: %w", err)
	}
	if len(raw) > MaxFormBytes {
		return Event{}, fmt.Errorf("event body too large: %w", ErrBadRequest)
	}
	v, err := url.ParseQuery(string(raw))
	if err != nil {
		return Event{}, fmt.Errorf("parse event body: %w", ErrBadRequest)
	}
	return ParseEvent(v)
}

// ParseEvent decodes event fields from parsed form values.
func ParseEvent(v url.Values) (Event, error) {
	tree := ParseBrackets(v)
	ev := Event{
		Name:      strings.ToUpper(strings.TrimSpace(str(tree["event"]))),
		HandlerID: str(tree["event_handler_id"]),
	}
	if ev.Name == "" {
		return ev, fmt.Errorf("missing event: %w", ErrBadRequest)
	}
	if ts := parseIntLoose(str(tree["ts"])); ts > 0 {
		ev.TS = time.Unix(ts, 0).UTC()
	}
	if d, ok := tree["data"].(map[string]any); ok {
		ev.Data = d
	} else {
		ev.Data = map[string]any{}
	}
	if a, ok := tree["auth"].(map[string]any); ok && len(a) > 0 {
		ea := &EventAuth{
			AccessToken:      str(a["access_token"]),
			RefreshToken:     str(a["refresh_token"]),
			Scope:            str(a["scope"]),
			Domain:           strings.ToLower(str(a["domain"])),
			ServerEndpoint:   str(a["server_endpoint"]),
			ClientEndpoint:   str(a["client_endpoint"]),
			Status:           str(a["status"]),
			MemberID:         str(a["member_id"]),
			UserID:           parseIntLoose(str(a["user_id"])),
			ApplicationToken: str(a["application_token"]),
			ExpiresIn:        int(parseIntLoose(str(a["expires_in"]))),
		}
		if exp := parseIntLoose(str(a["expires"])); exp > 0 {
			ea.Expires = time.Unix(exp, 0).UTC()
		}
		ev.Auth = ea
	}
	return ev, nil
}

// CheckRefreshAuth checks the shape of an auth block that the app is to prove
// through the OAuth server (ONAPPINSTALL, ONAPPUPDATE): a member_id, a refresh
// token and an application token that look real, and a plausible domain when
// one is given. It lets garbage be refused before any outgoing call.
func (e Event) CheckRefreshAuth() error {
	a := e.Auth
	switch {
	case a == nil:
		return fmt.Errorf("no auth block: %w", ErrBadRequest)
	case !ValidMemberID(a.MemberID):
		return fmt.Errorf("bad auth[member_id]: %w", ErrBadRequest)
	case !validToken(a.RefreshToken):
		return fmt.Errorf("missing or bad auth[refresh_token]: %w", ErrBadRequest)
	case !validToken(a.ApplicationToken):
		return fmt.Errorf("missing or bad auth[application_token]: %w", ErrBadRequest)
	case a.Domain != "" && !ValidHost(a.Domain):
		return fmt.Errorf("bad auth[domain]: %w", ErrBadRequest)
	}
	return nil
}

// DataString returns data[key] as a string ("" when missing or nested).
func (e Event) DataString(key string) string { return str(e.Data[key]) }

// Clean reports whether an ONAPPUNINSTALL asked to delete the app's data.
func (e Event) Clean() bool { return truthy(e.DataString("CLEAN")) }

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}
