package server

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
	"b24learn/internal/pgtest"
)

// walkDir is where the admin walk's screenshots go, to be looked at.
const walkDir = "/tmp"

// The long names and addresses of the walk's portal: what widens a table.
const (
	walkDept      = "Regional Customer Experience and Quality Assurance Department"
	walkFirstName = "Maximiliana"
	walkLastName  = "Featherstonehaugh-Wolfeschlegelsteinhausen"
	walkEmail     = "maximiliana.featherstonehaugh-wolfeschlegelsteinhausen@customer-experience.example.com"
	walkEmail2    = "maximiliana.featherstonehaugh-wolfeschlegelsteinhausen.coordinator@customer-experience.example.com"
)

// TestAdminWalkInBrowser walks the settings page as a portal's admin does,
// with the app's iframe 1280 and 400 px wide: fill the settings and save,
// Sync now, read the status panel and the run list, open a run report,
// look a person up. At each width nothing widens the page past the frame
// (a Bitrix24 app frame scrolls down, never sideways), the report keeps
// its words whole, and the English wording is the product's. A Russian
// portal's run list reads Russian throughout.
func TestAdminWalkInBrowser(t *testing.T) {
	b := newBrowserEnv(t)
	ctx := context.Background()
	b.startJobs(pgtest.Reopen(t, b.e.pool), time.Hour)

	p := b.installPortal("en", b24sim.GenerateOrg(31, 40, 6))
	dept := p.AddDepartment(walkDept, 1, 0)
	walkUser := p.AddUser(b24sim.User{Active: true, Name: walkFirstName, LastName: walkLastName, Email: walkEmail,
		WorkPosition: "Senior Customer Experience Coordinator", Departments: []int64{dept}})
	p.AddUser(b24sim.User{Active: true, Name: "Bartholomew", LastName: "Noaddress", Departments: []int64{dept}})
	// An iSpring manager activates the integration; Sync now needs it.
	if _, err := b.e.pool.Exec(ctx, `UPDATE portals SET activation_state = 'active' WHERE id = $1`, b.portalID(p)); err != nil {
		t.Fatal(err)
	}

	for i, width := range []int64{1280, 400} {
		b.frameWidth(width)
		b.openApp(p)
		b.fitsFrame(width, "the settings page")
		b.checkEnglishWording()

		if i == 0 {
			b.mustEval(fmt.Sprintf(`(() => {
				const set = (id, v) => { const e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event('input', {bubbles: true})); };
				set('learn_url', %q); set('learn_email', %q); set('learn_password', %q);
				set('first_run', '06:15'); set('second_run', '18:45'); set('alert_email', %q);
				document.querySelector('[data-tree="none"]').click();
				return true;
			})()`, b.learnURL, learnEmail, learnPassword, walkEmail), nil)
			b.tickDept("Acme Corp")
			b.search("")
		} else {
			// A mistyped password: the message next to the field names the
			// login as the field does; the field emptied keeps the saved one.
			b.mustEval(`(() => { document.getElementById('learn_password').value = 'wrong-password'; return true; })()`, nil)
			if ok, text := b.save(); ok {
				t.Fatalf("a wrong password saved: %s", text)
			}
			b.fitsFrame(width, "the settings with a wrong password")
			b.checkEnglishWording()
			b.shot(fmt.Sprintf("adminwalk-en-%d-wrong-password.png", width))
			b.mustEval(`(() => { document.getElementById('learn_password').value = ''; return true; })()`, nil)
			// A longer address still: the next run's report shows the change.
			if err := p.UpdateUser(walkUser, func(u *b24sim.User) { u.Email = walkEmail2 }); err != nil {
				t.Fatal(err)
			}
		}
		if i == 0 {
			b.mustEval(`(() => { if (!document.getElementById('fieldmap-pending')) throw new Error('no pending Profile fields note'); return true; })()`, nil)
		}
		if ok, text := b.save(); !ok {
			t.Fatalf("%d px: save failed: %s", width, text)
		}
		if i == 0 {
			// The first save of the account brings the Profile fields card's
			// fields in place: the admin is not sent to reopen the app.
			b.waitFor("the Profile fields after the first save", `!document.getElementById('fieldmap-pending') &&
				document.querySelector('#field-map select[data-map]') && document.querySelector('#field-map select[data-map]').options.length > 1`)
		}
		b.fitsFrame(width, "the saved settings")
		b.shot(fmt.Sprintf("adminwalk-en-%d-settings.png", width))

		// Sync now, and wait for the run's end in the polled panel.
		b.syncNow("sync", b.runRows())
		b.fitsFrame(width, "the status panel after the sync")
		b.wordsWhole(width, "#runs-box")

		// The first run's report has every department and employee created;
		// the last one the longer address.
		for _, nth := range []string{"l.length - 1", "0"} {
			b.mustEval(`(() => { const l = document.querySelectorAll('#runs-box [data-report]'); l[`+nth+`].click(); return true; })()`, nil)
			b.waitFor("the report", `(() => { const l = document.querySelectorAll('#runs-box [data-report]');
				return !document.getElementById('report').hidden && document.querySelector('#report-body[data-run="' + l[`+nth+`].dataset.report + '"] table'); })()`)
			b.fitsFrame(width, "the run report")
			b.wordsWhole(width, "#report-body")
			var wrap string
			b.mustEval(`getComputedStyle(document.querySelector('#report-body table').parentElement).overflowX`, &wrap)
			if wrap != "auto" {
				t.Errorf("%d px: the report table's container has overflow-x %q, want auto", width, wrap)
			}
			if width <= 480 {
				b.detailsInView(width)
			}
		}
		var report string
		b.mustEval(`document.getElementById('report-body').textContent`, &report)
		want := []string{walkDept, i18n.T(i18n.EN, "reason_no_email")}
		if i == 1 {
			want = []string{walkEmail2}
		}
		for _, w := range want {
			if !strings.Contains(report, w) {
				t.Errorf("%d px: the report does not show %q", width, w)
			}
		}
		b.shot(fmt.Sprintf("adminwalk-en-%d-report.png", width))

		// A person: the state reads Synced.
		b.findPerson(walkLastName)
		var badge string
		b.mustEval(`document.querySelector('#people-results [data-scope]').textContent`, &badge)
		if badge != "Synced" {
			t.Errorf("%d px: the person's state reads %q, want Synced", width, badge)
		}
		b.mustEval(`(() => { document.querySelector('#people-results [data-person]').click(); return true; })()`, nil)
		b.waitFor("the person view", `document.querySelector('#person-box[data-person-id] #person-why')`)
		b.fitsFrame(width, "the person view")
		b.wordsWhole(width, "#person-box")
		b.headingsAtTop(width)
		b.shot(fmt.Sprintf("adminwalk-en-%d-person.png", width))
		b.checkEnglishWording()
	}

	// A Russian portal's run list, after a sync and a preview: Russian
	// throughout, and so are the report's own words.
	ru := b.installPortal("ru", b24sim.GenerateOrg(32, 30, 4))
	if _, err := b.e.pool.Exec(ctx, `UPDATE portals SET activation_state = 'active' WHERE id = $1`, b.portalID(ru)); err != nil {
		t.Fatal(err)
	}
	b.frameWidth(400)
	b.openApp(ru)
	b.mustEval(fmt.Sprintf(`(() => {
		const set = (id, v) => { const e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event('input', {bubbles: true})); };
		set('learn_url', %q); set('learn_email', %q); set('learn_password', %q); set('first_run', '06:15');
		document.querySelector('[data-tree="none"]').click();
		return true;
	})()`, b.learnURL, learnEmail, learnPassword), nil)
	b.tickDept("Acme Corp")
	b.search("")
	if ok, text := b.save(); !ok {
		t.Fatalf("Russian portal: save failed: %s", text)
	}
	b.syncNow("sync", 0)
	b.syncNow("preview", 1)
	b.fitsFrame(400, "the Russian status panel")
	b.wordsWhole(400, "#runs-box")
	var panel struct {
		Runs    string `json:"runs"`
		LastRun string `json:"lastRun"`
		Preview string `json:"preview"`
	}
	b.mustEval(`({runs: document.getElementById('runs-box').innerText, lastRun: document.getElementById('last-run-box').innerText,
		preview: document.querySelector('#preview-body > p').innerText})`, &panel)
	b.mustEval(`(() => { const l = document.querySelectorAll('#runs-box [data-report]'); l[l.length - 1].click(); return true; })()`, nil)
	b.waitFor("the report", `!document.getElementById('report').hidden && document.querySelector('#report-body[data-run] table')`)
	// The report's own words: its head, the columns but names and details.
	var report string
	b.mustEval(`[document.querySelector('#report-body > p').innerText, document.querySelector('#report-body thead').innerText]
		.concat([...document.querySelectorAll('#report-body tbody tr')].map(r => [0, 2, 3].map(i => r.cells[i].innerText).join(' '))).join('\n')`, &report)
	for what, text := range map[string]string{"run list": panel.Runs, "last run": panel.LastRun, "preview's head": panel.Preview, "report": report} {
		if left := latinLeftovers(text); len(left) > 0 {
			t.Errorf("the Russian %s has English leftovers %q in %q", what, left, text)
		}
	}
	b.shot("adminwalk-ru-400-report.png")

	if errs := b.jsErrors(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %q", errs)
	}
}

