package server

import (
	"strings"
	"testing"
)

// An audit line of a River UI request keeps what River UI acts on (the
// method, a known path, job ids, a queue's limits) and none of the body's
// other text: a line belongs to no portal, so no erase could find a
// manager's words about a portal's people in it.
func TestRiverAuditNoteKeepsNoFreeText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path, body, want string
	}{
		{"POST", "/api/jobs/cancel", `{"ids":["12","345"],"why":"Ivan Petrov asked"}`, "POST /api/jobs/cancel ids=12,345"},
		{"POST", "/api/jobs/retry", `{"ids":[7, "x Petrov"]}`, "POST /api/jobs/retry ids=7"},
		{"PUT", "/api/queues/system/pause", ``, "PUT /api/queues/system/pause"},
		{"PATCH", "/api/queues/default", `{"concurrency":{"global_limit":3,"local_limit":1,"partition":{"by_args":["Petrov"]}}}`,
			"PATCH /api/queues/default global_limit=3 local_limit=1"},
		{"PUT", "/api/queues/Ivan Petrov/pause", `Petrov`, "PUT (other path) (body not read)"},
		{"POST", "/api/jobs/delete", `not json, Petrov`, "POST /api/jobs/delete (body not read)"},
	} {
		got := riverAuditNote(tc.method, tc.path, []byte(tc.body))
		if got != tc.want || strings.Contains(got, "Petrov") {
			t.Errorf("%s %s %s: note %q, want %q", tc.method, tc.path, tc.body, got, tc.want)
		}
	}
}
