package settings

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/pgtest"
	"b24learn/internal/schedule"
	"b24learn/internal/secret"
	"b24learn/internal/store"
)

func TestSyncable(t *testing.T) {
	ready := func() (store.Portal, Settings) {
		return store.Portal{InstallState: "installed", ActivationState: "active"}, Settings{
			Saved: true, LearnURL: "https://acme.ispringlearn.com", LearnEmail: "admin@acme.test", Password: "pw",
			Schedule: must(schedule.Parse("06:00", "")), Departments: Scope{Selected: []int64{1}, Excluded: []int64{}},
		}
	}
	cases := []struct {
		name string
		edit func(*store.Portal, *Settings)
		want Code
	}{
		{"ready", func(*store.Portal, *Settings) {}, ""},
		{"password stored, not decrypted", func(_ *store.Portal, s *Settings) { s.Password, s.sealed = "", []byte{1} }, ""},
		{"two run times", func(_ *store.Portal, s *Settings) { s.Schedule = must(schedule.Parse("06:00", "18:00")) }, ""},
		{"uninstalled", func(p *store.Portal, _ *Settings) { p.InstallState = "uninstalled" }, NotInstalled},
		{"tokens refused", func(p *store.Portal, _ *Settings) { p.NeedsReconnect = true }, NeedsReconnect},
		{"never saved", func(_ *store.Portal, s *Settings) { *s = Defaults() }, NoAccount},
		{"not saved, fields set", func(_ *store.Portal, s *Settings) { s.Saved = false }, NoAccount},
		{"no learn address", func(_ *store.Portal, s *Settings) { s.LearnURL = "" }, NoAccount},
		{"no admin login", func(_ *store.Portal, s *Settings) { s.LearnEmail = "" }, NoAccount},
		{"no password", func(_ *store.Portal, s *Settings) { s.Password = "" }, NoAccount},
		{"no run time", func(_ *store.Portal, s *Settings) { s.Schedule = schedule.Schedule{} }, NoSchedule},
		{"nothing selected", func(_ *store.Portal, s *Settings) { s.Departments.Selected = nil }, NothingSelected},
		{"only exclusions", func(_ *store.Portal, s *Settings) { s.Departments = Scope{Selected: []int64{}, Excluded: []int64{2}} }, NothingSelected},
		{"not activated", func(p *store.Portal, _ *Settings) { p.ActivationState = "inactive" }, NotActive},
		{"requested", func(p *store.Portal, _ *Settings) { p.ActivationState = "requested" }, NotActive},
		{"suspended", func(p *store.Portal, _ *Settings) { p.ActivationState = "suspended" }, NotActive},
		// The first failing condition in the order above is the reason.
		{"unconfigured before uninstalled", func(p *store.Portal, s *Settings) { p.InstallState = "uninstalled"; *s = Defaults() }, NoAccount},
		{"no run time before reconnect", func(p *store.Portal, s *Settings) { p.NeedsReconnect = true; s.Schedule = schedule.Schedule{} }, NoSchedule},
		{"uninstalled before reconnect", func(p *store.Portal, _ *Settings) { p.InstallState = "uninstalled"; p.NeedsReconnect = true }, NotInstalled},
		{"reconnect before inactive", func(p *store.Portal, _ *Settings) { p.NeedsReconnect = true; p.ActivationState = "inactive" }, NeedsReconnect},
		{"unconfigured before inactive", func(p *store.Portal, s *Settings) { p.ActivationState = "inactive"; s.Password = "" }, NoAccount},
		{"nothing selected before inactive", func(p *store.Portal, s *Settings) { p.ActivationState = "suspended"; s.Departments.Selected = nil }, NothingSelected},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, s := ready()
			c.edit(&p, &s)
			ok, why := Syncable(p, s)
			if ok != (c.want == "") || why != c.want {
				t.Fatalf("Syncable = %v, %q; want %q", ok, why, c.want)
			}
		})
	}
	for _, c := range []Code{NoAccount, NoSchedule, NothingSelected} {
		if !c.InSettings() {
			t.Errorf("%s is fixed on the settings form", c)
		}
	}
	for _, c := range []Code{NotInstalled, NeedsReconnect, NotActive, ""} {
		if c.InSettings() {
			t.Errorf("%q is not fixed on the settings form", c)
		}
	}
}

