package templates

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"b24learn/internal/i18n"
)

// pollMillis is when the page asks for the panel again: soon while a run is
// busy, now and then while a job waits further off, else not at all.
func pollMillis(v StatusView) int {
	switch {
	case v.Busy:
		return 2000
	case v.Job != "":
		return 15000
	}
	return 0
}

// jobLine says what is happening now: the job's state with the counts a
// running run has so far, or a run still marked running without a job.
func jobLine(v StatusView) string {
	var cur *RunView
	if len(v.Runs) > 0 && v.Runs[0].Status == "running" {
		cur = &v.Runs[0]
	}
	switch {
	case v.Job != "":
		if cur != nil && len(cur.Counts) > 0 {
			return v.Job + " " + countsText(v.Lang, cur.Counts)
		}
		return v.Job
	case cur != nil:
		return runText(v.Lang, "st_", cur.Status) + " " + countsText(v.Lang, cur.Counts)
	}
	return ""
}

// previewName is the row's name, or its Bitrix24 id when it has none; a
// row about the run, not one object, has neither.
func previewName(it PreviewItem) string {
	if it.Name != "" {
		return it.Name
	}
	if it.B24ID == 0 {
		return "—"
	}
	return "#" + strconv.FormatInt(it.B24ID, 10)
}

// reportObject is a report row's kind and Bitrix24 id; a row about the
// run, not one object, has no id.
func reportObject(lang i18n.Lang, it PreviewItem) string {
	kind := runText(lang, "kind_", it.Kind)
	if it.B24ID == 0 {
		return kind
	}
	return kind + " #" + strconv.FormatInt(it.B24ID, 10)
}

// previewWhy is the reason and, except for a new object or one waiting to
// be created (whose name says it all), what changes.
func previewWhy(lang i18n.Lang, it PreviewItem) string {
	var parts []string
	if len(it.Reason) > 0 {
		parts = append(parts, ReasonsText(lang, it.Reason))
	}
	// A new object's, a waiting one's or a refused one's fields are its
	// name, not changes.
	if it.Action != "create" && it.Action != "invited" && it.Action != "refuse" && it.Changes != "" {
		parts = append(parts, it.Changes)
	}
	return strings.Join(parts, " — ")
}

// longToken is how many characters a token (an e-mail, a URL, a code)
// has beyond which it may wrap anywhere; shorter ones, words, stay whole.
const longToken = 20

// textPart is a stretch of a text: words and the spaces between them, or
// one long token.
type textPart struct {
	Text string
	Long bool
}

// wrapParts splits s around its tokens longer than longToken characters, so
// that those alone may wrap anywhere (wrapLong): a report's e-mail then
// does not widen its table, and its words are not broken to make room.
func wrapParts(s string) []textPart {
	var parts []textPart
	plain, start := 0, -1 // where the plain stretch and the token in hand start; -1: between tokens
	token := func(end int) {
		if start >= 0 && utf8.RuneCountInString(s[start:end]) > longToken {
			if plain < start {
				parts = append(parts, textPart{Text: s[plain:start]})
			}
			parts = append(parts, textPart{Text: s[start:end], Long: true})
			plain = end
		}
	}
	for i, r := range s {
		switch {
		case unicode.IsSpace(r):
			token(i)
			start = -1
		case start < 0:
			start = i
		}
	}
	token(len(s))
	if plain < len(s) {
		parts = append(parts, textPart{Text: s[plain:]})
	}
	return parts
}

// runningProgress is the progress of the run running now, if it has one.
func runningProgress(v StatusView) *ProgressView {
	if len(v.Runs) > 0 && v.Runs[0].Status == "running" {
		return v.Runs[0].Progress
	}
	return nil
}

// progressText is "done of planned" and the time left, in lang.
func progressText(lang i18n.Lang, p ProgressView) string {
	return i18n.T(lang, "progress_done", p.Done, p.Planned) + " · " + LeftText(lang, p.Left, p.LeftKnown)
}

// LeftText says the estimated time left in whole minutes, rounded up (an
// estimate that promises seconds would be read as exact); "estimating"
// while there is none.
func LeftText(lang i18n.Lang, left time.Duration, known bool) string {
	switch {
	case !known:
		return i18n.T(lang, "progress_left_unknown")
	case left < time.Minute:
		return i18n.T(lang, "progress_left_soon")
	}
	mins := int((left + time.Minute - 1) / time.Minute)
	if mins < 60 {
		return i18n.T(lang, "progress_left_min", mins)
	}
	if mins%60 == 0 {
		return i18n.T(lang, "progress_left_h", mins/60)
	}
	return i18n.T(lang, "progress_left_hours", mins/60, mins%60)
}
