package manager

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"b24learn/internal/secret"
	"b24learn/internal/store"
)

// TOTPIssuer names the console in the manager's authenticator app.
const TOTPIssuer = "iSpring Learn sync"

// totpPeriod and totpSkew are the authenticator apps' defaults (RFC 6238):
// 30-second steps, and one step either side accepted for clock drift.
const (
	totpPeriod = 30
	totpSkew   = 1
)

var (
	// ErrBadCode is a TOTP code that does not match, or was used already.
	ErrBadCode = errors.New("wrong or used authenticator code")
	// ErrTOTPEnabled: the account has a second factor already.
	ErrTOTPEnabled = errors.New("the account has an authenticator already")
	// ErrBadPassword: turning the second factor on was asked without the
	// account's password.
	ErrBadPassword = errors.New("wrong password")
)

// Enrolment is what the enrol page shows: the secret to type in, and the
// same as an otpauth:// URI for apps that take a link or a QR code.
type Enrolment struct {
	Secret string // base32
	URI    string
}

// BeginTOTP returns the pending secret of the session s, making one when
// there is none. It is stored encrypted and becomes the second factor only
// once ConfirmTOTP sees a code from it in the same session, so a half-done
// enrolment changes nothing. Each session has its own: one kept on the
// account would be shown to whoever else signed in with the password, who
// could then make codes once the manager confirmed it.
func BeginTOTP(ctx context.Context, pool *pgxpool.Pool, kr *secret.Keyring, s *Session) (*Enrolment, error) {
	var out *Enrolment
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		email, _, err := lockEnrolment(ctx, tx, s.ManagerID)
		if err != nil {
			return err
		}
		pending, err := sessionPending(ctx, tx, s)
		if err != nil {
			return err
		}
		var pendingRaw []byte
		if pending != nil {
			// nil when sealed with a key no longer listed: start over.
			pendingRaw, _ = kr.Decrypt(pending)
		}
		if pendingRaw == nil {
			pendingRaw = make([]byte, 20) // 160 bits, RFC 4226's recommendation
			_, _ = rand.Read(pendingRaw)
			enc, err := kr.Encrypt(pendingRaw)
			if err != nil {
				return fmt.Errorf("encrypt totp secret: %w", err)
			}
			if _, err := tx.Exec(ctx, `UPDATE manager_sessions SET totp_pending = $2 WHERE id_hash = $1`, tokenHash(s.Token), enc); err != nil {
				return fmt.Errorf("store totp secret: %w", err)
			}
		}
		key, err := totp.Generate(totp.GenerateOpts{Issuer: TOTPIssuer, AccountName: email, Secret: pendingRaw,
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return fmt.Errorf("totp key: %w", err)
		}
		out = &Enrolment{Secret: key.Secret(), URI: key.URL()}
		return nil
	})
	return out, err
}

// lockEnrolment locks the manager's row for an enrolment step and returns
// the e-mail and the password's hash. Errors: ErrNotFound, ErrTOTPEnabled
// when a second factor is set already.
func lockEnrolment(ctx context.Context, tx pgx.Tx, managerID int64) (email, hash string, err error) {
	var enabled bool
	err = tx.QueryRow(ctx, `SELECT email, password_hash, totp_secret IS NOT NULL FROM managers WHERE id = $1 FOR UPDATE`,
		managerID).Scan(&email, &hash, &enabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", ErrNotFound
	}
	if err != nil {
		return "", "", fmt.Errorf("load manager: %w", err)
	}
	if enabled {
		return "", "", ErrTOTPEnabled
	}
	return email, hash, nil
}

// sessionPending is the sealed pending secret of the manager's session s
// (nil when none). Errors: ErrNotFound for no such session of the manager,
// or one ended since the request found it (a sign-out, a new password, a
// disable).
func sessionPending(ctx context.Context, tx pgx.Tx, s *Session) ([]byte, error) {
	var pending []byte
	err := tx.QueryRow(ctx, `SELECT totp_pending FROM manager_sessions WHERE id_hash = $1 AND manager_id = $2 AND revoked_at IS NULL`,
		tokenHash(s.Token), s.ManagerID).Scan(&pending)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load session's totp secret: %w", err)
	}
	return pending, nil
}

