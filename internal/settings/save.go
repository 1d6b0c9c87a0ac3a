package settings

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/secret"
	"b24learn/internal/store"
)

// Field names of the audit trail: portal_settings' columns.
const (
	FieldLearnURL      = "learn_url"
	FieldLearnEmail    = "learn_email"
	FieldLearnPassword = "learn_password"
	FieldClientID      = "learn_client_id"
	FieldClientSecret  = "learn_client_secret"
	FieldFirstRun      = "first_run"
	FieldSecondRun     = "second_run"
	FieldSendLogin     = "send_login_email"
	FieldHeadsManagers = "heads_as_managers"
	FieldParentHeads   = "parent_heads_as_supervisors"
	FieldDepartments   = "departments"
	FieldAlertEmail    = "alert_email"
	FieldAlertsOff     = "alerts_off"
	FieldFieldMap      = "field_map"
)

// FieldChange is one audited field: the old and the new value.
type FieldChange struct {
	From any `json:"from"`
	To   any `json:"to"`
}

// Change is what one Save changed, by field name, as settings_audit.changes
// records it: a FieldChange per field, the department selection as a
// DepartmentsChange, the password only as the word "changed". Empty when
// nothing changed.
type Change map[string]any

// Beginner starts a transaction: a pool, or a transaction (a savepoint).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Save applies edit to the portal's current settings and writes the result
// and, when anything changed, one settings_audit row for userID (the
// Bitrix24 user who saved), in one transaction: both or neither. The portal
// row and the settings row are locked first, so two admins saving at once
// each get an audit row describing their own change, and edit sees the
// settings as they are at the write. edit gets them with the password
// decrypted; a Password or ClientSecret left "" keeps the stored one, and
// each is encrypted with kr only when it changed. A LearnClientID left ""
// removes the API key, its secret with it.
func Save(ctx context.Context, db Beginner, kr *secret.Keyring, portalID, userID int64, edit func(*Settings)) (Change, error) {
	var change Change
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// The portal row exists even before the first save.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM portals WHERE id = $1 FOR UPDATE`, portalID); err != nil {
			return fmt.Errorf("lock portal: %w", err)
		}
		cur, err := load(ctx, tx, kr, portalID, ` FOR UPDATE`)
		if err != nil {
			return err
		}
		next := cur
		next.Departments = Scope{Selected: clone(cur.Departments.Selected), Excluded: clone(cur.Departments.Excluded)}
		next.FieldMap = maps.Clone(cur.FieldMap)
		edit(&next)
		if next.Password == "" {
			next.Password, next.sealed = cur.Password, cur.sealed
		}
		passwordChanged := next.Password != cur.Password
		if passwordChanged {
			if next.sealed, err = kr.EncryptString(next.Password); err != nil {
				return fmt.Errorf("encrypt learn password: %w", err)
			}
		}
		switch {
		case next.LearnClientID == "":
			next.ClientSecret, next.sealedSecret = "", nil
		case next.ClientSecret == "":
			next.ClientSecret, next.sealedSecret = cur.ClientSecret, cur.sealedSecret
		}
		secretChanged := next.ClientSecret != cur.ClientSecret
		if secretChanged && next.ClientSecret != "" {
			if next.sealedSecret, err = kr.EncryptString(next.ClientSecret); err != nil {
				return fmt.Errorf("encrypt learn client secret: %w", err)
			}
		}
		if next.LearnURL != cur.LearnURL && next.LearnAPIURL == cur.LearnAPIURL {
			next.LearnAPIURL = "" // found for the old address
		}
		change = diff(cur, next, passwordChanged)
		if secretChanged {
			change[FieldClientSecret] = "changed"
		}
		if len(change) == 0 && cur.Saved && next.LearnAPIURL == cur.LearnAPIURL && next.AlertLang == cur.AlertLang {
			return nil
		}
		if err := write(ctx, tx, portalID, next); err != nil {
			return err
		}
		if len(change) == 0 {
			return nil
		}
		b, err := json.Marshal(change)
		if err != nil {
			return fmt.Errorf("encode audit: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO settings_audit (portal_id, user_id, changes) VALUES ($1, $2, $3)`,
			portalID, userID, b); err != nil {
			return fmt.Errorf("insert settings audit: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("save settings of portal %d: %w", portalID, err)
	}
	return change, nil
}

func clone(ids []int64) []int64 { return append([]int64{}, ids...) }

// PurgeAudit deletes settings_audit rows older than keep; the hourly
// maintenance runs it with the report retention.
func PurgeAudit(ctx context.Context, db store.DBTX, keep time.Duration, now time.Time) (int64, error) {
	tag, err := db.Exec(ctx, `DELETE FROM settings_audit WHERE changed_at < $1`, now.Add(-keep))
	if err != nil {
		return 0, fmt.Errorf("purge settings audit: %w", err)
	}
	return tag.RowsAffected(), nil
}

// write upserts the row: the one INSERT into portal_settings. The Learn root
// a run recorded (learn_root_id) names the account at the address it was
// recorded under, signed in as it was: a new address or Client ID clears
// it until the next run learns it (docs/learn-api.md, "One account,
// several portals").
func write(ctx context.Context, tx pgx.Tx, portalID int64, s Settings) error {
	depts, err := json.Marshal(s.Departments)
	if err != nil {
		return fmt.Errorf("encode departments: %w", err)
	}
	var fieldMap []byte // NULL: never changed
	if s.FieldMap != nil {
		if fieldMap, err = json.Marshal(s.FieldMap); err != nil {
			return fmt.Errorf("encode field map: %w", err)
		}
	}
	var first, second any
	if f := s.Schedule.First(); f != "" {
		first = f
	}
	if sec := s.Schedule.Second(); sec != "" {
		second = sec
	}
	if _, err := tx.Exec(ctx, `INSERT INTO portal_settings (portal_id, learn_url, learn_email, learn_password,
			first_run, second_run, send_login_email, heads_as_managers, parent_heads_as_supervisors, departments,
			learn_api_url, alert_email, alerts_off, alert_lang, field_map, learn_client_id, learn_client_secret, updated_at)
		VALUES ($1, $2, $3, $4, $5::time, $6::time, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, now())
		ON CONFLICT (portal_id) DO UPDATE SET learn_url = EXCLUDED.learn_url, learn_email = EXCLUDED.learn_email,
			learn_password = EXCLUDED.learn_password, first_run = EXCLUDED.first_run, second_run = EXCLUDED.second_run,
			send_login_email = EXCLUDED.send_login_email, heads_as_managers = EXCLUDED.heads_as_managers,
			parent_heads_as_supervisors = EXCLUDED.parent_heads_as_supervisors, departments = EXCLUDED.departments,
			learn_api_url = EXCLUDED.learn_api_url, alert_email = EXCLUDED.alert_email,
			learn_root_id = CASE WHEN portal_settings.learn_url = EXCLUDED.learn_url
				AND portal_settings.learn_client_id = EXCLUDED.learn_client_id THEN portal_settings.learn_root_id END,
			alerts_off = EXCLUDED.alerts_off, alert_lang = EXCLUDED.alert_lang, field_map = EXCLUDED.field_map,
			learn_client_id = EXCLUDED.learn_client_id, learn_client_secret = EXCLUDED.learn_client_secret,
			updated_at = now()`,
		portalID, s.LearnURL, s.LearnEmail, s.sealed, first, second,
		s.SendLoginEmail, s.HeadsAsManagers, s.ParentHeadsAsSupervisors, depts, s.LearnAPIURL,
		s.AlertEmail, s.AlertsOff, s.AlertLang, fieldMap, s.LearnClientID, s.sealedSecret); err != nil {
		return fmt.Errorf("write settings: %w", err)
	}
	return nil
}

// diff lists what changed, by field name.
func diff(cur, next Settings, passwordChanged bool) Change {
	out := Change{}
	add := func(field string, from, to any, changed bool) {
		if changed {
			out[field] = FieldChange{From: from, To: to}
		}
	}
	add(FieldLearnURL, cur.LearnURL, next.LearnURL, cur.LearnURL != next.LearnURL)
	add(FieldLearnEmail, cur.LearnEmail, next.LearnEmail, cur.LearnEmail != next.LearnEmail)
	add(FieldClientID, cur.LearnClientID, next.LearnClientID, cur.LearnClientID != next.LearnClientID)
	cf, nf := cur.Schedule.First(), next.Schedule.First()
	add(FieldFirstRun, cf, nf, cf != nf)
	cs, ns := cur.Schedule.Second(), next.Schedule.Second()
	add(FieldSecondRun, cs, ns, cs != ns)
	add(FieldSendLogin, cur.SendLoginEmail, next.SendLoginEmail, cur.SendLoginEmail != next.SendLoginEmail)
	add(FieldHeadsManagers, cur.HeadsAsManagers, next.HeadsAsManagers, cur.HeadsAsManagers != next.HeadsAsManagers)
	add(FieldParentHeads, cur.ParentHeadsAsSupervisors, next.ParentHeadsAsSupervisors,
		cur.ParentHeadsAsSupervisors != next.ParentHeadsAsSupervisors)
	if !cur.Departments.Same(next.Departments) {
		out[FieldDepartments] = departmentsChange(cur.Departments, next.Departments)
	}
	add(FieldAlertEmail, cur.AlertEmail, next.AlertEmail, cur.AlertEmail != next.AlertEmail)
	add(FieldAlertsOff, cur.AlertsOff, next.AlertsOff, cur.AlertsOff != next.AlertsOff)
	// nil and an empty map differ: an empty map is a saved "nothing mapped".
	add(FieldFieldMap, cur.FieldMap, next.FieldMap,
		(cur.FieldMap == nil) != (next.FieldMap == nil) || !maps.Equal(cur.FieldMap, next.FieldMap))
	if passwordChanged {
		out[FieldLearnPassword] = "changed"
	}
	return out
}
