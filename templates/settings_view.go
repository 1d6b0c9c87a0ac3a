package templates

import (
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"b24learn/internal/i18n"
)

// SettingsView is everything the settings page shows.
type SettingsView struct {
	Lang   i18n.Lang
	Token  string // the session token the page's requests send
	Admin  bool
	BX24JS string // where BX24.js is loaded from
	Form   SettingsForm
	// Tree is the department tree as JSON-ready data; nil when Bitrix24 could
	// not be asked (TreeError says why).
	Tree      any
	TreeError string
	// Scope is the stored selection: {"selected": [...], "excluded": [...]}.
	Scope  any
	Status StatusView
	// Activation is the activation form, when its component is available.
	Activation templ.Component
}

// SettingsForm holds the stored values; the password is never among them.
type SettingsForm struct {
	LearnURL                 string
	LearnEmail               string
	HasPassword              bool
	FirstRun                 string
	SecondRun                string
	SendLoginEmail           bool
	HeadsAsManagers          bool
	ParentHeadsAsSupervisors bool
}

// StatusView is the status panel.
type StatusView struct {
	Activation string // inactive, requested, active, suspended
	Configured bool   // Learn credentials and a first run are saved
	LastRun    *RunView
	NextRuns   []time.Time // UTC
	// DemoEvery is the demo's slot interval (0 outside the demo).
	DemoEvery time.Duration
	Runs      []RunView
	Held      *RunView // a run held by the deactivation safeguard, awaiting approval
	Error     string   // the status could not be read
	// Attention is the last sync error when syncs keep failing.
	Attention string
	// Reconnect: the app lost its Bitrix24 tokens; an admin has to open it.
	Reconnect bool
	// Reports: the user may open run reports and CSVs (admins only: they
	// list employees' names and e-mails).
	Reports bool
}

// RunView is one run in the status panel.
type RunView struct {
	ID        int64
	Trigger   string
	Status    string
	StartedAt time.Time
	Duration  time.Duration // 0 while running
	Counts    []Count
	Error     string
	HeldUsers int
}

// Count is one "created: 3" of a run.
type Count struct {
	Key string
	N   int
}

// liveTextKeys are the labels the page's script needs to redraw the status
// panel from GET /app/status.
var liveTextKeys = []string{"attention", "no_runs", "col_started", "col_result", "col_report", "open_report", "csv",
	"preview_none", "preview_more", "preview_running", "col_action", "col_name", "col_status", "not_configured", "sync_now_inactive",
	"do_create", "do_update", "do_move", "do_deactivate", "do_reactivate", "do_set_supervisor", "do_link", "kind_user", "kind_department"}

// ActivationNote is the sentence under the activation state: what happens
// next; none once the integration is active.
func ActivationNote(lang i18n.Lang, state string) string {
	switch state {
	case "inactive":
		return t(lang, "act_note_inactive")
	case "requested":
		return t(lang, "act_note_request")
	case "suspended":
		return t(lang, "act_note_susp")
	}
	return ""
}

// t returns the text for key in the page's language.
func t(lang i18n.Lang, key string) string { return i18n.T(lang, key) }

func fmtUTC(tm time.Time) string { return tm.UTC().Format("2006-01-02 15:04") + " UTC" }

func fmtISO(tm time.Time) string { return tm.UTC().Format(time.RFC3339) }

func fmtDuration(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func activationText(lang i18n.Lang, state string) string { return t(lang, "act_"+state) }

func runText(lang i18n.Lang, prefix, v string) string {
	if i18n.Has(prefix + v) {
		return t(lang, prefix+v)
	}
	return v
}

func countsText(lang i18n.Lang, cs []Count) string {
	if len(cs) == 0 {
		return "—"
	}
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(countLabel(lang, c.Key))
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(c.N))
	}
	return b.String()
}

// RunCount is one count of a run, 0 for no run.
func RunCount(r *RunView, key string) int {
	if r == nil {
		return 0
	}
	for _, c := range r.Counts {
		if c.Key == key {
			return c.N
		}
	}
	return 0
}

// LicenceNote is the status panel's sentence on employees the last run left
// waiting for a licence (Learn's plan is full); "" when there are none.
func LicenceNote(lang i18n.Lang, waiting int) string {
	if waiting <= 0 {
		return ""
	}
	return i18n.N(lang, "licence_note", waiting)
}

// ConflictNote is the status panel's sentence on employees whose iSpring
// Learn user another portal of the same Learn account also matches; "" when
// there are none.
func ConflictNote(lang i18n.Lang, n int) string {
	if n <= 0 {
		return ""
	}
	return i18n.N(lang, "conflict_note", n)
}

// countLabel names a run's count ("kind.action" as the syncer keys it) in
// words; an unknown key is shown as it is.
func countLabel(lang i18n.Lang, key string) string {
	if !i18n.Has("count." + key) {
		return key
	}
	return i18n.T(lang, "count."+key)
}

// RunLabels are a run's texts as the status panel shows them.
type RunLabels struct {
	Started, Trigger, Status, Counts, Duration string
}

// LabelRun gives the texts of r in lang, as the panel renders them, for
// the page's live updates.
func LabelRun(lang i18n.Lang, r RunView) RunLabels {
	return RunLabels{Started: fmtUTC(r.StartedAt), Trigger: runText(lang, "trig_", r.Trigger),
		Status: runText(lang, "st_", r.Status), Counts: countsText(lang, r.Counts), Duration: fmtDuration(r.Duration)}
}

// FmtUTC is how the page writes a time: "2006-01-02 15:04 UTC".
func FmtUTC(tm time.Time) string { return fmtUTC(tm) }

// Text is the page's label for key in lang.
func Text(lang i18n.Lang, key string) string { return t(lang, key) }
