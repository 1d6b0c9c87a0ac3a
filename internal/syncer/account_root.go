// One Learn account, one address: the account's root department, which
// Learn never deletes, says which account an address reaches
// (docs/learn-api.md, "One account, several portals").

package syncer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// AccountElsewhereError refuses a run: another portal reaches the same Learn
// account (the same root department) under another address, and the
// ownership tables, the write limit and "the account counts as shared" key
// the account by its address. Address is the one the other portal saved,
// the one to use; that portal's own domain is not told.
type AccountElsewhereError struct {
	Address string
}

func (e *AccountElsewhereError) Error() string {
	return accountElsewhereText + e.Address + accountElsewhereEnd
}

const (
	accountElsewhereText = "this Learn account is already connected by another portal under the address "
	accountElsewhereEnd  = "; use that address"
)

// ErrSignInElsewhere refuses a run: another portal reaches the same Learn
// account (the same root department) at the same address but signs in
// another way (with a password where this one has an API key, the other
// way round, or with another key). An API key does not prove the address
// (docs/learn-api.md, "One account, several portals"), so such portals are
// different accounts to the ownership tables; portals of one account sign
// in alike.
var ErrSignInElsewhere = errors.New("this Learn account is already connected by another portal at this address that signs in another way (with a password or another API key); sign in as that portal does")

// ErrConnectedWithKey refuses a run: another portal reaches the same Learn
// account (the same root department) under another address, with an API
// key. Its address is not named: a key does not prove the address typed
// beside it, and an admin told to use it would send the password there.
var ErrConnectedWithKey = errors.New("this Learn account is already connected by another portal that signs in with an API key; sign in with that key or ask iSpring support")

// rootLockKey namespaces the advisory lock on a Learn root id ("root"):
// two portals' first runs on two addresses of one account take it in turn,
// so the second sees the root the first recorded.
const rootLockKey int32 = 0x726f6f74

// checkAccountRoot refuses with *AccountElsewhereError when another
// portal's settings hold rootID under an address that is not learnURL's
// account (AccountOf learnURL and clientID), or ErrSignInElsewhere when
// that address is learnURL's but the sign-in differs; with record it then stores rootID with the
// portal's settings, while they still name learnURL (a save meanwhile
// wins). Only other portals count: a portal that reaches its account under
// a new address is not refused by the root it stored.
// A portal that owns users of the account at learnURL (among users) is
// refused only by a portal that owns some of them at its address.
//
// A root newly stored (a first run, or the first after a save changed the
// address) brings the portal's ownership rows of this account's users
// (users, the ids of the Learn users the run read; Learn's ids are the
// account's own) from any address to learnURL's, so a portal that moved to
// another address of its account keeps its users guarded there. A row
// another portal already holds there stays where it was.
func (s *Store) checkAccountRoot(ctx context.Context, portalID int64, learnURL, clientID, rootID string, record bool, users func() []string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("check learn account: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if record {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, rootLockKey, rootID); err != nil {
			return fmt.Errorf("lock learn account root: %w", err)
		}
	}
	type holder struct {
		PortalID int64
		LearnURL string
		ClientID string
	}
	// Only installed portals hold the root: one removed without CLEAN keeps
	// its settings, and its old sign-in would refuse every portal after it.
	// Reinstalled, its own first run is checked in turn.
	rows, err := tx.Query(ctx, `SELECT s.portal_id, s.learn_url, `+settingsClientID+` FROM portal_settings s
		JOIN portals p ON p.id = s.portal_id AND p.install_state = 'installed'
		WHERE s.learn_root_id = $1 AND s.portal_id <> $2 ORDER BY s.portal_id`, rootID, portalID)
	if err != nil {
		return fmt.Errorf("query learn account root: %w", err)
	}
	others, err := pgx.CollectRows(rows, pgx.RowToStructByPos[holder])
	if err != nil {
		return fmt.Errorf("read learn account root: %w", err)
	}
	account := AccountOf(learnURL, clientID)
	var ids []string
	if len(others) > 0 {
		ids = users()
	}
	// The root id is only what the server at an address says, and a
	// portal's admin chooses that server: a record refuses a portal that
	// already owns users of this account at its address only when the
	// other portal owns some of them at its own, which a server that is
	// not this account cannot show.
	mine, err := ownsAny(ctx, tx, portalID, account, ids)
	if err != nil {
		return err
	}
	for _, o := range others {
		other := AccountOf(o.LearnURL, o.ClientID)
		if other == account {
			continue
		}
		if mine {
			theirs, err := ownsAny(ctx, tx, o.PortalID, other, ids)
			if err != nil {
				return err
			}
			if !theirs {
				continue
			}
		}
		switch {
		case AccountKey(o.LearnURL) == AccountKey(learnURL):
			return ErrSignInElsewhere
		case o.ClientID != "":
			return ErrConnectedWithKey
		}
		return &AccountElsewhereError{Address: strings.TrimSpace(o.LearnURL)}
	}
	if !record {
		return nil
	}
	tag, err := tx.Exec(ctx, `UPDATE portal_settings SET learn_root_id = $3
		WHERE portal_id = $1 AND learn_url = $2 AND learn_root_id IS DISTINCT FROM $3`, portalID, learnURL, rootID)
	if err != nil {
		return fmt.Errorf("record learn account root: %w", err)
	}
	if tag.RowsAffected() > 0 {
		if ids == nil {
			ids = users()
		}
		if _, err := tx.Exec(ctx, `UPDATE learn_user_owners o SET learn_account = $2
			WHERE o.portal_id = $1 AND o.learn_account <> $2 AND o.learn_id = ANY($3)
			AND NOT EXISTS (SELECT 1 FROM learn_user_owners x WHERE x.learn_account = $2 AND x.learn_id = o.learn_id)`,
			portalID, account, ids); err != nil {
			return fmt.Errorf("move ownership to the account's address: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record learn account root: %w", err)
	}
	return nil
}

// ownsAny reports whether the portal owns any of the Learn users ids at the
// account address.
func ownsAny(ctx context.Context, tx pgx.Tx, portalID int64, account string, ids []string) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM learn_user_owners
		WHERE portal_id = $1 AND learn_account = $2 AND learn_id = ANY($3))`, portalID, account, ids).Scan(&ok); err != nil {
		return false, fmt.Errorf("read learn account's owners: %w", err)
	}
	return ok, nil
}
