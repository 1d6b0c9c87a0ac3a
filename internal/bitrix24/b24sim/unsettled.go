package b24sim

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"b24learn/internal/simvariant"
)

// Unsettled picks one plausible answer for each Bitrix24 behaviour that no
// source settles (docs/bitrix24-api.md, "Unsettled behaviour"). The zero
// value is the simulator's default guess; tests run the client against the
// other choices too, so the client must not depend on any of them.
//
// Two older switches predate this struct and stay where they are:
// PortalOptions.AfterUninstall (which error the tokens of an uninstalled app
// get) and Options.InvitedFilter.
type Unsettled struct {
	// RefreshDomain is what the OAuth refresh answer carries in domain: the
	// docs' sample names the OAuth server, a captured answer the portal
	// (docs/bitrix24-api.md, "OAuth refresh").
	RefreshDomain RefreshDomain
	// RefreshScopeApp answers a refresh with the literal scope "app", as
	// older samples and captures do, instead of the granted scopes
	// (docs/bitrix24-api.md, "OAuth refresh").
	RefreshScopeApp bool
	// AuthTexts is the wording of invalid_token, invalid_grant and
	// invalid_client, which no source gives (docs/bitrix24-api.md, "Errors").
	AuthTexts AuthTexts
	// PaymentRequiredStatus is the HTTP status of a refresh refused with
	// PAYMENT_REQUIRED; the docs name the code but no status
	// (docs/bitrix24-api.md, "OAuth refresh"). 0 is 400.
	PaymentRequiredStatus int
	// Rebind is what event.bind does with a handler already bound to the
	// event: only the wording "Handler already binded" is reported, not
	// its code (docs/bitrix24-api.md, "Events").
	Rebind Rebind
	// ExtranetDepartment is how user.get shows an extranet user's missing
	// department: the empty value is [] or a missing key
	// (docs/bitrix24-api.md, "Extranet users").
	ExtranetDepartment ExtranetDepartment
	// OAuthAppInfo is the shape of app.info on the OAuth server, of which
	// only result.install.uri is known (docs/bitrix24-api.md, "Regional
	// OAuth servers").
	OAuthAppInfo OAuthAppInfo
	// UserAddActive is how ONUSERADD sends data[ACTIVE]: the docs' sample
	// has "Y", the code that builds it a boolean, form-encoded as "1"
	// (docs/bitrix24-api.md, "Events").
	UserAddActive UserAddActive
	// UpdateEvent is whether ONAPPUPDATE reaches the app: an update drops
	// the app's event bindings, and no source says whether the event goes
	// out before that (docs/bitrix24-api.md, "Events"). A failed delivery,
	// which Bitrix24 does not retry, looks the same as UpdateEventLost.
	UpdateEvent UpdateEvent
	// CodesOtherCase writes each error code in the other letter case
	// (expired_token as EXPIRED_TOKEN, QUERY_LIMIT_EXCEEDED as
	// query_limit_exceeded): codes come in either case, and no source says
	// which code comes in which (docs/bitrix24-api.md, "Errors").
	CodesOtherCase bool
	// RefreshLifetime is how long a refresh token nobody uses stays good:
	// 180 days by the current docs, 28 days by an older official course
	// (docs/bitrix24-api.md, "OAuth refresh").
	RefreshLifetime RefreshLifetime
	// ScopeErrors403 answers insufficient_scope and user_access_error with
	// 403, as the docs' table has them, instead of the 401 Bitrix24's code
	// gives every error of its auth path (docs/bitrix24-api.md, "Errors").
	ScopeErrors403 bool
	// CountlessTotal answers a start=-1 page (which skips the count)
	// without a total key, where the default answers "total":0: the docs
	// allow both (docs/bitrix24-api.md, "Answers").
	CountlessTotal bool
	// NumericIDs writes the IDs of department.get and user.get rows (ID,
	// PARENT, UF_HEAD) as JSON numbers and UF_DEPARTMENT's as strings: IDs
	// come either way depending on the method and the portal's version
	// (docs/bitrix24-api.md, "Answers").
	NumericIDs bool
	// FramePlacement is the frame POST's PLACEMENT_OPTIONS on the app
	// page: a JSON text, the literal undefined, or no field at all
	// (docs/bitrix24-api.md, "Frame POST").
	FramePlacement FramePlacement
	// InstallEventSparse sends ONAPPINSTALL as the docs' sample has it: no
	// auth[expires], auth[user_id], data[ACTIVE] or data[INSTALLED], which
	// the SDKs' captured fixtures carry (docs/bitrix24-api.md, "Events").
	InstallEventSparse bool
	// PlainListIgnored drops a user.get filter on ID whose value is a list
	// but has no operator: only the @ prefix is documented to take a list
	// (docs/bitrix24-api.md, "One user and a people search"), so a portal
	// may read the plain key otherwise; dropped, every user matches.
	PlainListIgnored bool
	// NoOperatingKeys leaves operating and operating_reset_at out of every
	// time block, as a portal outside the cloud may: the docs name them
	// for the cloud only, and the operating limit still applies
	// (docs/bitrix24-api.md, "Operating time limit").
	NoOperatingKeys bool
	// EmptyValues is how department.get and user.get rows show a value
	// the object has none of (a root's PARENT, a department's UF_HEAD
	// without a head, a user's missing e-mail or middle name): Bitrix24's
	// code leaves such keys out, while empty values come as null, "" or
	// false depending on method and version (docs/bitrix24-api.md,
	// "Answers").
	EmptyValues EmptyValues
	// InstallEventTokens is which token pair ONAPPINSTALL carries: the
	// docs' samples show the installer frame's own pair in it, which the
	// app may have refreshed (and so spent) by the time the event comes;
	// no source says whether it is that pair or a chain of its own
	// (docs/bitrix24-api.md, "Events").
	InstallEventTokens InstallEventTokens
	// InstallEventEarly also sends ONAPPINSTALL when the install starts, to
	// the version card's install event handler URL, before the installer
	// page opens and with the pair that page then carries: the docs give
	// that URL to apps without a UI, and no source says whether an app
	// with one may fill it in (docs/bitrix24-api.md, "Events").
	InstallEventEarly bool
}