// frameWidth makes the app's iframe width px wide: the browser window is
// the frame and the portal page's 20 px margins.
func (b *browserEnv) frameWidth(width int64) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, emulation.SetDeviceMetricsOverride,
		emulation.SetDeviceMetricsOverrideParams{Width: width + 40, Height: 900, DeviceScaleFactor: 1}); err != nil {
		b.t.Fatal(err)
	}
}

// fitsFrame says whether the app is no wider than its frame, and names the
// elements that stick out past the frame's right edge when it is not.
func (b *browserEnv) fitsFrame(width int64, what string) {
	b.t.Helper()
	var got struct {
		Inner  int64    `json:"inner"`
		Scroll int64    `json:"scroll"`
		Wide   []string `json:"wide"`
	}
	b.mustEval(`(() => {
		const vw = window.innerWidth, wide = [];
		for (const e of document.body.querySelectorAll('*')) {
			const r = e.getBoundingClientRect();
			if (r.width === 0 || r.right <= vw + 0.5) continue;
			// Inside a sideways scroller is where a wide table belongs.
			let p = e.parentElement, inside = false;
			for (; p && p !== document.body; p = p.parentElement) {
				if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) { inside = true; break; }
			}
			if (!inside) wide.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '') + ' ' + Math.round(r.right) + 'px');
		}
		return {inner: vw, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 12)};
	})()`, &got)
	if got.Inner != width {
		b.t.Fatalf("the frame is %d px wide, want %d", got.Inner, width)
	}
	if got.Scroll > got.Inner || len(got.Wide) > 0 {
		b.t.Errorf("%d px, %s: the page is %d px wide (scrollWidth); past the frame: %q", width, what, got.Scroll, got.Wide)
	}
}