func must(s schedule.Schedule, err error) schedule.Schedule {
	if err != nil {
		panic(err)
	}
	return s
}

func setup(t *testing.T) (context.Context, *pgxpool.Pool, *secret.Keyring, func() int64) {
	t.Helper()
	pool := pgtest.NewPool(t)
	kr, err := secret.NewKeyring("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 0
	newPortal := func() int64 {
		n++
		var id int64
		if err := pool.QueryRow(ctx, `INSERT INTO portals (member_id, domain) VALUES ($1, 'p.bitrix24.ru') RETURNING id`, fmt.Sprint("m", n)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	return ctx, pool, kr, newPortal
}

func TestLoadSaveAudit(t *testing.T) {
	ctx, pool, kr, newPortal := setup(t)
	id := newPortal()

	s, err := Load(ctx, pool, kr, id)
	if err != nil || s.Saved || !s.SendLoginEmail || s.HasPassword() || s.Departments.Selected == nil || s.Departments.Excluded == nil {
		t.Fatalf("defaults: %+v, %v", s, err)
	}
	first := func(s *Settings) {
		s.LearnURL, s.LearnEmail, s.Password = "https://acme.ispringlearn.com", "admin@acme.test", "pa55"
		s.Schedule = must(schedule.Parse("06:00", "18:30"))
		s.HeadsAsManagers = true
		s.Departments = Scope{Selected: []int64{1, 7}, Excluded: []int64{9}}
	}
	ch, err := Save(ctx, pool, kr, id, 42, first)
	if err != nil {
		t.Fatal(err)
	}
	if ch[FieldLearnPassword] != "changed" || len(ch) != 7 {
		t.Fatalf("first save change: %v", ch)
	}

	got, err := Load(ctx, pool, kr, id)
	if err != nil || !got.Saved || got.Password != "pa55" || got.Schedule.First() != "06:00" || got.Schedule.Second() != "18:30" ||
		!got.HeadsAsManagers || got.ParentHeadsAsSupervisors || !got.SendLoginEmail ||
		!got.Departments.Same(Scope{Selected: []int64{7, 1}, Excluded: []int64{9}}) {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if sealed, _ := Load(ctx, pool, nil, id); sealed.Password != "" || !sealed.HasPassword() || !sealed.HasAccount() {
		t.Fatalf("without a keyring: %+v", sealed)
	}
	var raw []byte
	if err := pool.QueryRow(ctx, `SELECT learn_password FROM portal_settings WHERE portal_id = $1`, id).Scan(&raw); err != nil || string(raw) == "pa55" {
		t.Fatalf("password stored as %q, %v", raw, err)
	}

	// The same values again: nothing changes, no audit row.
	if ch, err := Save(ctx, pool, kr, id, 42, first); err != nil || len(ch) != 0 {
		t.Fatalf("repeat save: %v, %v", ch, err)
	}
	// An empty password keeps the stored one; the same departments in
	// another order are no change.
	ch, err = Save(ctx, pool, kr, id, 43, func(s *Settings) {
		s.Password = ""
		s.Schedule = must(schedule.Parse("07:00", ""))
		s.Departments = Scope{Selected: []int64{7, 1}, Excluded: []int64{9}}
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ch)
	if string(b) != `{"first_run":{"from":"06:00","to":"07:00"},"second_run":{"from":"18:30","to":""}}` {
		t.Fatalf("change %s", b)
	}
	if got, _ := Load(ctx, pool, kr, id); got.Password != "pa55" || got.Schedule.Second() != "" {
		t.Fatalf("after edit: %+v", got)
	}

	var audit []string
	rows, err := pool.Query(ctx, `SELECT user_id::text || ' ' || changes::text FROM settings_audit WHERE portal_id = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		audit = append(audit, s)
	}
	if len(audit) != 2 || audit[1] != `43 {"first_run": {"to": "07:00", "from": "06:00"}, "second_run": {"to": "", "from": "18:30"}}` {
		t.Fatalf("audit rows %q", audit)
	}

	// A new password is a change, recorded as a word only.
	if ch, _ := Save(ctx, pool, kr, id, 44, func(s *Settings) { s.Password = "new" }); len(ch) != 1 || ch[FieldLearnPassword] != "changed" {
		t.Fatalf("password change %v", ch)
	}

	// LoadMany leaves out portals that never saved.
	other := newPortal()
	many, err := LoadMany(ctx, pool, []int64{id, other})
	if err != nil || len(many) != 1 || !many[id].HasAccount() || many[id].Password != "" {
		t.Fatalf("LoadMany %+v, %v", many, err)
	}
}

// A failing edit or write saves nothing: no settings row, no audit row.
func TestSaveAllOrNothing(t *testing.T) {
	ctx, pool, kr, newPortal := setup(t)
	id := newPortal()
	// Two equal run times break the table's check after the diff is made.
	_, err := Save(ctx, pool, kr, id, 1, func(s *Settings) {
		s.LearnURL, s.LearnEmail, s.Password = "https://acme.ispringlearn.com", "a@b.c", "pw"
		c, _ := schedule.ParseClock("06:00")
		s.Schedule = schedule.Daily(c, c)
	})
	if err == nil {
		t.Fatal("a second run equal to the first was saved")
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM portal_settings) + (SELECT count(*) FROM settings_audit)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows left, %v", n, err)
	}
}

// The field map is stored, audited, and nil (never changed) stays distinct
// from a saved map.
func TestFieldMapSaved(t *testing.T) {
	ctx, pool, kr, newPortal := setup(t)
	id := newPortal()
	base := func(s *Settings) {
		s.LearnURL, s.LearnEmail, s.Password = "https://acme.ispringlearn.com", "admin@acme.test", "pw"
	}
	if _, err := Save(ctx, pool, kr, id, 1, base); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(ctx, pool, kr, id); err != nil || got.FieldMap != nil {
		t.Fatalf("never changed: %v, %v", got.FieldMap, err)
	}
	m := map[string]string{"job_title": "WORK_POSITION", "user_defined_field1": "UF_USR_SHOE", "phone": ""}
	ch, err := Save(ctx, pool, kr, id, 2, func(s *Settings) { s.FieldMap = m })
	if err != nil || len(ch) != 1 || ch[FieldFieldMap] == nil {
		t.Fatalf("change %v, %v", ch, err)
	}
	got, err := Load(ctx, pool, kr, id)
	if err != nil || len(got.FieldMap) != 3 || got.FieldMap["user_defined_field1"] != "UF_USR_SHOE" || got.FieldMap["phone"] != "" {
		t.Fatalf("loaded %v, %v", got.FieldMap, err)
	}
	// The same map again is no change; another setting keeps the map.
	if ch, err := Save(ctx, pool, kr, id, 3, func(s *Settings) {
		s.FieldMap = map[string]string{"phone": "", "job_title": "WORK_POSITION", "user_defined_field1": "UF_USR_SHOE"}
	}); err != nil || len(ch) != 0 {
		t.Fatalf("same map: %v, %v", ch, err)
	}
	if _, err := Save(ctx, pool, kr, id, 4, func(s *Settings) { s.AlertsOff = true }); err != nil {
		t.Fatal(err)
	}
	var audit string
	if err := pool.QueryRow(ctx, `SELECT changes->'field_map'->'to'->>'user_defined_field1' FROM settings_audit
		WHERE portal_id = $1 AND user_id = 2`, id).Scan(&audit); err != nil || audit != "UF_USR_SHOE" {
		t.Fatalf("audit %q, %v", audit, err)
	}
	if got, _ := Load(ctx, pool, kr, id); len(got.FieldMap) != 3 {
		t.Fatalf("lost by another save: %v", got.FieldMap)
	}
}

// The Learn root a run recorded belongs to the address it was recorded
// under, signed in as it was: a save that changes the address or the API
// key's Client ID clears it (another account's root would otherwise refuse
// the portals that use that account), other saves keep it.
func TestSaveKeepsLearnRootForItsAddressOnly(t *testing.T) {
	ctx, pool, kr, newPortal := setup(t)
	id := newPortal()
	save := func(edit func(s *Settings)) {
		t.Helper()
		if _, err := Save(ctx, pool, kr, id, 1, edit); err != nil {
			t.Fatal(err)
		}
	}
	root := func() (r *string) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT learn_root_id FROM portal_settings WHERE portal_id = $1`, id).Scan(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	save(func(s *Settings) {
		s.LearnURL, s.LearnEmail, s.Password = "https://acme.ispringlearn.com", "admin@acme.test", "pa55"
		s.Schedule = must(schedule.Parse("06:00", ""))
	})
	if _, err := pool.Exec(ctx, `UPDATE portal_settings SET learn_root_id = 'r1' WHERE portal_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	save(func(s *Settings) { s.Schedule = must(schedule.Parse("07:00", "")) })
	if r := root(); r == nil || *r != "r1" {
		t.Fatalf("a save of the same address dropped the root: %v", r)
	}
	save(func(s *Settings) { s.LearnURL = "https://learn.acme.test" })
	if r := root(); r != nil {
		t.Fatalf("a save of another address kept the root %q", *r)
	}
	// An API key is another account key (docs/learn-api.md, "One account,
	// several portals"): a save that signs in another way clears it too.
	if _, err := pool.Exec(ctx, `UPDATE portal_settings SET learn_root_id = 'r2' WHERE portal_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	save(func(s *Settings) { s.LearnClientID, s.ClientSecret = "cid", "sec" })
	if r := root(); r != nil {
		t.Fatalf("a save that added an API key kept the root %q", *r)
	}
}

// TestAPIKeySaved: the Learn API key's secret is stored encrypted, kept by a
// save that leaves it empty, audited only as "changed", and removed with its
// Client ID; a key makes an account without a password whole.
func TestAPIKeySaved(t *testing.T) {
	ctx, pool, kr, newPortal := setup(t)
	id := newPortal()
	const secretText = "Sx7-client-secret"
	ch, err := Save(ctx, pool, kr, id, 1, func(s *Settings) {
		s.LearnURL, s.LearnEmail = "https://acme.ispringlearn.com", "admin@acme.test"
		s.LearnClientID, s.ClientSecret = "cid", secretText
		s.Schedule = must(schedule.Parse("06:00", ""))
		s.Departments = Scope{Selected: []int64{1}, Excluded: []int64{}}
	})
	if err != nil || ch[FieldClientSecret] != "changed" || ch[FieldClientID] == nil || fmt.Sprint(ch) == "" ||
		strings.Contains(fmt.Sprint(ch), secretText) {
		t.Fatalf("first save: %v %v", ch, err)
	}
	var raw []byte
	if err := pool.QueryRow(ctx, `SELECT learn_client_secret FROM portal_settings WHERE portal_id = $1`, id).Scan(&raw); err != nil ||
		len(raw) == 0 || strings.Contains(string(raw), secretText) {
		t.Fatalf("secret stored as %q, %v", raw, err)
	}
	if got, err := Load(ctx, pool, kr, id); err != nil || got.ClientSecret != secretText || got.LearnClientID != "cid" || !got.HasAccount() {
		t.Fatalf("loaded %v, %v", got.LearnClientID, err)
	}
	if sealed, _ := Load(ctx, pool, nil, id); sealed.ClientSecret != "" || !sealed.HasAPIKey() || !sealed.HasAccount() {
		t.Fatal("without a keyring the key is not seen as saved")
	}
	ch, err = Save(ctx, pool, kr, id, 1, func(s *Settings) { s.ClientSecret = "" })
	if got, _ := Load(ctx, pool, kr, id); err != nil || len(ch) != 0 || got.ClientSecret != secretText {
		t.Fatalf("an empty secret: change %v, %v, secret kept %v", ch, err, got.ClientSecret == secretText)
	}
	ch, err = Save(ctx, pool, kr, id, 1, func(s *Settings) { s.LearnClientID, s.ClientSecret = "", "" })
	got, _ := Load(ctx, pool, kr, id)
	if err != nil || ch[FieldClientSecret] != "changed" || got.HasClientSecret() || got.HasAccount() {
		t.Fatalf("removing the key: change %v, %v, secret left %v, account %v", ch, err, got.HasClientSecret(), got.HasAccount())
	}
}
