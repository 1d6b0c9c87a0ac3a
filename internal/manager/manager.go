// Package manager is the iSpring managers' console's own domain: manager
// accounts, sessions, passwords, TOTP, the sign-in and submission rate
// limits, the audit trail and the portal list the console shows. What the
// managers do to activation requests is the activation package's.
package manager

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/clientaddr"
	"b24learn/internal/i18n"
	"b24learn/internal/secret"
	"b24learn/internal/store"
)

// SessionTTL is how long a console session lasts without signing in again.
const SessionTTL = 12 * time.Hour

var (
	// ErrBadCredentials is the one answer for an unknown e-mail, a wrong
	// password and a disabled account, so none can be told apart.
	ErrBadCredentials = errors.New("wrong e-mail or password")
	ErrManagerExists  = errors.New("a manager with this e-mail exists")
	// ErrNotFound: no such manager, session or portal.
	ErrNotFound = errors.New("not found")
)

// Manager is a console account.
type Manager struct {
	ID    int64
	Email string
}

// CreateManager adds an account with an argon2id hash of password.
func CreateManager(ctx context.Context, db store.DBTX, h *Hasher, email, password string) (*Manager, error) {
	email = strings.TrimSpace(email)
	if !accountEmail(email) {
		return nil, fmt.Errorf("%q is not an e-mail address", email)
	}
	if err := checkNewPassword(password); err != nil {
		return nil, err
	}
	hash, err := h.Hash(ctx, password)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	m := &Manager{Email: email}
	err = db.QueryRow(ctx, `INSERT INTO managers (email, password_hash) VALUES ($1, $2) RETURNING id`, email, hash).Scan(&m.ID)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return nil, ErrManagerExists
	}
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	return m, nil
}

// SetPassword replaces the password of the account with email and ends its
// sessions: the demo makes its account's password anew on every start.
func SetPassword(ctx context.Context, db store.DBTX, h *Hasher, email, password string) error {
	if err := checkNewPassword(password); err != nil {
		return err
	}
	hash, err := h.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	var id int64
	err = db.QueryRow(ctx, `UPDATE managers SET password_hash = $2, updated_at = now() WHERE lower(email) = lower($1) RETURNING id`,
		strings.TrimSpace(email), hash).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set manager password: %w", err)
	}
	if _, err := db.Exec(ctx, `UPDATE manager_sessions SET revoked_at = now() WHERE manager_id = $1 AND revoked_at IS NULL`, id); err != nil {
		return fmt.Errorf("end manager sessions: %w", err)
	}
	return nil
}

// maxEmailLen is the longest address SMTP carries (RFC 5321's path limit).
const maxEmailLen = 254

// accountEmail says whether email could be an account's: one bare address
// no longer than maxEmailLen.
func accountEmail(email string) bool {
	if len(email) > maxEmailLen {
		return false
	}
	a, err := mail.ParseAddress(email)
	return err == nil && a.Address == email
}

// Session is a signed-in console session.
type Session struct {
	Token     string // the secret in the cookie; only its hash is stored
	ManagerID int64
	Email     string
	CSRF      string // synchronizer token every console form carries
	ExpiresAt time.Time
	// TOTP: the account has a second factor; TOTPRequired: it must have one
	// before using the console.
	TOTP, TOTPRequired bool
	// Lang is the console language the manager chose; "" when none.
	Lang i18n.Lang
}

// dummyHash is checked for unknown e-mails so timing does not tell them apart.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyMTI"

// knownAddressFor is how far back a successful sign-in from an address
// makes it known for the account.
const knownAddressFor = 90 * 24 * time.Hour

