package server

import (
	"context"
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"b24learn/internal/syncer"
)

// TestRunCSVDefusesFormulasAfterListSeparators: Excel opens a CSV split at
// the locale's list separator, which is ";" in Russian (the portals'
// language) and most European locales, not at the file's comma; there a
// quote inside a comma-separated row is plain text, so a line break inside
// a quoted cell ends the row. An employee named "Ivanov;=1+1;x" then makes
// a cell of its own that starts a formula. Every piece such a spreadsheet
// can make of the file must start as text.
func TestRunCSVDefusesFormulasAfterListSeparators(t *testing.T) {
	t.Parallel()
	body := runCSV(t, []syncer.RunItem{
		// A name from Bitrix24, where the employee writes it.
		{Kind: syncer.KindUser, B24ID: 1, Action: syncer.ActionCreate, Status: syncer.ItemApplied,
			After: map[string]string{"first_name": "Ivan", "last_name": "Ivanov;=HYPERLINK(A1);x"}},
		{Kind: syncer.KindDepartment, B24ID: 2, Action: syncer.ActionCreate, Status: syncer.ItemApplied,
			After: map[string]string{"name": "Sales\t+1+1\t"}},
		// A Learn id comes from the Learn server; a quoted line break.
		{Kind: syncer.KindUser, B24ID: 3, LearnID: "u1\n@SUM(1+1);", Action: syncer.ActionUpdate, Status: syncer.ItemApplied,
			Before: map[string]string{"email": "a@acme.test"}, After: map[string]string{"email": "b@acme.test;-2+3"}},
		{Kind: syncer.KindUser, B24ID: 4, Action: syncer.ActionCreate, Status: syncer.ItemApplied,
			After: map[string]string{"name": "Petrov\r\n=1+1;"}},
		// A quote that opens the piece is dropped by the spreadsheet, and so
		// is the one that closes it at once: the formula follows.
		{Kind: syncer.KindUser, B24ID: 5, Action: syncer.ActionCreate, Status: syncer.ItemApplied,
			After: map[string]string{"name": `Sidorov;"=1+1;x`}},
	})
	checkNoFormulaPieces(t, body, `"`)
	// The comma-separated reading is unchanged: the same text, defused.
	if !strings.Contains(body, "Ivan Ivanov;'=HYPERLINK(A1);x") {
		t.Errorf("csv:\n%s", body)
	}
}

// TestRunCSVDefusesFormulasAfterLeadingSpaces: a spreadsheet trims the
// spaces a cell starts with, so "  =1+1" is a formula there, whether the
// cell is the file's own or a piece after ";", and after a quote too.
func TestRunCSVDefusesFormulasAfterLeadingSpaces(t *testing.T) {
	t.Parallel()
	body := runCSV(t, []syncer.RunItem{
		{Kind: syncer.KindUser, B24ID: 1, Action: syncer.ActionCreate, Status: syncer.ItemApplied,
			After: map[string]string{"first_name": "  =1+1", "last_name": "Ivanov; @SUM(A1:A9);x"}},
		{Kind: syncer.KindDepartment, B24ID: 2, Action: syncer.ActionCreate, Status: syncer.ItemApplied,
			After: map[string]string{"name": `Sales; " +1+1;  "-2`}},
		{Kind: syncer.KindUser, B24ID: 3, LearnID: "   @SUM(1+1)", Action: syncer.ActionUpdate, Status: syncer.ItemApplied,
			Before: map[string]string{"email": "a@acme.test"}, After: map[string]string{"email": "b@acme.test\n =2+3"}},
	})
	checkNoFormulaPieces(t, body, ` "`)
	// Read at the file's commas, each cell after its spaces is text too.
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("csv %q: %v", body, err)
	}
	for _, rec := range recs {
		for _, cell := range rec {
			if text := strings.TrimLeft(cell, " "); text != "" && strings.ContainsRune("=+-@", rune(text[0])) {
				t.Errorf("a spreadsheet reads the cell %q: a formula", cell)
			}
		}
	}
	if !strings.Contains(body, "Ivanov;' @SUM(A1:A9);x") {
		t.Errorf("csv:\n%s", body)
	}
}

// runCSV records a finished run of items for a new portal and returns the
// run's CSV report, without its byte order mark.
func runCSV(t *testing.T, items []syncer.RunItem) string {
	t.Helper()
	e := newSettingsEnv(t)
	p := e.addPortal("semicolon", "ru")
	_, tok := e.session(p, 1, true, "ru")
	ctx := context.Background()
	rs := syncer.NewStore(e.pool)
	run, err := rs.StartRun(ctx, p.ID, syncer.TriggerScheduled)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.RecordItems(ctx, p.ID, run, items); err != nil {
		t.Fatal(err)
	}
	if err := rs.FinishRun(ctx, p.ID, run, syncer.RunSucceeded, map[string]int{"user.create": 2}, "", nil); err != nil {
		t.Fatal(err)
	}
	r := e.do(http.MethodGet, "/app/runs/"+strconv.FormatInt(run, 10)+"/csv", tok, nil)
	if r.status != 200 {
		t.Fatalf("csv: %d %s", r.status, r.body)
	}
	return strings.TrimPrefix(r.body, "\uFEFF")
}

// checkNoFormulaPieces fails the test if a piece of body that a spreadsheet
// splitting at ";", tab or line breaks makes a cell of starts a formula once
// the characters in cut (quotes, spaces) it drops from the start are gone.
func checkNoFormulaPieces(t *testing.T, body, cut string) {
	t.Helper()
	for _, piece := range strings.FieldsFunc(body, func(c rune) bool { return strings.ContainsRune(";\t\r\n", c) }) {
		text := strings.TrimLeft(piece, cut)
		if text != "" && strings.ContainsRune("=+-@", rune(text[0])) {
			t.Errorf("a spreadsheet splitting at ';', tab or line breaks reads the cell %q: a formula", piece)
		}
	}
}
