package learn

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Stable codes of a failed connection check. The settings page shows the
// admin a sentence for each code in the portal's language (internal/i18n);
// logs show the code.
const (
	CheckBadURL   = "bad_url"
	CheckNotHTTPS = "not_https"
	// CheckUnreachable covers every address the app cannot or will not talk
	// to: refused by the address rule, a name that does not resolve, a closed
	// port, a connection that does not open in time. One code and one message, so that the page does not
	// tell a portal admin which internal hosts and ports exist.
	CheckUnreachable    = "unreachable"
	CheckTLS            = "tls"
	CheckBadCredentials = "bad_credentials"
	CheckNoAPIAccess    = "no_api_access"
	CheckNotLearn       = "not_learn"
	CheckServerError    = "server_error"
	// CheckTimeout: the server took the connection but did not answer in
	// time (a refused or unanswered connection is CheckUnreachable).
	CheckTimeout = "timeout"
	// CheckBadAPIKey: Learn refused the API key (Client ID and Secret), or
	// only half of one was given. A refused e-mail and password is
	// CheckBadCredentials, whose message also says that Learn may take only
	// API keys: a 401 does not tell a wrong password from header auth
	// retired (docs/learn-api.md, "Authentication").
	CheckBadAPIKey = "bad_api_key"
	// CheckNotAccountAdmin: the credentials are a department
	// administrator's, a custom role's or another limited role's, or a mere
	// supervisor's; the sync needs an account administrator's
	// (User.Limited, User.OnlySupervises).
	CheckNotAccountAdmin = "not_account_admin"
	// CheckUnconfirmedAdmin is a warning, not a failure: the credentials'
	// user reads without a role (Learn may leave the role keys out of reads
	// or send them empty) or as a learner, and nothing else the API answers
	// a reader tells an account administrator from a mere supervisor, so
	// the check could not confirm the rights the sync needs (Checked.Warning).
	CheckUnconfirmedAdmin = "unconfirmed_admin"
)

// Checked is what a passed connection check found.
type Checked struct {
	// APIURL is where the account's API answers.
	APIURL string
	// Warning is the code of what the check could not confirm and the admin
	// should know (CheckUnconfirmedAdmin), "" for none.
	Warning string
}

// DefaultCheckTimeout bounds the settings page's check as a whole: the
// admin waits for it (docs/learn-api.md, "Deadlines").
const DefaultCheckTimeout = 20 * time.Second

// CheckError is a failed connection check: a stable Code for the admin's
// message and the underlying error for logs.
type CheckError struct {
	Code string
	Err  error
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("learn check %s: %v", e.Code, e.Err)
}

func (e *CheckError) Unwrap() error { return e.Err }

// CheckConnection is FindAPI without the base URL.
func CheckConnection(ctx context.Context, creds Credentials, opts Options) error {
	_, err := FindAPI(ctx, creds, opts)
	return err
}

// FindAPI is Check without its warning.
func FindAPI(ctx context.Context, creds Credentials, opts Options) (string, error) {
	c, err := Check(ctx, creds, opts)
	return c.APIURL, err
}

// Check normalises the account URL and finds where the account's REST API
// answers: it tries APICandidates in order (only opts.BaseURL when set) with
// one cheap authenticated call (the first page of departments, size 1) and
// returns the first base that answers as Learn, once the credentials' user
// there is not found to be less than an account administrator (checkRole),
// with a warning when its rights could not be confirmed. Any failure is a
// *CheckError: the one Learn gave (wrong credentials, no API access), or
// else the most telling of the candidates' failures. The whole search ends
// within Options.CheckTimeout; each candidate gets at most two attempts of
// at most two fifths of it.
func Check(ctx context.Context, creds Credentials, opts Options) (Checked, error) {
	c, err := New(creds, opts)
	if err != nil {
		if errors.Is(err, ErrInsecureURL) {
			return Checked{}, &CheckError{Code: CheckNotHTTPS, Err: err}
		}
		return Checked{}, &CheckError{Code: CheckBadURL, Err: err}
	}
	if (strings.TrimSpace(creds.ClientID) == "") != (creds.ClientSecret == "") {
		return Checked{}, &CheckError{Code: CheckBadAPIKey, Err: errors.New("half an API key")}
	}
	if strings.TrimSpace(creds.Email) == "" || creds.Password == "" && !creds.HasAPIKey() {
		return Checked{}, &CheckError{Code: CheckBadCredentials, Err: errors.New("empty email or password")}
	}
	// The role's read counts in the check's bound too.
	ctx, cancel := context.WithTimeout(ctx, c.checkTO)
	defer cancel()
	base, err := c.probe(ctx, true)
	if err != nil {
		return Checked{}, err
	}
	warning, cerr := c.checkRole(ctx, base)
	if cerr != nil {
		return Checked{}, cerr
	}
	return Checked{APIURL: base, Warning: warning}, nil
}

