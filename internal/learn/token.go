package learn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"b24learn/internal/remote"
)

// Token auth (docs/learn-api.md, "Authentication"): with an API key the
// client trades the Client ID and Secret for an access token at
// POST /api/v3/token on the host it calls, and sends the token in
// Authorization instead of the X-Auth-* headers.

// tokenRoute is the token endpoint's path on an API host or an account host.
const tokenRoute = "/api/v3/token"

// maxTokenLife bounds the expires_in a server gives: a token is asked for
// again after a day whatever it says.
const maxTokenLife = 24 * time.Hour

// HasAPIKey reports whether the credentials carry an API key (both halves).
func (c Credentials) HasAPIKey() bool {
	return strings.TrimSpace(c.ClientID) != "" && c.ClientSecret != ""
}

// accessToken is a token and how long the client uses it.
type accessToken struct {
	value  string
	origin string    // the host it was given by
	until  time.Time // used until then (shortly before it expires)
	gen    uint64    // 1, 2, … per fetch
}

// tokenAuth is a client's token: cached, fetched one at a time, and the form
// Learn takes it in. Clients made from one (the check's) share it.
type tokenAuth struct {
	sem  chan struct{} // held while a token is fetched: no stampede
	mu   sync.Mutex
	cur  accessToken
	bare atomic.Bool // send the token without "Bearer " (learned, see send)
	// failErr is the last fetch's failure and failAt when it ended: the
	// calls that waited for that fetch get its failure instead of each
	// asking again, so a token endpoint that fails is asked by one fetch
	// (and its retries) at a time, not by every parallel write.
	failErr error
	failAt  time.Time
}

func newTokenAuth() *tokenAuth { return &tokenAuth{sem: make(chan struct{}, 1)} }

// get returns the cached token for origin while it is good, else fetches
// one; fresh says it was fetched for this call (or while it waited).
func (t *tokenAuth) get(ctx context.Context, c *Client, origin string) (tok accessToken, fresh bool, err error) {
	t.mu.Lock()
	cur := t.cur
	t.mu.Unlock()
	if cur.value != "" && cur.origin == origin && time.Now().Before(cur.until) {
		return cur, false, nil
	}
	tok, err = t.renew(ctx, c, origin, cur.gen)
	return tok, true, err
}

// renew fetches a token in place of the one of generation stale, unless
// another call did so while this one waited for its turn.
func (t *tokenAuth) renew(ctx context.Context, c *Client, origin string, stale uint64) (accessToken, error) {
	waited := time.Now()
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return accessToken{}, fmt.Errorf("wait for the access token: %w", ctx.Err())
	}
	defer func() { <-t.sem }()
	t.mu.Lock()
	cur := t.cur
	t.mu.Unlock()
	if cur.value != "" && cur.origin == origin && cur.gen > stale && time.Now().Before(cur.until) {
		return cur, nil
	}
	t.mu.Lock()
	failErr, failAt := t.failErr, t.failAt
	t.mu.Unlock()
	if failErr != nil && failAt.After(waited) {
		return accessToken{}, failErr
	}
	value, until, err := c.fetchToken(ctx, origin)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil { // a caller that gave up says nothing of the endpoint
			t.failErr, t.failAt = err, time.Now()
		}
		return accessToken{}, err
	}
	t.failErr = nil
	t.cur = accessToken{value: value, origin: origin, until: until, gen: t.cur.gen + 1}
	return t.cur, nil
}

// fetchToken asks origin's token endpoint for a token: the client's
// transport (the address rule), its attempt deadline, and retries on 429,
// 5xx and transport failures as for reads. A refusal is an *APIError (401:
// ErrAPIKeyRefused). Neither the secret nor the token is logged or put in
// an error.
func (c *Client) fetchToken(ctx context.Context, origin string) (string, time.Time, error) {
	form := url.Values{"client_id": {strings.TrimSpace(c.creds.ClientID)}, "client_secret": {c.creds.ClientSecret},
		"grant_type": {"client_credentials"}}.Encode()
	for attempt := 1; ; attempt++ {
		asked := time.Now()
		value, life, err := c.tokenAttempt(ctx, origin, form, attempt)
		if err == nil {
			// Used until a tenth of its life (at most a minute) before
			// it ends: a call sent just before that still gets there in
			// time.
			margin := min(life/10, time.Minute)
			return value, asked.Add(life - margin), nil
		}
		var ae *APIError
		isAPI := errors.As(err, &ae)
		retryable := isAPI && (ae.Status == http.StatusTooManyRequests || ae.Status >= 500) ||
			!isAPI && !permanent(err) && !errors.Is(err, ErrUnexpected) && ctx.Err() == nil
		if !retryable || attempt >= c.retry.MaxAttempts {
			return "", time.Time{}, err
		}
		wait := c.backoff(attempt)
		if isAPI && ae.RetryAfter > 0 && ae.RetryAfter <= c.retry.MaxRetryAfter {
			wait = ae.RetryAfter
		}
		c.retries.Add(1)
		if err := remote.Sleep(ctx, wait); err != nil {
			return "", time.Time{}, fmt.Errorf("POST %s: %w", tokenRoute, err)
		}
	}
}

