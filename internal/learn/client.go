// Package learn is a client for the iSpring Learn REST API as the sync uses it:
// header auth with the account admin's email and password, or a token from an
// API key (docs/learn-api.md, "Authentication"), JSON, token paging,
// departments, users, statuses, subordination and profile field definitions.
//
// Every method is safe for concurrent use. Reads and idempotent writes are retried
// on 429, 5xx and transport errors with exponential backoff and jitter, honouring
// Retry-After. Creates are not idempotent: they are retried blindly only on 429;
// after a 5xx or a lost answer the client first looks the object up by its key
// (department code, user login) and returns the existing ID if the create went
// through (see CreateDepartment, CreateUser).
//
// Errors are *APIError values that unwrap to ErrBadCredentials, ErrNoAPIAccess,
// ErrNotFound, ErrDuplicate, *ValidationError, ErrRateLimited or ErrServer.
package learn

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"b24learn/internal/remote"
)

// Credentials are what the admin enters on the settings page.
type Credentials struct {
	AccountURL string // e.g. https://acme.ispringlearn.ru; normalised by New
	Email      string // admin email or login
	Password   string
	// ClientID and ClientSecret are an API key made in Learn. With both
	// set the client sends a token from POST /api/v3/token instead of
	// Email and Password (docs/learn-api.md, "Authentication").
	ClientID, ClientSecret string
}

// RetryPolicy bounds retries. Zero fields take the defaults.
type RetryPolicy struct {
	MaxAttempts   int           // total attempts per call, default 6
	BaseDelay     time.Duration // first backoff, default 250ms; doubles per attempt
	MaxDelay      time.Duration // backoff cap, default 15s
	MaxRetryAfter time.Duration // a longer Retry-After is not waited for: the call fails with ErrRateLimited, default 60s
	// Timeout is the deadline of one attempt, from sending to the last byte
	// of the answer read, default DefaultTimeout: a server that drips its
	// answer cannot stretch it.
	Timeout time.Duration
	// MaxSlow is what slow attempts may cost a client before it sends
	// nothing more and fails every call with ErrTimeout, default
	// remote.DefaultSlowBudget (four attempts past Timeout, or twenty
	// answered after more than half of it; remote.Slowness): a server slow
	// on purpose holds a run for a few deadlines, not until the job's
	// timeout (docs/learn-api.md, "Deadlines").
	MaxSlow int
}

// DefaultTimeout is an attempt's deadline. Learn answers a page or a write
// in well under a second; a minute leaves a slow link many times that.
const DefaultTimeout = 60 * time.Second

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 6
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 250 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 15 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 60 * time.Second
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	if p.MaxSlow <= 0 {
		p.MaxSlow = remote.DefaultSlowBudget
	}
	return p
}

// Call describes one HTTP attempt, for Options.OnCall.
type Call struct {
	Method   string
	Route    string // path pattern, e.g. "/user/{id}"
	Status   int    // 0 on a transport error
	Attempt  int    // 1-based
	Write    bool   // anything but GET
	Duration time.Duration
	Err      error // transport error, nil when an answer arrived
}

// Options configure a Client. The zero value works: a safe HTTP client that refuses
// private addresses, the default retry policy, parallelism 4, a discarding logger.
type Options struct {
	HTTPClient  *http.Client // default NewHTTPClient(DialerOptions{})
	Logger      *slog.Logger
	Parallelism int // writes in flight for Parallel callers, default 4
	Retry       RetryPolicy
	// AllowHTTP accepts an http:// account URL (LEARN_ALLOW_PRIVATE_HOSTS).
	AllowHTTP bool
	// BaseURL is where the account's API answers, found before by FindAPI and
	// stored with the settings (or a test's simulator). Empty: the first of
	// APICandidates until FindAPI picks one.
	BaseURL string
	// OnCall, when set, is called after every HTTP attempt (metrics, run reports).
	OnCall func(Call)
	// CheckTimeout bounds FindAPI and CheckConnection as a whole, default
	// DefaultCheckTimeout.
	CheckTimeout time.Duration
}

