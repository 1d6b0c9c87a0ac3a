package learn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"b24learn/internal/learn/learnsim"
)

// A create whose answer is lost on a Learn that cuts codes and refuses one
// used twice with 400: the lookup by the whole code misses the department
// it made, and the repeat is refused for the cut code that department now
// holds. That refusal says the create may have been applied; sending it
// once more without the code would make the department twice
// (docs/learn-api.md, "Department codes").
func TestLostCreateRefusedForItsCutCodeIsNotMadeTwice(t *testing.T) {
	t.Parallel()
	sim := learnsim.New(learnsim.Options{Unsettled: learnsim.Unsettled{Codes: learnsim.CodesCut, UniqueCodes: learnsim.Clash400}})
	root, _ := sim.AddAccount(learnsim.AccountOptions{URL: testAccount, Email: testEmail, Password: testPassword})
	var lost atomic.Int32
	h := sim.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && r.URL.Path == "/department" && lost.Add(1) == 1 {
			h.ServeHTTP(httptest.NewRecorder(), r) // applied, the answer lost
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, _ := New(Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword},
		Options{BaseURL: srv.URL, AllowHTTP: true, Retry: fastRetry})
	_, err := c.CreateDepartment(context.Background(), NewDepartment{Name: "Sales", ParentID: root,
		Code: "a223c6b3710f85df22e9377d6c4f7553:1234"})
	st, _ := sim.Snapshot(testAccount)
	n := 0
	for _, d := range st.Departments {
		if d.Name == "Sales" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("Learn has %d departments named Sales (create: %v), want 1", n, err)
	}
}
