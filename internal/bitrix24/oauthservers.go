package bitrix24

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"b24learn/internal/remote"
)

// ErrUnknownOAuthServer says a request or a stored portal names an OAuth
// server that is not on the operator's allow-list (B24_OAUTH_URL).
var ErrUnknownOAuthServer = errors.New("bitrix24: OAuth server not on the allow-list")

// NormalizeOAuthServer reduces an OAuth server address to scheme://host[:port]
// in lower case, without a default port, so that the server_endpoint of a
// request (https://oauth.bitrix24.tech/rest/) and a configured base URL
// (https://oauth.bitrix24.tech) name the same server. Bitrix24 has one OAuth
// server per region (docs/bitrix24-api.md, "Regional OAuth servers").
func NormalizeOAuthServer(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && scheme != "http") || u.Hostname() == "" || u.Opaque != "" {
		return "", fmt.Errorf("not an absolute http(s) URL")
	}
	if u.User != nil {
		return "", fmt.Errorf("user information in the URL")
	}
	return remote.Origin(scheme, strings.ToLower(u.Hostname()), u.Port()), nil
}

// OAuthServers is the allow-list of OAuth servers, each with the app's
// credentials there. The first answers requests that name no server.
type OAuthServers struct {
	list []*OAuth
}

// NewOAuthServers builds the allow-list. Each URL is normalised; the list
// must not be empty and must not name a server twice.
func NewOAuthServers(servers ...OAuth) (*OAuthServers, error) {
	if len(servers) == 0 {
		return nil, errors.New("no OAuth server")
	}
	s := &OAuthServers{}
	seen := map[string]bool{}
	for _, o := range servers {
		n, err := NormalizeOAuthServer(o.URL)
		if err != nil {
			return nil, fmt.Errorf("OAuth server %q: %w", o.URL, err)
		}
		if seen[n] {
			return nil, fmt.Errorf("OAuth server %s listed twice", n)
		}
		seen[n] = true
		o.URL = n
		s.list = append(s.list, &o)
	}
	return s, nil
}

// MustOAuthServers is NewOAuthServers for tests and fixed lists.
func MustOAuthServers(servers ...OAuth) *OAuthServers {
	s, err := NewOAuthServers(servers...)
	if err != nil {
		panic(err)
	}
	return s
}

// Default is the first server, for requests and portals that name none.
func (s *OAuthServers) Default() *OAuth { return s.list[0] }

// URLs are the servers' base URLs in order.
func (s *OAuthServers) URLs() []string {
	out := make([]string, len(s.list))
	for i, o := range s.list {
		out[i] = o.URL
	}
	return out
}

// For returns the server that endpoint (a server_endpoint, SERVER_ENDPOINT or
// a base URL) names: the default for "", ErrUnknownOAuthServer for a server
// not on the list. The caller gets its own copy.
func (s *OAuthServers) For(endpoint string) (*OAuth, error) {
	if strings.TrimSpace(endpoint) == "" {
		o := *s.Default()
		return &o, nil
	}
	n, err := NormalizeOAuthServer(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: unreadable server address", ErrUnknownOAuthServer)
	}
	for _, o := range s.list {
		if o.URL == n {
			c := *o
			return &c, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownOAuthServer, n)
}

// WithHTTP is a copy of the list whose servers are called through hc.
func (s *OAuthServers) WithHTTP(hc *http.Client) *OAuthServers {
	out := &OAuthServers{list: make([]*OAuth, len(s.list))}
	for i, o := range s.list {
		c := *o
		c.HTTP = hc
		out.list[i] = &c
	}
	return out
}

// ServerEndpoint is the REST address of the OAuth server at base, in the
// shape Bitrix24 sends as server_endpoint; portals store it.
func ServerEndpoint(base string) string { return strings.TrimRight(base, "/") + "/rest/" }
