package server

import (
	"container/list"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"b24learn/internal/bitrix24"
	"b24learn/internal/clientaddr"
	"b24learn/internal/i18n"
	"b24learn/internal/store"
)

// Every anonymous /b24/install, /b24/app or ONAPPINSTALL/ONAPPUPDATE event
// is proven by exchanging its refresh token at the Bitrix24 OAuth server with
// the app's client secret, and Bitrix24 may block an app that makes too many
// such calls, for all its portals at once. So before any such call the
// request must take a token from each bucket that applies to it; a request
// that finds one empty is refused with 429 and costs nothing outside.
//
// Every portal user sees the portal's member_id, so strangers can empty the
// portal's bucket. The addresses its users have opened the app from lately
// draw on a bucket of their own instead, which strangers cannot reach.
// Its users include its admins, and any employee can spend the users'
// bucket; so the addresses its proven admins opened the app from draw on a
// bucket of their own (admin_share.go).
//
// Likewise a few addresses polling with made-up member_ids could take every
// token of the one bucket for member_ids not on record as it refills, and no
// new portal could install the app; so each address may take only a share
// of it.

// VerifyLimits bounds the OAuth verifications that requests nobody has
// authenticated yet can cause. The buckets live in the process.
type VerifyLimits struct {
	// PerAddress applies to frame POSTs from one client address (an IPv6
	// client's whole /64). Events are exempt: Bitrix24 delivers the events of
	// many portals from the same few servers.
	PerAddress Bucket
	// PerPortal applies to the frame POSTs naming the member_id of a portal
	// on record here, from addresses not remembered for it.
	PerPortal Bucket
	// PerPortalUsers applies instead of PerPortal to frame POSTs from an
	// address remembered for the portal: one its users opened the app from.
	PerPortalUsers Bucket
	// PerPortalUser applies besides PerPortalUsers, one bucket per user
	// that all the user's remembered addresses share: each fresh address
	// brings a full PerAddress bucket, so without it one user opening the
	// app from address after address could spend PerPortalUsers alone.
	PerPortalUser Bucket
	// PerPortalAdmins applies instead of PerPortalUsers (and PerPortal) to
	// frame POSTs from an address remembered for a user this process knows
	// as a proven admin of the portal (admin_share.go), so that employees,
	// who can empty the users' bucket, cannot lock the admins out of the
	// settings. PerPortalUser still applies. Before the OAuth call the
	// request names no user, so an employee at an admin's address (the
	// office) draws on it too, within that address's own bucket.
	PerPortalAdmins Bucket
	// RememberAddresses is how long a verified open of the app remembers its
	// address for the portal (zero: never). Only each user's last
	// addressesPerUser count, so one user with many addresses cannot spend
	// PerPortalUsers alone.
	RememberAddresses time.Duration
	// PerPortalEvents applies to the events naming such a member_id (zero:
	// as PerPortal). Every portal user sees the member_id, and events are
	// exempt from the address buckets, so one machine could otherwise spend
	// the portal's bucket and lock its people out of the app's page.
	PerPortalEvents Bucket
	// PerPortalTokenEvents applies first to the events whose
	// application_token matches the one stored for the portal (constant-time
	// compare, no call; zero: as PerPortalEvents, in buckets of their own);
	// PerPortalEvents only once it is empty. Bitrix24's own events carry the
	// token, so a flood with a made-up one (anyone told the member_id, which
	// every app on the portal also gets) cannot hold them back; every user
	// who opened the app has seen the token, so those are bounded too.
	PerPortalTokenEvents Bucket
	// Unknown is one bucket shared by all member_ids not on record here, so
	// random member_ids from many addresses cannot make unbounded calls
	// while the portals on record keep their own buckets.
	Unknown Bucket
	// UnknownPerAddress applies before Unknown to the frame POSTs naming a
	// member_id not on record, one bucket per IPv4 address or IPv6 /48
	// (clientaddr.SiteKey: a holder of a /48 has 65536 /64s, each with a
	// fresh PerAddress bucket). Without it two addresses' PerAddress match
	// Unknown's refill, and their flood takes every token a new portal's
	// installer needs; a request it refuses takes nothing from Unknown.
	UnknownPerAddress Bucket
	// MaxKeys bounds the addresses, the /48s, and separately the member_ids,
	// that have a bucket; the least recently used is dropped first. A dropped bucket
	// comes back full, which can only loosen the limit of that one key. It
	// also bounds the users whose addresses are remembered: the least
	// recently seen is forgotten first.
	MaxKeys int
}

