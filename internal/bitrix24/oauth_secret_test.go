package bitrix24_test

import (
	"context"
	"strings"
	"testing"

	"b24learn/internal/bitrix24"
)

// A refresh's URL carries the client secret and the refresh token in its
// query; no error of the refresh quotes it, not even one from building the
// request out of an OAuth server address that does not parse.
func TestOAuthRefreshErrorsQuoteNoSecret(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"https://bad host", "https://oauth.example\x7f", "://no-scheme"} {
		o := &bitrix24.OAuth{URL: base, ClientID: "app.1", ClientSecret: "CLIENT-SECRET"}
		_, err := o.Refresh(context.Background(), "REFRESH-TOKEN")
		if err == nil {
			t.Fatalf("%q: refresh succeeded", base)
		}
		if msg := err.Error(); strings.Contains(msg, "CLIENT-SECRET") || strings.Contains(msg, "REFRESH-TOKEN") {
			t.Errorf("%q: error quotes a secret: %s", base, msg)
		}
	}
}
