package bitrix24

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"b24learn/internal/remote"
)

// Config configures a Client for one portal.
type Config struct {
	// Endpoint is the portal's client_endpoint (https://acme.bitrix24.com/rest/).
	// Empty: the token's ClientEndpoint is used.
	Endpoint string
	Tokens   TokenSource
	// Limiter paces requests; share one per portal. Nil: a private DefaultLimiter.
	Limiter RateLimiter
	// HTTP sends the requests. Callers pass a netguard client so that the
	// endpoint and its redirects obey the address rule; nil: a plain client.
	// Its own Timeout is not needed: RequestTimeout bounds every request.
	HTTP *http.Client
	// RequestTimeout is the deadline of one HTTP request, from sending it to
	// the last byte of the answer read (default DefaultRequestTimeout): a
	// portal that drips its answer cannot stretch it.
	RequestTimeout time.Duration
	// MaxSlow is what slow requests may cost the client before it sends
	// nothing more and fails every call with ErrTimeout, default
	// remote.DefaultSlowBudget (four requests past RequestTimeout, or
	// twenty answered after more than half of it; remote.Slowness).
	MaxSlow int
	Logger  *slog.Logger // nil: discard
	// UserAgent is sent on every request (the docs ask for name/version).
	UserAgent string
	// OnEndpointChange is called when a renamed portal redirected the client
	// and the new endpoint answered, so the caller can store it.
	OnEndpointChange func(ctx context.Context, endpoint string)
	// RetryWait is the first pause after QUERY_LIMIT_EXCEEDED (default
	// 1 s), doubled up to MaxRetryWait (30 s).
	RetryWait    time.Duration
	MaxRetryWait time.Duration
	// MaxRetries bounds rate-limit retries of one call (default 50); ctx bounds time.
	MaxRetries int
	// MaxOperatingWait is the longest the client waits for a method that
	// OPERATION_TIME_LIMIT blocked (default 10 s); a longer block returns
	// *OperatingLimitError at once. OperatingFallback is how long a block
	// lasts when no earlier answer of the method named its reset time
	// (default 1 min).
	MaxOperatingWait  time.Duration
	OperatingFallback time.Duration
	// MaxDepartments and MaxUsers bound a listing (default
	// DefaultMaxDepartments, DefaultMaxUsers): more fails it with
	// ErrListTooLong.
	MaxDepartments, MaxUsers int
	// MaxDepartmentNameBytes bounds the department names one listing
	// reads (default DefaultMaxDepartmentNameBytes): more fails it with
	// ErrOrgTooLarge.
	MaxDepartmentNameBytes int
	// Now and Sleep are the clock of those waits; nil: the real one.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client calls one portal's REST API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	log  *slog.Logger
	lim  RateLimiter
	slow remote.Slowness // what slow requests cost, see Config.MaxSlow

	mu       sync.Mutex
	endpoint string

	opMu      sync.Mutex
	opReset   map[string]time.Time // operating_reset_at last announced, by method
	opBlocked map[string]time.Time // blocked by OPERATION_TIME_LIMIT until, by method
	opCause   map[string]error     // the answer that blocked it
}

// New builds a client.
func New(cfg Config) *Client {
	if cfg.Tokens == nil {
		panic("bitrix24: Config.Tokens is nil")
	}
	hc := http.Client{}
	if cfg.HTTP != nil {
		hc = *cfg.HTTP
	}
	// Go turns a POST into a GET on 301/302; Bitrix24 wants the POST repeated
	// at the new address, so redirects are followed by hand.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lim := cfg.Limiter
	if lim == nil {
		lim = DefaultLimiter()
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = time.Second
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = 30 * time.Second
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 50
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "b24learn/1"
	}
	if cfg.MaxOperatingWait <= 0 {
		cfg.MaxOperatingWait = 10 * time.Second
	}
	if cfg.OperatingFallback <= 0 {
		cfg.OperatingFallback = time.Minute
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxSlow <= 0 {
		cfg.MaxSlow = remote.DefaultSlowBudget
	}
	if cfg.MaxDepartments <= 0 {
		cfg.MaxDepartments = DefaultMaxDepartments
	}
	if cfg.MaxUsers <= 0 {
		cfg.MaxUsers = DefaultMaxUsers
	}
	if cfg.MaxDepartmentNameBytes <= 0 {
		cfg.MaxDepartmentNameBytes = DefaultMaxDepartmentNameBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = remote.Sleep
	}
	return &Client{cfg: cfg, http: &hc, log: log, lim: lim, endpoint: cfg.Endpoint,
		opReset: map[string]time.Time{}, opBlocked: map[string]time.Time{}, opCause: map[string]error{}}
}

// Endpoint returns the REST endpoint in use (it changes after a rename).
func (c *Client) Endpoint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoint
}

// Call runs one method and decodes envelope.result into result (if non-nil).
// params may be nil, url.Values (sent as a form) or anything that marshals to a
// JSON object (sent as JSON).
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	env, err := c.CallEnvelope(ctx, method, params)
	if err != nil {
		return err
	}
	if result != nil {
		if err := json.Unmarshal(env.Result, result); err != nil {
			return fmt.Errorf("decode %s result: %w", method, err)
		}
	}
	return nil
}

