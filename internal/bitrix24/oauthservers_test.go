package bitrix24_test

import (
	"errors"
	"testing"

	"b24learn/internal/bitrix24"
)

func TestOAuthServersCompareByOrigin(t *testing.T) {
	t.Parallel()
	list := bitrix24.MustOAuthServers(
		bitrix24.OAuth{URL: "https://oauth.bitrix.info/", ClientID: "west"},
		bitrix24.OAuth{URL: "https://OAuth.Bitrix24.tech", ClientID: "east"},
	)
	for endpoint, want := range map[string]string{
		"":                                          "west",
		"https://oauth.bitrix.info/rest/":           "west",
		"https://oauth.bitrix24.tech/rest/":         "east",
		"https://oauth.bitrix24.tech:443/rest/":     "east",
		"HTTPS://OAUTH.BITRIX24.TECH/rest/app.info": "east",
	} {
		o, err := list.For(endpoint)
		if err != nil || o.ClientID != want {
			t.Errorf("For(%q) = %+v, %v; want %s", endpoint, o, err, want)
		}
	}
	for _, endpoint := range []string{"http://oauth.bitrix24.tech/rest/", "https://oauth.bitrix24.tech:8443/rest/",
		"https://oauth.bitrix24.tech.example.net/rest/", "https://user@oauth.bitrix.info/rest/", "oauth.bitrix.info", "javascript:alert(1)"} {
		if o, err := list.For(endpoint); !errors.Is(err, bitrix24.ErrUnknownOAuthServer) {
			t.Errorf("For(%q) = %+v, %v; want ErrUnknownOAuthServer", endpoint, o, err)
		}
	}
	if _, err := bitrix24.NewOAuthServers(bitrix24.OAuth{URL: "https://a.example"}, bitrix24.OAuth{URL: "https://A.example:443/"}); err == nil {
		t.Error("a server listed twice was accepted")
	}
}
