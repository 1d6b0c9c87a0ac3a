package connect

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/bitrix24"
	"b24learn/internal/secret"
	"b24learn/internal/store"
)

// Tokens is a bitrix24.TokenSource over a portal's stored, encrypted tokens.
//
// Bitrix24 consumes a refresh token when it is used, so two processes
// refreshing at once would lock one of them out. Refresh therefore locks the
// portal row, and a caller that finds a newer pair than the one it saw
// expire takes that pair instead of refreshing again. The new pair is
// committed before it is used. A refresh that fails for good marks the
// portal "needs reconnect", which stops its syncs until an admin opens the app.
type Tokens struct {
	Pool    *pgxpool.Pool
	Keyring *secret.Keyring
	// Servers picks the OAuth server of the portal from its stored
	// server_endpoint: a portal's tokens work only at the server of its
	// region. nil: OAuth refreshes every portal.
	Servers  *bitrix24.OAuthServers
	OAuth    bitrix24.Refresher
	PortalID int64
	// IgnoreReconnect uses the stored pair even when the portal is flagged
	// "needs reconnect": an uninstall check must ask Bitrix24 again, since
	// a sync may have met the revoked tokens before the event arrived.
	IgnoreReconnect bool
}

var _ bitrix24.TokenSource = (*Tokens)(nil)

func (t *Tokens) read(ctx context.Context, db store.DBTX, lock bool) (bitrix24.Token, error) {
	q := `SELECT access_token, refresh_token, token_expires_at, client_endpoint, server_endpoint, member_id, domain, needs_reconnect
		FROM portals WHERE id = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	var access, refresh []byte
	var expires *time.Time
	var reconnect bool
	var tok bitrix24.Token
	if err := db.QueryRow(ctx, q, t.PortalID).Scan(&access, &refresh, &expires, &tok.ClientEndpoint,
		&tok.ServerEndpoint, &tok.MemberID, &tok.Domain, &reconnect); err != nil {
		return tok, fmt.Errorf("read portal tokens: %w", err)
	}
	if (reconnect && !t.IgnoreReconnect) || len(access) == 0 || len(refresh) == 0 {
		return tok, bitrix24.ErrNeedsReconnect
	}
	if expires != nil {
		tok.Expires = *expires
	}
	var err error
	if tok.AccessToken, err = t.Keyring.DecryptString(access); err != nil {
		return tok, fmt.Errorf("decrypt access token: %w", err)
	}
	if tok.RefreshToken, err = t.Keyring.DecryptString(refresh); err != nil {
		return tok, fmt.Errorf("decrypt refresh token: %w", err)
	}
	return tok, nil
}

// Token returns the stored pair.
func (t *Tokens) Token(ctx context.Context) (bitrix24.Token, error) {
	return t.read(ctx, t.Pool, false)
}

// Refresh replaces stale, serialised across processes by the row lock.
func (t *Tokens) Refresh(ctx context.Context, stale bitrix24.Token) (bitrix24.Token, error) {
	var out bitrix24.Token
	var permanent error
	err := pgx.BeginFunc(ctx, t.Pool, func(tx pgx.Tx) error {
		cur, err := t.read(ctx, tx, true)
		if err != nil {
			return err
		}
		if cur.AccessToken != stale.AccessToken {
			out = cur // refreshed by someone else meanwhile
			return nil
		}
		oauth, err := t.refresher(cur.ServerEndpoint)
		if err != nil {
			return err
		}
		nt, err := oauth.Refresh(ctx, cur.RefreshToken)
		if bitrix24.IsPermanentAuthError(err) {
			permanent = err
			_, uerr := tx.Exec(ctx, `UPDATE portals SET needs_reconnect = true, updated_at = now() WHERE id = $1`, t.PortalID)
			return uerr
		}
		if err != nil {
			return fmt.Errorf("refresh portal token: %w", err)
		}
		if err := store.SetPortalTokens(ctx, tx, t.Keyring, t.PortalID, nt.AccessToken, nt.RefreshToken, nt.Expires); err != nil {
			return err
		}
		out = nt
		return nil
	})
	if err != nil {
		return out, err
	}
	if permanent != nil {
		return out, fmt.Errorf("%w: %w", bitrix24.ErrNeedsReconnect, permanent)
	}
	return out, nil
}

// refresher is the OAuth server that issued the portal's tokens. A stored
// server that left the allow-list is an operator's matter, not the portal's:
// the refresh fails with a clear error and the tokens stay as they are.
func (t *Tokens) refresher(serverEndpoint string) (bitrix24.Refresher, error) {
	if t.Servers == nil {
		return t.OAuth, nil
	}
	o, err := t.Servers.For(serverEndpoint)
	if err != nil {
		return nil, fmt.Errorf("refresh portal token: the portal's OAuth server is not in B24_OAUTH_URL: %w", err)
	}
	return o, nil
}
