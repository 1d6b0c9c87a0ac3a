package syncer

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
)

// TestSyncFindsLearnAPI: a portal whose settings have no stored API base (as
// saved before the base was kept) gets it found on its first run, against
// learnsim serving the API only where the real service does; the run writes
// the org there, the base is stored, and the next run uses it without
// probing again.
func TestSyncFindsLearnAPI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mount   learnsim.Mount
		account string   // the account's host
		hosts   []string // names that resolve (to the loopback listener)
		want    func(port string) string
	}{
		{"custom domain, /api/v2 only", learnsim.MountAccountHost, "lms.acme.test", []string{"lms.acme.test"},
			func(port string) string { return "http://lms.acme.test:" + port + "/api/v2" }},
		{"hosted, API host only", learnsim.MountAPIHost, "acme.ispringlearn.ru", []string{"acme.ispringlearn.ru", "api-learn.ispringlearn.ru"},
			func(port string) string { return "http://api-learn.ispringlearn.ru:" + port }},
		// No API host: the stored base is not the first guess, so the second
		// run works only if it uses what is stored.
		{"hosted, no API host", learnsim.MountAccountHost, "acme.ispring.ru", []string{"acme.ispring.ru"},
			func(port string) string { return "http://acme.ispring.ru:" + port + "/api/v2" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := pgtest.NewPool(t)
			kr, err := secret.NewKeyring("MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=")
			if err != nil {
				t.Fatal(err)
			}

			lsim := learnsim.New(learnsim.Options{Seed: 2, Mount: tt.mount})
			h := lsim.Handler()
			var probes atomic.Int64 // the check's call: one department
			lsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("pageSize") == "1" {
					probes.Add(1)
				}
				h.ServeHTTP(w, r)
			}))
			t.Cleanup(lsrv.Close)
			lu, _ := url.Parse(lsrv.URL)
			accountURL := "http://" + tt.account + ":" + lu.Port()
			if _, err := lsim.AddAccount(learnsim.AccountOptions{URL: accountURL, Email: simEmail, Password: simPassword}); err != nil {
				t.Fatal(err)
			}
			known := map[string]bool{}
			for _, h := range tt.hosts {
				known[h] = true
			}
			hc := learn.NewHTTPClient(learn.DialerOptions{AllowPrivate: true, LookupIP: func(_ context.Context, host string) ([]netip.Addr, error) {
				if known[host] {
					return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
				}
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			}})

			bs := b24sim.Start(b24sim.Options{Rate: -1})
			t.Cleanup(bs.Close)
			p := bs.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(4, 30, 5)})
			tok := p.Install()
			p.FinishInstall(ctx)
			oauth := &bitrix24.OAuth{URL: bs.URL, ClientID: bs.ClientID(), ClientSecret: bs.ClientSecret()}
			b24 := bitrix24.New(bitrix24.Config{Endpoint: p.ClientEndpoint(), Tokens: bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token(tok))})
			portalID := mustPortal(t, pool, p.MemberID())
			apptest.Configure(t, pool, kr, portalID, apptest.Settings{LearnURL: accountURL, LearnEmail: simEmail,
				LearnPassword: simPassword, FirstRun: "06:00", Selected: []int64{p.Departments()[0].ID}}, true)

			sy := New(Config{
				Pool:     pool,
				Settings: DBSettings{Pool: pool, Keyring: kr},
				NewLearn: newLearnClient(learn.Options{HTTPClient: hc, AllowHTTP: true,
					Retry: learn.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, Timeout: 10 * time.Second}}),
				NewBitrix24: func(context.Context, int64) (Bitrix24, error) { return b24, nil },
			})
			stored := func() string {
				var s string
				if err := pool.QueryRow(ctx, `SELECT learn_api_url FROM portal_settings WHERE portal_id = $1`, portalID).Scan(&s); err != nil {
					t.Fatal(err)
				}
				return s
			}
			if got := stored(); got != "" {
				t.Fatalf("stored base before the first run: %q", got)
			}

			if _, err := sy.Run(ctx, portalID, TriggerManual); err != nil {
				t.Fatalf("first run: %v", err)
			}
			st, err := lsim.Snapshot(accountURL)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Departments) < 3 || len(st.Users) < 10 {
				t.Fatalf("Learn after the first run: %d departments, %d users", len(st.Departments), len(st.Users))
			}
			want := tt.want(lu.Port())
			if got := stored(); got != want {
				t.Fatalf("stored base %q, want %q", got, want)
			}
			if n := probes.Load(); n != 1 {
				t.Errorf("first run probed %d times, want 1", n)
			}

			p.AddUser(b24sim.User{Name: "Newcomer", LastName: "Late", Email: "late@acme.test", Active: true,
				Departments: []int64{p.Departments()[0].ID}})
			if _, err := sy.Run(ctx, portalID, TriggerManual); err != nil {
				t.Fatalf("second run: %v", err)
			}
			if n := probes.Load(); n != 1 {
				t.Errorf("second run probed again: %d probes in all", n)
			}
			st2, _ := lsim.Snapshot(accountURL)
			if len(st2.Users) != len(st.Users)+1 {
				t.Errorf("second run: %d users, want %d", len(st2.Users), len(st.Users)+1)
			}
		})
	}
}
