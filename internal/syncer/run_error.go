package syncer

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/bitrix24"
	"b24learn/internal/learn"
)

// A run's error is stored as the Go error's text (recorded.go): English,
// for support. RunErrorKey names the catalogue sentence (internal/i18n)
// that says what the text shows of the cause, for the pages and e-mails
// that put it before the text.

// runErrStops are the errors that stop a run before anything is planned;
// a stored text ends with one (errors wrap as "context: cause").
var runErrStops = []struct {
	err error
	key string
}{
	{ErrNothingSelected, "run_err_nothing_selected"},
	{ErrEmptyRead, "run_err_empty_read"},
	{ErrOrgTooLarge, "run_err_org_too_large"},
	{ErrNoLearnRoot, "run_err_no_learn_root"},
	{ErrLearnRootHidden, "run_err_learn_root_hidden"},
	{ErrLearnNotAccountAdmin, "run_err_learn_not_account_admin"},
	{ErrNotConfigured, "run_err_not_configured"},
	{ErrSignInElsewhere, "run_err_signin_elsewhere"},
	{ErrConnectedWithKey, "run_err_connected_with_key"},
}

// RunInterrupted is the error the store gives a run a restart cut short.
const RunInterrupted = "interrupted"

// The errors stored for a run whose context was cancelled from outside
// before it finished (StopCause): its job cancelled by an operator (River
// UI, the console), or the process shutting down.
const (
	RunCancelled = "cancelled"
	RunShutdown  = "shutdown"
)

// StopCause says why a run under ctx that ended with err was stopped from
// outside: RunCancelled when River cancelled its job remotely (an
// operator's JobCancel; River gives the job's context
// rivertype.ErrJobCancelledRemotely as its cause), RunShutdown for any
// other cancel (River's stop hands running jobs' contexts a cause of its
// own, which it does not export). It is "" while ctx lives, when it ran
// out of time (the job's timeout is the run's own failure), and when err
// is not the cancel's echo (neither context.Canceled nor ctx's cause; the
// HTTP client answers with the cause): a run that failed for its own
// reason (Learn's 500, a refused password) as the process stopped keeps
// its error, which tells the admin what to mend.
func StopCause(ctx context.Context, err error) string {
	switch {
	case !errors.Is(ctx.Err(), context.Canceled) || !cancelEcho(ctx, err):
		return ""
	case errors.Is(context.Cause(ctx), rivertype.ErrJobCancelledRemotely):
		return RunCancelled
	}
	return RunShutdown
}

// cancelEcho reports whether err is only ctx's cancel coming back: it
// wraps context.Canceled or ctx's cause (what the HTTP client returns).
func cancelEcho(ctx context.Context, err error) bool {
	cause := context.Cause(ctx) // nil while ctx lives
	return err != nil && (errors.Is(err, context.Canceled) || cause != nil && errors.Is(err, cause))
}

// learnCheckCode finds learn.CheckError's code ("learn check <code>: ...").
var learnCheckCode = regexp.MustCompile(`\blearn check ([a-z_]+):`)

// b24Refusals are Bitrix24's refusals the portal's admin mends in Bitrix24,
// found by their code in bitrix24.APIError's text ("bitrix24: error <code>
// (http <status>)"); codes come in either case and the status varies
// (docs/bitrix24-api.md, "Errors").
var b24Refusals = []struct {
	re  *regexp.Regexp
	key string
}{
	{b24CodeText(bitrix24.ErrUserAccess), "run_err_b24_user_access"},
	{b24CodeText(bitrix24.ErrOverloadLimit), "run_err_b24_overload"},
}

func b24CodeText(e *bitrix24.APIError) *regexp.Regexp {
	return regexp.MustCompile(`(?i)\bbitrix24: error ` + regexp.QuoteMeta(e.Code) + ` \(http \d+\)`)
}

// accountElsewhere finds AccountElsewhereError's text and its address.
var accountElsewhere = regexp.MustCompile(regexp.QuoteMeta(accountElsewhereText) + `(\S+)` + regexp.QuoteMeta(accountElsewhereEnd) + `$`)

// RunErrorArgs are the arguments of RunErrorKey's sentence: the address to
// use for run_err_account_elsewhere, none for the others.
func RunErrorArgs(raw string) []any {
	if addr, ok := elsewhereAddress(raw); ok && learn.Hosted(addr) {
		return []any{addr}
	}
	return nil
}

// elsewhereAddress is the address an AccountElsewhereError names. The
// sentence names it only on iSpring's own domains: any other address is a
// server another portal's admin chose, which may be theirs and not the
// account at all, and the admin told to use it would send it the Learn
// password (docs/learn-api.md, "One account, several portals").
func elsewhereAddress(raw string) (string, bool) {
	if m := accountElsewhere.FindStringSubmatch(strings.TrimSpace(raw)); m != nil {
		return m[1], true
	}
	return "", false
}

// RunErrorKey is the catalogue key of the sentence for a stored run error
// and whether the stored text should follow it as the detail; "" for no
// error. A Learn check's code gives "check.<code>", which the catalogue may
// lack (a code added later): callers fall back to run_err_learn.
func RunErrorKey(raw string) (key string, detail bool) {
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "":
		return "", false
	case raw == RunInterrupted:
		return "run_err_interrupted", false
	case raw == RunCancelled:
		return "run_err_cancelled", false
	case raw == RunShutdown:
		return "run_err_shutdown", false
	}
	if addr, ok := elsewhereAddress(raw); ok {
		if learn.Hosted(addr) {
			return "run_err_account_elsewhere", false
		}
		return "run_err_account_elsewhere_unnamed", false
	}
	for _, s := range runErrStops {
		if strings.HasSuffix(raw, s.err.Error()) {
			return s.key, true
		}
	}
	if m := learnCheckCode.FindStringSubmatch(raw); m != nil {
		return "check." + m[1], true
	}
	// Learn's answers that the admin can mend say what the settings'
	// check says (learn's APIError text carries its sentinel's words).
	for _, c := range []struct {
		err  error
		code string
	}{{learn.ErrAPIKeyRefused, learn.CheckBadAPIKey}, {learn.ErrBadCredentials, learn.CheckBadCredentials}, {learn.ErrNoAPIAccess, learn.CheckNoAPIAccess}, {learn.ErrTimeout, learn.CheckTimeout}} {
		if strings.Contains(raw, strings.TrimPrefix(c.err.Error(), "learn: ")) {
			return "check." + c.code, true
		}
	}
	// A token the API key did not get for another reason than a refusal
	// (Learn's token endpoint failing after the fetch's retries).
	if strings.Contains(raw, learn.ErrNoToken.Error()) {
		return "run_err_learn_token", true
	}
	for _, r := range b24Refusals {
		if r.re.MatchString(raw) {
			return r.key, true
		}
	}
	switch {
	case strings.Contains(raw, "bitrix24"):
		return "run_err_bitrix24", true
	case strings.Contains(raw, "learn"):
		return "run_err_learn", true
	}
	return "run_err_other", true
}
