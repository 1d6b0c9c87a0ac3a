package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"b24learn/internal/apperr"
	"b24learn/internal/i18n"
	"b24learn/internal/secret"
	"b24learn/internal/store"
)

// Session is who opened the app in the Bitrix24 iframe, proven by /b24/app.
// It travels as a signed, encrypted token in the page: in forms (field
// "session") and in the X-Session header of the page's requests. No cookie is
// involved, since browsers block third-party cookies inside the iframe.
type Session struct {
	PortalID int64     `json:"p"`
	UserID   int64     `json:"u"`
	Admin    bool      `json:"a"`
	Lang     i18n.Lang `json:"l"`
	Domain   string    `json:"d"`
	Expires  time.Time `json:"e"`
	// Gen is the portal's install generation when the session was minted:
	// after an uninstall and reinstall it no longer matches.
	Gen int64 `json:"g"`
	// Auth is the user's access token from the open that minted the
	// session, which Bitrix24 also hands the page: an admin's change is
	// proven with it (admin_proof.go). The token is encrypted with the rest.
	Auth string `json:"t,omitempty"`
}

const (
	// sessionTTL bounds how long an open app page works without reopening.
	sessionTTL = 2 * time.Hour
	// sessionName binds the token to its purpose in securecookie's MAC.
	sessionName   = "iframe-session"
	sessionField  = "session"
	sessionHeader = "X-Session"
)

// sessionCodec signs and encrypts sessions with keys derived from
// SECRET_KEYS; after a key rotation older tokens still decode until expiry.
type sessionCodec struct {
	codecs []securecookie.Codec
}

func newSessionCodec(kr *secret.Keyring) *sessionCodec {
	if kr == nil {
		return nil
	}
	pairs := kr.CookieKeys(sessionName)
	codecs := make([]securecookie.Codec, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		sc := securecookie.New(pairs[i], pairs[i+1])
		// securecookie's own age check is a backstop; Expires is the rule.
		sc.MaxAge(int((sessionTTL + time.Minute).Seconds()))
		sc.MaxLength(4096)
		sc.SetSerializer(securecookie.JSONEncoder{})
		codecs = append(codecs, sc)
	}
	return &sessionCodec{codecs: codecs}
}

func (c *sessionCodec) encode(s Session) (string, error) {
	if c == nil {
		return "", errors.New("sessions need SECRET_KEYS")
	}
	tok, err := securecookie.EncodeMulti(sessionName, s, c.codecs...)
	if err != nil {
		return "", fmt.Errorf("encode session: %w", err)
	}
	return tok, nil
}

// errSessionEnded is the answer to a request without a valid session: in
// the session's language where an expired token still names one, else in
// English.
func errSessionEnded(lang i18n.Lang) error {
	return apperr.New(apperr.EUNAUTHORIZED, msgSessionMissing.in(lang))
}

// errNoSession covers a missing, forged, garbled or expired token alike; the
// client learns only that it must reopen the app.
var errNoSession = errors.New("no valid session")

func (c *sessionCodec) decode(tok string, now time.Time) (Session, error) {
	if c == nil || tok == "" {
		return Session{}, errNoSession
	}
	var s Session
	if err := securecookie.DecodeMulti(sessionName, tok, &s, c.codecs...); err != nil {
		return Session{}, errNoSession
	}
	// Tokens minted before the language was settled carry the raw LANG.
	s.Lang = i18n.FromBitrix24(string(s.Lang))
	if s.PortalID <= 0 {
		return Session{}, errNoSession
	}
	if !now.Before(s.Expires) {
		// Only the language of an expired session is used: the refusal
		// speaks it.
		return Session{Lang: s.Lang}, errNoSession
	}
	return s, nil
}

// newSession mints the token for a user proven by /b24/app or /b24/install.
// The page's language is settled here, once, from the frame POST's LANG;
// every page and answer of the session speaks it.
// auth is the user's access token the open was proven with.
func (s *Server) newSession(p store.Portal, userID int64, admin bool, b24Lang, auth string) (Session, string, error) {
	sess := Session{PortalID: p.ID, UserID: userID, Admin: admin, Lang: i18n.FromBitrix24(b24Lang), Domain: p.Domain,
		Expires: s.now().Add(sessionTTL).UTC().Truncate(time.Second), Gen: p.InstallGeneration, Auth: auth}
	tok, err := s.sessions.encode(sess)
	return sess, tok, err
}

type ctxKey int

const sessionKey ctxKey = iota

type sessionValue struct {
	sess   Session
	portal store.Portal
}

// sessionFrom returns the session that withSession proved for this request.
func sessionFrom(ctx context.Context) (Session, bool) {
	v, ok := ctx.Value(sessionKey).(sessionValue)
	return v.sess, ok
}

