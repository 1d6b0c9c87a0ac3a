package learn

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/idna"
)

// hostedDomains are iSpring's own account domains; their REST API lives on
// api-learn.<domain> (DESIGN.md §6; reference §1).
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
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, nil
}

// APIBaseURL returns where the REST API of an account lives: https://api-learn.<domain>
// for accounts on iSpring's hosted domains (acme.ispringlearn.ru → api-learn.ispringlearn.ru),
// the account URL itself for any other host (custom domain, on-premise, the simulator).
// accountURL must be normalised (NormalizeAccountURL).
func APIBaseURL(accountURL string) string {
	u, err := url.Parse(accountURL)
	if err != nil || u.Port() != "" {
		return accountURL
	}
	host := strings.ToLower(u.Hostname())
	for _, d := range hostedDomains {
		if strings.HasSuffix(host, "."+d) {
			return "https://api-learn." + d
		}
	}
	return accountURL
}
