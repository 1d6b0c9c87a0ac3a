package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"b24learn/internal/apperr"
	"b24learn/internal/bitrix24"
	"b24learn/internal/i18n"
	"b24learn/internal/store"
)

// A session says "admin" for its two hours, but Bitrix24 may have taken the
// rights away since: an admin demoted, or dismissed, who keeps the tab (or
// its token) and never opens the app again would otherwise go on changing
// settings, starting syncs and approving deactivations, and reading reports,
// CSVs and the employee search, until it expires. So every request behind
// the admin check, and the admin's view of the status panel, is proven again
// as the open was:
// Bitrix24's `profile` on the user's own access token must name the session's
// user as a portal admin.

// b24AuthHeader carries a fresher access token of the user than the
// session's, which BX24.js gives the page; it is tried when the session's
// own no longer works (tokens live an hour, sessions two).
const b24AuthHeader = "X-B24-Auth"

// adminProofTimeout bounds the profile call of one proof (a change, a read,
// or the status panel's poll, whose own shorter limit, panelProofTimeout,
// comes first).
const adminProofTimeout = 15 * time.Second

// adminProofTTL is how long a proof stands for the user's next changes in
// this process: a script (or a form saved twice) asks Bitrix24 once, not per
// request against the portal's REST budget its syncs need; a demotion takes
// effect within it.
const adminProofTTL = 30 * time.Second

// adminRefusalTTL is how long Bitrix24's refusal of a session's tokens
// stands for the same tokens: a dismissed admin's open tab would otherwise
// cost up to two profile calls per change it posts. The refusal is kept
// with the tokens it was given for, so a fresher token (the page's, or a
// new open's session after a re-promotion) is asked at once; a refused
// token does not come back to life, so the bound is only for memory.
const adminRefusalTTL = 10 * time.Second

// adminUnreachableTTL is how long "Bitrix24 could not be asked" stands for
// the same tokens: a tab polling the status panel every 2 s would otherwise
// call a Bitrix24 that is down (or out of quota) as often, for the same
// answer.
const adminUnreachableTTL = 10 * time.Second

// Each proof adminProofs does not remember costs Bitrix24 one or two
// `profile` calls, from the portal's REST budget its syncs need. A script
// with a session that sends a new X-B24-Auth each time is never answered
// from memory (a refusal stands only for the tokens it was given for), so
// the calls themselves are bounded too: each takes a token of the user's
// bucket and one of the portal's first (an appGate of their own,
// adminProofCallLimits), and past either the request is answered 429 with
// Retry-After, Bitrix24 not asked. An admin's page costs at most two calls
// per adminProofTTL.

// adminProofs remembers, for each (portal, user, install), when it was last
// proven an admin, or when Bitrix24 last refused the tokens it had or could
// not be asked with them, at most maxProofs of them.
type adminProofs struct {
	mu sync.Mutex
	at map[proofKey]proofEntry
}

type proofKey struct{ portalID, userID, gen int64 }

// proofEntry is a proof, or a refusal of (or no answer to) the tokens whose
// digest is tokens.
type proofEntry struct {
	at     time.Time
	state  proofState
	tokens [sha256.Size]byte
}

// proofState is what Bitrix24 last said of a user's admin rights.
type proofState int

const (
	proofUnknown     proofState = iota
	proofAdmin                  // the user is an admin
	proofRefused                // the tokens were refused
	proofUnreachable            // Bitrix24 could not be asked
)

const maxProofs = 10000

func newAdminProofs() *adminProofs { return &adminProofs{at: map[proofKey]proofEntry{}} }

// tokensDigest names the tokens a change was asked with, in the order tried,
// without keeping them.
func tokensDigest(tokens []string) [sha256.Size]byte {
	return sha256.Sum256([]byte(strings.Join(tokens, "\n")))
}

