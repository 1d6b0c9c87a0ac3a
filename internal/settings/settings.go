// Package settings owns what a portal's admin saves on the settings page:
// the Learn account, the run times, the options and the department scope.
// It alone reads and writes portal_settings (Load, Save) and it alone says
// whether a portal can sync (Syncable). The server, the jobs, the syncer and
// the console import it; it imports only inward packages.
package settings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/schedule"
	"b24learn/internal/secret"
	"b24learn/internal/store"
)

// Scope is the department picker's choice: a department is in scope when
// the nearest of itself and its ancestors named here is Selected, so whole
// subtrees are chosen and sub-departments cut out of them. The JSON form is
// the one stored in portal_settings.departments.
type Scope struct {
	Selected []int64 `json:"selected"`
	Excluded []int64 `json:"excluded"`
}

// Same reports whether both name the same departments, in any order.
func (s Scope) Same(o Scope) bool {
	norm := func(x []int64) []int64 { y := slices.Clone(x); slices.Sort(y); return y }
	return slices.Equal(norm(s.Selected), norm(o.Selected)) && slices.Equal(norm(s.Excluded), norm(o.Excluded))
}

// Settings are one portal's settings. A portal that never saved gets
// Defaults (Saved false).
type Settings struct {
	// Saved: the admin has saved the settings at least once.
	Saved      bool
	LearnURL   string
	LearnEmail string
	// Password is the Learn admin's password in plain text: "" when none is
	// stored, or when it was loaded without a keyring (HasPassword still
	// tells whether one is stored).
	Password string
	// LearnClientID and ClientSecret are the Learn API key, when the admin
	// gave one (docs/learn-api.md, "Authentication"). ClientSecret is in
	// plain text as Password is, and like it "" when loaded without a
	// keyring (HasClientSecret still tells).
	LearnClientID            string
	ClientSecret             string
	Schedule                 schedule.Schedule
	SendLoginEmail           bool
	HeadsAsManagers          bool
	ParentHeadsAsSupervisors bool
	Departments              Scope
	// LearnAPIURL is where the account's API answered at the last check or
	// run ("" unknown). It belongs to LearnURL: Save clears it when the
	// address changes and the edit found no new one. Not audited: the app
	// finds it, the admin does not set it.
	LearnAPIURL string
	// AlertEmail is where the portal's alerts go (needs attention, no
	// Bitrix24 access, held deactivations): the saving admin's address,
	// prefilled from their Bitrix24 profile. "" sends none.
	AlertEmail string
	// AlertsOff is the admin's off switch for those e-mails.
	AlertsOff bool
	// AlertLang is the language ("en", "ru") of the session that last saved;
	// the alerts are written in it. Not audited: it follows the saver.
	AlertLang string
	// FieldMap maps a Learn profile field name to the Bitrix24 user field
	// code that fills it ("" for none). Nil: never changed, the fixed
	// mapping applies (see internal/fieldmap).
	FieldMap map[string]string

	sealed       []byte // the stored ciphertext of Password
	sealedSecret []byte // the stored ciphertext of ClientSecret
}

// Defaults are what a portal without saved settings sees (the table's
// defaults).
func Defaults() Settings {
	return Settings{SendLoginEmail: true, Departments: Scope{Selected: []int64{}, Excluded: []int64{}}}
}

// HasPassword reports whether a Learn password is stored (or set to be).
func (s Settings) HasPassword() bool { return s.Password != "" || len(s.sealed) > 0 }

// HasClientSecret reports whether an API key's secret is stored (or set to be).
func (s Settings) HasClientSecret() bool { return s.ClientSecret != "" || len(s.sealedSecret) > 0 }

// HasAPIKey reports whether a whole API key (Client ID and secret) is saved.
func (s Settings) HasAPIKey() bool { return s.LearnClientID != "" && s.HasClientSecret() }

// HasAccount reports whether the whole Learn account (address, admin login,
// and password or API key) is saved: what a sync needs to sign in.
func (s Settings) HasAccount() bool {
	return s.Saved && s.LearnURL != "" && s.LearnEmail != "" && (s.HasPassword() || s.HasAPIKey())
}

