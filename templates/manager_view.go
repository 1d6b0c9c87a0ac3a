package templates

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"b24learn/internal/activation"
	"b24learn/internal/calllog"
	"b24learn/internal/i18n"
	"b24learn/internal/manager"
	"b24learn/internal/syncer"
	"b24learn/internal/uninstall"
)

// ConsoleNav is what every signed-in console page shows: who is signed in,
// the CSRF token for its forms, the current section and a one-off message.
type ConsoleNav struct {
	Lang    i18n.Lang
	Email   string
	CSRF    string
	Section string // requests, portals, river, audit, totp
	Path    string // the page's path, where the language switch comes back to
	Flash   string
	Error   string
}

// SignInView is the console's sign-in page.
type SignInView struct {
	Lang i18n.Lang
	// Chosen: the page's language switch named Lang; the form posts it on,
	// so that its answer speaks it too.
	Chosen bool
	Email  string
	Error  string
	CSRF   string
}

// TOTPView is the manager's two-step sign-in page: on, or the secret to
// add to an authenticator app and a field for its first code.
type TOTPView struct {
	Nav      ConsoleNav
	Enabled  bool
	Required bool // the account may use nothing else until it is on
	Secret   string
	URI      string // otpauth://
	Error    string
}

// RequestsView lists activation requests, a page at a time.
type RequestsView struct {
	Nav      ConsoleNav
	Filter   string // "" or a status
	Search   string // text found in the portal's domain or the contact's e-mail
	Requests []*activation.Request
	Pager    ListPager
	// Back is the page's own query, which the rows' forms post so that a
	// save comes back to this page.
	Back string
}

// PortalsView lists portals, a page at a time.
type PortalsView struct {
	Nav     ConsoleNav
	Filter  string // "" or one of manager.PortalFilters
	Search  string // text found in the domain
	Portals []*manager.PortalRow
	Pager   ListPager
	// FailedJobs are the latest failed River jobs of every portal
	// (jobs.Failed), the latest failure first.
	FailedJobs []JobRow
	// FailedJobsUnread: River's table could not be read; the list is empty
	// for that reason, not because no job failed.
	FailedJobsUnread bool
}

