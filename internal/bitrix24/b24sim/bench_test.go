package b24sim_test

import (
	"testing"

	"b24learn/internal/bitrix24/b24sim"
)

// BenchmarkDepartmentPaging10000 pages through a 10,000-department tree
// through the simulator's HTTP handler, 50 a page as a client does (200
// requests an op): the cost the large-tree tests pay on every listing.
//
//	go test -p 1 -run '^$' -bench BenchmarkDepartmentPaging10000 -benchmem -count 5 ./internal/bitrix24/b24sim
func BenchmarkDepartmentPaging10000(b *testing.B) {
	sim := b24sim.New(b24sim.Options{Rate: -1})
	sim.SetBaseURL("http://sim.test")
	p := sim.AddPortal(b24sim.PortalOptions{Domain: "bench.bitrix24.com", Org: b24sim.GenerateOrg(7, 100, 10000)})
	tok := p.Install()
	b.ReportAllocs()
	for b.Loop() {
		rows, start := 0, 0
		for {
			pg := getDepartments(b, sim, tok, start)
			rows += len(pg.Result)
			if pg.Next == nil {
				break
			}
			start = *pg.Next
		}
		if rows != 10000 {
			b.Fatalf("paged %d departments, want 10000", rows)
		}
	}
}