// Reasons a request is refused before any OAuth call, as counted in the
// b24learn_b24_refused_total metric.
const (
	refusedMalformed     = "malformed"
	refusedAddress       = "address_limit"
	refusedPortal        = "portal_limit"
	refusedPortalUsers   = "portal_users_limit"
	refusedPortalAdmins  = "portal_admins_limit"
	refusedPortalToken   = "portal_token_events_limit"
	refusedUnknown       = "unknown_limit"
	refusedUnknownAddr   = "unknown_address_limit"
	refusedUnknownPortal = "unknown_portal"
	refusedOAuthServer   = "unknown_oauth_server"
	refusedFrameCalls    = "frame_calls_limit" // after the verification: frame_calls.go
)

// verifyGate holds the buckets of VerifyLimits.
type verifyGate struct {
	mu      sync.Mutex
	addrs   *keyedBuckets
	portals *keyedBuckets
	users   *keyedBuckets // the portals' buckets for their users' addresses
	admins  *keyedBuckets // the portals' buckets for their proven admins' addresses
	events  *keyedBuckets // the portals' event buckets
	tokened *keyedBuckets // the portals' buckets for events with the stored application token
	unknown *rate.Limiter // nil: no limit
	sites   *keyedBuckets // Unknown's share per address (IPv6 /48)
	seen    *userAddrs    // per portal, the addresses its users opened the app from
	// proven are the users known here as admins of their portal; the
	// frame opens and the /app requests ask it too.
	proven *provenAdmins
}

func newVerifyGate(l VerifyLimits) *verifyGate {
	maxKeys := l.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultVerifyLimits().MaxKeys
	}
	events := l.PerPortalEvents
	if events == (Bucket{}) {
		events = l.PerPortal
	}
	tokened := l.PerPortalTokenEvents
	if tokened == (Bucket{}) {
		tokened = events
	}
	return &verifyGate{
		addrs:   newKeyedBuckets(l.PerAddress, maxKeys),
		portals: newKeyedBuckets(l.PerPortal, maxKeys),
		users:   newKeyedBuckets(l.PerPortalUsers, maxKeys),
		admins:  newKeyedBuckets(l.PerPortalAdmins, maxKeys),
		events:  newKeyedBuckets(events, maxKeys),
		tokened: newKeyedBuckets(tokened, maxKeys),
		unknown: newLimiter(l.Unknown),
		sites:   newKeyedBuckets(l.UnknownPerAddress, maxKeys),
		seen:    newUserAddrs(l.RememberAddresses, maxKeys, l.PerPortalUser),
		proven:  newProvenAdmins(maxKeys),
	}
}

func newLimiter(b Bucket) *rate.Limiter {
	if b.Every <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Every(b.Every), max(b.Burst, 1))
}

// admit takes one token from each bucket that applies, or none: a request
// refused by one bucket does not drain the others. ip "" is an event: no
// address bucket, and a portal's event bucket instead of its page one. An
// address remembered for the portal takes from its users' bucket instead of
// the strangers' one, and one remembered for a proven admin of the portal
// from its admins' bucket instead of either. It returns the refusal reason
// ("" when admitted) and how long until the refusing bucket has a token
// again. ip is the client's address; the gate keys it (clientaddr).
func (g *verifyGate) admit(now time.Time, ip, memberID string, known bool) (string, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	addr := clientaddr.Key(ip)
	var take []*rate.Limiter
	// Address first, so a flood from one address refused there does not
	// even create member_id buckets.
	if addr != "" {
		if l := g.addrs.get(addr); l != nil {
			if wait := untilToken(l, now); wait > 0 {
				return refusedAddress, wait
			}
			take = append(take, l)
		}
	}
	// The address's share before Unknown itself, so a flood its share
	// refuses leaves Unknown to the others.
	if !known && ip != "" {
		if l := g.sites.get(clientaddr.SiteKey(ip)); l != nil {
			if wait := untilToken(l, now); wait > 0 {
				return refusedUnknownAddr, wait
			}
			take = append(take, l)
		}
	}
	l, reason := g.unknown, refusedUnknown
	var user *rate.Limiter // the bucket of the user remembered at addr
	switch {
	case known && addr == "":
		l, reason = g.events.get(memberID), refusedPortal
	case known && g.seen.has(now, memberID, addr):
		l, reason = g.users.get(memberID), refusedPortalUsers
		if g.seen.anyUser(now, memberID, addr, func(userID int64) bool { return g.proven.hasMember(memberID, userID) }) {
			l, reason = g.admins.get(memberID), refusedPortalAdmins
		}
		user = g.seen.bucket(now, memberID, addr)
	case known:
		l, reason = g.portals.get(memberID), refusedPortal
	}
	for _, l := range []*rate.Limiter{user, l} {
		if l == nil {
			continue
		}
		if wait := untilToken(l, now); wait > 0 {
			return reason, wait
		}
		take = append(take, l)
	}
	for _, l := range take {
		l.AllowN(now, 1)
	}
	return "", 0
}