func (e proofEntry) ttl() time.Duration {
	switch e.state {
	case proofAdmin:
		return adminProofTTL
	case proofUnreachable:
		return adminUnreachableTTL
	}
	return adminRefusalTTL
}

// lookup says whether a proof, or a refusal of (or no answer to) these very
// tokens, stands.
func (a *adminProofs) lookup(k proofKey, tokens [sha256.Size]byte, now time.Time) proofState {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.at[k]
	if !ok || now.Sub(e.at) >= e.ttl() || now.Before(e.at) || (e.state != proofAdmin && e.tokens != tokens) {
		return proofUnknown
	}
	return e.state
}

// set records a proof (ok) or forgets one (a "no" from Bitrix24 is kept in
// the database: recordAdminCheck).
func (a *adminProofs) set(k proofKey, now time.Time, ok bool) {
	if !ok {
		a.mu.Lock()
		delete(a.at, k)
		a.mu.Unlock()
		return
	}
	a.put(k, proofEntry{at: now, state: proofAdmin})
}

// refused records that Bitrix24 refused these tokens of the user.
func (a *adminProofs) refused(k proofKey, tokens [sha256.Size]byte, now time.Time) {
	a.put(k, proofEntry{at: now, state: proofRefused, tokens: tokens})
}

// unreachable records that Bitrix24 could not be asked with these tokens.
func (a *adminProofs) unreachable(k proofKey, tokens [sha256.Size]byte, now time.Time) {
	a.put(k, proofEntry{at: now, state: proofUnreachable, tokens: tokens})
}

func (a *adminProofs) put(k proofKey, e proofEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.at) >= maxProofs {
		for key, old := range a.at {
			if e.at.Sub(old.at) >= old.ttl() || e.at.Before(old.at) {
				delete(a.at, key)
			}
		}
		if len(a.at) >= maxProofs {
			clear(a.at) // all fresh: forgetting them costs a profile call each
		}
	}
	a.at[k] = e
}

// profileSource answers Bitrix24's `profile` for an access token of a user of
// portal p; tests put a recorder in its place.
type profileSource interface {
	Profile(ctx context.Context, p store.Portal, accessToken string) (bitrix24.Profile, error)
}

// liveProfiles asks the portal's REST endpoint under the address rule, with
// the token as it is: no refresh, the token is the user's, not the app's.
type liveProfiles struct{ s *Server }

func (l liveProfiles) Profile(ctx context.Context, p store.Portal, accessToken string) (bitrix24.Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, adminProofTimeout)
	defer cancel()
	c := bitrix24.New(bitrix24.Config{Endpoint: p.ClientEndpoint, Tokens: fixedToken(accessToken), HTTP: l.s.b24HTTP,
		Logger: l.s.log, MaxRetries: 3})
	return c.Profile(ctx)
}

// fixedToken is a token source that cannot refresh: an expired token is the
// answer.
type fixedToken string

func (t fixedToken) Token(context.Context) (bitrix24.Token, error) {
	return bitrix24.Token{AccessToken: string(t)}, nil
}

func (t fixedToken) Refresh(context.Context, bitrix24.Token) (bitrix24.Token, error) {
	return bitrix24.Token{}, bitrix24.ErrExpiredToken
}

// errTokenNotTheUsers: a token that works but is another user's.
var errTokenNotTheUsers = errors.New("the access token belongs to another user")

