package server

import (
	"context"
	"errors"

	"b24learn/internal/bitrix24"
	"b24learn/internal/connect"
	"b24learn/internal/store"
)

// portalB24Client is a Bitrix24 client of the portal on its stored tokens,
// refreshed through connect.Tokens (serialised across processes by a row
// lock). Server has no connect.Factory yet, so the page's calls do not share
// the sync's per-portal limiter; Bitrix24's QUERY_LIMIT_EXCEEDED is retried
// by the client.
func (s *Server) portalB24Client(_ context.Context, p store.Portal) (*bitrix24.Client, error) {
	if s.cfg == nil || s.cfg.Keyring == nil {
		return nil, errors.New("no keyring configured")
	}
	ts := &connect.Tokens{Pool: s.pool, Keyring: s.cfg.Keyring, OAuth: s.oauth(), PortalID: p.ID}
	return bitrix24.New(bitrix24.Config{Endpoint: p.ClientEndpoint, Tokens: ts, HTTP: s.b24HTTP,
		Logger: s.log, MaxRetries: 3}), nil
}