// tokenAttempt is one POST /api/v3/token: the token and its life.
func (c *Client) tokenAttempt(ctx context.Context, origin, form string, n int) (string, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, c.retry.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, origin+tokenRoute, strings.NewReader(form))
	if err != nil {
		return "", 0, fmt.Errorf("build POST %s: %w", tokenRoute, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	c.writes.Add(1)
	start := time.Now()
	// The body carries the secret, and a 307 or 308 would send it on to
	// wherever Learn's answer points: the token request follows no
	// redirect, and a 3xx is refused below like any other answer.
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := hc.Do(req)
	call := Call{Method: http.MethodPost, Route: tokenRoute, Attempt: n, Write: true}
	if err != nil {
		dropQuery(err)
		call.Duration, call.Err = time.Since(start), err
		if c.onCall != nil {
			c.onCall(call)
		}
		if errors.Is(actx.Err(), context.DeadlineExceeded) {
			return "", 0, fmt.Errorf("POST %s: %w", tokenRoute, ErrTimeout)
		}
		return "", 0, fmt.Errorf("POST %s: %w", tokenRoute, &boundedError{err})
	}
	defer res.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	call.Duration, call.Status = time.Since(start), res.StatusCode
	if c.onCall != nil {
		c.onCall(call)
	}
	if rerr != nil {
		return "", 0, fmt.Errorf("POST %s: read answer: %w", tokenRoute, &boundedError{rerr})
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		code, msg := parseErrorBody(data)
		msg = hideSecret(msg, c.creds.ClientSecret)
		shaped := learnErrorBody(res.StatusCode, res.Header.Get("Content-Type"), data)
		oauth := oauthError(res.Header.Get("Content-Type"), data)
		if oauth != "" {
			msg = oauth
		}
		ae := &APIError{Method: http.MethodPost, Path: tokenRoute, Status: res.StatusCode, Code: code, Message: msg,
			learnShaped: shaped, RetryAfter: parseRetryAfter(res.Header.Get("Retry-After"), time.Now()), keyAuth: true,
			keyRefused: keyRefusal(res.StatusCode, shaped && len(bytes.TrimSpace(data)) > 0, oauth, msg)}
		if res.StatusCode == http.StatusBadRequest && !ae.keyRefused {
			// A 400 that names no client is our request's fault, not the
			// key's: it is logged so that it does not pass for a wrong key.
			c.log.WarnContext(ctx, "learn token request refused as invalid", "status", res.StatusCode,
				"error", oauth, "code", code, "message", RemoteMessage(ae))
		}
		return "", 0, ae
	}
	var ans struct {
		AccessToken string  `json:"access_token"`
		ExpiresIn   flexInt `json:"expires_in"`
	}
	if json.Unmarshal(data, &ans) != nil || ans.AccessToken == "" || len(ans.AccessToken) > 4096 ||
		strings.ContainsAny(ans.AccessToken, " \r\n\t") {
		return "", 0, fmt.Errorf("POST %s: no access token in the answer: %w", tokenRoute, ErrUnexpected)
	}
	life := 1800 * time.Second // the documented life, when none is given
	if ans.ExpiresIn > 0 {
		life = time.Duration(min(int64(ans.ExpiresIn), int64(maxTokenLife/time.Second))) * time.Second
	}
	return ans.AccessToken, life, nil
}

// oauthKeyErrors are the OAuth error codes (RFC 6749, 5.2) that refuse the
// client's credentials rather than the request's form.
var oauthKeyErrors = map[string]bool{"invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"access_denied": true}

// oauthError is the "error" of an OAuth error body (a JSON object whose
// "error" is a short code), lower-cased; "" for any other body.
func oauthError(contentType string, body []byte) string {
	if strings.Contains(strings.ToLower(contentType), "html") {
		return ""
	}
	var o struct {
		Error any `json:"error"`
	}
	if json.Unmarshal(bytes.TrimSpace(body), &o) != nil {
		return ""
	}
	code, ok := o.Error.(string)
	code = strings.ToLower(strings.TrimSpace(code))
	if !ok || code == "" || len(code) > 64 || strings.ContainsAny(code, " \t\r\n") {
		return ""
	}
	return code
}

// keyClientWords are words of a Learn-shaped 400 that name the client's
// credentials. The client always sends both halves of the key, so a 400
// that names them is about their values.
var keyClientWords = []string{"invalid_client", "invalid client", "client_id", "client_secret", "client id",
	"client secret", "client credentials", "api key"}

// keyRefusal reports whether the token endpoint's refusal (status, whether
// the body is Learn's shape, its OAuth error code and its message) refuses
// the key: which status Learn uses is not settled, nor the body's shape
// (docs/learn-api.md, "Authentication"). A 400 counts only when it names
// the client; a 403 only when the body is Learn's and not empty, or names
// a refused key in OAuth's words (not a web server's page, nor a gateway's
// own error, which a firewall or an IP allow-list in front of Learn
// answers). The connection check still takes an empty 403 for Learn's.
func keyRefusal(status int, shaped bool, oauth, msg string) bool {
	switch status {
	case http.StatusUnauthorized:
		return true
	case http.StatusForbidden:
		return shaped || oauthKeyErrors[oauth]
	case http.StatusBadRequest:
		if oauth != "" {
			return oauthKeyErrors[oauth]
		}
		if !shaped {
			return false
		}
		m := strings.ToLower(msg)
		for _, w := range keyClientWords {
			if strings.Contains(m, w) {
				return true
			}
		}
	}
	return false
}

// hideSecret takes the secret out of Learn's words, which may echo what it
// was sent: as typed, or as the form encoded it.
func hideSecret(msg, secret string) string {
	if secret == "" {
		return msg
	}
	for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
		msg = strings.ReplaceAll(msg, form, "…")
	}
	return msg
}

// tokenError is a failure to get a token, after the token fetch's own
// retries: the call is not repeated for it. It wraps ErrNoToken, and
// ErrAPIKeyRefused when Learn refused the key.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// authorization is the Authorization value of token v, bare or as Bearer.
func authorization(v string, bare bool) string {
	if bare {
		return v
	}
	return "Bearer " + v
}

// unauthorized reports a 401 answer.
func unauthorized(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusUnauthorized
}

// send makes one attempt of r, with the API key's token when the client
// has one: a cached token refused with 401 (it expired early, or was
// revoked) is fetched again once; a freshly fetched token refused in the
// form the client sends is sent once in the other form, which the client
// keeps when Learn takes it (docs/learn-api.md, "Authentication").
func (c *Client) send(ctx context.Context, r request, u string, payload []byte, n int, write bool) (*response, error) {
	if c.key == nil {
		return c.attempt(ctx, r, u, payload, n, write, "")
	}
	origin := originOf(u)
	tok, fresh, err := c.key.get(ctx, c, origin)
	if err != nil {
		return nil, &tokenError{fmt.Errorf("%s %s: %w: %w", r.method, r.route, ErrNoToken, err)}
	}
	bare := c.key.bare.Load()
	res, err := c.attempt(ctx, r, u, payload, n, write, authorization(tok.value, bare))
	if !unauthorized(err) {
		return res, err
	}
	if !fresh {
		if tok, err = c.key.renew(ctx, c, origin, tok.gen); err != nil {
			return nil, &tokenError{fmt.Errorf("%s %s: %w: %w", r.method, r.route, ErrNoToken, err)}
		}
		res, err = c.attempt(ctx, r, u, payload, n, write, authorization(tok.value, bare))
		if !unauthorized(err) {
			return res, err
		}
	}
	res2, err2 := c.attempt(ctx, r, u, payload, n, write, authorization(tok.value, !bare))
	if unauthorized(err2) {
		return nil, err
	}
	c.key.bare.CompareAndSwap(bare, !bare)
	c.log.DebugContext(ctx, "learn token form", "bare", !bare)
	return res2, err2
}

// originOf is the scheme and host of the URL u (the client's own URLs).
func originOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Scheme + "://" + p.Host
}