// wordsWhole fails the test for each word in the table cells under root
// (a selector) that the browser split over two lines. A token longer than
// 20 characters (an e-mail, a URL) may wrap anywhere, and one with a digit
// or an @ where it likes; words may not.
func (b *browserEnv) wordsWhole(width int64, root string) {
	b.t.Helper()
	rj, _ := json.Marshal(root + " th, " + root + " td")
	var broken []string
	b.mustEval(`(() => {
		const broken = [];
		for (const cell of document.querySelectorAll(`+string(rj)+`)) {
			const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
			for (let n; (n = walk.nextNode());) {
				const re = /\S+/g;
				for (let m; (m = re.exec(n.data));) {
					const tok = m[0];
					if ([...tok].length > 20 || /[@\/_0-9#]/.test(tok)) continue;
					const letters = /\p{L}+/gu;
					for (let w; (w = letters.exec(tok));) {
						if (w[0].length < 2) continue;
						const r = document.createRange();
						r.setStart(n, m.index + w.index);
						r.setEnd(n, m.index + w.index + w[0].length);
						const lines = new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top)));
						if (lines.size > 1) broken.push(w[0]);
					}
				}
			}
		}
		return broken;
	})()`, &broken)
	if len(broken) > 0 {
		b.t.Errorf("%d px: %s breaks %d words mid-word, e.g. %q", width, root, len(broken), broken[:min(len(broken), 10)])
	}
}

// detailsInView fails the test for each report row whose Details (when it
// has any) are not within the frame as the report opens, unscrolled: at a phone's width
// the rows stack, so the details need no sideways scroll to be read.
func (b *browserEnv) detailsInView(width int64) {
	b.t.Helper()
	var out struct {
		Rows int      `json:"rows"`
		Off  []string `json:"off"`
	}
	b.mustEval(`(() => {
		const wrap = document.querySelector('#report-body .table-wrap'), vw = window.innerWidth, off = [];
		if (wrap.scrollLeft !== 0) off.push('the table is scrolled by ' + wrap.scrollLeft + 'px');
		if (wrap.scrollWidth > wrap.clientWidth + 1) off.push('the table is ' + wrap.scrollWidth + 'px in a ' + wrap.clientWidth + 'px box');
		// A row without details has nothing to show there (its cell may hide).
		const rows = [...document.querySelectorAll('#report-body tbody tr')].filter(r => r.cells[r.cells.length - 1].innerText.trim() !== '');
		for (const r of rows) {
			const d = r.cells[r.cells.length - 1].getBoundingClientRect();
			if (d.width === 0 || d.left < 0 || d.right > vw + 0.5) off.push(r.cells[1].innerText + ': ' + Math.round(d.left) + '-' + Math.round(d.right) + 'px');
		}
		return {rows: rows.length, off: off.slice(0, 8)};
	})()`, &out)
	if out.Rows == 0 {
		b.t.Fatalf("%d px: the report has no rows with details", width)
	}
	if len(out.Off) > 0 {
		b.t.Errorf("%d px: report Details not within the %d px frame unscrolled: %q", width, width, out.Off)
	}
}

