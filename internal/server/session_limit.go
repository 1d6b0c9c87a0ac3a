package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"b24learn/internal/apperr"
)

// The app page's own requests (/app/*) each read the database (the status
// panel about six times), and every employee can open the page and then
// call them from a script as fast as they like. One bucket per portal user,
// shared by all their sessions, bounds what one person can make the app do;
// the page itself polls the panel every 2 s and a search types a few
// requests a second.

// DefaultAppRequests is each portal user's bucket of /app requests: 60 at
// once, then 120 a minute.
func DefaultAppRequests() Bucket { return Bucket{Burst: 60, Every: 500 * time.Millisecond} }

// appGate holds the per-user buckets, at most maxKeys users (least recently
// used dropped first, which can only refill that user's bucket).
type appGate struct {
	mu      sync.Mutex
	buckets *keyedBuckets
}

func newAppGate(b Bucket, maxKeys int) *appGate {
	return &appGate{buckets: newKeyedBuckets(b, maxKeys)}
}

// admit takes a token of the user's bucket; when there is none it returns
// false and how long until there is.
func (g *appGate) admit(now time.Time, portalID, userID int64) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	lim := g.buckets.get(strconv.FormatInt(portalID, 10) + ":" + strconv.FormatInt(userID, 10))
	if lim == nil || lim.AllowN(now, 1) {
		return true, 0
	}
	return false, untilToken(lim, now)
}

// refuseBusy answers an /app request past its user's bucket: 429 with
// Retry-After, in the session's language.
func (s *Server) refuseBusy(w http.ResponseWriter, r *http.Request, sess Session, wait time.Duration) {
	// Debug, not a warning: a script past its bucket would otherwise write a
	// log line for every request it keeps sending.
	s.log.DebugContext(r.Context(), "app request refused: too many from one user", "portal_id", sess.PortalID,
		"user_id", sess.UserID, "path", r.URL.Path)
	w.Header().Set("Retry-After", strconv.Itoa(max(int(wait.Round(time.Second)/time.Second), 1)))
	s.error(w, r, apperr.New(apperr.ETOOMANY, msgTooManyRequests.in(sess.Lang)))
}
