package server

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"b24learn/internal/manager"
)

var (
	olderLink = regexp.MustCompile(`<a href="([^"]+)" rel="next" data-testid="older">`)
	newerLink = regexp.MustCompile(`<a href="([^"]+)" rel="prev" data-testid="newer">`)
	pageRange = regexp.MustCompile(`data-testid="page-range">([^<]*)<`)
)

// pagingEnv is a console with more rows than a page in each long list: 130
// portals (60 of them created in the same microsecond, so only the id
// orders them), a request per portal and 1,130 audit entries, 70 of them
// about one portal.
type pagingEnv struct {
	*consoleEnv
	b *browser
}

func newPagingEnv(t *testing.T) *pagingEnv {
	t.Helper()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "anna@ispring.example", "long enough password"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO portals (member_id, domain, created_at, needs_attention)
		 SELECT 'm' || i, 'p' || i || '.bitrix24.ru',
		        CASE WHEN i <= 60 THEN timestamptz '2026-01-01 00:00:00Z'
		             ELSE timestamptz '2026-01-01 00:00:00Z' + i * interval '7 microseconds' END,
		        i % 3 <> 0
		 FROM generate_series(1, 130) i`,
		`INSERT INTO activation_requests (portal_id, name, email, phone, status, created_at, updated_at)
		 SELECT id, 'Name ' || id, 'c' || id || '@example.com', '+79123456789',
		        CASE WHEN id % 2 = 0 THEN 'new' ELSE 'contacted' END, created_at, created_at
		 FROM portals`,
		`INSERT INTO manager_audit (manager_email, action, note, ip, created_at)
		 SELECT 'x@ispring.example', 'request_notes', 'n' || i, '10.0.0.9',
		        timestamptz '2025-06-01 00:00:00Z' + (i / 3) * interval '1 second'
		 FROM generate_series(1, 1060) i`,
		`INSERT INTO manager_audit (manager_email, action, portal_id, portal_domain, note, ip, created_at)
		 SELECT 'x@ispring.example', 'activate', p.id, p.domain, 'a' || i, '10.0.0.9',
		        timestamptz '2025-07-01 00:00:00Z' + (i / 4) * interval '1 second'
		 FROM generate_series(1, 70) i, portals p WHERE p.domain = 'p5.bitrix24.ru'`,
	} {
		if _, err := e.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser("10.0.0.2")
	if rec := b.signIn("anna@ispring.example", "long enough password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign in: %d", rec.Code)
	}
	return &pagingEnv{consoleEnv: e, b: b}
}

// ids lists the ids of the list in the order the console must show it.
func (e *pagingEnv) ids(sql string) []int64 {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), sql)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

type shownPage struct {
	ids          []int64
	rng          string
	older, newer string
}

func (e *pagingEnv) page(path string, row *regexp.Regexp) shownPage {
	e.t.Helper()
	rec := e.b.do("GET", path, nil)
	if rec.Code != http.StatusOK {
		e.t.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
	}
	body := rec.Body.String()
	var p shownPage
	for _, m := range row.FindAllStringSubmatch(body, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		p.ids = append(p.ids, id)
	}
	if m := pageRange.FindStringSubmatch(body); m != nil {
		p.rng = html.UnescapeString(m[1])
	}
	if m := olderLink.FindStringSubmatch(body); m != nil {
		p.older = html.UnescapeString(m[1])
	}
	if m := newerLink.FindStringSubmatch(body); m != nil {
		p.newer = html.UnescapeString(m[1])
	}
	return p
}

// walk pages through a list from start: Older to the end, then Newer back
// to the first page. It checks that each page shows the rows the database
// orders there, with its place ("51–100 of 130"), that every link keeps
// keep (the filter, the search), and that the walk back shows the same
// pages.
func (e *pagingEnv) walk(start string, row *regexp.Regexp, keep url.Values, want []int64) {
	e.t.Helper()
	fmtN := func(n int) string { return mgrNumberForTest(n) }
	checkLink := func(href string) {
		e.t.Helper()
		u, err := url.Parse(href)
		if err != nil {
			e.t.Fatalf("link %q: %v", href, err)
		}
		for k := range keep {
			if u.Query().Get(k) != keep.Get(k) {
				e.t.Fatalf("link %q lost %s=%s", href, k, keep.Get(k))
			}
		}
	}
	var pages []shownPage
	next := start
	for next != "" {
		if len(pages) > len(want)/consolePageSize+2 {
			e.t.Fatalf("%s: more pages than rows", start)
		}
		p := e.page(next, row)
		pages = append(pages, p)
		if p.older != "" {
			checkLink(p.older)
		}
		next = p.older
	}
	var seen []int64
	for i, p := range pages {
		first := i*consolePageSize + 1
		if wantRange := fmtN(first) + "–" + fmtN(first+len(p.ids)-1) + " of " + fmtN(len(want)); p.rng != wantRange {
			e.t.Errorf("%s page %d: range %q, want %q", start, i+1, p.rng, wantRange)
		}
		if (i == 0) != (p.newer == "") {
			e.t.Errorf("%s page %d: newer link %q", start, i+1, p.newer)
		}
		seen = append(seen, p.ids...)
	}
	if !slices.Equal(seen, want) {
		e.t.Fatalf("%s: walking Older showed %d rows %v,\nwant %d %v", start, len(seen), seen, len(want), want)
	}
	// And back: each Newer page is the page shown before it.
	next = pages[len(pages)-1].newer
	for i := len(pages) - 2; i >= 0; i-- {
		if next == "" {
			e.t.Fatalf("%s: no Newer link on page %d", start, i+2)
		}
		checkLink(next)
		p := e.page(next, row)
		if !slices.Equal(p.ids, pages[i].ids) || p.rng != pages[i].rng || p.older != pages[i].older {
			e.t.Fatalf("%s: Newer to page %d showed %v (%q, older %q), want %v (%q, older %q)", start, i+1, p.ids, p.rng, p.older, pages[i].ids, pages[i].rng, pages[i].older)
		}
		next = p.newer
	}
	if next != "" {
		e.t.Fatalf("%s: the first page, reached by Newer, links to a newer one: %q", start, next)
	}
}

func mgrNumberForTest(n int) string {
	s := strconv.Itoa(n)
	if len(s) > 3 {
		return s[:len(s)-3] + "," + s[len(s)-3:]
	}
	return s
}

var (
	portalIDRow  = regexp.MustCompile(`<tr data-portal-id="(\d+)">`)
	requestIDRow = regexp.MustCompile(`<tr id="request-\d+" data-request-id="(\d+)">`)
	auditIDRow   = regexp.MustCompile(`<tr data-audit-id="(\d+)">`)
)

// Every row of the console's long lists is reachable exactly once, a page
// at a time, newest first, with and without a filter or a search.
func TestConsoleListsPage(t *testing.T) {
	t.Parallel()
	e := newPagingEnv(t)
	e.walk("/manager/portals", portalIDRow, nil,
		e.ids(`SELECT id FROM portals ORDER BY created_at DESC, id DESC`))
	e.walk("/manager/portals?state=needs_attention", portalIDRow, url.Values{"state": {"needs_attention"}},
		e.ids(`SELECT id FROM portals WHERE needs_attention ORDER BY created_at DESC, id DESC`))
	e.walk("/manager/portals?q=p1", portalIDRow, url.Values{"q": {"p1"}},
		e.ids(`SELECT id FROM portals WHERE domain LIKE '%p1%' ORDER BY created_at DESC, id DESC`))
	e.walk("/manager/portals?state=needs_attention&q=BITRIX24", portalIDRow, url.Values{"state": {"needs_attention"}, "q": {"BITRIX24"}},
		e.ids(`SELECT id FROM portals WHERE needs_attention ORDER BY created_at DESC, id DESC`))
	e.walk("/manager/requests", requestIDRow, nil,
		e.ids(`SELECT id FROM activation_requests ORDER BY created_at DESC, id DESC`))
	e.walk("/manager/requests?status=new", requestIDRow, url.Values{"status": {"new"}},
		e.ids(`SELECT id FROM activation_requests WHERE status = 'new' ORDER BY created_at DESC, id DESC`))
	e.walk("/manager/requests?status=contacted&q=example.com", requestIDRow, url.Values{"status": {"contacted"}, "q": {"example.com"}},
		e.ids(`SELECT id FROM activation_requests WHERE status = 'contacted' ORDER BY created_at DESC, id DESC`))
	e.walk("/manager/audit", auditIDRow, nil,
		e.ids(`SELECT id FROM manager_audit ORDER BY created_at DESC, id DESC`))
	// A portal's page shows its latest entries and links to all of them.
	p5 := strconv.FormatInt(e.ids(`SELECT id FROM portals WHERE domain = 'p5.bitrix24.ru'`)[0], 10)
	if body := e.b.do("GET", "/manager/portals/"+p5, nil).Body.String(); !strings.Contains(body, `href="/manager/audit?portal=`+p5+`" data-testid="portal-audit"`) {
		t.Errorf("portal page has no link to its whole audit trail")
	}
	e.walk("/manager/audit?portal="+p5, auditIDRow, url.Values{"portal": {p5}},
		e.ids(`SELECT a.id FROM manager_audit a JOIN portals p ON p.id = a.portal_id WHERE p.domain = 'p5.bitrix24.ru' ORDER BY a.created_at DESC, a.id DESC`))

	// A search matches text, never a pattern: % and _ find nothing here.
	for _, q := range []string{"%25", "_", `\`, "p1_"} {
		if p := e.page("/manager/portals?q="+q, portalIDRow); len(p.ids) != 0 {
			t.Errorf("search %q found %d portals", q, len(p.ids))
		}
	}
	// The requests search covers the contact's e-mail too.
	want := e.ids(`SELECT r.id FROM activation_requests r JOIN portals p ON p.id = r.portal_id WHERE p.domain = 'p77.bitrix24.ru'`)
	if p := e.page("/manager/requests?q="+url.QueryEscape("C"+strconv.FormatInt(e.ids(`SELECT id FROM portals WHERE domain = 'p77.bitrix24.ru'`)[0], 10)+"@EXAMPLE"), requestIDRow); !slices.Equal(p.ids, want) {
		t.Errorf("search by e-mail: %v, want %v", p.ids, want)
	}
	// A filter link keeps the search; the search form keeps the filter.
	body := e.b.do("GET", "/manager/portals?q=p1&state=held", nil).Body.String()
	if !strings.Contains(body, `href="/manager/portals?q=p1&amp;state=needs_attention"`) ||
		!strings.Contains(body, `name="state" value="held"`) {
		t.Errorf("filter links or search form lost the other:\n%s", body)
	}
}

// A request saved on a later page comes back to that page.
func TestConsoleRequestSaveKeepsPage(t *testing.T) {
	t.Parallel()
	e := newPagingEnv(t)
	p1 := e.page("/manager/requests?status=new", requestIDRow)
	p2path := p1.older
	p2 := e.page(p2path, requestIDRow)
	body := e.b.do("GET", p2path, nil).Body.String()
	id := p2.ids[3]
	rec := e.b.do("POST", "/manager/requests/"+strconv.FormatInt(id, 10), url.Values{"csrf": {csrfOf(t, body)},
		"status": {"new"}, "notes": {"called"}, "back": {strings.TrimPrefix(p2path, "/manager/requests?")}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("save: %d %s", rec.Code, rec.Body.String())
	}
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if loc.Path != "/manager/requests" || loc.Query().Get("older") == "" || loc.Query().Get("status") != "new" ||
		loc.Query().Get("done") != "saved" || loc.Fragment != "request-"+strconv.FormatInt(id, 10) {
		t.Fatalf("save went to %q", loc)
	}
	if back := e.page(loc.RequestURI(), requestIDRow); !slices.Contains(back.ids, id) {
		t.Fatalf("page after save %v lacks request %d", back.ids, id)
	}
	// A forged back is the first page, never somewhere else.
	rec = e.b.do("POST", "/manager/requests/"+strconv.FormatInt(id, 10), url.Values{"csrf": {csrfOf(t, body)},
		"status": {"new"}, "notes": {"called"}, "back": {"older=bad&x=//evil.example"}})
	if got := rec.Header().Get("Location"); got != "/manager/requests?done=saved#request-"+strconv.FormatInt(id, 10) {
		t.Fatalf("forged back went to %q", got)
	}
}

// A cursor or search made by hand is refused with 400 in the manager's
// language, before it reaches the database; signed-out visitors are sent to
// sign in as before, whatever the address asks for.
func TestConsoleListsRefuseBadPages(t *testing.T) {
	t.Parallel()
	e := newPagingEnv(t)
	p := e.page("/manager/portals", portalIDRow)
	good := strings.TrimPrefix(p.older, "/manager/portals?older=")
	bad := []string{
		"older=", "older=abc", "older=--1.5", "older=%ZZ", "older=1.5;x=1", "q=" + strings.Repeat("%25", 700), "older=1.-5", "older=%2B1.5", "older=1.0", "older=01.5", "older=1.05",
		"older=1", "older=.5", "older=1.", "older=1.2.3", "older=1e5.1", "older=1.5%20", "older=%201.5",
		"older=99999999999999999999.1", "older=1.99999999999999999999", "older=253402300800000000.1",
		"older=1%00.5", "older=%D9%A1.%D9%A2", "older=%27%20OR%201%3D1--", "older=" + strings.Repeat("1", 41) + ".1",
		"older=" + good + "&newer=" + good, "older=" + good + "&older=" + good, "newer=x",
		"q=" + strings.Repeat("a", 101), "q=a%00b", "q=%FF", "q=a%0Ab", "q=a&q=b",
	}
	filter := map[string]string{"/manager/portals": "state=held&state=held", "/manager/requests": "status=new&status=new",
		"/manager/audit": "portal=1&portal=1"}
	for _, q := range []string{"portal=abc", "portal=0", "portal=-1", "portal=01", "portal=1.5", "portal=99999999999999999999"} {
		if rec := e.b.do("GET", "/manager/audit?"+q, nil); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "list page's link is not valid") {
			t.Errorf("audit?%s: %d %s", q, rec.Code, rec.Body.String())
		}
	}
	if rec := e.b.do("GET", "/manager/audit?portal=999999", nil); rec.Code != http.StatusNotFound {
		t.Errorf("audit of a portal that does not exist: %d", rec.Code)
	}
	for _, list := range []string{"/manager/portals", "/manager/requests", "/manager/audit"} {
		for _, q := range append(bad, filter[list]) {
			if q == "" {
				continue
			}
			if list == "/manager/audit" && strings.HasPrefix(q, "q=") {
				continue // the audit trail has no search
			}
			rec := e.b.do("GET", list+"?"+q, nil)
			msg := rec.Body.String()
			if rec.Code != http.StatusBadRequest || !(strings.Contains(msg, "list page's link is not valid") ||
				strings.Contains(msg, "search text")) {
				t.Errorf("%s?%s: %d %s", list, q, rec.Code, msg)
			}
		}
	}
	if rec := e.b.do("GET", "/manager/portals?q="+strings.Repeat("я", 100), nil); rec.Code != http.StatusOK {
		t.Errorf("100 Cyrillic letters: %d", rec.Code)
	}
	// A key past the end is an empty page that leads back.
	if p := e.page("/manager/portals?older=1.1", portalIDRow); len(p.ids) != 0 || p.newer == "" || p.rng != "Nothing on this page (130 in all)." {
		t.Errorf("past the end: %+v", p)
	}

	csrf := csrfOf(t, e.b.do("GET", "/manager/portals", nil).Body.String())
	if rec := e.b.do("POST", "/manager/lang", url.Values{"lang": {"ru"}, "csrf": {csrf}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("switch to Russian: %d", rec.Code)
	}
	if rec := e.b.do("GET", "/manager/requests?older=abc", nil); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Ссылка на страницу списка недействительна") {
		t.Errorf("bad cursor, Russian console: %d %s", rec.Code, rec.Body.String())
	}
	if rec := e.b.do("GET", "/manager/portals?q="+strings.Repeat("a", 101), nil); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "не более 100 символов") {
		t.Errorf("long search, Russian console: %d %s", rec.Code, rec.Body.String())
	}
	if p := e.page("/manager/portals", portalIDRow); p.rng != "1–50 из 130" {
		t.Errorf("Russian range %q", p.rng)
	}

	// Signed out, a page's address (good or bad) leads to the sign-in.
	stranger := e.browser("10.0.0.3")
	for _, path := range []string{p.older, "/manager/requests?older=abc", "/manager/audit?newer=" + good} {
		if rec := stranger.do("GET", path, nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/manager/signin" {
			t.Errorf("signed out %s: %d %q", path, rec.Code, rec.Header().Get("Location"))
		}
	}
	// A signed-out session's kept cookie is refused as before.
	kept := *e.b.cookies[managerCookie]
	if rec := e.b.do("POST", "/manager/signout", url.Values{"csrf": {csrfOf(t, e.b.do("GET", "/manager/audit", nil).Body.String())}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", rec.Code)
	}
	e.b.cookies[managerCookie] = &kept
	if rec := e.b.do("GET", p.older, nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/manager/signin" {
		t.Errorf("kept cookie after sign-out: %d %q", rec.Code, rec.Header().Get("Location"))
	}
}

// A saved row's way back is rebuilt from the list's own parameters, so no
// control character its form's back field carries reaches the Location
// header, raw or escaped.
func TestRequestsBackDropsControlCharacters(t *testing.T) {
	t.Parallel()
	for _, back := range []string{"status=new\x00", "q=acme\x00x", "q=acme%00x", "status=new%0D%0ASet-Cookie:x=1",
		"q=a\tb", "q=a%7Fb", "\x00", "older=\x00"} {
		got := requestsBack(back)
		if strings.ContainsFunc(got, unicode.IsControl) || strings.Contains(strings.ToUpper(got), "%00") ||
			strings.Contains(strings.ToUpper(got), "%0D") || strings.Contains(strings.ToUpper(got), "%7F") {
			t.Errorf("requestsBack(%q) = %q: a control character goes on", back, got)
		}
		if !strings.HasPrefix(got, "/manager/requests?") {
			t.Errorf("requestsBack(%q) = %q, want a requests page", back, got)
		}
	}
}
