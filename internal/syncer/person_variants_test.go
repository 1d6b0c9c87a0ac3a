package syncer

import (
	"context"
	"slices"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
)

// The person page reads one employee and the heads above them, and nobody
// else, under every choice b24sim offers where Bitrix24's behaviour is not
// known (docs/bitrix24-api.md, "Unsettled behaviour"): a portal that reads
// user.get's list of IDs otherwise must not bring the whole org into a
// one-person run.
func TestReadPersonAgainstB24Variants(t *testing.T) {
	t.Parallel()
	for _, v := range b24sim.Variants() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			srv := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Unsettled: v.Unsettled})
			t.Cleanup(srv.Close)
			p := srv.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(3, 300, 30)})
			tok := p.Install()
			p.FinishInstall(context.Background())
			oauth := &bitrix24.OAuth{URL: srv.URL, ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret()}
			c := bitrix24.New(bitrix24.Config{Endpoint: tok.ClientEndpoint, RetryWait: 20 * time.Millisecond,
				Tokens: bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token(tok))})

			byID := map[int64]b24sim.Department{}
			for _, d := range p.Departments() {
				byID[d.ID] = d
			}
			var person b24sim.User
			want := []int64{}
			for _, u := range p.Users() {
				// An active employee whose department is two levels or
				// more below the root, so that heads are read.
				if u.Active && !u.Extranet && len(u.Departments) == 1 && byID[byID[u.Departments[0]].Parent].Parent != 0 {
					person = u
					break
				}
			}
			if person.ID == 0 {
				t.Fatal("no employee deep in the tree")
			}
			want = append(want, person.ID)
			for d := person.Departments[0]; d != 0; d = byID[d].Parent {
				if h := byID[d].Head; h != 0 && !slices.Contains(want, h) {
					want = append(want, h)
				}
			}
			slices.Sort(want)
			d, err := ReadPerson(context.Background(), c, person.ID)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, e := range d.Employees {
				got = append(got, e.ID)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("employees read %v, want the person and the heads above %v", got, want)
			}
		})
	}
}
