package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/secret"
)

// sealedColumns are every column holding a secret.Keyring ciphertext, with
// the key of its table.
var sealedColumns = []struct{ table, key, column string }{
	{"portals", "id", "access_token"},
	{"portals", "id", "refresh_token"},
	{"portals", "id", "application_token"},
	{"portal_settings", "portal_id", "learn_password"},
	{"portal_settings", "portal_id", "learn_client_secret"},
	{"managers", "id", "totp_secret"},
	{"manager_sessions", "id_hash", "totp_pending"},
}

// ResealResult counts what Reseal did, secrets sealed anew with the newest
// key, and what it left once done: secrets still sealed with an older key
// (written meanwhile by an instance that has not the new key in front yet),
// and secrets no listed key opens (sealed with a key since dropped).
type ResealResult struct {
	Resealed   int
	OlderKey   int
	Unreadable int
}

// Reseal seals every stored secret that an older key of kr sealed with its
// newest key, so that after a rotation (a key prepended to SECRET_KEYS) the
// old key can be dropped: the Learn password or an application token is
// otherwise only sealed again when someone changes it. A row changed
// meanwhile by a running instance is left as that instance wrote it, and
// counted in OlderKey if that instance sealed it with an older key.
func Reseal(ctx context.Context, pool *pgxpool.Pool, kr *secret.Keyring) (ResealResult, error) {
	var res ResealResult
	for _, c := range sealedColumns {
		table, key, col := pgx.Identifier{c.table}.Sanitize(), pgx.Identifier{c.key}.Sanitize(), pgx.Identifier{c.column}.Sanitize()
		rows, err := pool.Query(ctx, fmt.Sprintf(`SELECT %s, %s FROM %s WHERE %s IS NOT NULL`, key, col, table, col))
		if err != nil {
			return res, fmt.Errorf("read %s.%s: %w", c.table, c.column, err)
		}
		type sealed struct {
			key any // the key column's own type, compared as such below
			old []byte
		}
		var stale []sealed
		for rows.Next() {
			var s sealed
			if err := rows.Scan(&s.key, &s.old); err != nil {
				rows.Close()
				return res, fmt.Errorf("read %s.%s: %w", c.table, c.column, err)
			}
			if len(s.old) > 0 && kr.NeedsRotation(s.old) {
				stale = append(stale, s)
			}
		}
		if err := rows.Err(); err != nil {
			return res, fmt.Errorf("read %s.%s: %w", c.table, c.column, err)
		}
		for _, s := range stale {
			plain, err := kr.Decrypt(s.old)
			if errors.Is(err, secret.ErrDecrypt) {
				continue // counted below
			}
			if err != nil {
				return res, err
			}
			fresh, err := kr.Encrypt(plain)
			if err != nil {
				return res, err
			}
			tag, err := pool.Exec(ctx, resealUpdate(table, key, col), fresh, s.key, s.old)
			if err != nil {
				return res, fmt.Errorf("reseal %s.%s: %w", c.table, c.column, err)
			}
			res.Resealed += int(tag.RowsAffected())
		}
	}
	// Counted afresh rather than from the pass above: a row another
	// instance rewrote meanwhile was skipped, and may be on the old key.
	older, unreadable, err := CountSealed(ctx, pool, kr)
	res.OlderKey, res.Unreadable = older, unreadable
	return res, err
}

// CountSealed counts the stored secrets sealed with an older key of kr, and
// those no key of kr opens.
func CountSealed(ctx context.Context, pool *pgxpool.Pool, kr *secret.Keyring) (older, unreadable int, err error) {
	for _, c := range sealedColumns {
		table, col := pgx.Identifier{c.table}.Sanitize(), pgx.Identifier{c.column}.Sanitize()
		rows, err := pool.Query(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE %s IS NOT NULL`, col, table, col))
		if err != nil {
			return older, unreadable, fmt.Errorf("count %s.%s: %w", c.table, c.column, err)
		}
		var sealed []byte
		_, err = pgx.ForEachRow(rows, []any{&sealed}, func() error {
			if len(sealed) == 0 || !kr.NeedsRotation(sealed) {
				return nil
			}
			if _, err := kr.Decrypt(sealed); errors.Is(err, secret.ErrDecrypt) {
				unreadable++
			} else if err != nil {
				return err
			} else {
				older++
			}
			return nil
		})
		if err != nil {
			return older, unreadable, fmt.Errorf("count %s.%s: %w", c.table, c.column, err)
		}
	}
	return older, unreadable, nil
}

// resealUpdate is the statement Reseal writes one secret with. The key is
// compared in its column's own type: a cast of the column (key::text) would
// keep the primary key's index out of use and scan the whole table for
// every secret.
func resealUpdate(table, key, col string) string {
	return fmt.Sprintf(`UPDATE %s SET %s = $1 WHERE %s = $2 AND %s = $3`, table, col, key, col)
}
