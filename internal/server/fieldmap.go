package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"b24learn/internal/bitrix24"
	"b24learn/internal/fieldmap"
	"b24learn/internal/i18n"
	"b24learn/internal/learn"
	"b24learn/internal/secret"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/templates"
)

// fieldField is the form field of the mapping: a JSON object from Learn
// field name to Bitrix24 field code ("" for none).
const fieldFieldMap = "field_map"

// maxFieldMapLen bounds the posted mapping (200 fields of long names fit).
const maxFieldMapLen = 64 << 10

// fieldSource reads what the field mapping chooses between: the Learn
// account's profile fields and the portal's own Bitrix24 user fields.
type fieldSource interface {
	LearnFields(ctx context.Context, portalID int64, creds learn.Credentials, apiURL string) ([]learn.FieldInfo, error)
	// B24Fields lists the portal's UF_* user fields; bitrix24.ErrInsufficientScope
	// when the app lacks the scope.
	B24Fields(ctx context.Context, p store.Portal, lang string) ([]bitrix24.UserField, error)
}

// liveFields asks Learn and Bitrix24 through the shared client factory.
type liveFields struct{ s *Server }

// errNoClients: a server built without the client factory (some tests).
var errNoClients = errors.New("no client factory")

func (l liveFields) LearnFields(ctx context.Context, portalID int64, creds learn.Credentials, apiURL string) ([]learn.FieldInfo, error) {
	if l.s.clients == nil {
		return nil, errNoClients
	}
	c, err := l.s.clients.Learn(portalID, creds, apiURL)
	if err != nil {
		return nil, fmt.Errorf("learn client: %w", err)
	}
	return c.ProfileFields(ctx)
}

func (l liveFields) B24Fields(ctx context.Context, p store.Portal, lang string) ([]bitrix24.UserField, error) {
	if l.s.clients == nil {
		return nil, errNoClients
	}
	c, err := l.s.portalB24Client(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("bitrix24 client: %w", err)
	}
	return c.UserFields(ctx, lang)
}

// mappingChoices reads the Learn fields and the sources for portal p with
// settings st. noUF is true when the portal's own fields are not offered
// because the app lacks the scope; any other Bitrix24 failure is an error.
func (s *Server) mappingChoices(ctx context.Context, p store.Portal, st settings.Settings, lang i18n.Lang) (
	targets []learn.FieldInfo, sources []fieldmap.Source, labels map[string]string, noUF bool, err error) {
	creds := learn.Credentials{AccountURL: st.LearnURL, Email: st.LearnEmail, Password: st.Password,
		ClientID: st.LearnClientID, ClientSecret: st.ClientSecret}
	targets, err = s.fields.LearnFields(ctx, p.ID, creds, st.LearnAPIURL)
	if err != nil {
		return nil, nil, nil, false, fmt.Errorf("learn profile fields: %w", err)
	}
	slices.SortStableFunc(targets, func(a, b learn.FieldInfo) int { return a.Order - b.Order })
	labels = map[string]string{}
	sources = slices.Clone(fieldmap.Standard)
	for _, src := range sources {
		labels[src.Code] = i18n.T(lang, "src."+src.Code)
	}
	ufs, err := s.fields.B24Fields(ctx, p, string(lang))
	switch {
	case errors.Is(err, bitrix24.ErrInsufficientScope):
		noUF = true
	case err != nil:
		return nil, nil, nil, false, fmt.Errorf("bitrix24 user fields: %w", err)
	}
	for _, f := range ufs {
		kind := fieldmap.Text
		switch f.Type {
		case "date", "datetime":
			kind = fieldmap.Date
		case "string", "integer", "double", "url", "boolean", "enumeration":
		default:
			continue // files, links to other records: nothing Learn can show
		}
		sources = append(sources, fieldmap.Source{Code: f.Name, Label: f.Label, Kind: kind})
		labels[f.Name] = f.Name
		if f.Label != "" {
			labels[f.Name] = f.Label + " (" + f.Name + ")"
		}
	}
	return targets, sources, labels, noUF, nil
}

