package learnsim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMount: the API answers only where the mount says; everywhere else an
// account host answers as a web site (HTML, never JSON), and an absent API
// host with a 404 page.
func TestMount(t *testing.T) {
	t.Parallel()
	const (
		apiHost  = "api-learn.ispringlearn.ru"
		acctHost = "acme.ispringlearn.ru"
	)
	type probe struct{ host, path string }
	var (
		apiRoot   = probe{apiHost, "/departments"}
		apiV2     = probe{apiHost, "/api/v2/departments"}
		acctRoot  = probe{acctHost, "/departments"}
		acctV2    = probe{acctHost, "/api/v2/departments"}
		acctIndex = probe{acctHost, "/index.php/api/v2/departments"}
	)
	all := []probe{apiRoot, apiV2, acctRoot, acctV2, acctIndex}
	tests := []struct {
		mount Mount
		api   []probe // the rest are not the API
	}{
		{MountListener, []probe{apiRoot, acctRoot}},
		{MountAPIHost, []probe{apiRoot}},
		{MountAccountHost, []probe{acctV2, acctIndex}},
		{MountBoth, []probe{apiRoot, acctV2, acctIndex}},
	}
	for _, tt := range tests {
		for pageName, page := range WebPages() {
			s := New(Options{Mount: tt.mount, WebPage: page})
			if _, err := s.AddAccount(AccountOptions{URL: acct, Email: email, Password: pass}); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(s.Handler())
			for _, p := range all {
				status, ct, body := get(t, srv.URL, p.host, p.path)
				isAPI := status == 200 && strings.HasPrefix(ct, "application/json") && strings.Contains(body, `"departments"`)
				want := false
				for _, a := range tt.api {
					want = want || a == p
				}
				if isAPI != want {
					t.Errorf("mount %d, %s: %s%s = %d %s %.60q; want API %v", tt.mount, pageName, p.host, p.path, status, ct, body, want)
				}
				if !isAPI && p.host == acctHost && tt.mount != MountListener && !strings.HasPrefix(ct, "text/html") {
					t.Errorf("mount %d, %s: %s%s answered %s, want a web page", tt.mount, pageName, p.host, p.path, ct)
				}
			}
			// The simulator's own view is on every host.
			if status, _, _ := get(t, srv.URL, acctHost, "/_sim/"); status != 200 {
				t.Errorf("mount %d: /_sim/ = %d", tt.mount, status)
			}
			srv.Close()
		}
	}
}

// get calls path on the listener with the Host header host, as the admin's
// account credentials, following redirects.
func get(t *testing.T, listener, host, path string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", listener+path, nil)
	req.Host = host
	req.Header.Set("X-Auth-Account-Url", acct)
	req.Header.Set("X-Auth-Email", email)
	req.Header.Set("X-Auth-Password", pass)
	req.Header.Set("Accept", "application/json")
	c := &http.Client{CheckRedirect: func(r *http.Request, via []*http.Request) error {
		r.Host = host // the redirect is relative: same host
		return nil
	}}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Content-Type"), string(b)
}