// Stats counts the HTTP attempts a Client made.
type Stats struct {
	Reads, Writes, Retries, Failures int64
}

// Client talks to one Learn account.
type Client struct {
	creds   Credentials
	base    string
	fixed   bool // base came from Options.BaseURL: FindAPI does not probe
	hc      *http.Client
	log     *slog.Logger
	par     int
	retry   RetryPolicy
	onCall  func(Call)
	checkTO time.Duration
	reads   atomic.Int64
	writes  atomic.Int64
	retries atomic.Int64
	fails   atomic.Int64
	// slow is what slow attempts cost (see RetryPolicy.MaxSlow).
	slow remote.Slowness
	// limiter, when set, bounds writes in flight (LimitWrites); wlimSum
	// and wlimMax are the limits the writes went out under, throttled the
	// 429s they met.
	limiter   *Limiter
	wlimSum   atomic.Int64
	wlimN     atomic.Int64
	wlimMax   atomic.Int64
	throttled atomic.Int64
	// sendPassword: the account refused a user created without a password,
	// so creates send a generated one (see CreateUser).
	sendPassword atomic.Bool
	// key, with an API key, is the client's access token (see send).
	key *tokenAuth
}

// LimitWrites makes every write attempt take a permit of l first and report
// how it went, so that l finds the account's concurrency. Call it before the
// first request; l is usually shared by every client of the account.
func (c *Client) LimitWrites(l *Limiter) { c.limiter = l }

// WriteLimiter is the limiter set by LimitWrites, or nil.
func (c *Client) WriteLimiter() *Limiter { return c.limiter }

// WriteConcurrency are the limits this client's writes went out under.
type WriteConcurrency struct {
	Max       int     // highest limit a write was sent under
	Mean      float64 // mean limit per write attempt
	Attempts  int64   // write attempts that took a permit
	Throttled int64   // 429s met by writes
}

// WriteConcurrency returns the figures of this client's writes (zero without
// a limiter).
func (c *Client) WriteConcurrency() WriteConcurrency {
	w := WriteConcurrency{Max: int(c.wlimMax.Load()), Attempts: c.wlimN.Load(), Throttled: c.throttled.Load()}
	if w.Attempts > 0 {
		w.Mean = float64(c.wlimSum.Load()) / float64(w.Attempts)
	}
	return w
}

