package syncer

import (
	"context"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
)

// The attacker: a Learn server (its URL is the portal admin's to type)
// sends a user's profile with a first name of 500 KB, within what a
// listing takes of one object. The run's report row showed the user as
// read: 500 KB in sync_run_items a row, a row per such user, every run.
// Values read from Learn are now cut as Bitrix24's are (Learn keeps 255
// characters), so a row stays small.
func TestLearnValuesReadAreBoundedInReportRows(t *testing.T) {
	e := newSimEnv(t, simOpts{})
	id, p := e.addPortal(b24sim.GenerateOrg(3, 5, 2))
	var email string
	for _, u := range p.Users() {
		if u.Active && !u.Extranet && u.Email != "" {
			email = u.Email
			break
		}
	}
	st := e.state()
	huge := strings.Repeat("я", 250_000)
	if _, err := e.lsim.SeedUser(simAccount, st.RootID, map[string]string{"login": email, "email": email,
		"first_name": huge, "last_name": "X"}, 1); err != nil {
		t.Fatal(err)
	}
	rep := e.run(id, TriggerManual)
	var longest int
	if err := e.pool.QueryRow(context.Background(), `SELECT COALESCE(max(octet_length(before::text)), 0) FROM sync_run_items
		WHERE portal_id = $1 AND run_id = $2`, id, rep.RunID).Scan(&longest); err != nil {
		t.Fatal(err)
	}
	if longest == 0 {
		t.Fatal("no report row shows a Learn user as it was: the test proves nothing")
	}
	if longest > 16<<10 {
		t.Errorf("a report row's before holds %d bytes, want at most 16 KiB", longest)
	}
}

// The same attacker's other values that a report row shows as read: a
// user's department, a department's parent and code (ids of objects are
// checked as they are read; these are not).
func TestLearnReferencesReadAreBounded(t *testing.T) {
	huge := strings.Repeat("d", 500_000)
	u := learnUser(learn.User{ID: "u1", DepartmentID: huge, Fields: learn.Fields{"login": "a@x.test"}}, newInterner())
	ds := fromLearnDepartments([]learn.Department{{ID: "d1", Name: huge, ParentID: huge, Code: huge}})
	for name, v := range map[string]string{"user's department": u.DepartmentID, "name": ds[0].Name,
		"parent": ds[0].ParentID, "code": ds[0].Code} {
		if len(v) > maxLearnTextBytes {
			t.Errorf("%s read as %d bytes, want at most %d", name, len(v), maxLearnTextBytes)
		}
	}
}
