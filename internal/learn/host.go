package learn

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/idna"

	"b24learn/internal/remote"
)

// hostedDomains are iSpring's own account domains; their REST API lives on
// api-learn.<domain> (docs/learn-api.md, "Where the API answers").
var hostedDomains = []string{
	"ispringlearn.com", "ispringlearn.ru", "ispringlearn.eu",
	"ispring.com", "ispring.ru", "ispring.eu",
}

// NormalizeAccountURL turns what an admin types into the account's base URL
// "https://host[:port]": it adds https:// when no scheme is given, lowercases the
// host (IDN to punycode), and drops any path, query and fragment ("/dashboard",
// "/app/...", "?x"). http:// is refused with ErrInsecureURL unless allowHTTP is set
// (LEARN_ALLOW_PRIVATE_HOSTS: the demo and tests run the simulator over http).
func NormalizeAccountURL(raw string, allowHTTP bool) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("empty: %w", ErrInvalidURL)
	}
	if !strings.Contains(s, "://") {
		s = "https://" + strings.TrimPrefix(s, "//")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("parse: %w", ErrInvalidURL)
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "https":
	case "http":
		if !allowHTTP {
			return "", ErrInsecureURL
		}
	default:
		return "", fmt.Errorf("scheme %q: %w", u.Scheme, ErrInvalidURL)
	}
	if u.User != nil {
		return "", fmt.Errorf("credentials in URL: %w", ErrInvalidURL)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return "", fmt.Errorf("no host: %w", ErrInvalidURL)
	}
	if net.ParseIP(host) == nil {
		ascii, err := idna.Lookup.ToASCII(host)
		if err != nil || !strings.Contains(ascii, ".") && ascii != "localhost" {
			return "", fmt.Errorf("host %q: %w", host, ErrInvalidURL)
		}
		host = ascii
	}
	return remote.Origin(scheme, host, u.Port()), nil
}

// APIBaseURL returns where the REST API of an account is looked for first (see
// APICandidates). accountURL must be normalised (NormalizeAccountURL).
func APIBaseURL(accountURL string) string {
	return APICandidates(accountURL)[0]
}

// APICandidates lists, in the order they are tried, the base URLs at which the
// REST API of an account may answer (docs/learn-api.md, "Where the API
// answers"): for an account on one of iSpring's hosted domains the API host
// api-learn.<domain>, then /api/v2 on the account's own host; for any other
// host (custom domain, on-premise) /api/v2 on that host, then
// /index.php/api/v2. A port on the account host is kept on the API host
// (real accounts have none; tests and the demo run on high ports).
// accountURL must be normalised (NormalizeAccountURL).
func APICandidates(accountURL string) []string {
	u, err := url.Parse(accountURL)
	if err != nil || u.Host == "" {
		return []string{accountURL}
	}
	if d := hostedDomain(u); d != "" {
		api := u.Scheme + "://api-learn." + d
		if p := u.Port(); p != "" {
			api += ":" + p
		}
		return []string{api, accountURL + "/api/v2"}
	}
	return []string{accountURL + "/api/v2", accountURL + "/index.php/api/v2"}
}

// hostedDomain is the iSpring domain u's host is an account on, "" for any
// other host (and for the API hosts themselves).
func hostedDomain(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	for _, d := range hostedDomains {
		if strings.HasSuffix(host, "."+d) && host != "api-learn."+d {
			return d
		}
	}
	return ""
}

// Hosted reports whether accountURL is an account on one of iSpring's own
// domains, over https and on the default port: an address no portal's admin
// can point at a server of their own.
func Hosted(accountURL string) bool {
	u, err := url.Parse(strings.TrimSpace(accountURL))
	return err == nil && u.Scheme == "https" && u.Port() == "" && hostedDomain(u) != ""
}
