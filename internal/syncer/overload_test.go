package syncer

import (
	"errors"
	"net/http"
	"testing"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
)

// A portal whose REST Bitrix24's support has blocked (503 OVERLOAD_LIMIT)
// fails the run before it writes anything, and its report names the block
// in both languages, not Bitrix24 in general (docs/bitrix24-api.md, "Errors").
func TestRunBlockedByOverloadLimit(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	id, p := e.addPortal(b24sim.GenerateOrg(3, 30, 5))
	p.InjectFault(b24sim.Fault{Status: http.StatusServiceUnavailable, Code: "OVERLOAD_LIMIT",
		Description: "REST API is blocked due to overload.", Count: 1000})
	run, err := e.refusedRun(id, TriggerScheduled)
	if !errors.Is(err, bitrix24.ErrOverloadLimit) {
		t.Fatalf("run on a blocked portal: %v; want ErrOverloadLimit", err)
	}
	key, detail := RunErrorKey(run.Error)
	if run.Status != RunFailed || key != "run_err_b24_overload" || !detail {
		t.Errorf("run %s, error %q: key %q (detail %v), want run_err_b24_overload", run.Status, run.Error, key, detail)
	}
	for _, lang := range []i18n.Lang{i18n.EN, i18n.RU} {
		if s := i18n.T(lang, key); s == "" || s == key {
			t.Errorf("%s: no sentence for %s", lang, key)
		}
	}
}