// headingsAtTop fails the test for each card whose heading sits lower than
// the card's padding: a blank band over the title reads as a layout slip.
func (b *browserEnv) headingsAtTop(width int64) {
	b.t.Helper()
	var low []string
	b.mustEval(`[...document.querySelectorAll('.card')].filter(c => c.checkVisibility()).flatMap(c => {
		const h = c.querySelector(':scope > h2:first-child, :scope > :first-child > h2:first-child');
		if (!h) return [];
		const gap = h.getBoundingClientRect().top - c.getBoundingClientRect().top - c.clientTop - parseFloat(getComputedStyle(c).paddingTop);
		return gap > 4 ? [h.textContent + ' ' + Math.round(gap) + 'px'] : [];
	})`, &low)
	if len(low) > 0 {
		b.t.Errorf("%d px: card headings below the card's padding: %q", width, low)
	}
}

// checkEnglishWording looks at the English page's text as it shows, but
// for Learn's own names of its profile fields (and their codes).
func (b *browserEnv) checkEnglishWording() {
	b.t.Helper()
	var texts struct {
		Label string `json:"label"`
		Body  string `json:"body"`
	}
	b.mustEval(`(() => {
		const out = [], walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
		for (let n; (n = walk.nextNode());) {
			const p = n.parentElement;
			if (!p || !p.checkVisibility() || p.closest('script, code, #field-map tbody label')) continue;
			out.push(n.data);
		}
		return {label: document.querySelector('label[for="learn_email"]').textContent, body: out.join(' ')};
	})()`, &texts)
	if want := "Administrator login or e-mail"; texts.Label != want {
		b.t.Errorf("the Learn login field's label reads %q, want %q", texts.Label, want)
	}
	if m := bareEmail.FindAllString(texts.Body, -1); len(m) > 0 {
		b.t.Errorf("the English page says %q where it means e-mail", m)
	}
}

var bareEmail = regexp.MustCompile(`(?i)\bemail\b`)

// findPerson searches the People card for q and waits for the results.
func (b *browserEnv) findPerson(q string) {
	b.t.Helper()
	qj, _ := json.Marshal(q)
	b.mustEval(`(() => { document.getElementById('people-results').replaceChildren();
		document.getElementById('people-q').value = `+string(qj)+`;
		document.getElementById('people-search').requestSubmit(); return true; })()`, nil)
	b.waitFor("the search results", `document.querySelector('#people-results [data-person]')`)
}

// syncNow presses the status panel's Sync now (action "sync") or Preview
// and waits for the run's end in the polled panel, past the list's rows
// rows.
func (b *browserEnv) syncNow(action string, rows int) {
	b.t.Helper()
	b.waitFor(action+" enabled", `!document.querySelector('#status [data-action="`+action+`"]').disabled`)
	b.mustEval(`(() => { document.querySelector('#status [data-action="`+action+`"]').click(); return true; })()`, nil)
	b.waitFor("the run's end", fmt.Sprintf(`document.querySelectorAll('#runs-box tbody tr').length > %d &&
		!document.querySelector('#runs-box .badge.running') && document.getElementById('status').dataset.poll === '0'`, rows))
	var failed string
	b.mustEval(`(() => { const f = document.querySelector('#runs-box tbody tr .badge.failed'); return f ? f.closest('tr').innerText : ''; })()`, &failed)
	if failed != "" {
		b.t.Fatalf("%s: the run failed: %s", action, failed)
	}
}

// runRows counts the run list's rows.
func (b *browserEnv) runRows() int {
	b.t.Helper()
	var n int
	b.mustEval(`document.querySelectorAll('#runs-box tbody tr').length`, &n)
	return n
}

// shot saves the portal page, the app at its full height, for a person to
// look at.
func (b *browserEnv) shot(name string) { b.t.Helper(); b.screenshotTo(walkDir, name) }

// latinLeftovers are the Latin words of a Russian text but the names that
// stay Latin in Russian (UTC, CSV, iSpring Learn).
func latinLeftovers(text string) []string {
	var out []string
	for _, w := range regexp.MustCompile(`[A-Za-z][A-Za-z-]*`).FindAllString(text, -1) {
		switch w {
		case "UTC", "CSV", "iSpring", "Learn":
		default:
			out = append(out, w)
		}
	}
	return out
}