// admitEvent takes a token for an event naming the portal memberID on
// record: when tokenMatches, from the portal's bucket for events carrying
// its stored application token, or, that one empty, from its event bucket
// (admit) as any other event, which the holders of the token could spend
// anyway; so only both empty refuse it.
func (g *verifyGate) admitEvent(now time.Time, memberID string, tokenMatches bool) (string, time.Duration) {
	if tokenMatches && g.takeTokened(now, memberID) {
		return "", 0
	}
	reason, wait := g.admit(now, "", memberID, true)
	if reason != "" && tokenMatches {
		reason = refusedPortalToken
	}
	return reason, wait
}

// takeTokened takes a token from memberID's bucket for events with its
// stored application token, if it has one.
func (g *verifyGate) takeTokened(now time.Time, memberID string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.tokened.get(memberID)
	if l == nil {
		return true
	}
	if untilToken(l, now) > 0 {
		return false
	}
	l.AllowN(now, 1)
	return true
}

// remember records that userID of the portal memberID opened the app from
// the address ip, proven by the OAuth server and Bitrix24.
func (g *verifyGate) remember(now time.Time, memberID, ip string, userID int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seen.add(now, memberID, clientaddr.Key(ip), userID)
}

// untilToken is how long until l holds a whole token (0: it does now).
func untilToken(l *rate.Limiter, now time.Time) time.Duration {
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) / float64(l.Limit()) * float64(time.Second)))
}

// keyedBuckets is one bucket per key, at most max keys, least recently used
// dropped first.
type keyedBuckets struct {
	bucket Bucket
	max    int
	order  *list.List // of *keyedBucket, most recently used first
	byKey  map[string]*list.Element
}

type keyedBucket struct {
	key string
	lim *rate.Limiter
}

func newKeyedBuckets(b Bucket, maxKeys int) *keyedBuckets {
	return &keyedBuckets{bucket: b, max: maxKeys, order: list.New(), byKey: map[string]*list.Element{}}
}

// get returns key's bucket, creating it full; nil when the bucket is unlimited.
func (k *keyedBuckets) get(key string) *rate.Limiter {
	if k.bucket.Every <= 0 {
		return nil
	}
	if el, ok := k.byKey[key]; ok {
		k.order.MoveToFront(el)
		return el.Value.(*keyedBucket).lim
	}
	for k.order.Len() >= k.max {
		oldest := k.order.Back()
		k.order.Remove(oldest)
		delete(k.byKey, oldest.Value.(*keyedBucket).key)
	}
	b := &keyedBucket{key: key, lim: newLimiter(k.bucket)}
	k.byKey[key] = k.order.PushFront(b)
	return b.lim
}

// dropIdle forgets the least recently used buckets that have filled up
// again: get makes a full one for a key it does not hold, so only memory
// changes. It stops at the first that is not full, so each call costs what
// it frees.
func (k *keyedBuckets) dropIdle(now time.Time) {
	for el := k.order.Back(); el != nil; el = k.order.Back() {
		b := el.Value.(*keyedBucket)
		if b.lim.TokensAt(now) < float64(b.lim.Burst()) {
			return
		}
		k.order.Remove(el)
		delete(k.byKey, b.key)
	}
}

func (k *keyedBuckets) len() int { return k.order.Len() }

// portalOnRecord reports whether a portal with memberID has a row here
// (installed or not): only a verified request can create one.
func (s *Server) portalOnRecord(ctx context.Context, memberID string) (bool, error) {
	_, err := store.GetPortalByMemberID(ctx, s.pool, memberID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up portal: %w", err)
	}
	return true, nil
}

// eventPortal finds the portal on record with memberID (found false: none).
func (s *Server) eventPortal(ctx context.Context, memberID string) (store.Portal, bool, error) {
	p, err := store.GetPortalByMemberID(ctx, s.pool, memberID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Portal{}, false, nil
	}
	if err != nil {
		return store.Portal{}, false, fmt.Errorf("look up portal: %w", err)
	}
	return p, true, nil
}

