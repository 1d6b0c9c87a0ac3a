package templates

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"b24learn/internal/i18n"
	"b24learn/internal/syncer"
)

// The Learn write-concurrency figures are not objects: they stay out of the
// counts sentence and get a line of their own; a run that wrote nothing has
// no such line.
func TestConcurrencyApartFromCounts(t *testing.T) {
	cs := []Count{{Key: "learn.parallel_max", N: 19}, {Key: "learn.parallel_mean", N: 13}, {Key: "learn.throttled", N: 2},
		{Key: "user.create", N: 29}}
	if got := countsText(i18n.EN, cs); got != "users created: 29" {
		t.Errorf("counts %q", got)
	}
	if got := countsText(i18n.EN, cs[:3]); got != "—" {
		t.Errorf("counts of a run with only concurrency figures %q", got)
	}
	if got := concurrencyText(i18n.RU, cs); !strings.Contains(got, "до 19 одновременно") || !strings.Contains(got, "Learn 2 раза просил снизить темп") {
		t.Errorf("concurrency %q", got)
	}
	// A run Learn never throttled does not report "slowed down 0 times".
	calm := []Count{{Key: "learn.parallel_max", N: 18}, {Key: "learn.parallel_mean", N: 11}}
	for _, l := range []i18n.Lang{i18n.EN, i18n.RU} {
		if got := concurrencyText(l, calm); strings.Contains(got, "slow") || strings.Contains(got, "темп") {
			t.Errorf("%s concurrency without throttling %q", l, got)
		}
	}
	if got := concurrencyText(i18n.EN, append(calm, Count{Key: "learn.throttled", N: 1})); !strings.HasSuffix(got, "Learn asked to slow down 1 time.") {
		t.Errorf("en one throttle %q", got)
	}
	if got := concurrencyText(i18n.EN, cs[3:]); got != "" {
		t.Errorf("concurrency of a run without writes %q", got)
	}
}

// One way to write how long something took, in the page's language, on the
// settings page and in the console alike.
func TestDurationText(t *testing.T) {
	for _, tc := range []struct {
		d      time.Duration
		en, ru string
	}{
		{0, "—", "—"},
		{473 * time.Millisecond, "473 ms", "473 мс"},
		{4249 * time.Millisecond, "4.2 s", "4,2 с"},
		{65*time.Second + 400*time.Millisecond, "1 min 5 s", "1 мин 5 с"},
		{2*time.Hour + 3*time.Minute + 40*time.Second, "2 h 4 min", "2 ч 4 мин"},
	} {
		if got := DurationText(i18n.EN, tc.d); got != tc.en {
			t.Errorf("DurationText(en, %v) = %q, want %q", tc.d, got, tc.en)
		}
		if got := DurationText(i18n.RU, tc.d); got != tc.ru {
			t.Errorf("DurationText(ru, %v) = %q, want %q", tc.d, got, tc.ru)
		}
	}
}

// The preview lists an employee waiting for their Bitrix24 invitation and
// the row saying invited users could not be told apart in the page's
// language, without the field list of a user not created and without "#0"
// for the row that is about no one.
func TestPreviewInvitedRows(t *testing.T) {
	p := PreviewView{Run: RunView{ID: 7, Status: "previewed", Counts: []Count{{Key: "user.invited", N: 1}}}, Items: []PreviewItem{
		{Kind: "user", B24ID: 5, Name: "Dana Test", Action: "invited", Status: "invited", Reason: syncer.Reasons{{Code: syncer.ReasonInvited}},
			Changes: "email:  → dana@acme.test"},
		{Kind: "user", Action: "invited_unknown", Status: "notice", Reason: syncer.Reasons{{Code: syncer.ReasonInvitedUnknown, Args: []string{"ignored"}}}},
	}}
	var b strings.Builder
	if err := previewBody(i18n.RU, p).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{"приглашение ещё не принято", "приглашённые не распознаны", "ждут принятия приглашения в Битрикс24: 1", "Dana Test",
		"приглашён в Битрикс24 и ещё не принял приглашение", "(фильтр не учтён)"} {
		if !strings.Contains(html, want) {
			t.Errorf("preview lacks %q: %s", want, html)
		}
	}
	for _, bad := range []string{"#0", "dana@acme.test"} {
		if strings.Contains(html, bad) {
			t.Errorf("preview shows %q: %s", bad, html)
		}
	}
}