// checkRole refuses credentials whose user is not an account
// administrator, found by the login filter, else the e-mail filter. A user
// neither finds is left to the sync, which reads every user and stops
// unless it finds an account administrator: whether the filters ignore
// letter case is not settled, and a false refusal here would keep an
// owner from saving. A user whose read shows no rights over others (no
// role, or a learner's) passes with the warning CheckUnconfirmedAdmin: the
// owner may read so, and so may a supervisor whose credentials Learn lets
// read (no source says either), and no read tells them apart; a write
// would, but a check must not change the account.
func (c *Client) checkRole(ctx context.Context, base string) (warning string, _ *CheckError) {
	rc := &Client{creds: c.creds, base: base, fixed: true, hc: c.hc, log: c.log, par: c.par, retry: probeRetry(c.checkTO), onCall: c.onCall, key: c.key}
	name := strings.TrimSpace(c.creds.Email)
	u, err := rc.FindUserByLogin(ctx, name)
	if errors.Is(err, ErrNotFound) {
		u, err = rc.FindUserByEmail(ctx, name)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return "", nil
	case errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
		// The API answered the probe just now; a slow first candidate may
		// have spent most of the check's bound. The run asks the same
		// before it writes, under deadlines of its own.
		return "", nil
	case err != nil:
		return "", &CheckError{Code: classify(err), Err: fmt.Errorf("read the sign-in user: %w", err)}
	case u.Limited():
		return "", &CheckError{Code: CheckNotAccountAdmin, Err: fmt.Errorf("a limited role: %w", ErrNotAccountAdmin)}
	case u.OnlySupervises():
		return "", &CheckError{Code: CheckNotAccountAdmin, Err: fmt.Errorf("only a supervisor: %w", ErrNotAccountAdmin)}
	case !u.Administers():
		return CheckUnconfirmedAdmin, nil
	}
	return "", nil
}

// FindAPI picks the base URL of the account's API as the package's FindAPI
// does, and makes the client use it. A client built with Options.BaseURL
// keeps that base and makes no call. Call it before any other method: it is
// not safe for concurrent use with them.
func (c *Client) FindAPI(ctx context.Context) (string, error) {
	if c.fixed {
		return c.base, nil
	}
	base, err := c.probe(ctx, false)
	if err != nil {
		return "", err
	}
	c.base, c.fixed = base, true
	return base, nil
}

// probeRetry bounds each candidate's probe, so that a dead first candidate
// leaves time for the next one within the check's bound (total).
func probeRetry(total time.Duration) RetryPolicy {
	return RetryPolicy{MaxAttempts: 2, BaseDelay: 300 * time.Millisecond, MaxDelay: time.Second,
		MaxRetryAfter: 2 * time.Second, Timeout: total * 2 / 5}.withDefaults()
}

// probe tries the candidate bases (only the fixed one when check is set and
// the base is fixed) and returns the first that answers as Learn.
func (c *Client) probe(ctx context.Context, check bool) (string, error) {
	cands := APICandidates(c.creds.AccountURL)
	if c.fixed && check {
		cands = []string{c.base}
	}
	ctx, cancel := context.WithTimeout(ctx, c.checkTO)
	defer cancel()
	// A client of its own for the short retry policy; OnCall still sees the probes.
	pc := &Client{creds: c.creds, base: c.base, hc: c.hc, log: c.log, par: c.par, retry: probeRetry(c.checkTO), onCall: c.onCall, key: c.key}
	var worst *CheckError
	silent := map[string]bool{} // hosts that gave no answer at all
	for _, base := range cands {
		host := base
		if u, err := url.Parse(base); err == nil {
			host = u.Host
		}
		if silent[host] {
			continue // the next path on the same host would not answer either
		}
		learn, cerr := pc.probeOne(ctx, base)
		if learn {
			if cerr != nil {
				return "", cerr
			}
			return base, nil
		}
		var ae *APIError
		if !errors.As(cerr, &ae) && !errors.Is(cerr, ErrUnexpected) {
			silent[host] = true
		}
		if worst == nil || checkRank[cerr.Code] > checkRank[worst.Code] {
			worst = cerr
		}
		if ctx.Err() != nil {
			break
		}
	}
	return "", worst
}

