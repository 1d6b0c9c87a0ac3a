package syncer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
)

// The attacker: a portal's REST endpoint (an on-premise portal) answers
// every call with a redirect whose host holds a byte that is not UTF-8
// and runs to 100 KB. The client refuses the redirect and says where it
// led, so the run's error text held both: PostgreSQL refused the text,
// and the run was left "running" for good (its row never finished); a
// text that is stored would have been 100 KB a run. The run is now
// recorded as failed, with a bounded text.
func TestRunErrorFromHostilePortalIsRecorded(t *testing.T) {
	e := newSimEnv(t, simOpts{})
	id, _ := e.addPortal(b24sim.GenerateOrg(3, 5, 2))
	host := "a\xffb" + strings.Repeat("c", 100_000) + ".example"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://"+host+"/rest/user.get")
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	e.mu.Lock()
	e.newB24 = func(context.Context, int64) (Bitrix24, error) {
		return bitrix24.New(bitrix24.Config{Endpoint: srv.URL + "/rest/", HTTP: srv.Client(), Limiter: bitrix24.NewLimiter(0, 0),
			Tokens: bitrix24.NewMemoryTokenSource(&bitrix24.OAuth{URL: srv.URL}, bitrix24.Token{AccessToken: "a", Expires: time.Now().Add(time.Hour)})}), nil
	}
	e.mu.Unlock()

	rep, err := e.syncer.Run(context.Background(), id, TriggerManual)
	if err == nil || rep == nil {
		t.Fatalf("run: report %v, error %v; want a failed run", rep, err)
	}
	if !strings.Contains(err.Error(), "redirect") {
		t.Errorf("run error %q, want the refused redirect", err)
	}
	run, rerr := e.syncer.store.Run(context.Background(), id, rep.RunID)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if run.Status != RunFailed {
		t.Errorf("run status %q, want %q (error: %v)", run.Status, RunFailed, err)
	}
	if !strings.Contains(run.Error, "redirect") || !utf8.ValidString(run.Error) || len(run.Error) > 4<<10 {
		t.Errorf("stored error of %d bytes (valid UTF-8: %v), want the redirect's, valid and at most 4 KiB: %.200q",
			len(run.Error), utf8.ValidString(run.Error), run.Error)
	}
}