// InstallEventTokens is the token pair of ONAPPINSTALL.
type InstallEventTokens int

const (
	InstallEventOwnChain   InstallEventTokens = iota // a chain issued for the event
	InstallEventInstallers                           // the pair of the admin's last frame POST to the installer
)

// EmptyValues is the form of a row's value that is not there.
type EmptyValues int

const (
	EmptyOmitted EmptyValues = iota // the key left out, as Bitrix24's code does
	EmptyNull                       // the key with null
	EmptyString                     // the key with ""
	EmptyFalse                      // the key with false, as PHP's empty results read
)

// noValue sets key in row to the switch's form of no value, or leaves it out.
func (u Unsettled) noValue(row map[string]any, key string) {
	switch u.EmptyValues {
	case EmptyNull:
		row[key] = nil
	case EmptyString:
		row[key] = ""
	case EmptyFalse:
		row[key] = false
	}
}

// timeBlock applies the switches to an answer's time block tb.
func (u Unsettled) timeBlock(tb map[string]any) map[string]any {
	if u.NoOperatingKeys {
		delete(tb, "operating")
		delete(tb, "operating_reset_at")
	}
	return tb
}

// FramePlacement is the form of the frame POST's PLACEMENT_OPTIONS.
type FramePlacement int

const (
	FramePlacementJSON      FramePlacement = iota // {"any":"28\/"}, as captured
	FramePlacementUndefined                       // the literal text undefined
	FramePlacementMissing                         // no PLACEMENT_OPTIONS field
)

// id is an ID as a row of department.get or user.get writes it.
func (u Unsettled) id(n int64) any {
	if u.NumericIDs {
		return n
	}
	return strconv.FormatInt(n, 10)
}

