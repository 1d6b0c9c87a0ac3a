package server

import (
	"context"
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/syncer"
)

// manyItems are n applied user creates, B24 ids from first on; the last one
// is named with a formula.
func manyItems(first, n int) []syncer.RunItem {
	items := make([]syncer.RunItem, n)
	for i := range items {
		name := "User " + strconv.Itoa(first+i)
		if i == n-1 {
			name = `=HYPERLINK("http://evil.example","x")`
		}
		items[i] = syncer.RunItem{Kind: syncer.KindUser, B24ID: int64(first + i), Action: syncer.ActionCreate,
			After: map[string]string{"name": name}, Status: syncer.ItemApplied}
	}
	return items
}

// TestRunReportPaged: a report longer than a page shows a page of rows, says
// how many there are and links to the next page; the CSV has every row,
// its formulas defused, however many pages and chunks they span.
func TestRunReportPaged(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("paged", "en")
	_, tok := e.session(p, 1, true, "en")
	ctx := context.Background()
	rs := syncer.NewStore(e.pool)
	run, err := rs.StartRun(ctx, p.ID, syncer.TriggerPreview)
	if err != nil {
		t.Fatal(err)
	}
	total := 2*reportPage + csvChunk/3 + 7 // more than two pages and one CSV chunk
	if err := rs.RecordItems(ctx, p.ID, run, manyItems(1, total)); err != nil {
		t.Fatal(err)
	}
	if err := rs.FinishRun(ctx, p.ID, run, syncer.RunPreviewed, map[string]int{"user.create": total}, "", nil); err != nil {
		t.Fatal(err)
	}
	base := "/app/runs/" + strconv.FormatInt(run, 10)
	seen := 0
	path := base
	for page := 1; ; page++ {
		r := e.do(http.MethodGet, path, tok, nil)
		if r.status != 200 {
			t.Fatalf("page %d: %d %s", page, r.status, r.body)
		}
		rows := strings.Count(r.body, "<tr data-action=")
		if rows > reportPage {
			t.Fatalf("page %d shows %d rows, more than %d", page, rows, reportPage)
		}
		if !strings.Contains(r.body, "The report has "+strconv.Itoa(total)+" rows; "+strconv.Itoa(rows)+" of them are shown here.") {
			t.Errorf("page %d does not say how many rows there are:\n%.2000s", page, r.body)
		}
		if page == 1 && !strings.Contains(r.body, `<td data-label="Name">User 1</td>`) {
			t.Errorf("the first page lacks the first row")
		}
		seen += rows
		i := strings.Index(r.body, `data-after="`)
		if i < 0 {
			break
		}
		after := r.body[i+len(`data-after="`):]
		after = after[:strings.IndexByte(after, '"')]
		path = base + "?after=" + after
		if page > 5 {
			t.Fatal("the pages never end")
		}
	}
	if seen != total {
		t.Errorf("the pages showed %d rows in all, want %d", seen, total)
	}
	if r := e.do(http.MethodGet, base+"?after=x", tok, nil); r.status != http.StatusNotFound {
		t.Errorf("a bad page: %d", r.status)
	}

	r := e.do(http.MethodGet, base+"/csv", tok, nil)
	if r.status != 200 {
		t.Fatalf("csv: %d", r.status)
	}
	records, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(r.body, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	if len(records) != total+1 || strings.Join(records[0], ",") != "kind,bitrix24_id,learn_id,name,action,status,reason,changes" {
		t.Fatalf("csv has %d records (want %d and the header) starting %v", len(records), total+1, records[0])
	}
	for i, rec := range records[1:] {
		if rec[1] != strconv.Itoa(i+1) {
			t.Fatalf("csv row %d is object %s: rows lost or out of order", i+1, rec[1])
		}
	}
	if last := records[total]; last[3] != `'=HYPERLINK("http://evil.example","x")` {
		t.Errorf("last row's name %q, want the formula defused", last[3])
	}
}

// TestStatusPanelCostIsNotTheItems: GET /app/status, polled by every user of
// the portal, reads as many report rows whether the newest preview or the
// running run has twenty rows or thousands: their totals and counts are on
// the run's row.
func TestStatusPanelCostIsNotTheItems(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("cost", "en")
	_, tok := e.session(p, 2, false, "en")
	_, adminTok := e.session(p, 1, true, "en")
	ctx := context.Background()
	rs := syncer.NewStore(e.pool)
	poll := func(tok string) int64 {
		t.Helper()
		before := itemReads(t, e.pool)
		if r := e.do(http.MethodGet, "/app/status", tok, nil); r.status != 200 {
			t.Fatalf("status: %d %s", r.status, r.body)
		}
		return itemReads(t, e.pool) - before
	}
	preview, err := rs.StartRun(ctx, p.ID, syncer.TriggerPreview)
	if err != nil {
		t.Fatal(err)
	}
	// More rows than the panel lists, so that the rows it reads are as many.
	if err := rs.RecordItems(ctx, p.ID, preview, manyItems(1, 2*previewItems)); err != nil {
		t.Fatal(err)
	}
	if err := rs.FinishRun(ctx, p.ID, preview, syncer.RunPreviewed, nil, "", nil); err != nil {
		t.Fatal(err)
	}
	small, smallAdmin := poll(tok), poll(adminTok)
	if err := rs.RecordItems(ctx, p.ID, preview, manyItems(2*previewItems+1, 5000)); err != nil {
		t.Fatal(err)
	}
	if big, bigAdmin := poll(tok), poll(adminTok); big != small || bigAdmin != smallAdmin {
		t.Errorf("the preview's rows read per poll grew from %d (admin %d) to %d (admin %d) with 5,000 more rows",
			small, smallAdmin, big, bigAdmin)
	}
	r := e.do(http.MethodGet, "/app/status", adminTok, nil)
	if !strings.Contains(r.body, "+"+strconv.Itoa(5000+previewItems)+" ") {
		t.Errorf("the panel does not count the preview's rows:\n%s", r.body)
	}

	// A running sync: its counts so far come from its row.
	running, err := rs.StartRun(ctx, p.ID, syncer.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.RecordSteps(ctx, p.ID, running, steps(manyItems(1, 20))); err != nil {
		t.Fatal(err)
	}
	small = poll(tok)
	if err := rs.RecordSteps(ctx, p.ID, running, steps(manyItems(21, 5000))); err != nil {
		t.Fatal(err)
	}
	if big := poll(tok); big != small {
		t.Errorf("the running run's rows read per poll grew from %d to %d with 5,000 more rows", small, big)
	}
	if r := e.do(http.MethodGet, "/app/status", tok, nil); !strings.Contains(r.body, "5020") {
		t.Errorf("the panel does not show the running run's counts so far:\n%s", r.body)
	}
}

func steps(items []syncer.RunItem) []syncer.StepRecord {
	out := make([]syncer.StepRecord, len(items))
	for i, it := range items {
		out[i] = syncer.StepRecord{Item: it}
	}
	return out
}

// itemReads is how many rows of sync_run_items the database has read so
// far, by table and index scans. Each idle connection of the pool is made
// to flush its statistics first (PostgreSQL 15 holds them back up to a
// second), then a fresh snapshot is read.
func itemReads(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	ctx := context.Background()
	for _, c := range pool.AcquireAllIdle(ctx) {
		if _, err := c.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		c.Release()
	}
	c, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if _, err := c.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := c.QueryRow(ctx, `SELECT COALESCE(t.seq_tup_read, 0) + COALESCE((SELECT sum(i.idx_tup_read)
		FROM pg_stat_user_indexes i WHERE i.relid = t.relid), 0)
		FROM pg_stat_user_tables t WHERE t.relname = 'sync_run_items'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
