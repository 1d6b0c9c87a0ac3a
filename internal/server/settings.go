package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/activation"
	"b24learn/internal/apperr"
	"b24learn/internal/connect"
	"b24learn/internal/fieldmap"
	"b24learn/internal/i18n"
	"b24learn/internal/learn"
	"b24learn/internal/manager"
	"b24learn/internal/schedule"
	"b24learn/internal/settings"
	"b24learn/internal/store"
)

// Field names of the settings form; the JSON error map of a failed save is
// keyed by them, so the page shows each message next to its field.
const (
	fieldLearnURL      = "learn_url"
	fieldLearnEmail    = "learn_email"
	fieldLearnPassword = "learn_password"
	fieldClientID      = "learn_client_id"
	fieldClientSecret  = "learn_client_secret"
	fieldFirstRun      = "first_run"
	fieldSecondRun     = "second_run"
	fieldSendLogin     = "send_login_email"
	fieldHeadsManagers = "heads_as_managers"
	fieldParentHeads   = "parent_heads_as_supervisors"
	fieldDepartments   = "departments"
	fieldAlertEmail    = "alert_email"
	fieldAlerts        = "alerts"
	fieldForm          = "form" // a message about the whole form
)

// Bounds of the form; larger input is refused rather than truncated.
const (
	maxURLLen      = 2048
	maxEmailLen    = 254
	maxPasswordLen = 256
	maxDeptIDs     = 20000
)

// learnChecker checks Learn credentials on save and returns where the
// account's API answered ("" when the checker does not say) and what it
// could not confirm; a failure is a *learn.CheckError (anything else counts
// as "unreachable").
type learnChecker interface {
	CheckLearn(ctx context.Context, creds learn.Credentials) (learn.Checked, error)
}

// learnCheckFunc adapts a check that finds no API base (test fakes).
type learnCheckFunc func(ctx context.Context, creds learn.Credentials) error

func (f learnCheckFunc) CheckLearn(ctx context.Context, creds learn.Credentials) (learn.Checked, error) {
	return learn.Checked{}, f(ctx, creds)
}

// learnFindFunc adapts a check that returns the API base.
type learnFindFunc func(ctx context.Context, creds learn.Credentials) (string, error)

func (f learnFindFunc) CheckLearn(ctx context.Context, creds learn.Credentials) (learn.Checked, error) {
	base, err := f(ctx, creds)
	return learn.Checked{APIURL: base}, err
}

// learnCheckedFunc adapts a check that returns all it found.
type learnCheckedFunc func(ctx context.Context, creds learn.Credentials) (learn.Checked, error)

func (f learnCheckedFunc) CheckLearn(ctx context.Context, creds learn.Credentials) (learn.Checked, error) {
	return f(ctx, creds)
}

// newLearnChecker is the production check: learn.Check through the
// factory's SSRF-safe client, the one the syncs use, logged in the call log
// of the session's portal.
func newLearnChecker(clients *connect.Factory, allowPrivate bool) learnChecker {
	return learnCheckedFunc(func(ctx context.Context, creds learn.Credentials) (learn.Checked, error) {
		hc := clients.LearnHTTP()
		if sess, ok := sessionFrom(ctx); ok {
			hc = clients.LearnHTTPFor(sess.PortalID)
		}
		return learn.Check(ctx, creds, learn.Options{HTTPClient: hc, AllowHTTP: allowPrivate})
	})
}

// settingsInput is a submitted form, normalised and validated.
type settingsInput struct {
	LearnURL      string
	LearnEmail    string
	LearnPassword string // "" keeps the stored one
	// LearnClientID and LearnClientSecret are the optional Learn API key
	// (docs/learn-api.md, "Authentication"); a secret left "" keeps the
	// stored one, a Client ID left "" removes the key.
	LearnClientID, LearnClientSecret string
	FirstRun                         string // "HH:MM"
	SecondRun                        string // "HH:MM" or ""
	SendLoginEmail                   bool
	HeadsAsManagers                  bool
	ParentHeadsAsSupervisors         bool
	Departments                      *settings.Scope // nil: not submitted (tree not loaded), keep stored
	// LearnAPIURL is where the check found the API; not a form field.
	LearnAPIURL string
	// AlertEmail and AlertsOn are the alerts' address ("" sends none) and
	// switch; nil: not submitted (a client older than the fields), keep stored.
	AlertEmail *string
	AlertsOn   *bool
}

