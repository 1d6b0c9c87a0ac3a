package bitrix24_test

import (
	"testing"

	"b24learn/internal/bitrix24"
)

// TestEndpointHost: the host of a client_endpoint becomes a portal's domain,
// so only a host name is taken, lower-cased by ASCII alone.
func TestEndpointHost(t *testing.T) {
	good := map[string]string{
		"https://portal.bitrix24.ru/rest/":    "portal.bitrix24.ru",
		"https://Portal.Bitrix24.RU/rest/":    "portal.bitrix24.ru",
		"http://b24.example.com:8443/rest/":   "b24.example.com:8443",
		"https://my_portal.example.com/rest/": "my_portal.example.com",
	}
	for endpoint, want := range good {
		if got, ok := bitrix24.EndpointHost(endpoint); !ok || got != want {
			t.Errorf("EndpointHost(%q) = %q, %v; want %q", endpoint, got, ok, want)
		}
	}
	bad := []string{
		"",
		"portal.bitrix24.ru/rest/",
		"ftp://portal.bitrix24.ru/rest/",
		"https://user@portal.bitrix24.ru/rest/",
		"https://[::1]/rest/",
		"https://a'b.bitrix24.ru/rest/",
		"https://bitri\u212a24.ru/rest/", // the Kelvin sign folds to k in Unicode
		"https://bitri%E2%84%AA24.ru/rest/",
		"https://a%25b.ru/rest/",
		"https://portal.bitrix24.ru:/rest/",
		"https://portal.bitrix24.ru:99999x/rest/",
	}
	for _, endpoint := range bad {
		if got, ok := bitrix24.EndpointHost(endpoint); ok {
			t.Errorf("EndpointHost(%q) = %q, accepted", endpoint, got)
		}
	}
}
