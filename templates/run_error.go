package templates

import (
	"regexp"
	"strings"

	"b24learn/internal/i18n"
	"b24learn/internal/syncer"
)

// A run's error is stored as the Go error's text (syncer's recorded.go):
// English, for support. The admin reads first a sentence in the page's
// language for what the text shows of the cause, then the text itself,
// marked as the detail for support.

// runErrSentinels are the syncer's errors whose text ends a stored one
// (errors wrap as "context: cause").
var runErrSentinels = []struct {
	err error
	key string
}{
	{syncer.ErrNothingSelected, "run_err_nothing_selected"},
	{syncer.ErrEmptyRead, "run_err_empty_read"},
	{syncer.ErrNoLearnRoot, "run_err_no_learn_root"},
	{syncer.ErrNotConfigured, "run_err_not_configured"},
}

// runErrInterrupted is the text the store gives a run a restart cut short.
const runErrInterrupted = "interrupted"

// learnCheckCode finds learn.CheckError's code ("learn check <code>: ...").
var learnCheckCode = regexp.MustCompile(`\blearn check ([a-z_]+):`)

// RunErrorText is a stored run error as the admin reads it: the sentence
// in lang and the stored text as the detail ("" when the sentence says it
// all). raw "" gives "", "".
func RunErrorText(lang i18n.Lang, raw string) (text, detail string) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", ""
	}
	if raw == runErrInterrupted {
		return i18n.T(lang, "run_err_interrupted"), ""
	}
	for _, s := range runErrSentinels {
		if strings.HasSuffix(raw, s.err.Error()) {
			return i18n.T(lang, s.key), raw
		}
	}
	if m := learnCheckCode.FindStringSubmatch(raw); m != nil && i18n.Has("check."+m[1]) {
		return i18n.T(lang, "check."+m[1]), raw
	}
	switch {
	case strings.Contains(raw, "bitrix24"):
		return i18n.T(lang, "run_err_bitrix24"), raw
	case strings.Contains(raw, "learn"):
		return i18n.T(lang, "run_err_learn"), raw
	}
	return i18n.T(lang, "run_err_other"), raw
}