// CallEnvelope runs one method and returns the whole envelope. expired_token is
// answered by exactly one refresh through the TokenSource and a retry; rate
// limits by waiting (bounded by ctx and MaxRetries), OPERATION_TIME_LIMIT
// until the method's reset time (see operating.go).
func (c *Client) CallEnvelope(ctx context.Context, method string, params any) (*Envelope, error) {
	tok, err := c.cfg.Tokens.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("get token: %w", err)
	}
	refreshed := false
	wait := c.cfg.RetryWait
	var limited error // the last rate-limit answer, reported if ctx ends while waiting
	for attempt := 0; ; attempt++ {
		if err := c.awaitMethod(ctx, method); err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		env, err := c.once(ctx, method, params, tok)
		if err == nil {
			c.noteTime(method, env.Time)
			return env, nil
		}
		if limited != nil && ctx.Err() != nil {
			if !errors.Is(err, ctx.Err()) { // the answer came just as ctx ended
				err = errors.Join(err, ctx.Err())
			}
			return nil, fmt.Errorf("%s: %w", method, errors.Join(limited, err))
		}
		switch {
		case !refreshed && (errors.Is(err, ErrExpiredToken) || errors.Is(err, ErrInvalidToken)):
			refreshed = true
			nt, rerr := c.cfg.Tokens.Refresh(ctx, tok)
			if rerr != nil {
				return nil, fmt.Errorf("%s: %w", method, rerr)
			}
			tok = nt
			continue
		case errors.Is(err, ErrOperationTimeLimit):
			// Only this method waits, until its reset: at the top of the loop.
			limited = err
			if attempt >= c.cfg.MaxRetries {
				return nil, fmt.Errorf("%s: giving up after %d retries: %w", method, attempt, err)
			}
			c.block(method, err)
			continue
		case errors.Is(err, ErrQueryLimitExceeded):
			limited = err
			if attempt >= c.cfg.MaxRetries {
				return nil, fmt.Errorf("%s: giving up after %d retries: %w", method, attempt, err)
			}
			c.lim.Fill() // the server's bucket is full: pace the next requests
			c.log.LogAttrs(ctx, slog.LevelInfo, "bitrix24 rate limited", slog.String("method", method),
				slog.String("code", ErrorCode(err)), slog.Duration("wait", wait))
			if serr := c.cfg.Sleep(ctx, wait); serr != nil {
				return nil, fmt.Errorf("%s: %w", method, errors.Join(err, serr))
			}
			wait = min(wait*2, c.cfg.MaxRetryWait)
			continue
		}
		return nil, fmt.Errorf("%s: %w", method, err)
	}
}

