package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/store"
)

// storedSettings is a portal_settings row as the page needs it. The password
// stays a ciphertext; the page learns only whether one is stored.
type storedSettings struct {
	Exists                   bool
	LearnURL                 string
	LearnEmail               string
	Password                 []byte
	FirstRun                 string // "HH:MM" or ""
	SecondRun                string
	SendLoginEmail           bool
	HeadsAsManagers          bool
	ParentHeadsAsSupervisors bool
	Departments              deptScope
	LearnAPIURL              string // where the API answered at the last check; "" unknown
}

// HasPassword reports whether a Learn password is stored.
func (s storedSettings) HasPassword() bool { return len(s.Password) > 0 }

// defaultSettings are what a portal without a row sees (the table's defaults).
func defaultSettings() storedSettings {
	return storedSettings{SendLoginEmail: true, Departments: deptScope{Selected: []int64{}, Excluded: []int64{}}}
}

const selectSettings = `SELECT learn_url, learn_email, learn_password,
	coalesce(to_char(first_run, 'HH24:MI'), ''), coalesce(to_char(second_run, 'HH24:MI'), ''),
	send_login_email, heads_as_managers, parent_heads_as_supervisors, departments, learn_api_url
	FROM portal_settings WHERE portal_id = $1`

func scanSettings(row pgx.Row) (storedSettings, error) {
	s := defaultSettings()
	var depts []byte
	err := row.Scan(&s.LearnURL, &s.LearnEmail, &s.Password, &s.FirstRun, &s.SecondRun,
		&s.SendLoginEmail, &s.HeadsAsManagers, &s.ParentHeadsAsSupervisors, &depts, &s.LearnAPIURL)
	if errors.Is(err, pgx.ErrNoRows) {
		return defaultSettings(), nil
	}
	if err != nil {
		return s, err
	}
	s.Exists = true
	if err := json.Unmarshal(depts, &s.Departments); err != nil {
		return s, fmt.Errorf("decode departments: %w", err)
	}
	if s.Departments.Selected == nil {
		s.Departments.Selected = []int64{}
	}
	if s.Departments.Excluded == nil {
		s.Departments.Excluded = []int64{}
	}
	return s, nil
}

// loadSettings reads the portal's settings, or the defaults when none are saved.
// configured: the Learn account and a first run are saved, so the portal
// can be previewed, synced and scheduled.
func (s storedSettings) configured() bool {
	return s.Exists && s.LearnURL != "" && s.HasPassword() && s.FirstRun != ""
}

func loadSettings(ctx context.Context, db store.DBTX, portalID int64) (storedSettings, error) {
	s, err := scanSettings(db.QueryRow(ctx, selectSettings, portalID))
	if err != nil {
		return s, fmt.Errorf("load settings: %w", err)
	}
	return s, nil
}

