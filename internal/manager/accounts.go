package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/store"
)

// CLIActor is who the audit trail names for what the operator does from
// the shell (`b24learn manager …`): no console account does it.
const CLIActor = "cli"

// Account is a manager account as the operator lists it: never its
// password hash or second-factor secret.
type Account struct {
	ID           int64
	Email        string
	CreatedAt    time.Time
	LastSignIn   time.Time // zero when the trail records none
	TOTP         bool      // a second factor is set up
	TOTPRequired bool      // one must be set up before using the console
	Disabled     bool
}

const accountColumns = `
	SELECT m.id, m.email, m.created_at,
	       (SELECT max(a.created_at) FROM manager_audit a WHERE a.manager_id = m.id AND a.action = 'sign_in'),
	       m.totp_secret IS NOT NULL, m.totp_required, m.disabled
	FROM managers m`

func scanAccount(row pgx.Row) (Account, error) {
	var (
		a    Account
		last *time.Time
	)
	if err := row.Scan(&a.ID, &a.Email, &a.CreatedAt, &last, &a.TOTP, &a.TOTPRequired, &a.Disabled); err != nil {
		return a, err
	}
	if last != nil {
		a.LastSignIn = *last
	}
	return a, nil
}

// ListAccounts returns every manager account, by e-mail.
func ListAccounts(ctx context.Context, db store.DBTX) ([]Account, error) {
	return store.QueryAll(ctx, db, "list managers", scanAccount, accountColumns+` ORDER BY lower(m.email), m.id`)
}

// FindAccount returns the account of email (any case); ErrNotFound when
// there is none.
func FindAccount(ctx context.Context, db store.DBTX, email string) (*Account, error) {
	a, err := scanAccount(db.QueryRow(ctx, accountColumns+` WHERE lower(m.email) = lower($1)`, strings.TrimSpace(email)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find manager: %w", err)
	}
	return &a, nil
}

// ChangePassword gives the account of email a new password, checked and
// hashed as CreateManager does, and ends every session of the account: a
// new password is how an operator locks out whoever learnt the old one.
// The trail records it as done by CLIActor. ErrNotFound, and nothing
// written, for an unknown e-mail.
func ChangePassword(ctx context.Context, pool *pgxpool.Pool, h *Hasher, email, password string, now time.Time) error {
	if err := checkNewPassword(password); err != nil {
		return err
	}
	// Hashed before the transaction, so the row is not held for ~0.1 s.
	hash, err := h.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	// The update takes the row lock a sign-in's unchangedSince waits for, so
	// a sign-in checked against the old hash stores no session.
	return changeAndEndSessions(ctx, pool, "password_set", now, func(tx pgx.Tx) pgx.Row {
		return tx.QueryRow(ctx, `UPDATE managers SET password_hash = $2, updated_at = $3
			WHERE lower(email) = lower($1) RETURNING id, email`, strings.TrimSpace(email), hash, now)
	})
}

// changeAndEndSessions makes, in one transaction, an operator's change to
// an account that must end its sessions: update changes the row and returns
// its id and e-mail; every session of the account ends and the trail
// records action. ErrNotFound, and nothing written, when update finds no
// account.
func changeAndEndSessions(ctx context.Context, pool *pgxpool.Pool, action string, now time.Time, update func(pgx.Tx) pgx.Row) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var (
			id     int64
			stored string
		)
		err := update(tx).Scan(&id, &stored)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("manager %s: %w", action, err)
		}
		ended, err := endSessions(ctx, tx, id, now)
		if err != nil {
			return err
		}
		return auditCLI(ctx, tx, action, stored, ended, now)
	})
}

// SetDisabled disables (or enables again) the account of email and ends
// every session it had. A disabled account's sign-ins get the
// answer of a wrong password (SignIn) and its cookies find no session
// (LookupSession). Sessions end on enable too: those of an account
// disabled by other means are refused only for the flag, and enabling it
// must not bring them back. changed is false when the account was already
// so and had no session to end; then nothing is written to the trail.
// ErrNotFound, and nothing written, for an unknown e-mail.
func SetDisabled(ctx context.Context, pool *pgxpool.Pool, email string, disabled bool, now time.Time) (changed bool, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var (
			id     int64
			stored string
			was    bool
		)
		// The same row lock a sign-in's unchangedSince takes: a sign-in
		// checked before the flag changed stores its session before this
		// transaction ends them all, or sees the flag and stores none.
		err := tx.QueryRow(ctx, `SELECT id, email, disabled FROM managers WHERE lower(email) = lower($1) FOR NO KEY UPDATE`,
			strings.TrimSpace(email)).Scan(&id, &stored, &was)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock manager: %w", err)
		}
		if was != disabled {
			if _, err := tx.Exec(ctx, `UPDATE managers SET disabled = $2, updated_at = $3 WHERE id = $1`, id, disabled, now); err != nil {
				return fmt.Errorf("set manager disabled: %w", err)
			}
		}
		// An account already enabled keeps its sessions: they are its
		// manager's own.
		var ended int64
		if disabled || was {
			if ended, err = endSessions(ctx, tx, id, now); err != nil {
				return err
			}
		}
		if changed = was != disabled || ended > 0; !changed {
			return nil
		}
		action := "enable"
		if disabled {
			action = "disable"
		}
		return auditCLI(ctx, tx, action, stored, ended, now)
	})
	return changed, err
}

// DisabledAddrs are the addresses of addrs, as given, whose console account
// is disabled, matched without case as the accounts are. Activation
// e-mails leave them out: a disabled account is most often a manager who
// left, whose mailbox must not keep getting admins' contact data.
func DisabledAddrs(ctx context.Context, db store.DBTX, addrs []string) ([]string, error) {
	trimmed := make([]string, len(addrs))
	for i, a := range addrs {
		trimmed[i] = strings.TrimSpace(a)
	}
	rows, err := db.Query(ctx, `SELECT a.i FROM unnest($1::text[]) WITH ORDINALITY AS a(addr, i)
		WHERE EXISTS (SELECT 1 FROM managers m WHERE m.disabled AND lower(m.email) = lower(a.addr))
		ORDER BY a.i`, trimmed)
	if err != nil {
		return nil, fmt.Errorf("read disabled managers: %w", err)
	}
	var (
		out []string
		i   int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&i}, func() error {
		out = append(out, addrs[i-1])
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read disabled managers: %w", err)
	}
	return out, nil
}

// endSessions revokes every live session of the account and says how many.
func endSessions(ctx context.Context, tx pgx.Tx, managerID int64, now time.Time) (int64, error) {
	tag, err := tx.Exec(ctx, `UPDATE manager_sessions SET revoked_at = $2 WHERE manager_id = $1 AND revoked_at IS NULL`, managerID, now)
	if err != nil {
		return 0, fmt.Errorf("end manager sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}

// auditCLI records in the trail a change the operator made from the shell
// to the account of email, with how many of its sessions the change ended.
func auditCLI(ctx context.Context, tx pgx.Tx, action, email string, sessionsEnded int64, now time.Time) error {
	return Audit(ctx, tx, AuditEntry{ManagerEmail: CLIActor, Action: action, At: now,
		Note: fmt.Sprintf("%s; sessions ended: %d", email, sessionsEnded)})
}

// checkNewPassword is the one rule a new password meets, at `manager add`
// and at every change.
func checkNewPassword(password string) error {
	if len([]rune(password)) < MinPasswordLen {
		return fmt.Errorf("the password needs at least %d characters", MinPasswordLen)
	}
	return nil
}
