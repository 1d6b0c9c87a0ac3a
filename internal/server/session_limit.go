package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The app page's own requests (/app/*) each read the database (the status
// panel about six times), and every employee can open the page and then
// call them from a script as fast as they like. One bucket per portal user,
// shared by all their sessions, bounds what one person can make the app do;
// the page itself polls the panel every 2 s and a search types a few
// requests a second (appRequestLimits).

// appGate holds the per-user buckets and the per-portal ones, at most
// maxKeys users and maxKeys portals (least recently used dropped first,
// which can only refill that user's or portal's bucket), and forgets those
// that have filled up again. It bounds the /app requests and, in gates of
// their own, the Bitrix24 calls of the admin proofs (admin_proof.go) and of
// the frame opens (frame_calls.go). A gate with PerPortalAdmins has a
// second per-portal bucket, for the portal's proven admins only.
type appGate struct {
	mu      sync.Mutex
	buckets *keyedBuckets
	portals *keyedBuckets
	admins  *keyedBuckets // nil: admins take from portals as everyone
}

// gateLimits are an appGate's buckets: PerUser for each portal user,
// PerPortal for each portal, shared by its users, and PerPortalAdmins in
// place of PerPortal for the portal's proven admins (admin_share.go), which
// no employee can empty (zero: admins take from PerPortal as everyone).
type gateLimits struct {
	PerUser         Bucket
	PerPortal       Bucket
	PerPortalAdmins Bucket
}

func newAppGate(l gateLimits, maxKeys int) *appGate {
	g := &appGate{buckets: newKeyedBuckets(l.PerUser, maxKeys), portals: newKeyedBuckets(l.PerPortal, maxKeys)}
	if l.PerPortalAdmins != (Bucket{}) {
		g.admins = newKeyedBuckets(l.PerPortalAdmins, maxKeys)
	}
	return g
}

// admit takes a token of the user's bucket and one of the portal's; when
// either has none it returns false and how long until there is. A request
// its user's bucket refuses takes nothing from the portal's, so one user
// past their own bound does not spend the others' share. admin (a proven
// admin of the portal) takes the admins' portal bucket instead, when g has
// one.
func (g *appGate) admit(now time.Time, portalID, userID int64, admin bool) (bool, time.Duration) {
	return g.admitKeys(now, strconv.FormatInt(portalID, 10), strconv.FormatInt(userID, 10), admin)
}

// admitKeys is admit for a portal and a user named by keys (a frame open
// knows its portal by member_id only); user "" takes from the portal's
// bucket alone.
func (g *appGate) admitKeys(now time.Time, portal, userKey string, admin bool) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.buckets.dropIdle(now)
	g.portals.dropIdle(now)
	if g.admins != nil {
		g.admins.dropIdle(now)
	}
	var user *rate.Limiter
	if userKey != "" {
		user = g.buckets.get(portal + ":" + userKey)
	}
	var shared *rate.Limiter
	if admin && g.admins != nil {
		shared = g.admins.get(portal)
	} else {
		shared = g.portals.get(portal)
	}
	if user != nil && user.TokensAt(now) < 1 {
		return false, untilToken(user, now)
	}
	if shared != nil && !shared.AllowN(now, 1) {
		return false, untilToken(shared, now)
	}
	if user != nil {
		user.AllowN(now, 1)
	}
	return true, 0
}

// refuseBusy answers an /app request past its user's or portal's bucket: 429 with
// Retry-After, in the session's language.
func (s *Server) refuseBusy(w http.ResponseWriter, r *http.Request, sess Session, wait time.Duration) {
	// Debug, not a warning: a script past its bucket would otherwise write a
	// log line for every request it keeps sending.
	s.log.DebugContext(r.Context(), "app request refused: too many from one user or portal", "portal_id", sess.PortalID,
		"user_id", sess.UserID, "path", r.URL.Path)
	s.error(w, r, errTooMany(msgTooManyRequests.in(sess.Lang), wait))
}
