package server

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"b24learn/internal/i18n"
	"b24learn/internal/syncer"
)

// panelDoc is the status panel as GET /app/status answers it, parsed.
type panelDoc struct {
	t    testing.TB
	body string
	root *html.Node
}

// panel asks GET /app/status with the session token.
func (e *settingsEnv) panel(token string) (int, panelDoc) {
	e.t.Helper()
	r := e.do(http.MethodGet, "/app/status", token, nil)
	d := panelDoc{t: e.t, body: r.body}
	if r.status == http.StatusOK {
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			e.t.Fatalf("GET /app/status: Content-Type %q", ct)
		}
		root, err := html.Parse(strings.NewReader(r.body))
		if err != nil {
			e.t.Fatalf("parse %q: %v", r.body, err)
		}
		d.root = root
	}
	return r.status, d
}

func attr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

// find returns the elements under n for which match is true, in order.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
	}
	return out
}

func (d panelDoc) byID(id string) *html.Node {
	d.t.Helper()
	ns := find(d.root, func(n *html.Node) bool { v, _ := attr(n, "id"); return v == id })
	if len(ns) != 1 {
		d.t.Fatalf("%d elements #%s in the panel: %.500s", len(ns), id, d.body)
	}
	return ns[0]
}

// textOf is n's text with runs of white space made one space, as it reads.
func textOf(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func (d panelDoc) text(id string) string { return textOf(d.byID(id)) }

func (d panelDoc) hidden(id string) bool { _, h := attr(d.byID(id), "hidden"); return h }

func (d panelDoc) attr(id, name string) string { v, _ := attr(d.byID(id), name); return v }

// shown is the element's text, or "" when it is hidden.
func (d panelDoc) shown(id string) string {
	if d.hidden(id) {
		return ""
	}
	return d.text(id)
}

// rows are the run list's rows.
func (d panelDoc) rows() int {
	return len(find(d.byID("runs-box"), func(n *html.Node) bool { return n.Data == "tr" && n.Parent.Data == "tbody" }))
}

// poll is how soon the page asks again, in milliseconds; 0: it does not.
func (d panelDoc) poll() int {
	n, err := strconv.Atoi(d.attr("status", "data-poll"))
	if err != nil {
		d.t.Fatalf("data-poll: %v", err)
	}
	return n
}

func (e *settingsEnv) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.pool.Exec(context.Background(), q, args...); err != nil {
		e.t.Fatal(err)
	}
}