// knownAddress says whether the account with email signed in from the
// exact address ip within knownAddressFor.
func knownAddress(ctx context.Context, db store.DBTX, email, ip string, now time.Time) (bool, error) {
	var known bool
	err := db.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM managers m JOIN manager_audit a ON a.manager_id = m.id
		               WHERE lower(m.email) = lower($1) AND a.action = 'sign_in' AND a.ip = $2 AND a.created_at > $3)`,
		email, ip, now.Add(-knownAddressFor)).Scan(&known)
	if err != nil {
		return false, fmt.Errorf("check known address: %w", err)
	}
	return known, nil
}

// Credentials are what the sign-in form sends, and where from.
type Credentials struct {
	Email    string
	Password string
	Code     string // TOTP code; needed only when the account has a second factor
	IP       string
}

// SignIn checks the password (and the TOTP code, when the account has a
// second factor) under the sign-in limits and opens a session. Limits, in
// order: failures from the address (any account) and from its site (an
// IPv6 /48), both checked before any hash, over the site's only an address
// the account signed in from before gets in; failures of the account
// from this address, with a growing wait; failures of the account from all
// addresses, over which only password+code or a known address gets in;
// wrong codes after the right password from new addresses, over which only
// a known address gets its code checked.
// The password is checked under a slot of h; with none free in time the
// attempt gives its place back and gets a busy *RateLimitedError.
// Errors: *RateLimitedError, ErrBadCredentials (one answer for an unknown
// e-mail, a wrong password, a wrong code and a disabled account).
func SignIn(ctx context.Context, pool *pgxpool.Pool, kr *secret.Keyring, h *Hasher, limits Limits, now time.Time, c Credentials) (*Session, error) {
	email := strings.TrimSpace(c.Email)
	account := strings.ToLower(email)
	// The exact address goes to the audit trail and the known-address check;
	// the limits key by the subscriber's address (an IPv6 /64) and by its
	// site (an IPv6 /48), which one holder of 65,536 /64s cannot multiply.
	ip := c.IP
	addr := clientaddr.Key(ip)
	accountKey := "login:account:" + account
	taken := []bucket{{"login:ip:" + addr, limits.LoginPerIP}}
	if site := clientaddr.SiteKey(ip); site != addr { // an IPv4 address is its own site
		taken = append(taken, bucket{"login:site:" + site, limits.LoginPerSite})
	}
	giveBack := func() {
		for _, b := range taken {
			_ = Release(ctx, pool, b.key, b.limit, now)
		}
	}
	// An address or site already over its bound is refused on one read,
	// before any write or hash: a flood from a limited /48 costs neither
	// counter rows nor hashing slots. A site over its bound still lets in
	// an address the account signed in from before (one more read, no
	// hash), so others in the /48 cannot lock its manager out; the attempt
	// then counts by its own address alone.
	for i, b := range taken {
		err := over(ctx, pool, b.key, b.limit, now)
		if err == nil {
			continue
		}
		if i == 0 || !isLimited(err) || !accountEmail(email) {
			return nil, err
		}
		known, kerr := knownAddress(ctx, pool, email, ip, now)
		if kerr != nil {
			return nil, kerr
		}
		if !known {
			return nil, err
		}
		taken = taken[:1]
		break
	}
	// Each attempt takes its place in the counts before the password is
	// checked, so parallel guesses cannot all pass a check made before any
	// of them failed; a refused or successful attempt gives its place back.
	for i, b := range taken {
		if err := Hit(ctx, pool, b.key, b.limit, now); err != nil {
			if isLimited(err) {
				taken = taken[:i+1]
				giveBack()
			}
			return nil, err
		}
	}
	// An e-mail no account can have is a wrong guess counted by the address
	// and its site alone: as a key of the account's counters a NUL or a key
	// too long to index fails the database, which gave their places back.
	if !accountEmail(email) {
		return nil, ErrBadCredentials
	}
	// The hashing slot is taken before the attempt counts anywhere else,
	// so a busy answer has only the address's places to give back.
	done, err := h.acquire(ctx)
	if err != nil {
		giveBack()
		return nil, err
	}
	defer done()
	if err := takeTurn(ctx, pool, limits.LoginBackoff, account, addr, now); err != nil {
		giveBack()
		return nil, err
	}
	var overAccount *RateLimitedError
	if err := Hit(ctx, pool, accountKey, limits.LoginPerAccount, now); err != nil && !errors.As(err, &overAccount) {
		return nil, err
	}

	var (
		m                   Manager
		hash                string
		disabled            bool
		totpSecret          []byte
		lastStep            int64
		totpRequired, known bool
	)
	err = pool.QueryRow(ctx, `
		SELECT id, email, password_hash, disabled, totp_secret, totp_last_step, totp_required,
		       EXISTS (SELECT 1 FROM manager_audit a WHERE a.manager_id = managers.id AND a.action = 'sign_in'
		               AND a.ip = $2 AND a.created_at > $3)
		FROM managers WHERE lower(email) = lower($1)`, email, ip, now.Add(-knownAddressFor)).
		Scan(&m.ID, &m.Email, &hash, &disabled, &totpSecret, &lastStep, &totpRequired, &known)
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("load manager: %w", err)
	}
	if !found {
		hash = dummyHash
	}
	ok, err := h.check(hash, c.Password)
	done()
	if err != nil && found {
		return nil, fmt.Errorf("check password: %w", err)
	}
	ok = ok && found && !disabled
	var step int64
	codeKey := "login:code:" + account
	if ok && totpSecret != nil {
		// The code is checked only after the password, and both failures
		// get the same answer, so the password cannot be guessed alone.
		// Codes guessed with the password from new addresses take a place
		// in the account's code count first; over it none is checked, and
		// the attempt is answered as any failure below: over the account's
		// cap an answer of its own would name the right password.
		codeTurn := !known
		checkCode := true
		if codeTurn {
			if err := Hit(ctx, pool, codeKey, limits.LoginCodePerAccount, now); isLimited(err) {
				checkCode = false
			} else if err != nil {
				return nil, err
			}
		}
		ok = false
		if checkCode {
			raw, err := kr.Decrypt(totpSecret)
			if err != nil {
				return nil, fmt.Errorf("open totp secret of manager %d: %w", m.ID, err)
			}
			step, ok = matchCode(raw, c.Code, now)
			ok = ok && step > lastStep // a code seen once is spent
		}
		if ok && codeTurn {
			if err := Release(ctx, pool, codeKey, limits.LoginCodePerAccount, now); err != nil {
				return nil, err
			}
		}
	}
	// Over the account-wide cap the campaign gets no more answers: only the
	// second factor or an address the manager used before still gets in.
	if overAccount != nil && !(ok && totpSecret != nil) && !known {
		return nil, overAccount
	}
	if !ok {
		return nil, ErrBadCredentials // the attempt keeps its place in the counts
	}
	for _, b := range taken {
		if err := Release(ctx, pool, b.key, b.limit, now); err != nil {
			return nil, err
		}
	}
	if err := Release(ctx, pool, accountKey, limits.LoginPerAccount, now); err != nil {
		return nil, err
	}
	if err := clearTurns(ctx, pool, account, addr); err != nil {
		return nil, err
	}
	s := &Session{Token: randomToken(32), ManagerID: m.ID, Email: m.Email, CSRF: randomToken(32), ExpiresAt: now.Add(SessionTTL),
		TOTP: totpSecret != nil, TOTPRequired: totpRequired}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := unchangedSince(ctx, tx, m.ID, hash, totpSecret); err != nil {
			return err
		}
		if totpSecret != nil {
			// Spend the code; a parallel sign-in with the same code loses here.
			tag, err := tx.Exec(ctx, `UPDATE managers SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2`, m.ID, step)
			if err != nil {
				return fmt.Errorf("spend totp code: %w", err)
			}
			if tag.RowsAffected() == 0 {
				return ErrBadCredentials
			}
		}
		if err := storeSession(ctx, tx, s, ip, now); err != nil {
			return err
		}
		// Old sessions of the account are dropped from the table once expired.
		if _, err := tx.Exec(ctx, `DELETE FROM manager_sessions WHERE manager_id = $1 AND expires_at < $2`, m.ID, now.Add(-24*time.Hour)); err != nil {
			return fmt.Errorf("prune sessions: %w", err)
		}
		return Audit(ctx, tx, AuditEntry{ManagerID: m.ID, ManagerEmail: m.Email, Action: "sign_in", IP: ip, At: now})
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// unchangedSince locks the account's row for the session about to be stored
// and refuses it (ErrBadCredentials) unless the password and second factor
// are still those it was checked against, read before the slow hash: turning
// the second factor on, removing it or a new password end the account's
// sessions in a transaction that holds this row, and a session stored after
// theirs would outlive it (and, once a factor is set, count as opened with it).
func unchangedSince(ctx context.Context, tx pgx.Tx, id int64, hash string, totpSecret []byte) error {
	var (
		nowHash     string
		nowSecret   []byte
		nowDisabled bool
	)
	err := tx.QueryRow(ctx, `SELECT password_hash, totp_secret, disabled FROM managers WHERE id = $1 FOR NO KEY UPDATE`, id).
		Scan(&nowHash, &nowSecret, &nowDisabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrBadCredentials
	}
	if err != nil {
		return fmt.Errorf("lock manager: %w", err)
	}
	if nowDisabled || nowHash != hash || !bytes.Equal(nowSecret, totpSecret) {
		return ErrBadCredentials
	}
	return nil
}

// storeSession stores s, made at now from address ip; only its token's
// hash is kept.
func storeSession(ctx context.Context, tx pgx.Tx, s *Session, ip string, now time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO manager_sessions (id_hash, manager_id, csrf_token, created_at, expires_at, ip)
		VALUES ($1, $2, $3, $4, $5, $6)`, tokenHash(s.Token), s.ManagerID, s.CSRF, now, s.ExpiresAt, ip); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	return nil
}

