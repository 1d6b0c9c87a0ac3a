// Package config reads the service's settings from environment variables and
// validates them at start, so a bad value stops the process with one line
// that names the variable instead of failing later.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"

	"b24learn/internal/bitrix24"
	"b24learn/internal/i18n"
	"b24learn/internal/secret"
)

// DefaultDatabaseURL is a local server with trust auth, as the quick start has.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/b24learn?sslmode=disable"

// Config is every setting the README's "Configuration" lists plus a few tuning knobs.
type Config struct {
	DatabaseURL     string
	HTTPAddr        string
	PublicURL       *url.URL
	B24ClientID     string
	B24ClientSecret string
	// B24OAuthURLs is the allow-list of Bitrix24 OAuth servers
	// (B24_OAUTH_URL), each normalised to scheme://host[:port]; the first
	// serves requests that name none. Empty means the two public ones.
	B24OAuthURLs []string
	// B24OAuthCredentials are the app's credentials at a server of the list
	// where they differ from B24ClientID/B24ClientSecret
	// (B24_OAUTH_CREDENTIALS), keyed by the normalised URL.
	B24OAuthCredentials map[string]OAuthCredentials
	// B24RateLimit and B24Burst size each portal's leaky bucket (Bitrix24
	// allows more on Enterprise plans).
	B24RateLimit float64
	B24Burst     int
	Keyring      *secret.Keyring
	// LearnAllowPrivateHosts lifts the SSRF rule for the demo and tests,
	// where the Learn simulator listens on loopback.
	LearnAllowPrivateHosts bool
	// LearnMaxParallel is the ceiling of Learn writes in flight per Learn
	// account; the sync finds the account's limit under it.
	LearnMaxParallel int
	SMTPURL          *url.URL // nil: no e-mail forwarding
	ManagerEmails    []string
	LeadWebhookURL   *url.URL // nil: no CRM lead
	// LeadLang is the language of the CRM lead's title and text, read by
	// iSpring's sales team in their Bitrix24.
	LeadLang i18n.Lang
	// ActivationMailsPerHour and ActivationLeadsPerHour bound the activation
	// requests e-mailed to MANAGER_EMAILS and added as CRM leads per hour
	// across every portal; the rest wait, stored and shown in the console,
	// and go out as the hours free.
	ActivationMailsPerHour int
	ActivationLeadsPerHour int
	LogFormat              string // "json" or "text"
	LogLevel               slog.Level
	// B24AllowPrivateHosts lifts the same rule for portal REST endpoints and
	// their redirects: the demo and tests (b24sim on loopback), on-premise
	// portals in a private network.
	B24AllowPrivateHosts bool
	// CatchUpWindow is how long after a missed slot a sync still runs once
	// the service is back.
	CatchUpWindow time.Duration
	// ReportRetention is how long run reports and settings_audit rows are kept.
	ReportRetention time.Duration
	// DemoSlotEvery, set only by `b24learn demo`, makes every multiple of it a
	// scheduled slot for every portal, so a newcomer sees a run within
	// minutes; the settings page shows it.
	DemoSlotEvery time.Duration
	// FailuresBeforeAttention is how many failed sync attempts in a row mark
	// a portal "needs attention" (refused Learn credentials mark it at once).
	FailuresBeforeAttention int
	// ShutdownTimeout bounds how long running jobs may finish on SIGTERM
	// before they are handed back to the queue.
	ShutdownTimeout time.Duration
	// JobRescueAfter is how long a job may stay "running" before River
	// hands it to another process: a process killed mid-sync leaves its
	// job running until then. It must exceed the sync timeout (2 h).
	JobRescueAfter time.Duration
	// MetricsAddr is a private listener for /metrics ("" for none);
	// MetricsToken, when set, also opens /metrics on the public address to
	// requests with "Authorization: Bearer <token>". Without either, the
	// public address answers 404 there.
	MetricsAddr  string
	MetricsToken string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; empty means the peer address is the client.
	TrustedProxies []netip.Prefix
}