// storedTokenMatches reports whether token is the application token stored
// for p, compared in constant time; with none stored nothing matches.
func (s *Server) storedTokenMatches(ctx context.Context, p store.Portal, token string) (bool, error) {
	stored, err := store.ApplicationToken(ctx, s.pool, s.cfg.Keyring, p.ID)
	if err != nil {
		return false, err
	}
	return stored != "" && subtle.ConstantTimeCompare([]byte(stored), []byte(token)) == 1, nil
}

// admitFrame decides whether a frame POST naming memberID may cost an OAuth
// call. When it returns false it has answered the request, in lang.
func (s *Server) admitFrame(w http.ResponseWriter, r *http.Request, memberID string, lang i18n.Lang) bool {
	known, err := s.portalOnRecord(r.Context(), memberID)
	if err != nil {
		s.errorIn(w, r, lang, err)
		return false
	}
	reason, wait := s.gate.admit(s.now(), clientIP(r), memberID, known)
	if reason != "" {
		s.refuseLimited(w, r, lang, reason, wait)
		return false
	}
	return true
}

// guardRefreshEvent runs before the events the app proves through the OAuth
// server (ONAPPINSTALL, ONAPPUPDATE). It refuses a malformed auth block,
// ignores an event for a portal not on record or not installed here (its
// application token would have nothing to attach to; the installer stores
// the portal), and takes a token from the portal's bucket. When it returns false it has
// answered the request.
func (s *Server) guardRefreshEvent(w http.ResponseWriter, r *http.Request, ev bitrix24.Event) bool {
	if ev.Name != "ONAPPINSTALL" && ev.Name != "ONAPPUPDATE" {
		return true
	}
	if err := ev.CheckRefreshAuth(); err != nil {
		s.refuseMalformed()
		s.log.InfoContext(r.Context(), "bad event", "event", ev.Name, "error", err, "request_id", requestID(r))
		s.error(w, r, errMalformedEvent)
		return false
	}
	if _, err := s.oauthFor(ev.Auth.ServerEndpoint); err != nil {
		s.metrics.B24Refused.WithLabelValues(refusedOAuthServer).Inc()
		s.log.WarnContext(r.Context(), "event names an OAuth server not on the list", "event", ev.Name, "error", err,
			"request_id", requestID(r))
		s.error(w, r, errUnverifiedEvent)
		return false
	}
	p, found, err := s.eventPortal(r.Context(), ev.Auth.MemberID)
	if err != nil {
		s.error(w, r, err)
		return false
	}
	if !found || !p.Installed() {
		// Nor is a refresh spent on one for a portal uninstalled here: an
		// ONAPPINSTALL may come before the installer page with the very
		// pair that page then carries (docs/bitrix24-api.md, "Events"),
		// and spending it would refuse the reinstall.
		s.metrics.B24Refused.WithLabelValues(refusedUnknownPortal).Inc()
		s.log.InfoContext(r.Context(), "app token event for a portal not installed here ignored", "event", ev.Name,
			"request_id", requestID(r))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ignored\n"))
		return false
	}
	matches, err := s.storedTokenMatches(r.Context(), p, ev.Auth.ApplicationToken)
	if err != nil {
		s.error(w, r, err)
		return false
	}
	// No address bucket: Bitrix24 sends every portal's events from a few
	// servers. The event is verified below whichever bucket it drew on.
	if reason, wait := s.gate.admitEvent(s.now(), ev.Auth.MemberID, matches); reason != "" {
		// Bitrix24's servers read the answer to an event, nobody's page.
		s.refuseLimited(w, r, i18n.EN, reason, wait)
		return false
	}
	return true
}

// refuseLimited answers a request refused by a bucket: 429 with Retry-After,
// in lang.
func (s *Server) refuseLimited(w http.ResponseWriter, r *http.Request, lang i18n.Lang, reason string, wait time.Duration) {
	s.metrics.B24Refused.WithLabelValues(reason).Inc()
	// Debug, not a warning: a script replaying frame POSTs past its bucket
	// would write a line per request; the metric counts them.
	s.log.DebugContext(r.Context(), "oauth verification refused", "reason", reason, "path", r.URL.Path,
		"request_id", requestID(r))
	s.errorIn(w, r, lang, errTooMany(msgVerifyBusy.in(lang), wait))
}

// refuseMalformed counts a request turned away for its shape.
func (s *Server) refuseMalformed() {
	s.metrics.B24Refused.WithLabelValues(refusedMalformed).Inc()
}