func isLimited(err error) bool {
	var rl *RateLimitedError
	return errors.As(err, &rl)
}

// LookupSession finds the live session of a cookie token: not signed out,
// not expired, account not disabled. ErrNotFound otherwise.
func LookupSession(ctx context.Context, db store.DBTX, token string, now time.Time) (*Session, error) {
	if token == "" {
		return nil, ErrNotFound
	}
	s := &Session{Token: token}
	err := db.QueryRow(ctx, `
		SELECT s.manager_id, m.email, s.csrf_token, s.expires_at, m.totp_secret IS NOT NULL, m.totp_required, coalesce(m.lang, '')
		FROM manager_sessions s JOIN managers m ON m.id = s.manager_id
		WHERE s.id_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND NOT m.disabled`,
		tokenHash(token), now).Scan(&s.ManagerID, &s.Email, &s.CSRF, &s.ExpiresAt, &s.TOTP, &s.TOTPRequired, &s.Lang)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	return s, nil
}

// SignOut revokes the session for good: the cookie, even if kept, no
// longer finds a live row.
func SignOut(ctx context.Context, pool *pgxpool.Pool, s *Session, ip string, now time.Time) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE manager_sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL`,
			tokenHash(s.Token), now); err != nil {
			return fmt.Errorf("revoke session: %w", err)
		}
		return Audit(ctx, tx, AuditEntry{ManagerID: s.ManagerID, ManagerEmail: s.Email, Action: "sign_out", IP: ip, At: now})
	})
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics on a broken source)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