// Error names the variable that is wrong and says what is expected.
type Error struct {
	Var  string
	Want string
}

func (e *Error) Error() string { return e.Var + ": " + e.Want }

// Errors are all the bad settings, printed on one line.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// As lets errors.As find the first *Error.
func (es Errors) As(target any) bool {
	if t, ok := target.(**Error); ok && len(es) > 0 {
		*t = es[0]
		return true
	}
	return false
}

// Load reads the environment through getenv. With requireApp false the
// Bitrix24 app credentials and PUBLIC_URL may be missing (migrate needs only
// the database); PUBLIC_URL is still checked when it is set.
func Load(getenv func(string) string, requireApp bool) (*Config, error) {
	c := &Config{
		DatabaseURL:     or(getenv("DATABASE_URL"), DefaultDatabaseURL),
		HTTPAddr:        or(getenv("HTTP_ADDR"), ":8080"),
		B24ClientID:     getenv("B24_CLIENT_ID"),
		B24ClientSecret: getenv("B24_CLIENT_SECRET"),
		LogFormat:       or(getenv("LOG_FORMAT"), "text"),
	}
	var errs Errors
	fail := func(v, want string) { errs = append(errs, &Error{Var: v, Want: want}) }
	e := vars{getenv: getenv, fail: fail}

	if _, err := url.Parse(c.DatabaseURL); err != nil || !strings.HasPrefix(c.DatabaseURL, "postgres") {
		fail("DATABASE_URL", "a postgres:// URL")
	}
	if requireApp {
		if c.B24ClientID == "" {
			fail("B24_CLIENT_ID", "required: the application's client_id from the Bitrix24 vendor console")
		}
		if c.B24ClientSecret == "" {
			fail("B24_CLIENT_SECRET", "required: the application's client_secret from the Bitrix24 vendor console")
		}
	}
	if raw := getenv("PUBLIC_URL"); raw != "" || requireApp {
		u, err := absURL(raw)
		switch {
		case raw == "":
			fail("PUBLIC_URL", "required: the app's external base URL, e.g. https://b24learn.example.com")
		case err != nil:
			fail("PUBLIC_URL", "an absolute http(s) URL, e.g. https://b24learn.example.com")
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil:
			// The app appends its paths (/b24/events, bound at install):
			// anything after them would send Bitrix24 elsewhere.
			fail("PUBLIC_URL", "a base URL without a query, fragment or user, e.g. https://b24learn.example.com")
		case u.Scheme != "https" && !LoopbackHost(u.Hostname()):
			// Bitrix24 posts the app's pages and events there with tokens
			// in the form; plain http is only for this machine (demo, tests).
			fail("PUBLIC_URL", "an https URL (http only for localhost, 127.0.0.1 or ::1), e.g. https://b24learn.example.com")
		default:
			c.PublicURL = u
		}
	}
	c.B24OAuthURLs, c.B24OAuthCredentials = parseOAuthServers(getenv("B24_OAUTH_URL"), getenv("B24_OAUTH_CREDENTIALS"), fail)
	c.B24RateLimit = e.positive("B24_RATE_LIMIT", 2, "requests per second per portal, a positive number (default 2)")
	c.B24Burst = e.whole("B24_BURST", 50, 1, math.MaxInt, "a positive whole number (default 50)")
	if raw := getenv("SECRET_KEYS"); raw == "" {
		if requireApp {
			fail("SECRET_KEYS", "required: comma-separated base64 keys of 32 bytes, newest first (openssl rand -base64 32)")
		}
	} else if kr, err := secret.NewKeyring(raw); err != nil {
		fail("SECRET_KEYS", err.Error())
	} else {
		c.Keyring = kr
	}
	c.LearnAllowPrivateHosts = e.flag("LEARN_ALLOW_PRIVATE_HOSTS")
	c.LearnMaxParallel = e.whole("LEARN_MAX_PARALLEL", 32, 1, 256, "a whole number from 1 to 256 (default 32)")
	c.B24AllowPrivateHosts = e.flag("B24_ALLOW_PRIVATE_HOSTS")
	if raw := getenv("SMTP_URL"); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps" && u.Scheme != "smtp+starttls") || u.Host == "" {
			fail("SMTP_URL", "smtp://user:pass@host:25 (plain), smtp+starttls://… or smtps://… (TLS)")
		} else {
			c.SMTPURL = u
		}
	}
	if raw := getenv("MANAGER_EMAILS"); raw != "" {
		for _, a := range strings.Split(raw, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			if _, err := mail.ParseAddress(a); err != nil {
				fail("MANAGER_EMAILS", fmt.Sprintf("comma-separated e-mail addresses (%q is not one)", a))
				continue
			}
			c.ManagerEmails = append(c.ManagerEmails, a)
		}
	}
	if raw := getenv("LEAD_WEBHOOK_URL"); raw != "" {
		if u, err := absURL(raw); err != nil {
			fail("LEAD_WEBHOOK_URL", "the inbound webhook URL of iSpring's Bitrix24, e.g. https://company.bitrix24.ru/rest/1/abc123/")
		} else {
			c.LeadWebhookURL = u
		}
	}
	c.ActivationMailsPerHour = e.whole("ACTIVATION_EMAILS_PER_HOUR", 20, 1, math.MaxInt, "a positive whole number (default 20)")
	c.ActivationLeadsPerHour = e.whole("ACTIVATION_LEADS_PER_HOUR", 20, 1, math.MaxInt, "a positive whole number (default 20)")
	switch raw := strings.ToLower(strings.TrimSpace(getenv("LEAD_LANG"))); raw {
	case "", "en":
		c.LeadLang = i18n.EN
	case "ru":
		c.LeadLang = i18n.RU
	default:
		fail("LEAD_LANG", "ru or en")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		fail("LOG_FORMAT", "text or json")
	}
	if err := c.LogLevel.UnmarshalText([]byte(or(getenv("LOG_LEVEL"), "info"))); err != nil {
		fail("LOG_LEVEL", "debug, info, warn or error")
	}
	c.CatchUpWindow = e.duration("SYNC_CATCHUP_WINDOW", 3*time.Hour, notNegative, "a duration such as 3h")
	days := e.whole("REPORT_RETENTION_DAYS", 90, 1, math.MaxInt, "a positive whole number of days (default 90)")
	c.ReportRetention = time.Duration(days) * 24 * time.Hour
	c.FailuresBeforeAttention = e.whole("SYNC_FAILURES_BEFORE_ATTENTION", 3, 1, math.MaxInt, "a positive whole number (default 3)")
	c.ShutdownTimeout = e.duration("SHUTDOWN_TIMEOUT", time.Minute, notNegative, "a duration such as 60s")
	c.JobRescueAfter = e.duration("JOB_RESCUE_AFTER", 2*time.Hour+15*time.Minute,
		func(d time.Duration) bool { return d > time.Second }, "a duration such as 2h15m")
	c.MetricsAddr, c.MetricsToken = getenv("METRICS_ADDR"), getenv("METRICS_TOKEN")
	// Checked here, not at listen time: serve listens after the migrations,
	// and the listener's error names no variable.
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		fail("HTTP_ADDR", "a listen address such as :8080 or 127.0.0.1:8080")
	}
	if _, _, err := net.SplitHostPort(c.MetricsAddr); c.MetricsAddr != "" && err != nil {
		fail("METRICS_ADDR", "a listen address such as 127.0.0.1:9090")
	}
	if t := c.MetricsToken; t != "" && (len(t) < 16 || strings.IndexFunc(t, unicode.IsSpace) >= 0) {
		fail("METRICS_TOKEN", "at least 16 characters without spaces (openssl rand -hex 32)")
	}
	if raw := getenv("TRUSTED_PROXIES"); raw != "" {
		for _, part := range strings.Split(raw, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			p, err := netip.ParsePrefix(part)
			if err != nil {
				a, aerr := netip.ParseAddr(part) // a single proxy address
				if aerr != nil {
					fail("TRUSTED_PROXIES", fmt.Sprintf("comma-separated CIDRs of your reverse proxies, e.g. 10.0.0.0/8,2001:db8::7/128 (%q is not one)", part))
					continue
				}
				p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			c.TrustedProxies = append(c.TrustedProxies, p.Masked())
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// DefaultOAuthURLs are Bitrix24's regional OAuth servers: the west one
// first (Bitrix24's default), then the east one of .ru portals.
var DefaultOAuthURLs = []string{"https://oauth.bitrix.info", "https://oauth.bitrix24.tech"}

// OAuthCredentials are the app's client_id and client_secret at one OAuth server.
type OAuthCredentials struct {
	ClientID     string
	ClientSecret string
}

// parseOAuthServers reads B24_OAUTH_URL (comma-separated base URLs) and
// B24_OAUTH_CREDENTIALS (comma-separated url=client_id:client_secret).
func parseOAuthServers(rawURLs, rawCreds string, fail func(v, want string)) ([]string, map[string]OAuthCredentials) {
	var urls []string
	seen := map[string]bool{}
	for part := range strings.SplitSeq(rawURLs, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := bitrix24.NormalizeOAuthServer(part)
		if err == nil {
			if u, _ := url.Parse(part); strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
				err = errors.New("a path or query")
			}
		}
		switch {
		case err != nil:
			fail("B24_OAUTH_URL", fmt.Sprintf("comma-separated base URLs of Bitrix24 OAuth servers without a path, e.g. %s (%q is not one)",
				strings.Join(DefaultOAuthURLs, ","), part))
		case seen[n]:
			fail("B24_OAUTH_URL", fmt.Sprintf("%s is listed twice", n))
		default:
			seen[n] = true
			urls = append(urls, n)
		}
	}
	if len(urls) == 0 {
		urls = append(urls, DefaultOAuthURLs...)
		for _, u := range urls {
			seen[u] = true
		}
	}
	var creds map[string]OAuthCredentials
	for part := range strings.SplitSeq(rawCreds, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		const want = "comma-separated server=client_id:client_secret, the server one of B24_OAUTH_URL"
		server, pair, ok := strings.Cut(part, "=")
		id, secret, ok2 := strings.Cut(pair, ":")
		n, err := bitrix24.NormalizeOAuthServer(server)
		switch {
		case !ok || !ok2 || id == "" || secret == "" || err != nil:
			// The entry may hold a secret: name only its position.
			fail("B24_OAUTH_CREDENTIALS", want+" (an entry is not of that form)")
			continue
		case !seen[n]:
			fail("B24_OAUTH_CREDENTIALS", fmt.Sprintf("%s (%s is not in B24_OAUTH_URL)", want, n))
			continue
		}
		if creds == nil {
			creds = map[string]OAuthCredentials{}
		}
		creds[n] = OAuthCredentials{ClientID: strings.TrimSpace(id), ClientSecret: strings.TrimSpace(secret)}
	}
	return urls, creds
}

// OAuthServers is the allow-list of OAuth servers with the app's credentials
// at each, for the OAuth clients.
func (c *Config) OAuthServers() *bitrix24.OAuthServers {
	urls := c.B24OAuthURLs
	if len(urls) == 0 {
		urls = DefaultOAuthURLs
	}
	list := make([]bitrix24.OAuth, 0, len(urls))
	for _, u := range urls {
		o := bitrix24.OAuth{URL: u, ClientID: c.B24ClientID, ClientSecret: c.B24ClientSecret}
		if n, err := bitrix24.NormalizeOAuthServer(u); err == nil {
			if cr, ok := c.B24OAuthCredentials[n]; ok {
				o.ClientID, o.ClientSecret = cr.ClientID, cr.ClientSecret
			}
		}
		list = append(list, o)
	}
	return bitrix24.MustOAuthServers(list...)
}

func absURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("not an absolute http(s) URL")
	}
	return u, nil
}

// LoopbackHost reports whether host (a name or an address, without port or
// brackets) is this machine: localhost, or a loopback address such as
// 127.0.0.1 or ::1.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
