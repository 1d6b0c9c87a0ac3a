package server

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"b24learn/internal/bitrix24/b24sim"
)

// TestInstallInBrowser installs the app the way an admin does, in Chromium:
// the portal's page frames the installer, whose script (under the framed
// pages' CSP, BX24.js blocked) tells the portal the install is done, and the
// portal reopens the app. An inline script, or a CSP that refused the
// installer's own script, would leave the portal installing for ever.
func TestInstallInBrowser(t *testing.T) {
	b := newBrowserEnv(t)
	p := b.sim.AddPortal(b24sim.PortalOptions{Lang: "en", Org: b24sim.GenerateOrg(3, 5, 3)})
	p.Install()

	b.run(chromedp.Navigate(p.PageURL()))
	deadline := time.Now().Add(60 * time.Second)
	for !p.Installed() {
		if time.Now().After(deadline) {
			t.Fatalf("the installer never finished the install; JS errors: %v", b.jsErrors())
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.waitFor("the app page after the install", `document.querySelector('#app')`)
	if errs := b.jsErrors(); len(errs) > 0 {
		t.Errorf("JS errors: %v", errs)
	}
}
