package i18n_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/activation"
	"b24learn/internal/alert"
	"b24learn/internal/bitrix24"
	"b24learn/internal/fieldmap"
	"b24learn/internal/i18n"
	"b24learn/internal/jobs"
	"b24learn/internal/learn"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
)

func TestFromBitrix24(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]i18n.Lang{
		"ru": i18n.RU, "ua": i18n.RU, "uk": i18n.RU, "by": i18n.RU, "be": i18n.RU, "kz": i18n.RU, "kk": i18n.RU,
		"RU": i18n.RU, " ua ": i18n.RU, "ru-RU": i18n.RU, "uk_UA": i18n.RU,
		"en": i18n.EN, "de": i18n.EN, "la": i18n.EN, "br": i18n.EN, "pl": i18n.EN, "": i18n.EN, "rus": i18n.EN,
	} {
		if got := i18n.FromBitrix24(code); got != want {
			t.Errorf("FromBitrix24(%q) = %q, want %q", code, got, want)
		}
		// A settled language settles to itself (sessions store it).
		if got := i18n.FromBitrix24(string(want)); got != want {
			t.Errorf("FromBitrix24(%q) = %q", want, got)
		}
	}
	if got := i18n.Lang("").String(); got != "en" {
		t.Errorf("zero Lang = %q, want en", got)
	}
}

func TestPlural(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{1: "1 сотрудник ждёт", 2: "2 сотрудника ждут", 4: "4 сотрудника ждут", 5: "5 сотрудников ждут",
		11: "11 сотрудников ждут", 12: "12 сотрудников ждут", 21: "21 сотрудник ждёт", 22: "22 сотрудника ждут", 111: "111 сотрудников ждут"} {
		if got := i18n.N(i18n.RU, "licence_note", n); !strings.HasPrefix(got, want+" ") {
			t.Errorf("RU %d: %q, want it to start with %q", n, got, want)
		}
	}
	for n, want := range map[int]string{1: "1 employee is", 2: "2 employees are", 21: "21 employees are"} {
		if got := i18n.N(i18n.EN, "licence_note", n); !strings.HasPrefix(got, want+" ") {
			t.Errorf("EN %d: %q, want it to start with %q", n, got, want)
		}
	}
}

var (
	verb = regexp.MustCompile(`%[sdv]`)
	// bareEmail is "email" as a word; English texts write "e-mail".
	bareEmail = regexp.MustCompile(`(?i)\bemail\b`)
	// shortMail is the other short Russian form: Russian texts say «e-mail»
	// in a sentence and «электронная почта» in full for a label, which needs
	// Cyrillic.
	shortMail = regexp.MustCompile(`(?i)эл\.\s*почт`)
)

// TestCatalogueComplete: every key reads in both languages, the Russian one
// in Russian, with the same format verbs; both say "e-mail" (Russian
// neither "email" nor "эл. почта").
func TestCatalogueComplete(t *testing.T) {
	t.Parallel()
	for _, key := range i18n.Keys() {
		for _, lang := range []i18n.Lang{i18n.EN, i18n.RU} {
			text := i18n.T(lang, key)
			for _, m := range bareEmail.FindAllString(text, -1) {
				// EMAIL in capitals is a command's placeholder, not a word.
				if m != "EMAIL" {
					t.Errorf("%q: %s text says %q, want e-mail: %q", key, lang, m, text)
				}
			}
			if m := shortMail.FindString(text); lang == i18n.RU && m != "" {
				t.Errorf("%q: Russian text says %q, want e-mail: %q", key, m, text)
			}
		}
	}
	same := map[string]bool{"csv": true, "mgr.count_more": true} // the same word (or figure) in both
	for _, key := range keysInUse(t) {
		if !i18n.Has(key) {
			t.Errorf("key %q is used but not in the catalogue", key)
			continue
		}
		en, ru := i18n.T(i18n.EN, key), i18n.T(i18n.RU, key)
		if en == "" || ru == "" {
			t.Errorf("%q: empty text (en %q, ru %q)", key, en, ru)
		}
		if !same[key] && !strings.ContainsFunc(ru, func(r rune) bool { return unicode.Is(unicode.Cyrillic, r) }) {
			t.Errorf("%q: Russian text %q has no Cyrillic", key, ru)
		}
		if strings.ContainsFunc(en, func(r rune) bool { return unicode.Is(unicode.Cyrillic, r) }) {
			t.Errorf("%q: English text %q has Cyrillic", key, en)
		}
		if a, b := verb.FindAllString(en, -1), verb.FindAllString(ru, -1); strings.Join(a, "") != strings.Join(b, "") {
			t.Errorf("%q: format verbs differ: en %v, ru %v", key, a, b)
		}
	}
}

