package templates

import (
	"strings"

	"b24learn/internal/i18n"
	"b24learn/internal/syncer"
)

// RunErrorText is a stored run error as the admin reads it: a sentence in
// lang for what the text shows of the cause (syncer.RunErrorKey), and the
// stored text (English, for support) as the detail, "" when the sentence
// says it all. No error gives "", "".
func RunErrorText(lang i18n.Lang, raw string) (text, detail string) {
	key, withDetail := syncer.RunErrorKey(raw)
	if key == "" {
		return "", ""
	}
	if !i18n.Has(key) {
		key = "run_err_learn" // a Learn check code added later
	}
	if withDetail {
		detail = strings.TrimSpace(raw)
	}
	return i18n.T(lang, key, syncer.RunErrorArgs(raw)...), detail
}
