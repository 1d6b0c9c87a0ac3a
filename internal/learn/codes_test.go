package learn

import (
	"context"
	"testing"

	"b24learn/internal/learn/learnsim"
)

// TestDepartmentCodesAgainstUnsettled writes a code of the app's form (a
// 32-character member ID, ':' and a Bitrix24 ID) against every choice
// learnsim offers: whether Learn keeps it, cuts it or refuses it, the
// department is created and updated, and keeps what Learn keeps of the code
// (docs/learn-api.md, "Department codes").
func TestDepartmentCodesAgainstUnsettled(t *testing.T) {
	t.Parallel()
	const code = "a223c6b3710f85df22e9377d6c4f7553:1234"
	for _, v := range learnsim.Variants() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := newSimEnv(t, learnsim.Options{Seed: 7, Unsettled: v.Unsettled}, learnsim.AccountOptions{})
			c := env.client(t, Credentials{})
			id, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: env.root, Code: code})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			want := v.Unsettled.KeptCode(code)
			if d, err := c.GetDepartment(ctx, id); err != nil || d.Name != "Sales" || d.Code != want {
				t.Fatalf("created: %v %+v, want the code %q", err, d, want)
			}
			// A rename that sends the code again goes through; so does an
			// update of the code alone, which changes nothing where Learn
			// refuses it.
			if err := c.UpdateDepartment(ctx, id, DepartmentUpdate{Name: "Sales EMEA", Code: code + "5"}); err != nil {
				t.Fatalf("rename with a code: %v", err)
			}
			if d, err := c.GetDepartment(ctx, id); err != nil || d.Name != "Sales EMEA" {
				t.Fatalf("renamed: %v %+v", err, d)
			}
			if err := c.UpdateDepartment(ctx, id, DepartmentUpdate{Code: code}); err != nil {
				t.Fatalf("update of the code alone: %v", err)
			}
			// A refusal of something else still stands.
			if _, err := c.CreateDepartment(ctx, NewDepartment{Name: "Orphan", ParentID: "00000000-0000-0000-0000-00000000dead", Code: code}); err == nil {
				t.Error("a create under an unknown parent went through")
			}
		})
	}
}