// handleFieldMap answers the Profile fields card as HTML (GET
// /app/fieldmap): after a save the page puts it in place of a card that had
// no fields yet (the first save of the account, or Learn not answering),
// so the admin does not have to reopen the app.
func (s *Server) handleFieldMap(w http.ResponseWriter, r *http.Request) {
	sess, _ := sessionFrom(r.Context())
	p, _ := sessionPortal(r.Context())
	var kr *secret.Keyring
	if s.cfg != nil {
		kr = s.cfg.Keyring
	}
	st, err := settings.Load(r.Context(), s.pool, kr, p.ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	v := templates.SettingsView{Lang: sess.Lang, Admin: true}
	if st.HasAccount() {
		ctx, cancel := context.WithTimeout(r.Context(), treeTimeout)
		defer cancel()
		v.FieldMap, v.FieldMapError = s.fieldMapView(ctx, p, st, sess.Lang)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := templates.FieldMapSection(v).Render(r.Context(), w); err != nil {
		s.log.ErrorContext(r.Context(), "render field mapping", "error", err)
	}
}

func toTargets(fs []learn.FieldInfo) []fieldmap.Target {
	out := make([]fieldmap.Target, len(fs))
	for i, f := range fs {
		out[i] = fieldmap.Target{Name: f.Name, Type: f.Type, Required: f.Required}
	}
	return out
}

// fieldMapView is the page's mapping section for an admin with a saved
// account; nil and a message when Learn or Bitrix24 did not answer.
func (s *Server) fieldMapView(ctx context.Context, p store.Portal, st settings.Settings, lang i18n.Lang) (*templates.FieldMapView, string) {
	targets, sources, labels, noUF, err := s.mappingChoices(ctx, p, st, lang)
	if err != nil {
		s.log.WarnContext(ctx, "load field mapping choices", "portal_id", p.ID, "error", err)
		return nil, i18n.T(lang, "msg.fieldmap_unavailable")
	}
	eff := fieldmap.Effective(st.FieldMap)
	v := &templates.FieldMapView{Rows: make([]templates.FieldMapRow, 0, len(targets)), Sources: make([]templates.FieldMapSource, len(sources))}
	for i, src := range sources {
		v.Sources[i] = templates.FieldMapSource{Code: src.Code, Label: labels[src.Code]}
	}
	offered := make(map[string]bool, len(sources))
	for _, src := range sources {
		offered[src.Code] = true
	}
	for _, f := range targets {
		label := f.Label
		if label == "" {
			label = f.Name
		}
		row := templates.FieldMapRow{Name: f.Name, Label: label, Required: f.Required, Unique: f.Unique, Fixed: fieldmap.Fixed(f.Name)}
		// A choice no longer offered (a portal field deleted since) shows
		// as none, as an option missing from the list always did.
		if code := eff[f.Name]; offered[code] {
			row.Selected, row.SelectedLabel = code, labels[code]
		}
		v.Rows = append(v.Rows, row)
	}
	if noUF {
		v.Note = i18n.T(lang, "fieldmap_no_uf")
	}
	return v, ""
}

// parseFieldMap reads the posted mapping; ok false when it is not a JSON
// object of strings. Names are taken as Learn writes them (lowercase).
func parseFieldMap(raw string) (map[string]string, bool) {
	if len(raw) > maxFieldMapLen {
		return nil, false
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(raw), &m); err != nil || m == nil {
		return nil, false
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return out, true
}

// checkFieldMap checks a posted mapping against the account's fields and
// the portal's sources; the problems come keyed by form field
// ("field_map.<name>") in lang. It returns the map to store: the posted
// one, with the fixed fields left out.
func (s *Server) checkFieldMap(ctx context.Context, p store.Portal, st settings.Settings, posted map[string]string, lang i18n.Lang) (map[string]string, map[string]string, error) {
	targets, sources, _, _, err := s.mappingChoices(ctx, p, st, lang)
	if err != nil {
		return nil, nil, err
	}
	errs := map[string]string{}
	for name, code := range fieldmap.Check(toTargets(targets), sources, posted) {
		errs[fieldFieldMap+"."+name] = i18n.T(lang, "fieldmap."+code)
	}
	out := maps.Clone(posted)
	for k := range out {
		if fieldmap.Fixed(k) {
			delete(out, k)
		}
	}
	return out, errs, nil
}