// New builds a client for the account in creds. It normalises the account URL
// (ErrInvalidURL, ErrInsecureURL) but does not call Learn; see CheckConnection.
func New(creds Credentials, opts Options) (*Client, error) {
	acct, err := NormalizeAccountURL(creds.AccountURL, opts.AllowHTTP)
	if err != nil {
		return nil, fmt.Errorf("account url: %w", err)
	}
	creds.AccountURL = acct
	c := &Client{
		creds:   creds,
		base:    APIBaseURL(acct),
		hc:      opts.HTTPClient,
		log:     opts.Logger,
		par:     opts.Parallelism,
		retry:   opts.Retry.withDefaults(),
		onCall:  opts.OnCall,
		checkTO: opts.CheckTimeout,
	}
	if creds.HasAPIKey() {
		c.key = newTokenAuth()
	}
	if c.checkTO <= 0 {
		c.checkTO = DefaultCheckTimeout
	}
	if opts.BaseURL != "" {
		c.base, c.fixed = strings.TrimRight(opts.BaseURL, "/"), true
	}
	if c.hc == nil {
		c.hc = NewHTTPClient(DialerOptions{AllowPrivate: opts.AllowHTTP})
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.par <= 0 {
		c.par = 4
	}
	return c, nil
}

// AccountURL is the normalised account URL sent in X-Auth-Account-Url.
func (c *Client) AccountURL() string { return c.creds.AccountURL }

// BaseURL is the API base the client calls.
func (c *Client) BaseURL() string { return c.base }

// Parallelism is the configured number of writes in flight (see Parallel).
func (c *Client) Parallelism() int { return c.par }

// Stats returns the attempts made so far.
func (c *Client) Stats() Stats {
	return Stats{Reads: c.reads.Load(), Writes: c.writes.Load(), Retries: c.retries.Load(), Failures: c.fails.Load()}
}

// retryMode says which failures a call may repeat.
type retryMode int

const (
	retrySafe    retryMode  = iota // reads and idempotent writes: 429, 5xx, transport errors
	retryOnly429                   // creates: only when Learn said it did not process the request
	maxErrorBody = 64 << 10        // of an error answer only a short excerpt is used
)

// request is one logical API call.
type request struct {
	method string
	route  string // for counters and errors
	base   string // "" is the client's base; FindAPI probes others
	path   string // with path parameters filled in
	query  url.Values
	body   any
	mode   retryMode
	// stream, when set, reads a 2xx answer's body itself (listing pages are
	// decoded as they arrive); the response then has no body. It may be
	// called again on a retry.
	stream func(body io.Reader) error
}

// response is a successful answer.
type response struct {
	status int
	body   []byte
}

// errUncertain marks a failure after which a non-idempotent write may have been applied.
type errUncertain struct{ err error }

func (e *errUncertain) Error() string { return e.err.Error() }
func (e *errUncertain) Unwrap() error { return e.err }

// create sends a create (POST route) and returns the new object's id from
// the answer's idKey. A create is not idempotent: when its answer is lost
// (5xx, timeout), or a repeat after a lost answer meets 409 (the first one
// may have gone through), lookup says whether the object exists (its id) or
// not ("": the create is sent again, up to MaxAttempts). Without lookup,
// when lookup fails, or when a repeat is refused with 400 and lookup finds
// nothing, the error matches ErrMaybeCreated: the caller must look before it
// creates again.
func (c *Client) create(ctx context.Context, what, route string, body any, idKey string, lookup func(context.Context) (string, error)) (string, error) {
	uncertain := false
	for attempt := 1; ; attempt++ {
		res, err := c.do(ctx, request{method: http.MethodPost, route: route, path: route, body: body, mode: retryOnly429})
		if err == nil {
			id := parseID(res.body, idKey)
			if !plausibleID(id) {
				return "", fmt.Errorf("%s: no id in answer: %w", what, ErrUnexpected)
			}
			return id, nil
		}
		var unc *errUncertain
		var invalid *ValidationError
		// A repeat after a lost answer may meet the object it made:
		// Learn says so with 409, or perhaps 400 (not settled).
		refusedRepeat := uncertain && (errors.Is(err, ErrDuplicate) || errors.As(err, &invalid))
		switch {
		case errors.As(err, &unc):
			uncertain = true
		case refusedRepeat:
		default:
			return "", fmt.Errorf("%s: %w", what, err)
		}
		if lookup == nil {
			return "", fmt.Errorf("%s: %w: %w", what, ErrMaybeCreated, err)
		}
		id, ferr := lookup(ctx)
		if ferr != nil {
			return "", fmt.Errorf("%s: %w: %w", what, ErrMaybeCreated, ferr)
		}
		if id != "" {
			return id, nil
		}
		if invalid != nil {
			// Refused, and not found: the refusal stands, but it may be
			// for the object the lost attempt made (a cut code, a lagging
			// listing).
			return "", fmt.Errorf("%s: %w: %w", what, ErrMaybeCreated, err)
		}
		if attempt >= c.retry.MaxAttempts {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		if err := remote.Sleep(ctx, c.backoff(attempt)); err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
	}
}

// do runs a request with retries. It returns the 2xx answer or an error; for
// retryOnly429 calls a 5xx or transport failure comes back wrapped in *errUncertain.
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return nil, fmt.Errorf("encode %s: %w", r.route, err)
		}
	}
	u := c.base + r.path
	if r.base != "" {
		u = r.base + r.path
	}
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	write := r.method != http.MethodGet
	for attempt := 1; ; attempt++ {
		if n, spent := c.slow.Spent(c.retry.MaxSlow); spent {
			c.fails.Add(1)
			return nil, fmt.Errorf("%s %s: %w: slow answers cost %d, no more requests to this server", r.method, r.route, ErrTimeout, n)
		}
		resp, err := c.send(ctx, r, u, payload, attempt, write)
		if err == nil {
			return resp, nil
		}
		var ae *APIError
		var te *tokenError
		isAPI := errors.As(err, &ae)
		retryable := false
		var wait time.Duration
		switch {
		case ctx.Err() != nil:
			return nil, err
		case errors.As(err, &te):
			// The token fetch retried on its own.
		case !isAPI && errors.Is(err, ErrUnexpected):
			// An unreadable or over-limit answer: the server would send it again.
		case isAPI && ae.Status == http.StatusTooManyRequests:
			retryable = true
			wait = ae.RetryAfter
			if wait > c.retry.MaxRetryAfter {
				return nil, err // the caller (a job) should snooze instead
			}
		case !isAPI && permanent(err):
			// retrying cannot help: refused address, bad certificate, unknown host
		case isAPI && ae.Status >= 500 || !isAPI:
			if r.mode == retryOnly429 {
				return nil, &errUncertain{err}
			}
			retryable = true
			if isAPI {
				wait = ae.RetryAfter
			}
		}
		if !retryable || attempt >= c.retry.MaxAttempts {
			c.fails.Add(1)
			return nil, err
		}
		if wait == 0 || wait > c.retry.MaxRetryAfter {
			wait = c.backoff(attempt)
		} else {
			wait += time.Duration(rand.Int64N(int64(wait)/10 + 1)) // spread retries of parallel callers
		}
		c.retries.Add(1)
		c.log.DebugContext(ctx, "learn retry", "route", r.route, "attempt", attempt, "wait", wait, "err", err)
		if err := remote.Sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.method, r.route, err)
		}
	}
}

