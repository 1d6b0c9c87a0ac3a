package bitrix24_test

import (
	"context"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
)

// BenchmarkListUsers lists 10,000 users from b24sim with the fast client
// (batch + keyset paging), with Org (the 300 departments as well, in the same
// batches) and with the naive one-page-per-call client. It
// reports HTTP requests per listing and the least time the listing would take
// under Bitrix24's default bucket (2 req/s after a burst of 50). The buckets
// are off here so the naive run does not take minutes; each request gets 20 ms
// of simulated network latency instead.
//
//	go test -run '^$' -bench BenchmarkListUsers -benchtime 2x ./internal/bitrix24/
func BenchmarkListUsers(b *testing.B) {
	org := b24sim.GenerateOrg(11, 10000, 300)
	for _, c := range []struct {
		name string
		list func(*bitrix24.Client, context.Context) ([]bitrix24.User, error)
	}{
		{"fast", func(c *bitrix24.Client, ctx context.Context) ([]bitrix24.User, error) { return c.Users(ctx, nil) }},
		{"org", func(c *bitrix24.Client, ctx context.Context) ([]bitrix24.User, error) {
			_, us, err := c.Org(ctx, nil) // departments too, in the same batches
			return us, err
		}},
		{"naive", func(c *bitrix24.Client, ctx context.Context) ([]bitrix24.User, error) { return c.UsersPaged(ctx, nil) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := setup(b, org, bitrix24.Config{Limiter: bitrix24.NewLimiter(0, 0)})
			f.portal.SetRateLimit(0, 0)
			f.portal.SetLatency(20 * time.Millisecond)
			f.portal.ResetCounters()
			ctx := context.Background()
			for b.Loop() {
				users, err := c.list(f.client, ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(users) != len(org.Users) {
					b.Fatalf("listed %d users, want %d", len(users), len(org.Users))
				}
			}
			req := float64(f.portal.TotalRequests()) / float64(b.N)
			b.ReportMetric(req, "requests/op")
			b.ReportMetric(max(0, (req-50)/2), "s-at-2rps/op")
		})
	}
}