// ConfirmTOTP makes the pending secret of keep (the session confirming,
// the one BeginTOTP showed it to) the account's second factor once password
// is the account's and code matches the secret, ends every session of the
// account, keep included, and returns keep's successor under a new token: a
// manager turns the second factor on because the password alone may be
// known, and no session opened with it, nor a copy of keep's cookie, may
// outlive that. The password is asked
// because a session alone does not prove the manager: a copy of the cookie
// could otherwise bind the account to its holder's authenticator, end the
// manager's own sessions and keep the manager from signing in again.
// Errors: ErrBadPassword, *RateLimitedError (too many wrong passwords, see
// Limits.EnrolPasswordPerAccount, or busy: no slot of h free in time),
// ErrBadCode, ErrTOTPEnabled.
func ConfirmTOTP(ctx context.Context, pool *pgxpool.Pool, kr *secret.Keyring, h *Hasher, limits Limits, a Actor, keep *Session, password, code string, now time.Time) (*Session, error) {
	checked, err := checkOwnPassword(ctx, pool, h, limits.EnrolPasswordPerAccount, a.ManagerID, password, now)
	if err != nil {
		return nil, err
	}
	var next *Session
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, hash, err := lockEnrolment(ctx, tx, a.ManagerID)
		if err != nil {
			return err
		}
		// The password was checked before this transaction: a new one set
		// since (which ended keep too) makes it no longer the account's.
		if hash != checked {
			return ErrBadPassword
		}
		if keep == nil || keep.ManagerID != a.ManagerID {
			return ErrBadCode
		}
		pending, err := sessionPending(ctx, tx, keep)
		if errors.Is(err, ErrNotFound) || err == nil && pending == nil {
			return ErrBadCode
		}
		if err != nil {
			return err
		}
		raw, err := kr.Decrypt(pending)
		if err != nil {
			return ErrBadCode
		}
		step, ok := matchCode(raw, code, now)
		if !ok {
			return ErrBadCode
		}
		if _, err := tx.Exec(ctx, `UPDATE managers SET totp_secret = $4, totp_pending = NULL, totp_last_step = $2,
			updated_at = $3 WHERE id = $1`, a.ManagerID, step, now, pending); err != nil {
			return fmt.Errorf("enable totp: %w", err)
		}
		keepHash := tokenHash(keep.Token)
		ended, err := tx.Exec(ctx, `UPDATE manager_sessions SET revoked_at = $3, totp_pending = NULL
			WHERE manager_id = $1 AND (id_hash = $2 OR revoked_at IS NULL)`, a.ManagerID, keepHash, now)
		if err != nil {
			return fmt.Errorf("end the sessions: %w", err)
		}
		s := *keep
		s.Token, s.CSRF, s.ExpiresAt, s.TOTP = randomToken(32), randomToken(32), now.Add(SessionTTL), true
		if err := storeSession(ctx, tx, &s, a.IP, now); err != nil {
			return err
		}
		next = &s
		return Audit(ctx, tx, AuditEntry{ManagerID: a.ManagerID, ManagerEmail: a.Email, Action: "totp_enable", IP: a.IP, At: now,
			Note: fmt.Sprintf("other sessions ended: %d", ended.RowsAffected()-1)})
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}

// checkOwnPassword checks a signed-in manager's password and returns the
// hash it matched. Each try takes a place in the account's count first, so
// parallel guesses cannot all pass a check made before any failed; the
// right password, or no hashing slot (a busy *RateLimitedError), gives it
// back.
func checkOwnPassword(ctx context.Context, pool *pgxpool.Pool, h *Hasher, l Limit, managerID int64, password string, now time.Time) (string, error) {
	key := "totp-enrol:account:" + strconv.FormatInt(managerID, 10)
	if err := Hit(ctx, pool, key, l, now); err != nil {
		return "", err
	}
	var hash string
	err := pool.QueryRow(ctx, `SELECT password_hash FROM managers WHERE id = $1`, managerID).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("load manager %d: %w", managerID, err)
	}
	ok, err := h.Check(ctx, hash, password)
	if rl := (*RateLimitedError)(nil); errors.As(err, &rl) && rl.Busy {
		_ = Release(ctx, pool, key, l, now)
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("check password of manager %d: %w", managerID, err)
	}
	if !ok {
		return "", ErrBadPassword
	}
	return hash, Release(ctx, pool, key, l, now)
}

// SetTOTPRequired says whether the manager must set up an authenticator
// before using the console.
func SetTOTPRequired(ctx context.Context, db store.DBTX, managerID int64, required bool) error {
	if _, err := db.Exec(ctx, `UPDATE managers SET totp_required = $2, updated_at = now() WHERE id = $1`, managerID, required); err != nil {
		return fmt.Errorf("set totp required: %w", err)
	}
	return nil
}

// matchCode finds the time step within the allowed drift whose code is
// code, comparing in constant time.
func matchCode(raw []byte, code string, now time.Time) (int64, bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != 6 {
		return 0, false
	}
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
	opts := totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	step := now.Unix() / totpPeriod
	for s := step - totpSkew; s <= step+totpSkew; s++ {
		want, err := totp.GenerateCodeCustom(b32, time.Unix(s*totpPeriod, 0), opts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// ResetTOTP removes an account's second factor (a manager who lost the
// phone) and ends the account's sessions: one may be open on the lost phone,
// and a session must not outlive the factor it was opened with. The
// operator does it from the shell, and the trail records it.
func ResetTOTP(ctx context.Context, pool *pgxpool.Pool, email string, now time.Time) error {
	return changeAndEndSessions(ctx, pool, "totp_reset", now, func(tx pgx.Tx) pgx.Row {
		return tx.QueryRow(ctx, `UPDATE managers SET totp_secret = NULL, totp_pending = NULL, totp_last_step = 0, updated_at = $2
			WHERE lower(email) = lower($1) RETURNING id, email`, strings.TrimSpace(email), now)
	})
}
