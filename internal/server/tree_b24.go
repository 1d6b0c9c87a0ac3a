package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/bitrix24"
	"b24learn/internal/secret"
	"b24learn/internal/store"
)

// portalTokens is a bitrix24.TokenSource over the portal's stored tokens.
// Refreshes are serialised across processes by locking the portal row: a
// refresh consumes the refresh token, so a second process that finds a newer
// pair stored takes it instead of refreshing again.
//
// It stands in until internal/bitrix24 offers its own Postgres-backed source.
type portalTokens struct {
	pool     *pgxpool.Pool
	kr       *secret.Keyring
	oauth    bitrix24.Refresher
	portalID int64
}

func (p *portalTokens) read(ctx context.Context, db store.DBTX, lock bool) (bitrix24.Token, error) {
	q := `SELECT access_token, refresh_token, coalesce(token_expires_at, 'epoch'), client_endpoint, member_id, domain
		FROM portals WHERE id = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	var access, refresh []byte
	var tok bitrix24.Token
	if err := db.QueryRow(ctx, q, p.portalID).Scan(&access, &refresh, &tok.Expires, &tok.ClientEndpoint,
		&tok.MemberID, &tok.Domain); err != nil {
		return tok, fmt.Errorf("read portal tokens: %w", err)
	}
	if len(access) == 0 || len(refresh) == 0 {
		return tok, bitrix24.ErrNeedsReconnect
	}
	var err error
	if tok.AccessToken, err = p.kr.DecryptString(access); err != nil {
		return tok, fmt.Errorf("decrypt access token: %w", err)
	}
	if tok.RefreshToken, err = p.kr.DecryptString(refresh); err != nil {
		return tok, fmt.Errorf("decrypt refresh token: %w", err)
	}
	if tok.Expires.Equal(time.Unix(0, 0)) {
		tok.Expires = time.Time{}
	}
	return tok, nil
}

func (p *portalTokens) Token(ctx context.Context) (bitrix24.Token, error) {
	return p.read(ctx, p.pool, false)
}

func (p *portalTokens) Refresh(ctx context.Context, stale bitrix24.Token) (bitrix24.Token, error) {
	var out bitrix24.Token
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		cur, err := p.read(ctx, tx, true)
		if err != nil {
			return err
		}
		if cur.AccessToken != stale.AccessToken {
			out = cur // another request refreshed meanwhile
			return nil
		}
		nt, err := p.oauth.Refresh(ctx, cur.RefreshToken)
		if err != nil {
			return fmt.Errorf("refresh portal token: %w", err)
		}
		if err := store.SetPortalTokens(ctx, tx, p.kr, p.portalID, nt.AccessToken, nt.RefreshToken, nt.Expires); err != nil {
			return err
		}
		out = nt
		return nil
	})
	if err != nil && bitrix24.IsPermanentAuthError(err) && !errors.Is(err, bitrix24.ErrNeedsReconnect) {
		return out, fmt.Errorf("%w: %w", bitrix24.ErrNeedsReconnect, err)
	}
	return out, err
}

// portalB24Client is a Bitrix24 client of the portal on its stored tokens.
func (s *Server) portalB24Client(_ context.Context, p store.Portal) (*bitrix24.Client, error) {
	if s.cfg == nil || s.cfg.Keyring == nil {
		return nil, errors.New("no keyring configured")
	}
	ts := &portalTokens{pool: s.pool, kr: s.cfg.Keyring, oauth: s.oauth(), portalID: p.ID}
	return bitrix24.New(bitrix24.Config{Endpoint: p.ClientEndpoint, Tokens: ts, HTTP: s.b24HTTP,
		Logger: s.log, MaxRetries: 3}), nil
}
