package bitrix24

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// TokenSource hands the client the current token of one portal and refreshes it.
//
// Refresh is given the token that failed. If the source already holds a newer
// token (another goroutine or process refreshed meanwhile) it must return that
// one without calling the OAuth server: a refresh consumes the refresh token, so
// refreshes of one portal must be serialised and never repeated for one stale
// token. The new pair must be stored before Refresh returns it.
type TokenSource interface {
	Token(ctx context.Context) (Token, error)
	Refresh(ctx context.Context, stale Token) (Token, error)
}

// Refresher exchanges a refresh token for a new pair; *OAuth implements it.
type Refresher interface {
	Refresh(ctx context.Context, refreshToken string) (Token, error)
}

// MemoryTokenSource keeps one portal's token in memory, serialising refreshes
// with a mutex. It suits tests and single-process tools; the app uses the
// Postgres-backed source, which serialises across processes.
type MemoryTokenSource struct {
	OAuth Refresher

	mu    sync.Mutex
	tok   Token
	perma error // a permanent refresh failure sticks: no retry storm
	n     int
}

// NewMemoryTokenSource starts with tok.
func NewMemoryTokenSource(oauth Refresher, tok Token) *MemoryTokenSource {
	return &MemoryTokenSource{OAuth: oauth, tok: tok}
}

func (m *MemoryTokenSource) Token(ctx context.Context) (Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.perma != nil {
		return Token{}, m.perma
	}
	return m.tok, nil
}

func (m *MemoryTokenSource) Refresh(ctx context.Context, stale Token) (Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.perma != nil {
		return Token{}, m.perma
	}
	if m.tok.AccessToken != stale.AccessToken {
		return m.tok, nil // someone refreshed already
	}
	nt, err := m.OAuth.Refresh(ctx, m.tok.RefreshToken)
	if err != nil {
		if IsPermanentAuthError(err) {
			m.perma = fmt.Errorf("refresh token: %w", err)
			return Token{}, m.perma
		}
		return Token{}, fmt.Errorf("refresh token: %w", err)
	}
	m.n++
	m.tok = nt
	return nt, nil
}

// Refreshes counts successful refreshes (for tests).
func (m *MemoryTokenSource) Refreshes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

// ErrNeedsReconnect is returned by token sources for a portal whose refresh
// failed permanently; an admin has to open the app again.
var ErrNeedsReconnect = errors.New("bitrix24: portal needs reconnect")
