package config

import (
	"errors"
	"strings"
	"testing"

	"b24learn/internal/i18n"
)

const testKey = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=" // 32 bytes

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func valid() map[string]string {
	return map[string]string{
		"B24_CLIENT_ID":     "local.abc",
		"B24_CLIENT_SECRET": "s3cret",
		"PUBLIC_URL":        "https://app.example.com/",
		"SECRET_KEYS":       testKey,
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(valid()), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || strings.Join(c.B24OAuthURLs, ",") != "https://oauth.bitrix.info,https://oauth.bitrix24.tech" || c.PublicURL.String() != "https://app.example.com" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.LearnAllowPrivateHosts || c.B24RateLimit != 2 || c.B24Burst != 50 || c.Keyring == nil || c.LearnMaxParallel != 32 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadNamesTheBadVariable(t *testing.T) {
	cases := map[string]map[string]string{
		"B24_CLIENT_ID":             {"B24_CLIENT_ID": ""},
		"B24_CLIENT_SECRET":         {"B24_CLIENT_SECRET": ""},
		"PUBLIC_URL":                {"PUBLIC_URL": "not a url"},
		"SECRET_KEYS":               {"SECRET_KEYS": "c2hvcnQ="},
		"LEARN_ALLOW_PRIVATE_HOSTS": {"LEARN_ALLOW_PRIVATE_HOSTS": "maybe"},
		"SMTP_URL":                  {"SMTP_URL": "http://mail"},
		"MANAGER_EMAILS":            {"MANAGER_EMAILS": "a@b.c, nope"},
		"LOG_FORMAT":                {"LOG_FORMAT": "xml"},
		"LOG_LEVEL":                 {"LOG_LEVEL": "loud"},
		"B24_RATE_LIMIT":            {"B24_RATE_LIMIT": "-1"},
		"TRUSTED_PROXIES":           {"TRUSTED_PROXIES": "10.0.0.0/8, proxy.example"},
		"LEARN_MAX_PARALLEL":        {"LEARN_MAX_PARALLEL": "0"},
		"LEAD_LANG":                 {"LEAD_LANG": "de"},
		"HTTP_ADDR":                 {"HTTP_ADDR": "8080"},
	}
	for name, patch := range cases {
		t.Run(name, func(t *testing.T) {
			m := valid()
			for k, v := range patch {
				m[k] = v
			}
			_, err := Load(env(m), true)
			var ce *Error
			if !errors.As(err, &ce) || ce.Var != name {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Fatalf("want one line, got %q", err)
			}
		})
	}
}

func TestLoadWithoutApp(t *testing.T) {
	if _, err := Load(env(map[string]string{}), false); err != nil {
		t.Fatalf("migrate needs no app settings: %v", err)
	}
}

func TestLoadMetricsListenerAndToken(t *testing.T) {
	c, err := Load(env(valid()), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != "" || c.MetricsToken != "" {
		t.Fatalf("metrics are private by default: %q %q", c.MetricsAddr, c.MetricsToken)
	}
	m := valid()
	m["METRICS_ADDR"], m["METRICS_TOKEN"] = "127.0.0.1:9090", "0123456789abcdef0123"
	if c, err = Load(env(m), true); err != nil || c.MetricsAddr != "127.0.0.1:9090" || c.MetricsToken != "0123456789abcdef0123" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	for name, patch := range map[string][2]string{
		"METRICS_ADDR":  {"METRICS_ADDR", "9090"},
		"METRICS_TOKEN": {"METRICS_TOKEN", "short"},
	} {
		m := valid()
		m[patch[0]] = patch[1]
		_, err := Load(env(m), true)
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != name {
			t.Errorf("%s=%q: err = %v, want one naming it", patch[0], patch[1], err)
		}
	}
}

func TestLoadTrustedProxies(t *testing.T) {
	m := valid()
	m["TRUSTED_PROXIES"] = " 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,"
	c, err := Load(env(m), true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if strings.Join(got, " ") != "10.0.0.0/8 192.0.2.7/32 2001:db8::/32" {
		t.Fatalf("TrustedProxies = %v", got)
	}
	if c, err := Load(env(valid()), true); err != nil || len(c.TrustedProxies) != 0 {
		t.Fatalf("default: %v %v, want none trusted", c.TrustedProxies, err)
	}
}

func TestB24AllowPrivateHosts(t *testing.T) {
	m := valid()
	if c, err := Load(env(m), true); err != nil || c.B24AllowPrivateHosts {
		t.Fatalf("default: %v %+v", err, c)
	}
	m["B24_ALLOW_PRIVATE_HOSTS"] = "true"
	if c, err := Load(env(m), true); err != nil || !c.B24AllowPrivateHosts || c.LearnAllowPrivateHosts {
		t.Fatalf("set: %v %+v", err, c)
	}
	m["B24_ALLOW_PRIVATE_HOSTS"] = "maybe"
	var ce *Error
	if _, err := Load(env(m), true); !errors.As(err, &ce) || ce.Var != "B24_ALLOW_PRIVATE_HOSTS" {
		t.Fatalf("bad value: %v", err)
	}
}

func TestOAuthServerList(t *testing.T) {
	m := valid()
	m["B24_OAUTH_URL"] = "https://oauth.bitrix24.tech/, http://127.0.0.1:9001"
	m["B24_OAUTH_CREDENTIALS"] = "http://127.0.0.1:9001=local.abc.123:s3cret"
	c, err := Load(env(m), true)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.B24OAuthURLs, ","); got != "https://oauth.bitrix24.tech,http://127.0.0.1:9001" {
		t.Fatalf("B24OAuthURLs = %s", got)
	}
	servers := c.OAuthServers()
	if o := servers.Default(); o.URL != "https://oauth.bitrix24.tech" || o.ClientID != m["B24_CLIENT_ID"] {
		t.Fatalf("default server %+v", o)
	}
	if o, err := servers.For("http://127.0.0.1:9001/rest/"); err != nil || o.ClientID != "local.abc.123" || o.ClientSecret != "s3cret" {
		t.Fatalf("second server %+v, %v", o, err)
	}
	for name, bad := range map[string]map[string]string{
		"path":            {"B24_OAUTH_URL": "https://oauth.bitrix.info/oauth"},
		"not a URL":       {"B24_OAUTH_URL": "oauth.bitrix.info"},
		"twice":           {"B24_OAUTH_URL": "https://oauth.bitrix.info,https://OAUTH.bitrix.info/"},
		"unlisted creds":  {"B24_OAUTH_CREDENTIALS": "https://oauth.example.net=a:b"},
		"malformed creds": {"B24_OAUTH_CREDENTIALS": "https://oauth.bitrix.info=nosecret"},
	} {
		m := valid()
		for k, v := range bad {
			m[k] = v
		}
		_, err := Load(env(m), true)
		var ce *Error
		if !errors.As(err, &ce) || !strings.HasPrefix(ce.Var, "B24_OAUTH_") {
			t.Errorf("%s: err = %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "nosecret") {
			t.Errorf("%s: the error repeats the credentials", name)
		}
	}
}

func TestLearnMaxParallel(t *testing.T) {
	for raw, want := range map[string]int{"1": 1, "64": 64, "256": 256} {
		m := valid()
		m["LEARN_MAX_PARALLEL"] = raw
		c, err := Load(env(m), true)
		if err != nil || c.LearnMaxParallel != want {
			t.Fatalf("LEARN_MAX_PARALLEL=%s: %v, %+v", raw, err, c)
		}
	}
	for _, raw := range []string{"257", "-3", "many"} {
		m := valid()
		m["LEARN_MAX_PARALLEL"] = raw
		var ce *Error
		if _, err := Load(env(m), true); !errors.As(err, &ce) || ce.Var != "LEARN_MAX_PARALLEL" {
			t.Fatalf("LEARN_MAX_PARALLEL=%s: err = %v", raw, err)
		}
	}
}

func TestLeadLang(t *testing.T) {
	for raw, want := range map[string]i18n.Lang{"": i18n.EN, "en": i18n.EN, "ru": i18n.RU, " RU ": i18n.RU} {
		m := valid()
		m["LEAD_LANG"] = raw
		c, err := Load(env(m), true)
		if err != nil || c.LeadLang != want {
			t.Fatalf("LEAD_LANG=%q: %v, %q", raw, err, c.LeadLang)
		}
	}
}

// Bitrix24 is told PUBLIC_URL + "/b24/events" at install: a query, fragment
// or user info in PUBLIC_URL would bind the events to another address, so
// serve refuses it at start.
func TestPublicURLIsABaseURL(t *testing.T) {
	for _, bad := range []string{"https://app.example.com/?utm=x", "https://app.example.com/#top", "https://user:pw@app.example.com", "https://app.example.com?"} {
		m := valid()
		m["PUBLIC_URL"] = bad
		_, err := Load(env(m), true)
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != "PUBLIC_URL" {
			t.Errorf("PUBLIC_URL=%q: err = %v, want one naming PUBLIC_URL", bad, err)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("PUBLIC_URL's password in the error: %v", err)
		}
	}
	m := valid()
	m["PUBLIC_URL"] = "https://example.com/b24learn/"
	if c, err := Load(env(m), true); err != nil || c.PublicURL.String() != "https://example.com/b24learn" {
		t.Errorf("a path prefix: %v, %v", c, err)
	}
}

// PUBLIC_URL is where Bitrix24 sends the app's pages and events with the
// portal's tokens: plain http is refused unless it stays on this machine.
// Commands that do not need it (migrate, manager add) check it when it is set.
func TestLoadPublicURLIsHTTPSOffLoopback(t *testing.T) {
	for _, requireApp := range []bool{true, false} {
		for _, bad := range []string{"http://app.example.com", "http://10.0.0.5:8080", "http://[2001:db8::1]:8080", "http://localhost.example.com"} {
			m := valid()
			if !requireApp {
				m = map[string]string{}
			}
			m["PUBLIC_URL"] = bad
			_, err := Load(env(m), requireApp)
			var ce *Error
			if !errors.As(err, &ce) || ce.Var != "PUBLIC_URL" || !strings.Contains(ce.Want, "https") {
				t.Errorf("requireApp %v, PUBLIC_URL=%q: err = %v, want one naming PUBLIC_URL and https", requireApp, bad, err)
			}
		}
		for _, good := range []string{"https://app.example.com", "http://localhost:8080", "http://LOCALHOST:8080", "http://127.0.0.1:8080", "http://[::1]:8080"} {
			m := valid()
			if !requireApp {
				m = map[string]string{}
			}
			m["PUBLIC_URL"] = good
			if c, err := Load(env(m), requireApp); err != nil || c.PublicURL == nil {
				t.Errorf("requireApp %v, PUBLIC_URL=%q: %v", requireApp, good, err)
			}
		}
	}
}