// The one SELECT of portal_settings; every reader scans it with scan.
const selectSQL = `SELECT portal_id, learn_url, learn_email, learn_password,
	coalesce(to_char(first_run, 'HH24:MI'), ''), coalesce(to_char(second_run, 'HH24:MI'), ''),
	send_login_email, heads_as_managers, parent_heads_as_supervisors, departments, learn_api_url,
	alert_email, alerts_off, alert_lang, field_map, learn_client_id, learn_client_secret
	FROM portal_settings`

func scan(row pgx.Row) (int64, Settings, error) {
	s := Defaults()
	var id int64
	var first, second string
	var depts, fieldMap []byte
	if err := row.Scan(&id, &s.LearnURL, &s.LearnEmail, &s.sealed, &first, &second,
		&s.SendLoginEmail, &s.HeadsAsManagers, &s.ParentHeadsAsSupervisors, &depts, &s.LearnAPIURL,
		&s.AlertEmail, &s.AlertsOff, &s.AlertLang, &fieldMap, &s.LearnClientID, &s.sealedSecret); err != nil {
		return 0, s, err
	}
	s.Saved = true
	var err error
	if s.Schedule, err = schedule.Parse(first, second); err != nil {
		return id, s, fmt.Errorf("decode run times: %w", err)
	}
	if err := json.Unmarshal(depts, &s.Departments); err != nil {
		return id, s, fmt.Errorf("decode departments: %w", err)
	}
	if fieldMap != nil {
		if err := json.Unmarshal(fieldMap, &s.FieldMap); err != nil {
			return id, s, fmt.Errorf("decode field map: %w", err)
		}
	}
	if s.Departments.Selected == nil {
		s.Departments.Selected = []int64{}
	}
	if s.Departments.Excluded == nil {
		s.Departments.Excluded = []int64{}
	}
	return id, s, nil
}

// Load reads the portal's settings, or Defaults when none are saved. With a
// keyring the stored password and client secret are decrypted into Password
// and ClientSecret; pages that only
// need to know whether one is stored pass nil.
func Load(ctx context.Context, db store.DBTX, kr *secret.Keyring, portalID int64) (Settings, error) {
	return load(ctx, db, kr, portalID, "")
}

func load(ctx context.Context, db store.DBTX, kr *secret.Keyring, portalID int64, suffix string) (Settings, error) {
	_, s, err := scan(db.QueryRow(ctx, selectSQL+` WHERE portal_id = $1`+suffix, portalID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Defaults(), nil
	}
	if err != nil {
		return s, fmt.Errorf("load settings of portal %d: %w", portalID, err)
	}
	if kr != nil && len(s.sealed) > 0 {
		if s.Password, err = kr.DecryptString(s.sealed); err != nil {
			return s, fmt.Errorf("decrypt learn password of portal %d: %w", portalID, err)
		}
	}
	if kr != nil && len(s.sealedSecret) > 0 {
		if s.ClientSecret, err = kr.DecryptString(s.sealedSecret); err != nil {
			return s, fmt.Errorf("decrypt learn client secret of portal %d: %w", portalID, err)
		}
	}
	return s, nil
}

// LoadMany reads the saved settings of the given portals, passwords left
// encrypted; portals without saved settings are absent. The dispatcher asks
// Syncable of many portals at once with it.
func LoadMany(ctx context.Context, db store.DBTX, portalIDs []int64) (map[int64]Settings, error) {
	rows, err := db.Query(ctx, selectSQL+` WHERE portal_id = ANY($1)`, portalIDs)
	if err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]Settings, len(portalIDs))
	for rows.Next() {
		id, s, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("load settings: %w", err)
		}
		out[id] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	return out, nil
}

// SetLearnAPIURL records where the API of the account at learnURL answered,
// found by a run of a portal saved before the address was stored. It writes
// only while the settings still name learnURL and know no address, so a
// save that changed the account meanwhile wins.
func SetLearnAPIURL(ctx context.Context, db store.DBTX, portalID int64, learnURL, apiURL string) error {
	if _, err := db.Exec(ctx, `UPDATE portal_settings SET learn_api_url = $3
		WHERE portal_id = $1 AND learn_url = $2 AND learn_api_url = ''`, portalID, learnURL, apiURL); err != nil {
		return fmt.Errorf("store learn api address of portal %d: %w", portalID, err)
	}
	return nil
}
