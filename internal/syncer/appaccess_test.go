package syncer

import (
	"errors"
	"fmt"
	"testing"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
)

// A portal admin who limits the app to users its token's user is not among
// makes Bitrix24 answer user_access_error (401, or 403 as its docs' table
// says, in either letter case). The run fails before it writes anything,
// and its stored error names the sentence that tells the admin to give the
// app access; once access is given the next run syncs.
func TestRunWithoutAppAccess(t *testing.T) {
	t.Parallel()
	for _, s403 := range []bool{false, true} {
		t.Run(fmt.Sprintf("403 %v", s403), func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{b24: b24sim.Options{Unsettled: b24sim.Unsettled{ScopeErrors403: s403, CodesOtherCase: s403}}})
			id, p := e.addPortal(b24sim.GenerateOrg(3, 30, 5))
			if rep := e.run(id, TriggerScheduled); rep.Status != RunSucceeded {
				t.Fatalf("first run %s", rep.Status)
			}
			p.LimitAccess(p.AdminID() + 10_000)
			run, err := e.refusedRun(id, TriggerScheduled)
			if !errors.Is(err, bitrix24.ErrUserAccess) {
				t.Fatalf("run with the app limited to others: %v; want ErrUserAccess", err)
			}
			key, detail := RunErrorKey(run.Error)
			if run.Status != RunFailed || key != "run_err_b24_user_access" || !detail {
				t.Errorf("run %s, error %q: key %q (detail %v), want run_err_b24_user_access", run.Status, run.Error, key, detail)
			}
			for _, lang := range []i18n.Lang{i18n.EN, i18n.RU} {
				if s := i18n.T(lang, key); s == "" || s == key {
					t.Errorf("%s: no sentence for %s", lang, key)
				}
			}
			p.OpenAccess()
			if rep := e.run(id, TriggerScheduled); rep.Status != RunSucceeded {
				t.Errorf("run after access was given: %s", rep.Status)
			}
		})
	}
}
