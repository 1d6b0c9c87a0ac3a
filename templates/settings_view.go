package templates

import (
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"b24learn/internal/i18n"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
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
	// FieldMap is the field mapping section; nil when the Learn account's
	// fields are not known (no account saved, or Learn did not answer:
	// FieldMapError says why, "" when there is no account).
	FieldMap      *FieldMapView
	FieldMapError string
}

// FieldMapView is the field mapping: a row per Learn profile field, each
// with a choice among Sources. The page holds Sources once and its script
// puts them in every row's list: written out in each of 200 rows they were
// more than half of the page.
type FieldMapView struct {
	Rows    []FieldMapRow
	Sources []FieldMapSource
	// Note says why the portal's own UF fields are not offered ("" when
	// they are).
	Note string
}

// FieldMapRow is one Learn profile field.
type FieldMapRow struct {
	Name     string // as Learn writes it
	Label    string
	Required bool
	Unique   bool
	// Fixed: filled by the app (login, e-mail), not chosen.
	Fixed         bool
	Selected      string // the Bitrix24 field code, "" for none
	SelectedLabel string
}

// FieldMapSource is one choice of Bitrix24 field.
type FieldMapSource struct {
	Code  string `json:"code"`
	Label string `json:"label"`
}

// SettingsForm holds the stored values; the password is never among them.
type SettingsForm struct {
	LearnURL    string
	LearnEmail  string
	HasPassword bool
	// LearnClientID is the saved API key's Client ID; HasClientSecret says a
	// secret is saved (the secret itself never reaches the page).
	LearnClientID            string
	HasClientSecret          bool
	FirstRun                 string
	SecondRun                string
	SendLoginEmail           bool
	HeadsAsManagers          bool
	ParentHeadsAsSupervisors bool
	// AlertsOn is the alerts' switch; AlertEmail their address, for admins
	// only (prefilled from the admin's Bitrix24 profile until first saved).
	AlertsOn   bool
	AlertEmail string
	// AlertState is whether the saved address is confirmed, pending or
	// unsent (internal/alert's AddressState; "" without an address).
	AlertState string
}

// StatusView is the status panel: the one model both the settings page and
// GET /app/status (polled while a run is busy) render, with StatusPanel.
type StatusView struct {
	Lang  i18n.Lang
	Admin bool // the buttons work for admins only
	// Activation is inactive, requested, active or suspended.
	Activation string
	Configured bool // Learn credentials and a first run are saved
	LastRun    *RunView
	NextRuns   []time.Time // UTC
	// DemoEvery is the demo's slot interval (0 outside the demo).
	DemoEvery time.Duration
	Runs      []RunView // newest first; a running run has its counts so far
	Held      *RunView  // a run held by the deactivation safeguard, awaiting approval
	Error     string    // the status could not be read
	// Attention is the last sync error when syncs keep failing.
	Attention string
	// Reconnect: the app lost its Bitrix24 tokens; an admin has to open it.
	Reconnect bool
	// Reports: the user may open run reports and CSVs (admins only: they
	// list employees' names and e-mails).
	Reports bool
	// Job is what the portal's unfinished sync or preview job is doing, in
	// words; "" when there is none.
	Job string
	// Busy: a job is queued or running now (or due within a minute), so the
	// page asks again in 2 s; a job further off is asked about every 15 s.
	Busy bool
	// Preview is the newest run when it is a preview (no sync ran after
	// it): what the next sync would do. Admins only.
	Preview *PreviewView
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
	// Progress is a running run's phase and write progress; nil otherwise.
	Progress *ProgressView
}

// ReportPage is where one page of a run's report is in the whole.
type ReportPage struct {
	Total int   // rows in the whole report
	After int64 // the page starts after the row with this id; 0: the first page
	Next  int64 // the next page starts after this row id; 0: this is the last
}

// ProgressView is what a running run is doing and, while it writes to
// Learn, how far it got.
type ProgressView struct {
	Phase   string // read_learn, read, read_bitrix24, plan, write, finish
	Planned int    // steps to write, counted when the writes start
	Done    int    // of them, recorded so far (at most Planned)
	// Left is the estimated time the writes still take, when LeftKnown.
	Left      time.Duration
	LeftKnown bool
}