// apply writes the submitted values into the stored settings; a password
// left empty and departments not submitted keep the stored ones.
func (in settingsInput) apply(s *settings.Settings, runs schedule.Schedule) {
	s.LearnURL, s.LearnEmail, s.Password = in.LearnURL, in.LearnEmail, in.LearnPassword
	s.LearnClientID, s.ClientSecret = in.LearnClientID, in.LearnClientSecret
	s.Schedule = runs
	s.SendLoginEmail, s.HeadsAsManagers, s.ParentHeadsAsSupervisors =
		in.SendLoginEmail, in.HeadsAsManagers, in.ParentHeadsAsSupervisors
	if in.Departments != nil {
		s.Departments = *in.Departments
	}
	if in.LearnAPIURL != "" {
		s.LearnAPIURL = in.LearnAPIURL
	}
	if in.AlertEmail != nil {
		s.AlertEmail = *in.AlertEmail
	}
	if in.AlertsOn != nil {
		s.AlertsOff = !*in.AlertsOn
	}
}

// parseSettingsForm reads and validates the form. hasStoredPassword and
// hasStoredSecret tell whether a password or an API key's secret is already
// stored (then an empty field keeps it). errs maps field names to messages
// in lang; empty means valid.
func parseSettingsForm(r *http.Request, lang i18n.Lang, allowHTTP, hasStoredPassword, hasStoredSecret bool) (settingsInput, map[string]string) {
	errs := map[string]string{}
	var in settingsInput
	get := func(k string) string { return r.PostFormValue(k) }

	rawURL := strings.TrimSpace(get(fieldLearnURL))
	switch {
	case rawURL == "":
		errs[fieldLearnURL] = msgURLRequired.in(lang)
	case len(rawURL) > maxURLLen:
		errs[fieldLearnURL] = msgURLTooLong.in(lang)
	default:
		u, err := learn.NormalizeAccountURL(rawURL, allowHTTP)
		switch {
		case errors.Is(err, learn.ErrInsecureURL):
			errs[fieldLearnURL] = msgURLNotHTTPS.in(lang)
		case err != nil:
			errs[fieldLearnURL] = msgURLInvalid.in(lang)
		default:
			in.LearnURL = u
		}
	}

	in.LearnEmail = strings.TrimSpace(get(fieldLearnEmail))
	switch {
	case in.LearnEmail == "":
		errs[fieldLearnEmail] = msgEmailRequired.in(lang)
	case utf8.RuneCountInString(in.LearnEmail) > maxEmailLen || !utf8.ValidString(in.LearnEmail) ||
		strings.IndexFunc(in.LearnEmail, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		errs[fieldLearnEmail] = msgEmailInvalid.in(lang)
	}

	// The API key is optional; with one the password is too. The secret
	// is taken as typed, the Client ID trimmed.
	in.LearnClientID = strings.TrimSpace(get(fieldClientID))
	in.LearnClientSecret = get(fieldClientSecret)
	switch {
	case utf8.RuneCountInString(in.LearnClientID) > maxPasswordLen || !utf8.ValidString(in.LearnClientID) ||
		strings.IndexFunc(in.LearnClientID, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		errs[fieldClientID] = msgClientIDInvalid.in(lang)
	case in.LearnClientID == "" && in.LearnClientSecret != "":
		errs[fieldClientID] = msgClientIDRequired.in(lang)
	}
	switch {
	case utf8.RuneCountInString(in.LearnClientSecret) > maxPasswordLen:
		errs[fieldClientSecret] = msgSecretTooLong.in(lang)
	case in.LearnClientID != "" && in.LearnClientSecret == "" && !hasStoredSecret:
		errs[fieldClientSecret] = msgSecretRequired.in(lang)
	}
	hasKey := in.LearnClientID != "" && (in.LearnClientSecret != "" || hasStoredSecret)

	// The password is taken as typed: spaces may be part of it.
	in.LearnPassword = get(fieldLearnPassword)
	switch {
	case in.LearnPassword == "" && !hasStoredPassword && !hasKey:
		errs[fieldLearnPassword] = msgPasswordRequired.in(lang)
	case utf8.RuneCountInString(in.LearnPassword) > maxPasswordLen:
		errs[fieldLearnPassword] = msgPasswordTooLong.in(lang)
	}

	first := strings.TrimSpace(get(fieldFirstRun))
	if first == "" {
		errs[fieldFirstRun] = msgFirstRequired.in(lang)
	} else if t, ok := parseHHMM(first); !ok {
		errs[fieldFirstRun] = msgTimeInvalid.in(lang)
	} else {
		in.FirstRun = t
	}
	if second := strings.TrimSpace(get(fieldSecondRun)); second != "" {
		if t, ok := parseHHMM(second); !ok {
			errs[fieldSecondRun] = msgTimeInvalid.in(lang)
		} else if t == in.FirstRun {
			errs[fieldSecondRun] = msgSecondSame.in(lang)
		} else {
			in.SecondRun = t
		}
	}

	for _, b := range []struct {
		field string
		dst   *bool
	}{{fieldSendLogin, &in.SendLoginEmail}, {fieldHeadsManagers, &in.HeadsAsManagers}, {fieldParentHeads, &in.ParentHeadsAsSupervisors}} {
		v, ok := parseCheckbox(r.PostForm[b.field])
		if !ok {
			errs[b.field] = msgBoolInvalid.in(lang)
		}
		*b.dst = v
	}

	if vals, ok := r.PostForm[fieldAlertEmail]; ok && len(vals) > 0 {
		addr := strings.TrimSpace(vals[len(vals)-1])
		if addr != "" && !activation.Mailbox(addr) {
			errs[fieldAlertEmail] = msgAlertEmail.in(lang)
		}
		in.AlertEmail = &addr
	}
	if vals, ok := r.PostForm[fieldAlerts]; ok {
		on, ok := parseCheckbox(vals)
		if !ok {
			errs[fieldAlerts] = msgBoolInvalid.in(lang)
		}
		in.AlertsOn = &on
	}

	if raw, ok := r.PostForm[fieldDepartments]; ok && len(raw) > 0 {
		scope, m := parseDeptScope(raw[len(raw)-1])
		if m != "" {
			errs[fieldDepartments] = m.in(lang)
		} else {
			in.Departments = &scope
		}
	}
	return in, errs
}

// parseHHMM reads a run time as the schedule does and returns "HH:MM".
func parseHHMM(s string) (string, bool) {
	c, err := schedule.ParseClock(s)
	return c.String(), err == nil
}

// parseCheckbox reads a checkbox: absent is false. A hidden "0" before the
// checkbox lets the value be sent explicitly; the last value wins.
func parseCheckbox(vals []string) (bool, bool) {
	if len(vals) == 0 {
		return false, true
	}
	switch strings.ToLower(strings.TrimSpace(vals[len(vals)-1])) {
	case "1", "on", "true", "yes", "y":
		return true, true
	case "0", "off", "false", "no", "n", "":
		return false, true
	}
	return false, false
}

// parseDeptScope reads the picker's JSON. Ids are positive; duplicates are
// dropped; an id both selected and excluded is refused.
func parseDeptScope(raw string) (settings.Scope, msg) {
	var in struct {
		Selected []json.Number `json:"selected"`
		Excluded []json.Number `json:"excluded"`
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		return settings.Scope{}, msgDeptsInvalid
	}
	if len(in.Selected)+len(in.Excluded) > maxDeptIDs {
		return settings.Scope{}, msgDeptsTooMany
	}
	ids := func(nums []json.Number) ([]int64, map[int64]bool, bool) {
		out := make([]int64, 0, len(nums))
		seen := make(map[int64]bool, len(nums))
		for _, n := range nums {
			id, err := strconv.ParseInt(n.String(), 10, 64)
			if err != nil || id <= 0 {
				return nil, nil, false
			}
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
		return out, seen, true
	}
	sel, selSet, ok1 := ids(in.Selected)
	exc, _, ok2 := ids(in.Excluded)
	if !ok1 || !ok2 {
		return settings.Scope{}, msgDeptsInvalid
	}
	for _, id := range exc {
		if selSet[id] {
			return settings.Scope{}, msgDeptsInvalid
		}
	}
	if len(sel) == 0 {
		return settings.Scope{}, msgDeptsRequired
	}
	return settings.Scope{Selected: sel, Excluded: exc}, ""
}

// checkText is the admin's sentence for a failed connection check; a code
// without one reads as "unreachable", the check's catch-all.
func checkText(lang i18n.Lang, code string) string {
	if !i18n.Has("check." + code) {
		code = learn.CheckUnreachable
	}
	return i18n.T(lang, "check."+code)
}

// checkField maps a failed connection check to the field it is about.
func checkField(code string) string {
	switch code {
	case learn.CheckBadCredentials:
		return fieldLearnPassword
	case learn.CheckBadAPIKey:
		return fieldClientSecret
	case learn.CheckNoAPIAccess, learn.CheckNotAccountAdmin:
		return fieldLearnEmail
	case learn.CheckServerError:
		return fieldForm
	default:
		return fieldLearnURL
	}
}

// saveResult is the JSON answer of POST /app/settings.
type saveResult struct {
	OK          bool              `json:"ok"`
	Message     string            `json:"message"`
	Errors      map[string]string `json:"errors,omitempty"`
	HasPassword bool              `json:"has_password,omitempty"`
	// HasClientSecret: an API key's secret is stored (never the secret).
	HasClientSecret bool `json:"has_client_secret,omitempty"`
	// The saved alert address's state, as alertConfirmResult has it.
	AlertState     string `json:"alert_state"`
	AlertStateText string `json:"alert_state_text"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// handleSaveSettings validates, checks the Learn credentials and then saves
// the settings and the audit row in one transaction. Any failure saves
// nothing and answers 422 with the messages keyed by field.
func (s *Server) handleSaveSettings(w http.ResponseWriter, r *http.Request) {
	v, _ := sessionFrom(r.Context())
	if err := r.ParseForm(); err != nil {
		s.errorJSON(w, r, apperr.New(apperr.EMALFORMED, msgBadRequest.in(v.Lang)))
		return
	}
	ctx := r.Context()
	cur, err := settings.Load(ctx, s.pool, s.cfg.Keyring, v.PortalID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	allowHTTP := s.cfg != nil && s.cfg.LearnAllowPrivateHosts
	in, errs := parseSettingsForm(r, v.Lang, allowHTTP, cur.HasPassword(), cur.HasClientSecret())
	if in.LearnURL != "" && in.LearnPassword == "" && cur.HasPassword() && in.LearnURL != cur.LearnURL {
		// The stored password goes only to the account it was typed for:
		// otherwise any portal admin could send it to a host of their own.
		errs[fieldLearnPassword] = msgPasswordAgain.in(v.Lang)
	}
	if in.LearnURL != "" && in.LearnClientID != "" && in.LearnClientSecret == "" && cur.HasClientSecret() && in.LearnURL != cur.LearnURL {
		// So does the stored API key's secret.
		errs[fieldClientSecret] = msgSecretAgain.in(v.Lang)
	}
	if len(errs) > 0 {
		s.errorJSON(w, r, &apperr.Error{Code: apperr.EINVALID, Message: msgFixErrors.in(v.Lang), Fields: errs})
		return
	}
	password := in.LearnPassword
	if password == "" {
		password = cur.Password
		// Saved as checked: left empty, Save would keep whatever is stored
		// when it writes, which another admin may have changed meanwhile,
		// joining their new password to this request's address.
		in.LearnPassword = password
	}
	clientSecret := in.LearnClientSecret
	if clientSecret == "" && in.LearnClientID != "" {
		clientSecret = cur.ClientSecret // saved as checked, as the password
		in.LearnClientSecret = clientSecret
	}
	if err := manager.Hit(ctx, s.pool, "learn-check:portal:"+strconv.FormatInt(v.PortalID, 10), learnCheckLimit, s.now()); err != nil {
		var rl *manager.RateLimitedError
		if !errors.As(err, &rl) {
			s.error(w, r, err)
			return
		}
		setRetryAfter(w, rl)
		s.errorJSON(w, r, &apperr.Error{Code: apperr.ETOOMANY, Message: i18n.T(v.Lang, "msg.check_limited", rl.Minutes())})
		return
	}
	// Failed checks of one Learn account's login from all portals are
	// bounded too, except for the portal that holds it and for a check with
	// an API key, which sends no password (learn_guess.go).
	target, checked := targetOf(in.LearnURL, in.LearnEmail), s.now()
	keyCheck := learn.Credentials{ClientID: in.LearnClientID, ClientSecret: clientSecret}.HasAPIKey()
	heldByTarget := !holdsTarget(cur, target) && !keyCheck
	if heldByTarget {
		if err := s.takeTargetTurn(ctx, target, checked); err != nil {
			var rl *manager.RateLimitedError
			if !errors.As(err, &rl) {
				s.error(w, r, err)
				return
			}
			s.log.InfoContext(ctx, "learn check refused: too many failed checks of the account's login", "portal_id", v.PortalID)
			setRetryAfter(w, rl)
			s.errorJSON(w, r, &apperr.Error{Code: apperr.ETOOMANY, Message: msgCheckFailed.in(v.Lang),
				Fields: map[string]string{fieldLearnPassword: i18n.T(v.Lang, "msg.target_limited", rl.Minutes())}})
			return
		}
	}
	// The check bounds itself (learn.DefaultCheckTimeout): a slow server
	// reads as CheckTimeout well before the server's write timeout.
	found, err := s.check.CheckLearn(ctx, learn.Credentials{AccountURL: in.LearnURL, Email: in.LearnEmail, Password: password,
		ClientID: in.LearnClientID, ClientSecret: clientSecret})
	in.LearnAPIURL = found.APIURL
	if heldByTarget {
		// Not the request's context: the count is settled even when the client has hung up.
		if serr := s.settleTargetTurn(context.WithoutCancel(ctx), target, checked, err); serr != nil {
			s.error(w, r, serr)
			return
		}
	}
	if err != nil {
		var ce *learn.CheckError
		if !errors.As(err, &ce) {
			ce = &learn.CheckError{Code: learn.CheckUnreachable, Err: err}
		}
		s.log.InfoContext(ctx, "learn check failed", "portal_id", v.PortalID, "code", ce.Code, "error", ce.Err)
		s.errorJSON(w, r, &apperr.Error{Code: apperr.EINVALID, Message: msgCheckFailed.in(v.Lang),
			Fields: map[string]string{checkField(ce.Code): checkText(v.Lang, ce.Code)}})
		return
	}
	runs, err := schedule.Parse(in.FirstRun, in.SecondRun)
	if err != nil {
		s.error(w, r, fmt.Errorf("validated run times: %w", err))
		return
	}
	var fieldMap map[string]string // nil: not posted, keep the stored one
	if raw, ok := r.PostForm[fieldFieldMap]; ok && len(raw) > 0 {
		posted, ok := parseFieldMap(raw[len(raw)-1])
		if !ok {
			s.errorJSON(w, r, &apperr.Error{Code: apperr.EINVALID, Message: msgFixErrors.in(v.Lang),
				Fields: map[string]string{fieldFieldMap: i18n.T(v.Lang, "msg.fieldmap_invalid")}})
			return
		}
		p, err := store.GetPortal(ctx, s.pool, v.PortalID)
		if err != nil {
			s.error(w, r, err)
			return
		}
		acct := cur
		acct.LearnURL, acct.LearnEmail, acct.Password, acct.LearnAPIURL = in.LearnURL, in.LearnEmail, password, in.LearnAPIURL
		acct.LearnClientID, acct.ClientSecret = in.LearnClientID, clientSecret
		fctx, cancel := context.WithTimeout(ctx, treeTimeout)
		m, errs, err := s.checkFieldMap(fctx, p, acct, posted, v.Lang)
		cancel()
		if err != nil {
			// Without the account's fields the mapping cannot be checked:
			// nothing is saved rather than an unchecked mapping.
			s.log.WarnContext(ctx, "check field mapping", "portal_id", v.PortalID, "error", err)
			s.errorJSON(w, r, &apperr.Error{Code: apperr.EINVALID, Message: msgFixErrors.in(v.Lang),
				Fields: map[string]string{fieldFieldMap: i18n.T(v.Lang, "msg.fieldmap_unavailable")}})
			return
		}
		if len(errs) > 0 {
			s.errorJSON(w, r, &apperr.Error{Code: apperr.EINVALID, Message: msgFixErrors.in(v.Lang), Fields: errs})
			return
		}
		fieldMap = m
	}
	var alertNote, alertEmail string
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		change, err := settings.Save(ctx, tx, s.cfg.Keyring, v.PortalID, v.UserID, func(st *settings.Settings) {
			in.apply(st, runs)
			// A mapping that maps as the stored one does is no change: a portal
			// that keeps the fixed mapping keeps no map.
			if fieldMap != nil && !maps.Equal(fieldmap.Effective(fieldMap), fieldmap.Effective(st.FieldMap)) {
				st.FieldMap = fieldMap
			}
			// The alerts go to the admin who saved last, in their language.
			st.AlertLang = string(v.Lang)
			alertEmail = st.AlertEmail
		})
		if err != nil {
			return err
		}
		// A new address gets alerts only once its owner confirms it.
		if _, changed := change[settings.FieldAlertEmail]; changed && alertEmail != "" {
			alertNote, err = s.askAlertConfirmation(ctx, tx, v.PortalID, alertEmail, v.Lang)
		}
		return err
	})
	if err != nil {
		s.error(w, r, err)
		return
	}
	res := saveResult{OK: true, Message: msgSaved.in(v.Lang), HasPassword: in.LearnPassword != "",
		HasClientSecret: in.LearnClientID != "" && in.LearnClientSecret != ""}
	if found.Warning != "" {
		// Saved, but the admin learns what the check could not confirm.
		s.log.InfoContext(ctx, "learn check passed with a warning", "portal_id", v.PortalID, "code", found.Warning)
		res.Message += " " + checkText(v.Lang, found.Warning)
	}
	if alertNote != "" {
		res.Message += " " + alertNote
	}
	if res.AlertState, res.AlertStateText, err = s.alertState(ctx, v.PortalID, alertEmail, v.Lang); err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
