package learn

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/learn/learnsim"
)

// BenchmarkRoundTrip20ms is the floor under the sync benchmarks' "× bound":
// user creates through this client against a learnsim that answers after
// 20 ms, one at a time and 32 at once, with nothing else running. ms/call
// is a call's mean time as the caller sees it; x-nominal is that over the
// 20 ms the bound counts. What is above 1 here (the machine's timers, the
// loopback, both sides' HTTP) is above 1 in every sync against that server:
//
//	go test -run '^$' -bench BenchmarkRoundTrip20ms -benchtime 1x ./internal/learn
func BenchmarkRoundTrip20ms(b *testing.B) {
	const latency = 20 * time.Millisecond
	for _, par := range []int{1, 32} {
		b.Run(fmt.Sprintf("par%d", par), func(b *testing.B) {
			e := newSimEnv(b, learnsim.Options{Latency: latency}, learnsim.AccountOptions{})
			c := e.client(b, Credentials{})
			ctx := context.Background()
			dept, err := c.CreateDepartment(ctx, NewDepartment{Name: "Bench", ParentID: e.root, Code: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			calls := 10 * par // per iteration: 10 rounds of par calls
			var sum atomic.Int64
			var next atomic.Int64
			b.ResetTimer()
			for range b.N {
				var wg sync.WaitGroup
				end := next.Load() + int64(calls)
				for range par {
					wg.Go(func() {
						for {
							i := next.Add(1)
							if i > end {
								return
							}
							login := fmt.Sprintf("u%d@bench.example", i)
							t0 := time.Now()
							_, err := c.CreateUser(ctx, NewUser{DepartmentID: dept, Fields: Fields{FieldLogin: login, FieldEmail: login, FieldFirstName: "A", FieldLastName: "B"}})
							if err != nil {
								b.Error(err)
								return
							}
							sum.Add(int64(time.Since(t0)))
						}
					})
				}
				wg.Wait()
				next.Store(end)
			}
			mean := time.Duration(sum.Load() / int64(calls*b.N))
			b.ReportMetric(float64(mean)/float64(time.Millisecond), "ms/call")
			b.ReportMetric(float64(mean)/float64(latency), "x-nominal")
		})
	}
}