// departments is a user row's UF_DEPARTMENT: numbers, or strings under
// NumericIDs (the ID's own form flipped, as the two are seen apart).
func (u Unsettled) departments(ids []int64) any {
	if !u.NumericIDs {
		return append([]int64{}, ids...)
	}
	out := make([]string, len(ids))
	for i, d := range ids {
		out[i] = strconv.FormatInt(d, 10)
	}
	return out
}

// restStatus is the HTTP status of a refused REST call e.
func (u Unsettled) restStatus(e *restErr) int {
	if u.ScopeErrors403 && (strings.EqualFold(e.code, "insufficient_scope") || strings.EqualFold(e.code, "user_access_error")) {
		return http.StatusForbidden
	}
	return e.status
}

// RefreshLifetime is the idle life of a refresh token.
type RefreshLifetime int

const (
	RefreshLifetimeDocs   RefreshLifetime = iota // Options.RefreshTTL, 180 days by default
	RefreshLifetime28Days                        // 28 days (or Options.RefreshTTL if shorter)
)

// refreshLifetime is the idle life of a refresh token under the switch;
// ttl is Options.RefreshTTL.
func (u Unsettled) refreshLifetime(ttl time.Duration) time.Duration {
	if u.RefreshLifetime == RefreshLifetime28Days {
		return min(ttl, 28*24*time.Hour)
	}
	return ttl
}

// UpdateEvent is what becomes of ONAPPUPDATE when an update drops the bindings.
type UpdateEvent int

const (
	UpdateEventSent UpdateEvent = iota // sent to the handlers bound before the update
	UpdateEventLost                    // the bindings go first: no handler gets it
)

// RefreshDomain is what a refresh answer's domain holds.
type RefreshDomain int

const (
	RefreshDomainPortal RefreshDomain = iota // the portal's host, as captured
	RefreshDomainServer                      // the OAuth server's host, as in the docs' sample
	RefreshDomainAbsent                      // no domain key at all
)

// AuthTexts is a wording of the auth errors' error_description.
type AuthTexts int

const (
	AuthTextsSim   AuthTexts = iota // "The access token provided is invalid", "Invalid grant", "Invalid client"
	AuthTextsOther                  // other sentences of the same meaning
	AuthTextsNone                   // no error_description key
)

// Rebind is what event.bind answers for a binding that exists.
type Rebind int

const (
	// RebindBinded: 400 ERROR_CORE "Handler already binded" (b24phpsdk#446).
	RebindBinded Rebind = iota
	// RebindOtherError: refused with another code and wording.
	RebindOtherError
	// RebindAccepted: result true, and the binding stays single.
	RebindAccepted
	// RebindDuplicated: result true, and a second binding is added, so
	// every event reaches the handler twice.
	RebindDuplicated
)

// ExtranetDepartment is how an extranet user's missing department reads.
type ExtranetDepartment int

const (
	ExtranetDepartmentMixed   ExtranetDepartment = iota // [] for even user IDs, missing for odd ones
	ExtranetDepartmentEmpty                             // always "UF_DEPARTMENT": []
	ExtranetDepartmentMissing                           // never an UF_DEPARTMENT key
)

// OAuthAppInfo is a shape of the OAuth server's app.info answer.
type OAuthAppInfo int

const (
	OAuthAppInfoFull OAuthAppInfo = iota // client_id, member_id, user_id and install{installed, uri, domain, …}
	OAuthAppInfoURI                      // only install.uri
)

// UserAddActive is the form of ONUSERADD's data[ACTIVE].
type UserAddActive int

const (
	UserAddActiveY   UserAddActive = iota // "Y", as in the docs' sample
	UserAddActiveOne                      // "1", a PHP boolean form-encoded
)

// Variant is a named choice of Unsettled behaviours.
type Variant = simvariant.Variant[Unsettled]