// The polled status panel follows a sync from queued through running (with
// counts so far) to done, shows a preview's planned changes, and never shows
// another portal's jobs.
func TestLiveStatus(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	ctx := context.Background()
	p := e.addPortal("live", "ru")
	other := e.addPortal("other", "en")
	_, tok := e.session(p, 1, true, "ru")
	_, otherTok := e.session(other, 1, true, "en")
	rs := syncer.NewStore(e.pool)

	if st, _ := e.panel(""); st != http.StatusUnauthorized {
		t.Errorf("without a session: %d", st)
	}
	st, v := e.panel(tok)
	if st != http.StatusOK || v.shown("job-state") != "" || v.poll() != 0 || v.rows() != 0 || v.attr("last-run", "data-status") != "" ||
		v.attr("activation-state", "data-state") != "inactive" {
		t.Fatalf("fresh portal: %d %.1000s", st, v.body)
	}

	// Sync now: queued.
	if r, _ := e.save(tok, validForm()); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	e.exec(`UPDATE portals SET activation_state = 'active' WHERE id = $1`, p.ID)
	if r := e.do(http.MethodPost, "/app/sync", tok, url.Values{}); r.status != http.StatusAccepted {
		t.Fatalf("sync: %d %s", r.status, r.body)
	}
	_, v = e.panel(tok)
	if v.shown("job-state") != msgJobQueuedSync.in(i18n.RU) || v.poll() != 2000 ||
		v.attr("activation-state", "data-state") != "active" || v.text("activation-state") != "активна" {
		t.Fatalf("queued: job %q poll %d activation %q", v.shown("job-state"), v.poll(), v.text("activation-state"))
	}
	if _, ov := e.panel(otherTok); ov.shown("job-state") != "" || ov.poll() != 0 {
		t.Fatalf("another portal sees the job: %q", ov.shown("job-state"))
	}

	// Running, with three objects done so far.
	e.exec(`UPDATE river_job SET state = 'running', attempted_at = now(), attempt = 1 WHERE kind = 'sync'`)
	run, err := rs.StartRun(ctx, p.ID, syncer.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	items := []syncer.RunItem{
		{Kind: syncer.KindDepartment, B24ID: 1, Action: syncer.ActionCreate, Status: syncer.ItemApplied},
		{Kind: syncer.KindUser, B24ID: 10, Action: syncer.ActionCreate, Status: syncer.ItemApplied},
		{Kind: syncer.KindUser, B24ID: 11, Action: syncer.ActionCreate, Status: syncer.ItemApplied},
		{Kind: syncer.KindUser, B24ID: 12, Action: syncer.ActionCreate, Status: syncer.ItemRefused, Reason: syncer.Reasons{{Code: syncer.ReasonLicence}}},
	}
	if err := rs.RecordItems(ctx, p.ID, run, items); err != nil {
		t.Fatal(err)
	}
	soFar := "создано подразделений: 1, создано пользователей: 2, отклонено пользователей: 1"
	runLink := `data-report="` + strconv.FormatInt(run, 10) + `"`
	_, v = e.panel(tok)
	if v.shown("job-state") != msgJobRunningSync.in(i18n.RU)+" "+soFar || v.poll() != 2000 ||
		v.attr("last-run", "data-status") != "running" || !strings.Contains(v.text("last-run"), "выполняется") ||
		!strings.Contains(v.text("last-run"), soFar) || !strings.Contains(v.body, runLink) {
		t.Fatalf("running: job %q last %q", v.shown("job-state"), v.text("last-run"))
	}

	// Done: the job is gone, the run has its result.
	if err := rs.FinishRun(ctx, p.ID, run, syncer.RunPartial, map[string]int{"department.create": 1, "user.create": 2, "user.refused": 1}, "", nil); err != nil {
		t.Fatal(err)
	}
	e.exec(`UPDATE river_job SET state = 'completed', finalized_at = now() WHERE kind = 'sync'`)
	_, v = e.panel(tok)
	counts := find(v.byID("last-run"), func(n *html.Node) bool { c, _ := attr(n, "class"); return c == "s-counts" })
	if v.shown("job-state") != "" || v.poll() != 0 || v.attr("last-run", "data-status") != "partial" ||
		!strings.Contains(v.text("last-run"), "частично") || len(counts) != 1 || textOf(counts[0]) != soFar ||
		!v.hidden("preview-box") || v.rows() != 1 {
		t.Fatalf("done: job %q last %q preview hidden %v rows %d", v.shown("job-state"), v.text("last-run"), v.hidden("preview-box"), v.rows())
	}

	// A preview newer than the last sync lists what the next sync would do;
	// names are data, escaped by the template.
	pv, err := rs.StartRun(ctx, p.ID, syncer.TriggerPreview)
	if err != nil {
		t.Fatal(err)
	}
	var planned []syncer.RunItem
	for i := range previewItems + 5 {
		planned = append(planned, syncer.RunItem{Kind: syncer.KindUser, B24ID: int64(100 + i), Action: syncer.ActionCreate,
			After: map[string]string{"first_name": "<b>Анна</b>", "last_name": "Ли"}, Status: syncer.ItemPlanned})
	}
	if err := rs.RecordItems(ctx, p.ID, pv, planned); err != nil {
		t.Fatal(err)
	}
	if err := rs.FinishRun(ctx, p.ID, pv, syncer.RunPreviewed, map[string]int{"user.create": len(planned)}, "", nil); err != nil {
		t.Fatal(err)
	}
	_, v = e.panel(tok)
	lis := find(v.byID("preview-body"), func(n *html.Node) bool { return n.Data == "li" })
	more := find(v.byID("preview-body"), func(n *html.Node) bool { r, _ := attr(n, "data-report"); return r == strconv.FormatInt(pv, 10) })
	if v.hidden("preview-box") || len(lis) != previewItems || textOf(lis[0]) != "создать пользователь · <b>Анна</b> Ли" ||
		strings.Contains(v.body, "<b>Анна") || len(more) != 1 || textOf(more[0]) != "+5 ещё в отчёте" ||
		v.attr("last-run", "data-status") != "partial" || v.rows() != 2 {
		t.Fatalf("preview: %d rows, first %q, more %d; last run %q", len(lis), textOf(lis[0]), len(more), v.attr("last-run", "data-status"))
	}
	// Another portal's session never sees these runs.
	if _, ov := e.panel(otherTok); ov.rows() != 0 || !ov.hidden("preview-box") {
		t.Fatalf("another portal sees runs: %.500s", ov.body)
	}
	// A retry waiting an hour is shown, but does not make the page poll fast.
	e.exec(`INSERT INTO river_job (args, kind, max_attempts, queue, state, scheduled_at, attempt, attempted_at, priority)
		VALUES (jsonb_build_object('portal_id', $1::bigint, 'trigger', 'manual'), 'sync', 5, 'default', 'retryable', now() + interval '1 hour', 1, now(), 1)`, p.ID)
	_, v = e.panel(tok)
	if !strings.HasPrefix(v.shown("job-state"), msgJobRetry.in(i18n.RU)) || v.poll() != 15000 {
		t.Fatalf("retry in an hour: job %q poll %d", v.shown("job-state"), v.poll())
	}
}
