package syncer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/fieldmap"
)

// Bitrix24 writes a date with the portal's offset, a birthday as midnight
// there (docs/bitrix24-api.md, "Answers"): the date Learn is sent is the
// portal's day, east or west of UTC, never the UTC day of that midnight.
func TestBirthdayInThePortalsTimeZone(t *testing.T) {
	t.Parallel()
	for _, zone := range []*time.Location{time.UTC, time.FixedZone("MSK", 3*3600), time.FixedZone("EST", -5*3600),
		time.FixedZone("NZDT", 13*3600)} {
		t.Run(zone.String(), func(t *testing.T) {
			t.Parallel()
			srv := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1"})
			t.Cleanup(srv.Close)
			org := b24sim.GenerateOrg(5, 20, 3)
			want := map[int64]string{}
			for i := range org.Users {
				org.Users[i].Birthday = fmt.Sprintf("1990-%02d-01", i%12+1)
				want[org.Users[i].ID] = org.Users[i].Birthday
			}
			p := srv.AddPortal(b24sim.PortalOptions{Org: org, TimeZone: zone})
			tok := p.Install()
			p.FinishInstall(context.Background())
			oauth := &bitrix24.OAuth{URL: srv.URL, ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret()}
			c := bitrix24.New(bitrix24.Config{Endpoint: tok.ClientEndpoint, Tokens: bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token(tok))})
			us, err := c.Users(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(us) != len(want) {
				t.Fatalf("%d users read, want %d", len(us), len(want))
			}
			for _, u := range us {
				got, ok := fieldmap.Value("PERSONAL_BIRTHDAY", sourceValue(&u, "PERSONAL_BIRTHDAY"))
				if !ok || got != want[u.ID] {
					t.Errorf("user %d: birthday %q sent as %q, want %q", u.ID, u.Birthday, got, want[u.ID])
				}
			}
		})
	}
}