// Variants are the choices a client must pass (simvariant.Variant says which).
func Variants() []Variant {
	return []Variant{
		{Name: "default", Unsettled: Unsettled{}},
		{Name: "refresh domain is the OAuth server", Unsettled: Unsettled{RefreshDomain: RefreshDomainServer}},
		{Name: "refresh without domain", Unsettled: Unsettled{RefreshDomain: RefreshDomainAbsent}},
		{Name: "refresh scope app", Unsettled: Unsettled{RefreshScopeApp: true}},
		{Name: "other auth texts", Unsettled: Unsettled{AuthTexts: AuthTextsOther}},
		{Name: "no auth texts", Unsettled: Unsettled{AuthTexts: AuthTextsNone}},
		{Name: "payment required 402", Unsettled: Unsettled{PaymentRequiredStatus: http.StatusPaymentRequired}},
		{Name: "payment required 403", Unsettled: Unsettled{PaymentRequiredStatus: http.StatusForbidden}},
		{Name: "rebind other error", Unsettled: Unsettled{Rebind: RebindOtherError}},
		{Name: "rebind accepted", Unsettled: Unsettled{Rebind: RebindAccepted}},
		{Name: "rebind duplicated", Unsettled: Unsettled{Rebind: RebindDuplicated}},
		{Name: "extranet department []", Unsettled: Unsettled{ExtranetDepartment: ExtranetDepartmentEmpty}},
		{Name: "extranet department missing", Unsettled: Unsettled{ExtranetDepartment: ExtranetDepartmentMissing}},
		{Name: "OAuth app.info install.uri only", Unsettled: Unsettled{OAuthAppInfo: OAuthAppInfoURI}},
		{Name: "ONUSERADD ACTIVE 1", Unsettled: Unsettled{UserAddActive: UserAddActiveOne}},
		{Name: "ONAPPUPDATE lost", Unsettled: Unsettled{UpdateEvent: UpdateEventLost}},
		{Name: "error codes in the other case", Unsettled: Unsettled{CodesOtherCase: true}},
		{Name: "refresh token lives 28 days", Unsettled: Unsettled{RefreshLifetime: RefreshLifetime28Days}},
		{Name: "scope errors 403", Unsettled: Unsettled{ScopeErrors403: true}},
		{Name: "start=-1 without total", Unsettled: Unsettled{CountlessTotal: true}},
		{Name: "numeric IDs", Unsettled: Unsettled{NumericIDs: true}},
		{Name: "PLACEMENT_OPTIONS undefined", Unsettled: Unsettled{FramePlacement: FramePlacementUndefined}},
		{Name: "no PLACEMENT_OPTIONS", Unsettled: Unsettled{FramePlacement: FramePlacementMissing}},
		{Name: "ONAPPINSTALL as the docs' sample", Unsettled: Unsettled{InstallEventSparse: true}},
		{Name: "user.get ID list without @ ignored", Unsettled: Unsettled{PlainListIgnored: true}},
		{Name: "no operating keys", Unsettled: Unsettled{NoOperatingKeys: true}},
		{Name: "empty values null", Unsettled: Unsettled{EmptyValues: EmptyNull}},
		{Name: "empty values \"\"", Unsettled: Unsettled{EmptyValues: EmptyString}},
		{Name: "empty values false", Unsettled: Unsettled{EmptyValues: EmptyFalse}},
		{Name: "ONAPPINSTALL with the installer's tokens", Unsettled: Unsettled{InstallEventTokens: InstallEventInstallers}},
		{Name: "ONAPPINSTALL before the installer", Unsettled: Unsettled{InstallEventEarly: true}},
		{Name: "all flipped", Unsettled: Unsettled{RefreshDomain: RefreshDomainServer, RefreshScopeApp: true, AuthTexts: AuthTextsOther,
			PaymentRequiredStatus: http.StatusPaymentRequired, Rebind: RebindOtherError,
			ExtranetDepartment: ExtranetDepartmentMissing, OAuthAppInfo: OAuthAppInfoURI, UserAddActive: UserAddActiveOne,
			UpdateEvent: UpdateEventLost, CodesOtherCase: true, RefreshLifetime: RefreshLifetime28Days, ScopeErrors403: true,
			CountlessTotal: true, NumericIDs: true, FramePlacement: FramePlacementUndefined, InstallEventSparse: true,
			PlainListIgnored: true, NoOperatingKeys: true, EmptyValues: EmptyFalse,
			InstallEventTokens: InstallEventInstallers}},
		{Name: "all flipped, the other way", Unsettled: Unsettled{RefreshDomain: RefreshDomainAbsent, AuthTexts: AuthTextsNone,
			PaymentRequiredStatus: http.StatusForbidden, Rebind: RebindDuplicated, ExtranetDepartment: ExtranetDepartmentEmpty,
			FramePlacement: FramePlacementMissing, EmptyValues: EmptyNull, InstallEventEarly: true}},
	}
}