// proveAdmin asks Bitrix24 whether the session's user is still a portal
// admin, with the session's token and then the page's fresher one. A "no"
// is recorded as an open's would be, so the user's sessions turn read-only.
// It returns nil when proven, else the error to answer with: a definite
// "no" (definiteNo) when Bitrix24 said so or refused the tokens, a 429 when
// the calls' buckets are empty, else a 503 (Bitrix24 unreachable, slow,
// failing); neither of the last two takes the user's rights away.
func (s *Server) proveAdmin(ctx context.Context, p store.Portal, sess Session, r *http.Request) error {
	key := proofKey{p.ID, sess.UserID, sess.Gen}
	var tokens []string
	for _, t := range []string{sess.Auth, strings.TrimSpace(r.Header.Get(b24AuthHeader))} {
		if t != "" && validAccessToken(t) && (len(tokens) == 0 || tokens[0] != t) {
			tokens = append(tokens, t)
		}
	}
	digest := tokensDigest(tokens)
	switch s.proofs.lookup(key, digest, s.now()) {
	case proofAdmin:
		return nil
	case proofRefused:
		return errSessionEnded(sess.Lang)
	case proofUnreachable:
		return errB24Unreachable(sess.Lang)
	}
	var last error = errNoSession
	for _, t := range tokens {
		// Only admin sessions come here: employees cannot spend these.
		if ok, wait := s.proofCalls.admit(s.now(), p.ID, sess.UserID, false); !ok {
			// Debug: a script past its bucket would write a line per request.
			s.log.DebugContext(ctx, "admin request refused: too many profile calls for the user or portal",
				"portal_id", p.ID, "user_id", sess.UserID)
			return errTooMany(msgAdminProofBusy.in(sess.Lang, retryAfterSeconds(wait)), wait)
		}
		prof, err := s.profiles.Profile(ctx, p, t)
		if err == nil && prof.ID != sess.UserID {
			err = errTokenNotTheUsers
		}
		if err == nil {
			s.proofs.set(key, s.now(), prof.Admin)
			s.admins.set(p, sess.UserID, prof.Admin)
			if !prof.Admin {
				if err := recordAdminCheck(ctx, s.pool, p.ID, sess.UserID, false, s.now()); err != nil {
					return err
				}
				s.log.WarnContext(ctx, "admin request refused: bitrix24 says the user is no longer an admin",
					"portal_id", p.ID, "user_id", sess.UserID)
				return apperr.New(apperr.EFORBIDDEN, msgAdminOnly.in(sess.Lang))
			}
			return nil
		}
		last = err
		if !refusedToken(err) {
			break
		}
	}
	if last == errNoSession || errors.Is(last, errTokenNotTheUsers) || refusedToken(last) {
		s.log.InfoContext(ctx, "admin request refused: no token of the user that bitrix24 accepts", "portal_id", p.ID,
			"user_id", sess.UserID, "error", last)
		if len(tokens) > 0 {
			s.proofs.refused(key, digest, s.now())
		}
		return errSessionEnded(sess.Lang)
	}
	s.log.WarnContext(ctx, "admin request refused: bitrix24 could not be asked", "portal_id", p.ID, "error", last)
	// A request its client gave up on says nothing of Bitrix24.
	if !errors.Is(ctx.Err(), context.Canceled) {
		s.proofs.unreachable(key, digest, s.now())
	}
	return errB24Unreachable(sess.Lang)
}

// errB24Unreachable: Bitrix24 could not be asked; the user may try again.
func errB24Unreachable(lang i18n.Lang) error {
	return apperr.New(apperr.EUNAVAILABLE, msgB24Unreachable.in(lang))
}

// definiteNo says a proveAdmin error is Bitrix24's answer (not an admin, or
// the user's tokens refused), not a failure to ask it.
func definiteNo(err error) bool {
	code := apperr.ErrorCode(err)
	return code == apperr.EFORBIDDEN || code == apperr.EUNAUTHORIZED
}

// refusedToken says Bitrix24 refused the token itself (expired, revoked,
// the user no longer allowed), which only a fresher token or a new open
// mends.
func refusedToken(err error) bool {
	return bitrix24.IsPermanentAuthError(err) || errors.Is(err, bitrix24.ErrExpiredToken) ||
		errors.Is(err, bitrix24.ErrInvalidToken) || errors.Is(err, bitrix24.ErrNeedsReconnect)
}

// validAccessToken keeps garbage in the header away from Bitrix24: tokens
// are short printable ASCII.
func validAccessToken(t string) bool {
	if len(t) > 256 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}