// backoff is exponential with jitter in [d/2, d].
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.BaseDelay << (attempt - 1)
	if d > c.retry.MaxDelay || d <= 0 {
		d = c.retry.MaxDelay
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// attempt is one HTTP request of r: with header auth, or with auth as the
// Authorization value (a token, see send).
func (c *Client) attempt(ctx context.Context, r request, u string, payload []byte, n int, write bool, auth string) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, c.retry.Timeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	// connected tells a server that took the connection and was slow to
	// answer (a remote.TimeoutError) from one never reached (a dial failure).
	var connected atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }})
	req, err := http.NewRequestWithContext(actx, r.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", r.method, r.route, err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	} else {
		req.Header.Set("X-Auth-Account-Url", c.creds.AccountURL)
		req.Header.Set("X-Auth-Email", c.creds.Email)
		req.Header.Set("X-Auth-Password", c.creds.Password)
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	var permit *Permit
	if write && c.limiter != nil {
		if permit, err = c.limiter.Acquire(ctx); err != nil {
			return nil, fmt.Errorf("%s %s: wait for a write slot: %w", r.method, r.route, err)
		}
		c.wlimSum.Add(int64(permit.Limit()))
		c.wlimN.Add(1)
		for m := c.wlimMax.Load(); int64(permit.Limit()) > m && !c.wlimMax.CompareAndSwap(m, int64(permit.Limit())); m = c.wlimMax.Load() {
		}
	}
	if write {
		c.writes.Add(1)
	} else {
		c.reads.Add(1)
	}
	start := time.Now()
	res, err := c.hc.Do(req)
	if err != nil {
		dropQuery(err)
		err = &boundedError{err} // may quote a malformed answer
	}
	var data []byte
	success := err == nil && res.StatusCode >= 200 && res.StatusCode < 300
	if err == nil {
		switch {
		case success && r.stream != nil:
			err = r.stream(res.Body)
		case success:
			cr := &capReader{r: res.Body, n: maxAnswerBytes,
				err: &LimitError{Limit: LimitAnswerBytes, What: r.method + " " + r.route, Value: maxAnswerBytes}}
			data, err = io.ReadAll(cr)
		default:
			data, err = io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
		}
		res.Body.Close()
	}
	took := time.Since(start)
	timedOut := errors.Is(actx.Err(), context.DeadlineExceeded) && connected.Load()
	if timedOut {
		// Whatever the read made of the cut answer, the cause is the
		// deadline; a cut body may even read as a clean end.
		err = &remote.TimeoutError{Cause: ErrTimeout, After: took}
	}
	if timedOut || err == nil {
		c.slow.Note(timedOut, took, c.retry.Timeout)
	}
	if permit != nil {
		permit.Done(c.outcome(ctx, res, err))
	}
	call := Call{Method: r.method, Route: r.route, Attempt: n, Write: write, Duration: took, Err: err}
	if err != nil && errors.Is(err, ErrUnexpected) {
		// The answer arrived but is refused: not a transport failure.
		call.Status, call.Err = res.StatusCode, nil
	}
	if err != nil {
		if c.onCall != nil {
			c.onCall(call)
		}
		return nil, fmt.Errorf("%s %s: %w", r.method, r.route, err)
	}
	call.Status = res.StatusCode
	if c.onCall != nil {
		c.onCall(call)
	}
	if success {
		return &response{status: res.StatusCode, body: data}, nil
	}
	code, msg := parseErrorBody(data)
	return nil, &APIError{
		Method: r.method, Path: r.route, Status: res.StatusCode, Code: code, Message: msg,
		learnShaped: learnErrorBody(res.StatusCode, res.Header.Get("Content-Type"), data),
		RetryAfter:  parseRetryAfter(res.Header.Get("Retry-After"), time.Now()),
		keyAuth:     auth != "",
	}
}