// keysInUse lists the keys the code asks for: literal keys in the page
// templates and handlers, and the keys built from the codes and states of
// the domain packages.
func keysInUse(t *testing.T) []string {
	t.Helper()
	keys := map[string]bool{}
	lit := []struct {
		re     *regexp.Regexp
		prefix string
	}{
		{regexp.MustCompile(`\bt\([\w.]+, "([a-z_.]+)"\)`), ""},
		{regexp.MustCompile(`\bText\(\w+(?:\.Lang)?, "([a-z_.]+)"\)`), ""},
		{regexp.MustCompile(`\bactT\(\w+(?:\.Lang)?, "([a-z_]+)"\)`), "form."},
		{regexp.MustCompile(`activationField\(v, "([a-z]+)"`), "form."},
		{regexp.MustCompile(`\bi18n\.T\([^"]*?, "([a-z_.]*[a-z_])"\s*[,)]`), ""},
		{regexp.MustCompile(`\bline\("((?:mail|sum)\.[a-z_]+)"`), ""}, // activation's e-mail and summary
		{regexp.MustCompile(`\bmsg\("([a-z_.]+)"\)`), ""},
	}
	var files []string
	// The console's pages, handlers and e-mails are among them
	// (templates/manager*, server/manager*.go, activation's e-mail).
	for _, pat := range []string{"../../templates/*.templ", "../../templates/*_view.go", "../../internal/server/*.go", "../../internal/activation/*.go", "../../internal/alert/*.go"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d source files", len(files))
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lit {
			for _, m := range l.re.FindAllStringSubmatch(string(b), -1) {
				keys[l.prefix+m[1]] = true
			}
		}
	}
	// The preview's rows name their action and kind (templates' previewBody).
	for _, a := range []syncer.Action{syncer.ActionCreate, syncer.ActionUpdate, syncer.ActionMove, syncer.ActionDeactivate,
		syncer.ActionReactivate, syncer.ActionSupervisor, syncer.ActionLink, syncer.ActionRefuse, syncer.ActionConflict,
		syncer.ActionInvited, syncer.ActionInvitedUnknown} {
		keys["do_"+string(a)] = true
	}
	// The people page names a run row's status (templates' people.templ).
	for _, st := range []string{syncer.ItemApplied, syncer.ItemRefused, syncer.ItemHeld, syncer.ItemPlanned, syncer.ItemFailed,
		syncer.ItemWaiting, syncer.ItemConflict, syncer.ItemInvited, syncer.ItemNotice} {
		keys["item_"+st] = true
	}
	keys["count.user."+syncer.ItemInvited] = true
	// Every reason code of a run item (syncer's reasons.go) but stored text,
	// and the codes some of them take as arguments.
	src, err := os.ReadFile("../../internal/syncer/reasons.go")
	if err != nil {
		t.Fatal(err)
	}
	reasons := regexp.MustCompile(`(?m)^\s+Reason\w+\s*=\s*"([a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(reasons) < 20 {
		t.Fatalf("found only %d reason codes in syncer's reasons.go", len(reasons))
	}
	for _, m := range reasons {
		if m[1] != syncer.ReasonText {
			keys["reason_"+m[1]] = true
		}
	}
	for _, why := range []string{bitrix24.InvitedRefused, bitrix24.InvitedIgnored, bitrix24.InvitedSignedIn, bitrix24.InvitedTooMany, bitrix24.InvitedNoCount} {
		keys["invited_why_"+strings.ReplaceAll(why, " ", "_")] = true
	}
	for _, p := range []string{fieldmap.ProblemUnknownField, fieldmap.ProblemNotMappable, fieldmap.ProblemNeedsDate} {
		keys["field_problem_"+p] = true
	}
	for _, k := range []syncer.Kind{syncer.KindUser, syncer.KindDepartment} {
		keys["kind_"+string(k)] = true
	}
	for _, s := range []string{store.ActivationInactive, store.ActivationRequested, store.ActivationActive, store.ActivationSuspended} {
		keys["act_"+s] = true
	}
	// The alert e-mails name their state (internal/alert's Message).
	for _, st := range alert.States {
		keys["alert."+string(st)+".subject"], keys["alert."+string(st)+".body"], keys["alert.recovered."+string(st)] = true, true, true
	}
	keys["alert.recovered.subject"], keys["alert.last_error"], keys["alert.footer"] = true, true, true
	keys["alert.lapsed."+string(alert.UninstallKept)] = true // the one state that lapses (internal/jobs' uninstall erase)
	// The settings page and the run reports name a failed Learn check by its code.
	for _, c := range []string{learn.CheckBadURL, learn.CheckNotHTTPS, learn.CheckUnreachable, learn.CheckTLS, learn.CheckBadCredentials,
		learn.CheckNoAPIAccess, learn.CheckNotLearn, learn.CheckServerError, learn.CheckTimeout, learn.CheckBadAPIKey} {
		keys["check."+c] = true
	}
	// The console names activation requests' statuses and audit actions.
	for _, st := range activation.Statuses {
		keys["mgr.status_"+string(st)] = true
	}
	for _, a := range []string{"sign_in", "sign_out", "totp_enable", "totp_reset", "password_set", "disable", "enable", "activate", "suspend", "river_ui", "uninstall_refuted"} {
		keys["mgr.action_"+a] = true
	}
	// A run item's changed fields and a Learn user's statuses (the server's
	// itemChanges; syncer's Before/After maps).
	for _, f := range []string{"name", "code", "parent", "status", "department", "login", "email", "first_name", "last_name",
		"job_title", "phone", "owner", "also_in", "subordination", "co_subordination", "status_1", "status_3", "status_5"} {
		keys["chg."+f] = true
	}
	// The console's job tables say River's kinds and states.
	for _, k := range []river.JobArgs{jobs.SyncArgs{}, jobs.PreviewArgs{}, jobs.ScheduledSyncArgs{}, jobs.ProvisionArgs{}, jobs.DispatchArgs{},
		jobs.MaintenanceArgs{}, jobs.UninstallCheckArgs{}, jobs.UninstallEraseArgs{}, jobs.LeadForwardArgs{}, alert.ConfirmArgs{}, alert.Args{}} {
		keys["mgr.job_kind."+k.Kind()] = true
	}
	for _, st := range rivertype.JobStates() {
		keys["mgr.job_state."+string(st)] = true
	}
	for _, tr := range []syncer.Trigger{syncer.TriggerScheduled, syncer.TriggerManual, syncer.TriggerApproved, syncer.TriggerPreview} {
		keys["trig_"+string(tr)] = true
	}
	for _, st := range []string{syncer.RunRunning, syncer.RunSucceeded, syncer.RunPartial, syncer.RunHeld, syncer.RunFailed, syncer.RunPreviewed} {
		keys["st_"+st] = true
	}
	for _, c := range []string{learn.CheckBadURL, learn.CheckNotHTTPS, learn.CheckUnreachable, learn.CheckTLS,
		learn.CheckBadCredentials, learn.CheckNoAPIAccess, learn.CheckNotLearn, learn.CheckServerError, learn.CheckNotAccountAdmin, learn.CheckBadAPIKey} {
		keys["check."+c] = true
	}
	for _, c := range contactCodes() {
		keys["contact."+c] = true
	}
	for _, k := range []string{"licence_note", "conflict_note"} {
		for _, f := range []string{"one", "few", "many"} {
			keys[k+"."+f] = true
		}
	}
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	return out
}

// contactCodes are the codes activation.Validate gives, found by asking it.
func contactCodes() []string {
	seen := map[string]bool{}
	good := activation.Contact{Name: "Ivan", Email: "ivan@example.ru", Phone: "+79123456789"}
	for _, c := range []activation.Contact{
		{}, {Name: strings.Repeat("я", 201)}, {Name: "a\x00"}, {Email: "x"}, {Phone: "8 912 345 67 89"}, {Phone: "+7 call"},
	} {
		in := good
		if c == (activation.Contact{}) {
			in = c
		}
		if c.Name != "" {
			in.Name = c.Name
		}
		if c.Email != "" {
			in.Email = c.Email
		}
		if c.Phone != "" {
			in.Phone = c.Phone
		}
		_, err := activation.Validate(in)
		if fe, ok := err.(activation.FieldErrors); ok {
			for _, code := range fe {
				seen[code] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	return out
}