// sessionPortal returns the session's portal as loaded by withSession.
func sessionPortal(ctx context.Context) (store.Portal, bool) {
	v, ok := ctx.Value(sessionKey).(sessionValue)
	return v.portal, ok
}

// sessionToken finds the token in the X-Session header or, for form posts,
// the "session" field.
func sessionToken(r *http.Request) string {
	if h := strings.TrimSpace(r.Header.Get(sessionHeader)); h != "" {
		return h
	}
	if r.Method == http.MethodPost {
		return strings.TrimSpace(r.PostFormValue(sessionField))
	}
	return ""
}

// withSession admits only requests with a valid, unexpired session of a
// portal that still has the app installed, from the same install: a
// reinstall ends older sessions. An admin session of a user whom Bitrix24 has
// since reported as no longer an admin acts as read-only. Handlers behind it
// take the portal id from the session, never from the request.
func (s *Server) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.sessions.decode(sessionToken(r), s.now())
		if err != nil {
			s.error(w, r, errSessionEnded(sess.Lang))
			return
		}
		// Before any database read: what one user may make the app do. A
		// proven admin takes the admins' share of the portal's bucket
		// (admin_share.go); the session's word alone is not enough, it
		// outlives a demotion.
		admin := sess.Admin && s.admins.hasPortal(sess.PortalID, sess.UserID)
		if ok, wait := s.app.admit(s.now(), sess.PortalID, sess.UserID, admin); !ok {
			s.refuseBusy(w, r, sess, wait)
			return
		}
		p, err := store.GetPortal(r.Context(), s.pool, sess.PortalID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (!p.Installed() || p.InstallGeneration != sess.Gen)) {
			s.error(w, r, apperr.New(apperr.EUNAUTHORIZED, msgSessionReinstalled.in(sess.Lang)))
			return
		}
		if err != nil {
			s.error(w, r, err)
			return
		}
		if sess.Admin {
			demoted, err := demoted(r.Context(), s.pool, sess.PortalID, sess.UserID)
			if err != nil {
				s.error(w, r, err)
				return
			}
			sess.Admin = !demoted
			if demoted && admin {
				// Heard by another instance: the admins' share ends here too.
				s.admins.set(p, sess.UserID, false)
			}
		}
		ctx := context.WithValue(r.Context(), sessionKey, sessionValue{sess: sess, portal: p})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// recordAdminCheck keeps what Bitrix24 just said about whether the user is a
// portal admin, before any admin session is minted on that answer. A
// demotion takes admin rights from the user's older sessions too, a
// promotion clears it. Sessions are not compared by time: each instance
// mints them by its own clock, and a clock running ahead would let a tab
// outlive a later demotion. Every admin session follows a promotion that
// cleared the mark, so a mark that stands was set after the session was.
func recordAdminCheck(ctx context.Context, db store.DBTX, portalID, userID int64, admin bool, now time.Time) error {
	var err error
	if admin {
		_, err = db.Exec(ctx, `DELETE FROM portal_demoted_users WHERE portal_id = $1 AND user_id = $2`, portalID, userID)
	} else {
		_, err = db.Exec(ctx, `INSERT INTO portal_demoted_users (portal_id, user_id, demoted_at) VALUES ($1, $2, $3)
			ON CONFLICT (portal_id, user_id) DO UPDATE SET demoted_at = EXCLUDED.demoted_at`, portalID, userID, now)
	}
	if err != nil {
		return fmt.Errorf("record admin check: %w", err)
	}
	return nil
}

// demoted says whether Bitrix24 has reported the user as not an admin since
// it last reported them as one.
func demoted(ctx context.Context, db store.DBTX, portalID, userID int64) (bool, error) {
	var d bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM portal_demoted_users
		WHERE portal_id = $1 AND user_id = $2)`, portalID, userID).Scan(&d)
	if err != nil {
		return false, fmt.Errorf("check admin demotion: %w", err)
	}
	return d, nil
}

// requireAdmin lets only portal administrators through; it runs after
// withSession. Every request, reads too (reports, CSVs and the search name
// employees and their e-mails), is let through only once Bitrix24 has said
// again, on the user's own token, that the user is an admin (admin_proof.go).
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := sessionFrom(r.Context())
		if !ok {
			s.error(w, r, errSessionEnded(i18n.EN))
			return
		}
		if !sess.Admin {
			s.error(w, r, apperr.New(apperr.EFORBIDDEN, msgAdminOnly.in(sess.Lang)))
			return
		}
		p, _ := sessionPortal(r.Context())
		if err := s.proveAdmin(r.Context(), p, sess, r); err != nil {
			s.error(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
