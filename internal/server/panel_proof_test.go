package server

import (
	"net/http"
	"testing"
	"time"
)

// panelOf asks for the status panel as the settings page polls it.
func (e *b24Env) panelOf(tab string) (page, time.Duration) {
	e.t.Helper()
	start := time.Now()
	req, _ := http.NewRequest(http.MethodGet, e.app.URL+"/app/status", nil)
	req.Header.Set(sessionHeader, tab)
	resp, err := http.DefaultClient.Do(req)
	return readPage(e.t, resp, err), time.Since(start)
}

// While a sync spends the portal's quota, Bitrix24 may answer the admin
// proof of the panel's poll slowly. The proof has its own short limit and
// the panel's database reads their own time: the poll answers soon, and
// with 503 (Bitrix24 could not be asked), never with 500 after the reads
// found their time spent.
func TestPanelPollWithSlowBitrix24(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, _, tab := e.promotedTab(51)
	e.advance(adminProofTTL) // the open's proof no longer stands
	p.SetLatency(11 * time.Second)
	pg, took := e.panelOf(tab)
	if pg.status == http.StatusInternalServerError {
		t.Errorf("panel poll with a slow Bitrix24: %d %.200s, want the reads done", pg.status, pg.body)
	}
	if took > 7*time.Second {
		t.Errorf("panel poll with a slow Bitrix24 took %v, want the proof's own limit (%v) and little more", took, panelProofTimeout)
	}
}