// encodeBody builds the request body with auth inside it.
func encodeBody(params any, access string) (contentType string, body []byte, err error) {
	switch p := params.(type) {
	case url.Values:
		v := url.Values{}
		for k, vs := range p {
			v[k] = append([]string(nil), vs...)
		}
		v.Set("auth", access)
		return "application/x-www-form-urlencoded", []byte(v.Encode()), nil
	case nil:
		params = map[string]any{}
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return "", nil, fmt.Errorf("encode params: %w", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return "", nil, fmt.Errorf("encode params: not a JSON object")
	}
	a, _ := json.Marshal(access)
	obj["auth"] = a
	body, err = json.Marshal(obj)
	if err != nil {
		return "", nil, fmt.Errorf("encode params: %w", err)
	}
	return "application/json", body, nil
}

const maxRedirects = 3

// DefaultRequestTimeout is a request's deadline (docs/bitrix24-api.md,
// "Deadlines"). A batch of 50 pages answers in seconds; a minute leaves a
// busy portal room many times over.
const DefaultRequestTimeout = 60 * time.Second

// maxAnswerBytes bounds one answer's body. The largest answer the client
// asks for is a batch of 50 pages of 50 users: 2,500 users at a generous
// 8 KiB each (a profile with dozens of custom fields) is 20 MiB. Anything
// beyond is a hostile portal, and is refused rather than cut (a cut answer
// would fail later as malformed JSON, hiding why).
const maxAnswerBytes = 32 << 20

// ErrAnswerTooLarge is an answer body over maxAnswerBytes.
var ErrAnswerTooLarge = errors.New("bitrix24 answer larger than any real answer")

// once sends one HTTP request (plus redirects of a renamed portal).
func (c *Client) once(ctx context.Context, method string, params any, tok Token) (*Envelope, error) {
	ct, body, err := encodeBody(params, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	endpoint := c.Endpoint()
	if endpoint == "" {
		endpoint = tok.ClientEndpoint
	}
	if endpoint == "" {
		return nil, fmt.Errorf("no REST endpoint")
	}
	target := strings.TrimRight(endpoint, "/") + "/" + method
	// moved is the endpoint a redirect pointed to. It is stored only once
	// the new address has answered a call: a redirect that the address rule
	// refuses, or that leads nowhere, must not rewrite the stored endpoint.
	moved := ""
	for hop := 0; ; hop++ {
		if n, spent := c.slow.Spent(c.cfg.MaxSlow); spent {
			return nil, fmt.Errorf("%w: slow answers cost %d, no more requests to this portal", ErrTimeout, n)
		}
		if err := c.lim.Wait(ctx); err != nil {
			return nil, err
		}
		start := time.Now()
		resp, respBody, err := c.send(ctx, target, ct, body)
		if err != nil {
			return nil, err
		}
		if len(respBody) > maxAnswerBytes {
			return nil, fmt.Errorf("%s: answer over %d MiB: %w", method, maxAnswerBytes>>20, ErrAnswerTooLarge)
		}
		if isRedirect(resp.StatusCode) {
			loc, lerr := resp.Location()
			if lerr != nil || hop >= maxRedirects || (loc.Scheme != "https" && loc.Scheme != "http") {
				return nil, fmt.Errorf("portal redirect: bad or too many redirects (http %d)", resp.StatusCode)
			}
			// The request carries the access token: follow only a renamed
			// portal's move to another REST endpoint, never a downgrade to
			// plain http and never to an arbitrary address.
			cur, _ := url.Parse(target)
			ne := endpointOf(loc, method)
			if ne == "" || (cur != nil && cur.Scheme == "https" && loc.Scheme != "https") {
				return nil, fmt.Errorf("portal redirect: refused redirect to %s://%s (not a REST endpoint over the same security)",
					remote.Excerpt(loc.Scheme), remote.Excerpt(loc.Host))
			}
			target = loc.String()
			if ne != endpoint {
				moved = ne
			}
			continue
		}
		env, err := DecodeEnvelope(resp.StatusCode, respBody)
		c.log.LogAttrs(ctx, slog.LevelDebug, "bitrix24 call", slog.String("method", method),
			slog.Int("status", resp.StatusCode), slog.Duration("duration", time.Since(start)),
			slog.String("error", ErrorCode(err)), slog.String("description", excerpt(err)))
		if err == nil && moved != "" && moved != endpoint {
			c.setEndpoint(ctx, moved)
		}
		return env, err
	}
}

// send makes one HTTP request and reads its whole answer within
// RequestTimeout. The deadline covers the body: a portal that sent its
// headers and then drips the body fails with a remote.TimeoutError.
func (c *Client) send(ctx context.Context, target, ct string, body []byte) (*http.Response, []byte, error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	// connected tells a portal that took the connection and was slow to
	// answer from one never reached (a dial failure stays as it is).
	var connected atomic.Bool
	rctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }})
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	start := time.Now()
	resp, err := c.http.Do(req)
	var respBody []byte
	if err == nil {
		respBody, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
		resp.Body.Close()
		if err != nil {
			err = fmt.Errorf("read answer: %w", err)
		}
	} else {
		err = &boundedError{unwrapURLError(err)}
	}
	took := time.Since(start)
	if errors.Is(rctx.Err(), context.DeadlineExceeded) && connected.Load() {
		// Whatever the read made of the cut answer (it may even read as
		// a clean end), the cause is the deadline.
		c.slow.Note(true, took, c.cfg.RequestTimeout)
		return nil, nil, &remote.TimeoutError{Cause: ErrTimeout, After: took}
	}
	if err == nil {
		c.slow.Note(false, took, c.cfg.RequestTimeout)
	}
	if err != nil {
		return nil, nil, err
	}
	return resp, respBody, nil
}

// maxTransportErrText bounds the text of a transport failure.
const maxTransportErrText = 300

// boundedError is a transport failure, whose text may quote what the
// portal chose: the host its redirect named (a resolver's error quotes it
// twice), a malformed header line. Error texts are stored with the run and
// logged, so its text is a short excerpt in valid UTF-8; Unwrap still
// gives the failure.
type boundedError struct{ err error }

func (e *boundedError) Error() string { return remote.Clip(e.err.Error(), maxTransportErrText) }

func (e *boundedError) Unwrap() error { return e.err }

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// endpointOf derives the new client endpoint from a redirect to <endpoint>/<method>.
func endpointOf(loc *url.URL, method string) string {
	u := *loc
	u.RawQuery, u.Fragment = "", ""
	p := u.Path
	lp := strings.ToLower(p)
	for _, suffix := range []string{"/" + strings.ToLower(method) + ".json", "/" + strings.ToLower(method)} {
		if strings.HasSuffix(lp, suffix) {
			u.Path = p[:len(p)-len(suffix)+1]
			u.RawPath = ""
			return u.String()
		}
	}
	if i := strings.LastIndex(lp, "/rest/"); i >= 0 {
		u.Path = p[:i+len("/rest/")]
		u.RawPath = ""
		return u.String()
	}
	return ""
}

func (c *Client) setEndpoint(ctx context.Context, ep string) {
	c.mu.Lock()
	c.endpoint = ep
	c.mu.Unlock()
	c.log.LogAttrs(ctx, slog.LevelInfo, "bitrix24 portal moved", slog.String("endpoint", ep))
	if c.cfg.OnEndpointChange != nil {
		c.cfg.OnEndpointChange(ctx, ep)
	}
}