// checkRank orders the failures of candidates that did not answer as Learn:
// the most telling one is reported. A certificate problem or a server error
// says more than "not Learn" (a web page), which says more than a server
// that took the connection and answered too slowly, or no answer at all.
var checkRank = map[string]int{CheckUnreachable: 1, CheckTimeout: 2, CheckNotLearn: 3, CheckServerError: 4, CheckNotHTTPS: 5, CheckTLS: 6}

// probeOne calls GET /departments?pageSize=1 at base. learn reports whether
// the answer came from Learn: a department page, or an error of Learn's
// shape (wrong credentials, no API access, rate limit, server error). A web
// page (any HTML, or JSON of another shape) is not Learn, whatever its status.
func (c *Client) probeOne(ctx context.Context, base string) (learn bool, _ *CheckError) {
	res, err := c.do(ctx, request{method: http.MethodGet, route: "/departments", base: base, path: "/departments",
		query: url.Values{"pageSize": {"1"}}})
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			switch {
			case ae.keyRefused, ae.learnShaped && (ae.Status == 401 || ae.Status == 403 || ae.Status == 429 || ae.Status >= 500):
				return true, &CheckError{Code: classify(err), Err: err}
			case ae.Status == 429 || ae.Status >= 500:
				return false, &CheckError{Code: CheckServerError, Err: err}
			default:
				return false, &CheckError{Code: CheckNotLearn, Err: err}
			}
		}
		return false, &CheckError{Code: classify(err), Err: err}
	}
	var page map[string]json.RawMessage
	if decode("/departments", res.body, &page) != nil {
		return false, &CheckError{Code: CheckNotLearn, Err: fmt.Errorf("answer at %s is not a department page: %w", base, ErrUnexpected)}
	}
	var list []json.RawMessage
	if raw, ok := page["departments"]; !ok || json.Unmarshal(raw, &list) != nil {
		return false, &CheckError{Code: CheckNotLearn, Err: fmt.Errorf("answer at %s has no departments: %w", base, ErrUnexpected)}
	}
	return true, nil
}

// learnErrorBody reports whether an error answer is in Learn's shape: a JSON
// object or an XML <response> with a code or a message. A 401 or 403 with an
// empty body counts too (the texts of these answers are not settled); an
// HTML page never does.
func learnErrorBody(status int, contentType string, body []byte) bool {
	if strings.Contains(strings.ToLower(contentType), "html") {
		return false
	}
	b := bytes.TrimSpace(body)
	switch {
	case len(b) == 0:
		return status == 401 || status == 403
	case b[0] == '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			return false
		}
		_, code := m["code"]
		_, msg := m["message"]
		return code || msg
	case b[0] == '<':
		var x struct {
			XMLName xml.Name
			Code    *string `xml:"code"`
			Message *string `xml:"message"`
		}
		return xml.Unmarshal(b, &x) == nil && x.XMLName.Local == "response" && (x.Code != nil || x.Message != nil)
	}
	return false
}

// classify maps a call failure to a check code.
func classify(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		switch {
		case ae.keyRefused, ae.Status == 401 && ae.keyAuth:
			return CheckBadAPIKey // the sync's FindAPI too (syncer.RunErrorKey)
		case ae.Status == 401:
			return CheckBadCredentials
		case ae.Status == 403:
			return CheckNoAPIAccess
		case ae.Status == 429 || ae.Status >= 500:
			return CheckServerError
		default:
			return CheckNotLearn
		}
	}
	var dnsErr *net.DNSError
	var certInvalid x509.CertificateInvalidError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var verifyErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var netErr net.Error
	var urlErr *url.Error
	switch {
	case isForbidden(err), errors.As(err, &dnsErr):
		return CheckUnreachable
	case errors.Is(err, ErrTimeout): // connected, but the answer did not come in time
		return CheckTimeout
	case errors.Is(err, ErrUnexpected): // an unreadable or over-limit answer
		return CheckNotLearn
	case errors.Is(err, ErrInsecureURL):
		return CheckNotHTTPS
	case errors.As(err, &verifyErr), errors.As(err, &certInvalid), errors.As(err, &unknownAuth),
		errors.As(err, &hostErr), errors.As(err, &recordErr):
		return CheckTLS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return CheckUnreachable
	case errors.As(err, &urlErr) && strings.Contains(urlErr.Err.Error(), "redirects"):
		// (not err's text: it names the last URL, the server's choice, and is cut)
		return CheckNotLearn
	default:
		return CheckUnreachable
	}
}