// SetUnsettled changes the switches of a running simulator, for tests whose
// simulator someone else started.
func (s *Sim) SetUnsettled(u Unsettled) { s.switches.Store(&u) }

// unsettled is the switches in force; any goroutine may ask, with or
// without s.mu.
func (s *Sim) unsettled() Unsettled { return *s.switches.Load() }

// otherAuthTexts are AuthTextsOther's sentences, by lower-case code.
var otherAuthTexts = map[string]string{
	"invalid_token":  "Unable to authorize: the token is not valid",
	"invalid_grant":  "The refresh token is invalid or has expired",
	"invalid_client": "Client authentication failed",
}

// errBody is an error answer's body with the description AuthTexts gives
// the auth errors.
func (u Unsettled) errBody(code, desc string) map[string]any {
	other, auth := otherAuthTexts[strings.ToLower(code)]
	if u.CodesOtherCase && code == strings.ToLower(code) {
		code = strings.ToUpper(code)
	} else if u.CodesOtherCase {
		code = strings.ToLower(code)
	}
	switch {
	case auth && u.AuthTexts == AuthTextsOther:
		desc = other
	case auth && u.AuthTexts == AuthTextsNone:
		return map[string]any{"error": code}
	}
	return errBody(code, desc)
}

// oauthError writes a refused token request.
func (s *Sim) oauthError(w http.ResponseWriter, status int, code, desc string) {
	u := s.unsettled()
	if code == "PAYMENT_REQUIRED" && u.PaymentRequiredStatus != 0 {
		status = u.PaymentRequiredStatus
	}
	writeJSON(w, status, u.errBody(code, desc))
}

// refreshAnswer applies the switches to a refresh answer m of the OAuth
// server at base URL server.
func (u Unsettled) refreshAnswer(m map[string]any, server string) map[string]any {
	switch u.RefreshDomain {
	case RefreshDomainServer:
		m["domain"] = hostOf(server)
	case RefreshDomainAbsent:
		delete(m, "domain")
	}
	if u.RefreshScopeApp {
		m["scope"] = "app"
	}
	return m
}

func hostOf(base string) string {
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		return u.Host
	}
	return base
}

// extranetDepartment sets an extranet user's UF_DEPARTMENT in row.
func (u Unsettled) extranetDepartment(row map[string]any, id int64) {
	switch {
	case u.ExtranetDepartment == ExtranetDepartmentEmpty,
		u.ExtranetDepartment == ExtranetDepartmentMixed && id%2 == 0:
		row["UF_DEPARTMENT"] = []int64{}
	}
}

// oauthAppInfo is the OAuth server's app.info result.
func (u Unsettled) oauthAppInfo(full map[string]any) map[string]any {
	if u.OAuthAppInfo != OAuthAppInfoURI {
		return full
	}
	install, _ := full["install"].(map[string]any)
	return map[string]any{"install": map[string]any{"uri": install["uri"]}}
}

// userAddActive is data[ACTIVE] of an ONUSERADD for a user who is active.
func (u Unsettled) userAddActive(active bool) string {
	switch {
	case u.UserAddActive == UserAddActiveOne && active:
		return "1"
	case u.UserAddActive == UserAddActiveOne:
		return "" // PHP's false form-encodes as nothing
	case active:
		return "Y"
	}
	return "N"
}