// saveSettings writes the settings and, when anything changed, one audit row,
// in one transaction: both or neither. encPassword is nil to keep the stored
// password. The current row is locked first, so two admins saving at once
// each get an audit row that describes their own change.
func saveSettings(ctx context.Context, pool *pgxpool.Pool, portalID, userID int64, in settingsInput, encPassword []byte) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Lock the portal row: it exists even before the first save.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM portals WHERE id = $1 FOR UPDATE`, portalID); err != nil {
			return fmt.Errorf("lock portal: %w", err)
		}
		cur, err := scanSettings(tx.QueryRow(ctx, selectSettings+` FOR UPDATE`, portalID))
		if err != nil {
			return fmt.Errorf("load settings: %w", err)
		}
		next := cur
		next.LearnURL, next.LearnEmail = in.LearnURL, in.LearnEmail
		next.FirstRun, next.SecondRun = in.FirstRun, in.SecondRun
		next.SendLoginEmail, next.HeadsAsManagers, next.ParentHeadsAsSupervisors =
			in.SendLoginEmail, in.HeadsAsManagers, in.ParentHeadsAsSupervisors
		if in.Departments != nil {
			next.Departments = *in.Departments
		}
		if encPassword != nil {
			next.Password = encPassword
		}
		// The API base belongs to the account URL: the one the check just
		// found, else the stored one while the URL stays, else unknown.
		switch {
		case in.LearnAPIURL != "":
			next.LearnAPIURL = in.LearnAPIURL
		case next.LearnURL != cur.LearnURL:
			next.LearnAPIURL = ""
		}
		changes := diffSettings(cur, next, encPassword != nil)
		if len(changes) == 0 && cur.Exists && next.LearnAPIURL == cur.LearnAPIURL {
			return nil
		}
		depts, err := json.Marshal(next.Departments)
		if err != nil {
			return fmt.Errorf("encode departments: %w", err)
		}
		var second any
		if next.SecondRun != "" {
			second = next.SecondRun
		}
		if _, err := tx.Exec(ctx, `INSERT INTO portal_settings (portal_id, learn_url, learn_email, learn_password,
				first_run, second_run, send_login_email, heads_as_managers, parent_heads_as_supervisors, departments,
				learn_api_url, updated_at)
			VALUES ($1, $2, $3, $4, $5::time, $6::time, $7, $8, $9, $10, $11, now())
			ON CONFLICT (portal_id) DO UPDATE SET learn_url = EXCLUDED.learn_url, learn_email = EXCLUDED.learn_email,
				learn_password = EXCLUDED.learn_password, first_run = EXCLUDED.first_run, second_run = EXCLUDED.second_run,
				send_login_email = EXCLUDED.send_login_email, heads_as_managers = EXCLUDED.heads_as_managers,
				parent_heads_as_supervisors = EXCLUDED.parent_heads_as_supervisors, departments = EXCLUDED.departments,
				learn_api_url = EXCLUDED.learn_api_url, updated_at = now()`,
			portalID, next.LearnURL, next.LearnEmail, next.Password, next.FirstRun, second,
			next.SendLoginEmail, next.HeadsAsManagers, next.ParentHeadsAsSupervisors, depts, next.LearnAPIURL); err != nil {
			return fmt.Errorf("save settings: %w", err)
		}
		if len(changes) == 0 {
			return nil
		}
		b, err := json.Marshal(changes)
		if err != nil {
			return fmt.Errorf("encode audit: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO settings_audit (portal_id, user_id, changes) VALUES ($1, $2, $3)`,
			portalID, userID, b); err != nil {
			return fmt.Errorf("insert settings audit: %w", err)
		}
		return nil
	})
}

// fieldChange is one audited field: the old and the new value.
type fieldChange struct {
	From any `json:"from"`
	To   any `json:"to"`
}

// diffSettings lists what changed, by field name. The password appears only
// as the word "changed".
func diffSettings(cur, next storedSettings, passwordChanged bool) map[string]any {
	out := map[string]any{}
	add := func(field string, from, to any, changed bool) {
		if changed {
			out[field] = fieldChange{From: from, To: to}
		}
	}
	add(fieldLearnURL, cur.LearnURL, next.LearnURL, cur.LearnURL != next.LearnURL)
	add(fieldLearnEmail, cur.LearnEmail, next.LearnEmail, cur.LearnEmail != next.LearnEmail)
	add(fieldFirstRun, cur.FirstRun, next.FirstRun, cur.FirstRun != next.FirstRun)
	add(fieldSecondRun, cur.SecondRun, next.SecondRun, cur.SecondRun != next.SecondRun)
	add(fieldSendLogin, cur.SendLoginEmail, next.SendLoginEmail, cur.SendLoginEmail != next.SendLoginEmail)
	add(fieldHeadsManagers, cur.HeadsAsManagers, next.HeadsAsManagers, cur.HeadsAsManagers != next.HeadsAsManagers)
	add(fieldParentHeads, cur.ParentHeadsAsSupervisors, next.ParentHeadsAsSupervisors,
		cur.ParentHeadsAsSupervisors != next.ParentHeadsAsSupervisors)
	add(fieldDepartments, cur.Departments, next.Departments, !sameScope(cur.Departments, next.Departments))
	if passwordChanged {
		out[fieldLearnPassword] = "changed"
	}
	return out
}

func sameScope(a, b deptScope) bool {
	norm := func(x []int64) []int64 { y := slices.Clone(x); slices.Sort(y); return y }
	return slices.Equal(norm(a.Selected), norm(b.Selected)) && slices.Equal(norm(a.Excluded), norm(b.Excluded))
}