// Count is one "created: 3" of a run.
type Count struct {
	Key string
	N   int
}

// PreviewView is a preview run with the head of its report.
type PreviewView struct {
	Run   RunView
	Items []PreviewItem
	Total int // rows in the whole report
}

// PreviewItem is one run item as the pages show it: a planned change of a
// preview, a row of a run's report, a step of one person's sync.
type PreviewItem struct {
	Kind    string // user, department
	B24ID   int64
	LearnID string
	Name    string
	Action  string
	Status  string
	Reason  syncer.Reasons
	Changes string // "field: old → new; …"
}

// ActivationNote is the sentence under the activation state: what happens
// next; none once the integration is active.
func ActivationNote(lang i18n.Lang, state string) string {
	switch state {
	case store.ActivationInactive:
		return t(lang, "act_note_inactive")
	case store.ActivationRequested:
		return t(lang, "act_note_request")
	case store.ActivationSuspended:
		return t(lang, "act_note_susp")
	}
	return ""
}

// t returns the text for key in the page's language.
func t(lang i18n.Lang, key string) string { return i18n.T(lang, key) }

// AlertStateText is the line under the alert address: whether alerts go to it.
func AlertStateText(lang i18n.Lang, state, address string) string {
	switch state {
	case "confirmed":
		return i18n.T(lang, "alert_confirmed")
	case "pending":
		return i18n.T(lang, "alert_pending", address)
	case "unsent":
		return i18n.T(lang, "alert_unsent")
	}
	return ""
}

func fmtUTC(tm time.Time) string { return tm.UTC().Format("2006-01-02 15:04") + " UTC" }

func fmtISO(tm time.Time) string { return tm.UTC().Format(time.RFC3339) }

// DurationText says how long something took, in lang: milliseconds under a
// second, tenths of a second under a minute, then minutes and seconds, then
// hours and minutes; "—" when it took nothing (still running, say). The
// settings page and the console both write durations this way.
func DurationText(lang i18n.Lang, d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return i18n.T(lang, "dur_ms", d.Milliseconds())
	case d < time.Minute:
		s := strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
		if lang == i18n.RU {
			s = strings.Replace(s, ".", ",", 1)
		}
		return i18n.T(lang, "dur_s", s)
	case d < time.Hour:
		d = d.Round(time.Second)
		return i18n.T(lang, "dur_min", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	d = d.Round(time.Minute)
	return i18n.T(lang, "dur_h", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func activationText(lang i18n.Lang, state string) string { return t(lang, "act_"+state) }

func runText(lang i18n.Lang, prefix, v string) string {
	if i18n.Has(prefix + v) {
		return t(lang, prefix+v)
	}
	return v
}

// countsText names a run's object counts. The Learn write-concurrency
// figures (learn.*) count no objects: they have their own line
// (concurrencyText) and stay out of this sentence.
func countsText(lang i18n.Lang, cs []Count) string {
	var b strings.Builder
	for _, c := range cs {
		if strings.HasPrefix(c.Key, "learn.") {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(countLabel(lang, c.Key))
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(c.N))
	}
	if b.Len() == 0 {
		return "—"
	}
	return b.String()
}

// concurrencyText says how many Learn writes a run had at once and how
// often Learn asked it to slow down (not said when it never did: "0 times"
// reads as a problem); "" for a run that wrote nothing.
func concurrencyText(lang i18n.Lang, cs []Count) string {
	n := map[string]int{}
	for _, c := range cs {
		n[c.Key] = c.N
	}
	if n["learn.parallel_max"] == 0 {
		return ""
	}
	text := i18n.T(lang, "learn_concurrency", n["learn.parallel_max"], n["learn.parallel_mean"])
	if n["learn.throttled"] > 0 {
		text += " " + i18n.N(lang, "learn_throttled", n["learn.throttled"])
	}
	return text
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