// In a run report only a long token (an e-mail) may wrap anywhere: it
// alone is set apart, the words and spaces around it are as they were.
func TestReportSetsLongTokensApart(t *testing.T) {
	long := "maximiliana.featherstonehaugh@customer-experience.example.com"
	run := RunView{ID: 3, Trigger: "manual", Status: "succeeded", StartedAt: time.Now()}
	items := []PreviewItem{{Kind: "user", B24ID: 42, Name: "Maximiliana Featherstonehaugh", Action: "update", Status: "applied",
		Changes: "e-mail: old@example.com → " + long + "; first name: Max → Maximiliana"}}
	var b strings.Builder
	if err := RunReport(i18n.EN, run, items, ReportPage{}).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	// data-label: each cell names its column for the stacked narrow layout.
	want := `<td data-label="Details">e-mail: old@example.com → <span class="s-long">` + long + `;</span> first name: Max → Maximiliana</td>`
	if !strings.Contains(b.String(), want) || !strings.Contains(b.String(), `<td data-label="Name">Maximiliana Featherstonehaugh</td>`) {
		t.Errorf("the report's cells:\n%s\nwant %s", b.String(), want)
	}
	for _, tc := range []struct {
		in   string
		want []textPart
	}{
		{"", nil},
		{"two words", []textPart{{Text: "two words"}}},
		{" " + long + " ", []textPart{{Text: " "}, {Text: long, Long: true}, {Text: " "}}},
		{long, []textPart{{Text: long, Long: true}}},
		{"Подразделение", []textPart{{Text: "Подразделение"}}}, // 13 characters, 26 bytes
	} {
		if got := wrapParts(tc.in); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("wrapParts(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// The run list's start reads as fmtUTC writes it.
func TestStartedAtReadsAsFmtUTC(t *testing.T) {
	tm := time.Date(2026, 12, 5, 13, 20, 0, 0, time.FixedZone("X", 3*3600))
	var b strings.Builder
	if err := startedAt(tm).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(b.String(), "")
	if text != fmtUTC(tm) || text != "2026-12-05 10:20 UTC" {
		t.Errorf("startedAt reads %q, fmtUTC %q", text, fmtUTC(tm))
	}
}

// A user the app itself refused (no e-mail) never reached Learn: the report
// does not say Learn refused it; its details say why.
func TestReportRefusedByTheAppNamesNoLearn(t *testing.T) {
	run := RunView{ID: 4, Trigger: "manual", Status: "succeeded", StartedAt: time.Now()}
	items := []PreviewItem{{Kind: "user", B24ID: 7, Name: "Ivan Petrov", Action: "refuse", Status: syncer.ItemRefused,
		Reason: syncer.Reasons{{Code: syncer.ReasonNoEmail}}}}
	for _, lang := range []i18n.Lang{i18n.EN, i18n.RU} {
		var b strings.Builder
		if err := RunReport(lang, run, items, ReportPage{}).Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		row := b.String()[strings.Index(b.String(), "Ivan Petrov"):]
		row = row[:strings.Index(row, "</tr>")]
		if strings.Contains(row, "Learn</td>") || strings.Contains(row, "by Learn") {
			t.Errorf("%s: an app-refused row blames Learn: %s", lang, row)
		}
		if !strings.Contains(row, i18n.T(lang, "reason_no_email")) {
			t.Errorf("%s: the row does not say why: %s", lang, row)
		}
	}
}
