package bitrix24

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"b24learn/internal/remote"
)

// Token is one access/refresh pair with what the OAuth server said about it.
type Token struct {
	AccessToken    string
	RefreshToken   string
	Expires        time.Time
	MemberID       string
	ClientEndpoint string // https://<portal>/rest/ — authoritative for the portal address
	ServerEndpoint string
	Domain         string
	Scope          string
	Status         string
	UserID         int64
}

// Expired reports whether the access token is past its expiry at now. A zero
// Expires counts as unknown (not expired): the server will tell.
func (t Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// OAuth talks to the Bitrix24 OAuth server (B24_OAUTH_URL). The client secret
// is sent only there.
type OAuth struct {
	URL          string // e.g. https://oauth.bitrix.info
	ClientID     string
	ClientSecret string
	HTTP         *http.Client // nil: http.DefaultClient
	// Timeout is the deadline of one call, the answer's body included
	// (default DefaultRequestTimeout).
	Timeout time.Duration
}

type tokenJSON struct {
	AccessToken    flexString `json:"access_token"`
	RefreshToken   flexString `json:"refresh_token"`
	Expires        flexInt    `json:"expires"`
	ExpiresIn      flexInt    `json:"expires_in"`
	MemberID       flexString `json:"member_id"`
	ClientEndpoint flexString `json:"client_endpoint"`
	ServerEndpoint flexString `json:"server_endpoint"`
	Domain         flexString `json:"domain"`
	Scope          flexString `json:"scope"`
	Status         flexString `json:"status"`
	UserID         flexInt    `json:"user_id"`
	Error          flexString `json:"error"`
	ErrorDesc      flexString `json:"error_description"`
}

// Refresh exchanges a refresh token for a new pair. The old refresh token is
// consumed by a successful call: callers must persist the result before use.
// Errors from the server are *APIError with OAuth set (ErrInvalidGrant,
// ErrInvalidClient, ErrPaymentRequired…, or HTTP_<status> for an answer
// without a code).
//
// invalid_client means either that the app is gone from the token's portal
// or that this app's client id or secret is wrong, which would make every
// portal look uninstalled. So an invalid_client is checked with a refresh
// token no portal holds: with good credentials the OAuth server answers
// invalid_grant and the portal's invalid_client stands; answered
// invalid_client (or not answered) too, the error is ErrClientRefused, which
// says nothing about the portal.
func (o *OAuth) Refresh(ctx context.Context, refreshToken string) (Token, error) {
	t, err := o.refresh(ctx, refreshToken)
	if !errors.Is(err, ErrInvalidClient) {
		return t, err
	}
	if cerr := o.checkClient(ctx); cerr != nil {
		return Token{}, cerr
	}
	return Token{}, err
}

// checkClient asks the OAuth server to refresh a token that cannot exist:
// nil when the answer is invalid_grant (the server knows the app's client id
// and secret and looked the token up), else an error matching
// ErrClientRefused.
func (o *OAuth) checkClient(ctx context.Context) error {
	_, err := o.refresh(ctx, unknownRefreshToken)
	if errors.Is(err, ErrInvalidGrant) {
		return nil
	}
	if err == nil {
		err = errors.New("the OAuth server refreshed a token that does not exist")
	}
	// The answer is not wrapped: an invalid_client in the chain would read
	// as the portal's.
	return fmt.Errorf("%w (a refresh token no portal holds got: %v)", ErrClientRefused, err)
}

// unknownRefreshToken is the checkClient's refresh token: not of the form
// the OAuth server issues, so it matches no portal's.
const unknownRefreshToken = "b24learn-client-check"

func (o *OAuth) refresh(ctx context.Context, refreshToken string) (Token, error) {
	q := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {o.ClientID},
		"client_secret": {o.ClientSecret},
		"refresh_token": {refreshToken},
	}
	u := strings.TrimRight(o.URL, "/") + "/oauth/token/?" + q.Encode()
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(o.Timeout, DefaultRequestTimeout))
	defer cancel()
	var connected atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }})
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		// A parse error quotes the URL, and with it the secret.
		return Token{}, fmt.Errorf("oauth refresh: bad OAuth server address: %w", unwrapURLError(err))
	}
	hc := o.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && connected.Load() {
		return Token{}, fmt.Errorf("oauth refresh: %s: %w", req.URL.Host, &remote.TimeoutError{Cause: ErrTimeout, After: time.Since(start)})
	}
	if err != nil {
		// The URL carries the secret; report the host only.
		return Token{}, fmt.Errorf("oauth refresh: request to %s failed: %w", req.URL.Host, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && connected.Load() {
		// A cut answer may read as a clean end: the deadline decides.
		return Token{}, fmt.Errorf("oauth refresh: %w", &remote.TimeoutError{Cause: ErrTimeout, After: time.Since(start)})
	}
	if err != nil {
		return Token{}, fmt.Errorf("oauth refresh: read: %w", err)
	}
	var tj tokenJSON
	jerr := json.Unmarshal(body, &tj)
	if jerr == nil && tj.Error != "" {
		return Token{}, &APIError{Code: string(tj.Error), Description: string(tj.ErrorDesc), HTTPStatus: resp.StatusCode, OAuth: true}
	}
	if resp.StatusCode != http.StatusOK || jerr != nil {
		// An answer without an error code (an HTML page, an empty body)
		// keeps only its status: not the portal REST's readings of it
		// (httpCode), since a bare 401 from the OAuth server is no refused
		// token and a bare 503 no rate limit (docs/bitrix24-api.md, "OAuth
		// refresh").
		return Token{}, &APIError{Code: statusCode(resp.StatusCode), Description: snippet(body), HTTPStatus: resp.StatusCode, OAuth: true}
	}
	if tj.AccessToken == "" || tj.RefreshToken == "" {
		return Token{}, fmt.Errorf("oauth refresh: answer without tokens")
	}
	t := Token{
		AccessToken:    string(tj.AccessToken),
		RefreshToken:   string(tj.RefreshToken),
		MemberID:       string(tj.MemberID),
		ClientEndpoint: string(tj.ClientEndpoint),
		ServerEndpoint: string(tj.ServerEndpoint),
		Domain:         string(tj.Domain),
		Scope:          string(tj.Scope),
		Status:         string(tj.Status),
		UserID:         int64(tj.UserID),
	}
	switch {
	case tj.Expires > 0:
		t.Expires = time.Unix(int64(tj.Expires), 0).UTC()
	case tj.ExpiresIn > 0:
		t.Expires = time.Now().Add(time.Duration(tj.ExpiresIn) * time.Second).UTC()
	}
	return t, nil
}

// unwrapURLError drops *url.Error's URL, which would leak the client secret.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