// outcome tells the write limiter how an attempt went: 429 and 503 are the
// server refusing load, a timeout is the server too slow to answer; other
// transport failures and a caller that gave up say nothing about its load.
func (c *Client) outcome(ctx context.Context, res *http.Response, err error) Outcome {
	switch {
	case ctx.Err() != nil:
		return Outcome{Ignore: true}
	case err != nil && !errors.Is(err, ErrUnexpected):
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			return Outcome{Dropped: true}
		}
		return Outcome{Ignore: true}
	case res.StatusCode == http.StatusTooManyRequests:
		c.throttled.Add(1)
		return Outcome{Dropped: true, Throttled: true, RetryAfter: parseRetryAfter(res.Header.Get("Retry-After"), time.Now())}
	case res.StatusCode == http.StatusServiceUnavailable:
		return Outcome{Dropped: true, RetryAfter: parseRetryAfter(res.Header.Get("Retry-After"), time.Now())}
	}
	return Outcome{ServerTime: serverTime(res.Header.Values("Server-Timing"))}
}

// serverTime is the longest dur among the answer's Server-Timing metrics (they
// may nest: a total and its parts), 0 when there is none or none parses
// (docs/learn-api.md, "Write concurrency").
func serverTime(values []string) time.Duration {
	var best float64
	for _, v := range values {
		for metric := range strings.SplitSeq(v, ",") {
			for param := range strings.SplitSeq(metric, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(param), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "dur") {
					continue
				}
				ms, err := strconv.ParseFloat(strings.Trim(strings.TrimSpace(val), `"`), 64)
				if err == nil && ms > best && ms < 24*60*60*1000 {
					best = ms
				}
			}
		}
	}
	return time.Duration(best * float64(time.Millisecond))
}

// parseRetryAfter reads delta-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Duration(min(s, int64(maxServerWait/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxServerWait)
	}
	return 0
}

// maxServerWait bounds a server's Retry-After as read: the Learn URL is the
// portal admin's to choose, and a wait of years would overflow a duration
// (a negative wait panicked the retry's jitter) or park the portal's jobs
// and its account's limiter for good. After an hour Learn is asked again,
// and a server still refusing says so again.
const maxServerWait = time.Hour

// permanent reports transport failures that a retry cannot fix.
func permanent(err error) bool {
	var dnsErr *net.DNSError
	var verifyErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	return errors.Is(err, ErrForbiddenAddr) || errors.Is(err, ErrInsecureURL) ||
		(errors.As(err, &dnsErr) && dnsErr.IsNotFound) ||
		errors.As(err, &verifyErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr)
}