// ListHref is the address of a console list at path: with the filter
// (the parameter filterParam; "" for none) and the search, plus more (a
// page's cursor). The filter links are this from the view's own Filter and
// Search, and internal/server makes the pager's links with it, so a list
// cannot be shown without them.
func ListHref(path, filterParam, filter, search string, more url.Values) string {
	v := url.Values{}
	maps.Copy(v, more)
	if filter != "" && filterParam != "" {
		v.Set(filterParam, filter)
	}
	if search != "" {
		v.Set("q", search)
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// ListPager is a console list's place ("1–50 of 3,412") and the links to
// its newer and older pages ("" when there is none), which keep the filter
// and the search.
type ListPager struct {
	First, Last, Total int
	// More: the list has more than Total rows, which were not counted
	// ("10,000+"); Past: more than Total come before the page, whose place
	// is then not known (store.Page).
	More, Past           bool
	NewerHref, OlderHref string
}

// mgrRange says which rows of how many a page shows.
func mgrRange(lang i18n.Lang, p ListPager) string {
	total := mgrNumber(lang, p.Total)
	if p.More {
		total = i18n.T(lang, "mgr.count_more", total)
	}
	switch {
	case p.Past:
		return i18n.T(lang, "mgr.page_past", mgrNumber(lang, p.Total), total)
	case p.Total == 0 || p.First == 0:
		return i18n.T(lang, "mgr.page_none", total)
	}
	return i18n.T(lang, "mgr.page_range", mgrNumber(lang, p.First), mgrNumber(lang, p.Last), total)
}

// mgrNumber writes n with its thousands grouped as the language does:
// 3,412 in English, 3 412 (a no-break space) in Russian.
func mgrNumber(lang i18n.Lang, n int) string {
	s := strconv.Itoa(n)
	sep := ","
	if lang == i18n.RU {
		sep = "\u00a0"
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// mgrPortalFilterText names a portal filter in the console.
func mgrPortalFilterText(lang i18n.Lang, f string) string {
	if f == "" {
		return i18n.T(lang, "mgr.filter_all")
	}
	return i18n.T(lang, "mgr.filter_"+f)
}

// mgrRecheckText says what happens to a portal uninstalled on refused
// tokens while Bitrix24 is asked again, and when the asking ends.
func mgrRecheckText(lang i18n.Lang, p manager.PortalRow) string {
	key := "mgr.recheck_kept"
	if p.RecheckClean {
		key = "mgr.recheck_clean"
	}
	return i18n.T(lang, key, mgrDay(p.RecheckUntil()))
}

// PortalView is one portal's detail.
type PortalView struct {
	Nav ConsoleNav
	// Portal is a value: a page never shows a missing portal (the handler
	// answers 404 first), and a zero view renders rather than panics.
	Portal manager.PortalRow
	Health PortalHealth
	Runs   []syncer.RunRecord
	Jobs   []JobRow
	// JobsUnread: River's table could not be read (Jobs is empty for that).
	JobsUnread bool
	Calls      []calllog.Entry
	Requests   []*activation.Request
	Audit      []manager.AuditEntry
	// Uninstalls are the ONAPPUNINSTALL events received for the portal.
	Uninstalls []uninstall.Event
}

// PortalHealth is the scheduler's view of a portal's syncs: failed attempts
// in a row and the last error, cleared by the next success.
type PortalHealth struct {
	NeedsAttention bool
	SyncFailures   int
	LastSyncError  string
}

// JobRow is one River job as the console shows it.
type JobRow struct {
	ID           int64
	Kind         string
	State        string
	Attempt      int
	MaxAttempts  int
	PortalID     int64 // 0 when the job names no portal
	PortalDomain string
	CreatedAt    time.Time
	AttemptedAt  *time.Time
	FinalizedAt  *time.Time
	LastError    string
	// Failed: jobs.Failed, which a cancelled job may be.
	Failed bool
}

func mgrJobClass(j JobRow) string {
	switch {
	case j.Failed:
		return "failed"
	case j.State == "completed":
		return "active"
	}
	return ""
}

// mgrJobText says a River job's kind or state ("mgr.job_kind."/
// "mgr.job_state." and the code) in lang; a code the catalogue lacks (a
// kind added later) is shown as it is.
func mgrJobText(lang i18n.Lang, prefix, code string) string {
	if i18n.Has(prefix + code) {
		return i18n.T(lang, prefix+code)
	}
	return code
}

func mgrSeconds(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func mgrRunDuration(lang i18n.Lang, r syncer.RunRecord) string {
	if r.FinishedAt == nil {
		return "—"
	}
	return DurationText(lang, r.FinishedAt.Sub(r.StartedAt))
}

// mgrRunNotes says in words how many employees the portal's latest sync
// left waiting for a Learn licence or shared with another portal.
func mgrRunNotes(lang i18n.Lang, runs []syncer.RunRecord) []string {
	for _, r := range runs {
		if r.Trigger == syncer.TriggerPreview {
			continue
		}
		var out []string
		for _, n := range []string{LicenceNote(lang, r.Counts["user."+syncer.ItemWaiting]),
			ConflictNote(lang, r.Counts["user."+syncer.ItemConflict])} {
			if n != "" {
				out = append(out, n)
			}
		}
		return out
	}
	return nil
}

// mgrCounts lists a run's counts per action ("user.create 3"), sorted.
func mgrCounts(c map[string]int) string {
	keys := make([]string, 0, len(c))
	for k, n := range c {
		if n != 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + strconv.Itoa(c[k])
	}
	return strings.Join(parts, " · ")
}

func mgrStatus(lang i18n.Lang, n int) string {
	if n == 0 {
		return i18n.T(lang, "mgr.no_answer")
	}
	return strconv.Itoa(n)
}

// AuditView is the audit trail, a page at a time: every portal's or, with
// Portal, one portal's.
type AuditView struct {
	Nav     ConsoleNav
	Portal  *manager.PortalRow
	Entries []manager.AuditEntry
	Pager   ListPager
}

// mgrPortalAuditHref is a portal's whole audit trail.
func mgrPortalAuditHref(id int64) string { return "/manager/audit?portal=" + mgrItoa(id) }

func mgrTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// mgrDay is a day in UTC, as the console says when a portal's data goes.
func mgrDay(t time.Time) string { return t.UTC().Format("2006-01-02") }

func mgrTimePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return mgrTime(*t)
}

func mgrItoa(n int64) string { return strconv.FormatInt(n, 10) }

// requestStatusText names an activation request's status.
func requestStatusText(lang i18n.Lang, s activation.Status) string {
	return i18n.T(lang, "mgr.status_"+string(s))
}

// mgrDeliveryText describes one channel for the console.
func mgrDeliveryText(lang i18n.Lang, c activation.Channel) string {
	switch c.State {
	case activation.DeliveryDelivered:
		return i18n.T(lang, "mgr.delivered", mgrTimePtr(c.At))
	case activation.DeliverySkipped:
		switch c.Skip {
		case activation.SkipNotConfigured:
			return i18n.T(lang, "mgr.not_configured")
		case activation.SkipNoRecipients:
			return i18n.T(lang, "mgr.skip_disabled")
		}
		return i18n.T(lang, "mgr.skipped")
	case activation.DeliveryFailed:
		return i18n.T(lang, "mgr.delivery_failed", c.Attempts, c.Error)
	default:
		if c.Skip == activation.SkipOverLimit {
			return i18n.T(lang, "mgr.over_limit")
		}
		if c.Attempts > 0 {
			return i18n.T(lang, "mgr.delivery_retrying", c.Attempts, c.Error)
		}
		return i18n.T(lang, "mgr.delivery_pending")
	}
}

// mgrDeliveryHint tells the operator what to do about a channel that
// needs it; "" when nothing is to be done.
func mgrDeliveryHint(lang i18n.Lang, c activation.Channel) string {
	if c.State == activation.DeliverySkipped && c.Skip == activation.SkipNoRecipients {
		return i18n.T(lang, "mgr.skip_disabled_do")
	}
	if c.State == activation.DeliveryPending && c.Skip == activation.SkipOverLimit {
		return i18n.T(lang, "mgr.over_limit_do")
	}
	return ""
}

func mgrDeliveryClass(c activation.Channel) string {
	switch {
	case c.State == activation.DeliveryFailed,
		c.State == activation.DeliverySkipped && c.Skip == activation.SkipNoRecipients:
		return "failed"
	case c.State == activation.DeliveryDelivered:
		return "active"
	}
	return ""
}

func mgrRunText(lang i18n.Lang, r *manager.Run) string {
	if r == nil {
		return i18n.T(lang, "mgr.no_runs")
	}
	return i18n.T(lang, "st_"+r.Status) + " · " + i18n.T(lang, "trig_"+r.Trigger) + " · " + mgrTime(r.StartedAt)
}

// mgrAction names an audit action; an action without a text shows as its
// code.
func mgrAction(lang i18n.Lang, action string) string {
	if key := "mgr.action_" + action; i18n.Has(key) {
		return i18n.T(lang, key)
	}
	return action
}

func mgrPortalHref(id int64) string { return "/manager/portals/" + mgrItoa(id) }

// mgrMailto links to an activation request's contact address. "?" and "&"
// are legal in an address's local part but start a mailto link's headers:
// escaped, "a?cc=x@evil.example" cannot add a recipient to a manager's reply.
func mgrMailto(email string) string {
	return "mailto:" + strings.NewReplacer("%", "%25", "?", "%3F", "&", "%26", "#", "%23").Replace(email)
}

// mgrUnconfirmed counts the uninstall events that were not acted on.
func mgrUnconfirmed(evs []uninstall.Event) int {
	n := 0
	for _, e := range evs {
		if e.Unconfirmed() {
			n++
		}
	}
	return n
}

// mgrUninstallResult names an uninstall event's outcome for the managers.
func mgrUninstallResult(lang i18n.Lang, e uninstall.Event) string {
	switch e.State {
	case uninstall.StateConfirmed:
		return i18n.T(lang, "mgr.uninstall_confirmed")
	case uninstall.StateRefuted:
		return i18n.T(lang, "mgr.uninstall_refuted")
	case uninstall.StateExpired:
		return i18n.T(lang, "mgr.uninstall_expired")
	}
	return i18n.T(lang, "mgr.uninstall_pending")
}

func mgrUninstallClass(e uninstall.Event) string {
	switch e.State {
	case uninstall.StateConfirmed:
		return "inactive"
	case uninstall.StatePending:
		return "requested"
	}
	return "failed"
}

func mgrYesNo(lang i18n.Lang, b bool) string {
	if b {
		return i18n.T(lang, "mgr.yes")
	}
	return i18n.T(lang, "mgr.no")
}
