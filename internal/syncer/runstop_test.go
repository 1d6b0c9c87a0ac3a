package syncer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
)

// errStopping stands for the cause River's stop gives running jobs'
// contexts (it does not export its own).
var errStopping = errors.New("stop initiated")

// stoppingLearn is a Learn whose users' read meets the process's shutdown:
// the run's context is cancelled while the read is under way, and the read
// then ends with fail's error, or with the cut itself when fail is nil.
type stoppingLearn struct {
	Learn
	stop context.CancelCauseFunc
	fail error
}

func (l stoppingLearn) ListUsersWithin(ctx context.Context, f learn.UserFilter, lim learn.Limits, fn func([]learn.User) error) error {
	l.stop(errStopping)
	if l.fail != nil {
		return l.fail
	}
	return l.Learn.ListUsersWithin(ctx, f, lim, fn)
}

// A run is stored as cut by the shutdown only when the shutdown is what
// ended it. One whose Learn read failed on its own (a 500) as the process
// was stopping keeps that error: stored as "shutdown", the admin read
// "interrupted by a restart" and nothing to mend.
func TestRunStoppedByShutdownOnlyWhenCutByIt(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	id, _ := e.addPortal(b24sim.GenerateOrg(3, 5, 2))
	learn500 := fmt.Errorf("list users: %w", &learn.APIError{Method: "GET", Path: "/users", Status: 500, Message: "Internal Server Error"})
	for _, c := range []struct {
		name string
		fail error
		want func(stored string) bool
		says string
	}{
		{"own failure", learn500, func(s string) bool { return strings.Contains(s, "status 500") }, "Learn's 500"},
		{"cut by shutdown", nil, func(s string) bool { return s == RunShutdown }, RunShutdown},
	} {
		ctx, stop := context.WithCancelCause(context.Background())
		e.wrap = func(l Learn) Learn { return stoppingLearn{Learn: l, stop: stop, fail: c.fail} }
		rep, err := e.syncer.Run(ctx, id, TriggerManual)
		e.wrap = nil
		stop(nil)
		if err == nil || rep == nil {
			t.Fatalf("%s: report %v, error %v; want a failed run", c.name, rep, err)
		}
		run, rerr := e.syncer.store.Run(context.Background(), id, rep.RunID)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if run.Status != RunFailed || !c.want(run.Error) {
			t.Errorf("%s: stored %s with error %q, want %s (the run's error: %v)", c.name, run.Status, run.Error, c.says, err)
		}
	}
}
