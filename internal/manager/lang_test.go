package manager

import (
	"context"
	"testing"

	"b24learn/internal/i18n"
	"b24learn/internal/pgtest"
)

// Each address gets its account's choice (without case); the others get
// Russian only when more managers chose Russian than English.
func TestMailLangs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	mk := func(email string) int64 {
		m, err := CreateManager(ctx, pool, DefaultHasher(), email, "a long enough password")
		if err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	anna, boris, vera := mk("Anna@ispring.example"), mk("boris@ispring.example"), mk("vera@ispring.example")
	addrs := []string{"anna@ISPRING.example", "boris@ispring.example", "vera@ispring.example", "sales@ispring.example"}
	check := func(name string, want ...i18n.Lang) {
		t.Helper()
		got, err := MailLangs(ctx, pool, addrs)
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range addrs {
			if got[a] != want[i] {
				t.Errorf("%s: %s gets %q, want %q", name, a, got[a], want[i])
			}
		}
	}
	check("nobody chose", i18n.EN, i18n.EN, i18n.EN, i18n.EN)
	if err := SetLang(ctx, pool, anna, i18n.RU); err != nil {
		t.Fatal(err)
	}
	check("one chose Russian", i18n.RU, i18n.RU, i18n.RU, i18n.RU)
	if err := SetLang(ctx, pool, boris, i18n.EN); err != nil {
		t.Fatal(err)
	}
	check("a tie", i18n.RU, i18n.EN, i18n.EN, i18n.EN)
	if err := SetLang(ctx, pool, vera, i18n.RU); err != nil {
		t.Fatal(err)
	}
	check("most chose Russian", i18n.RU, i18n.EN, i18n.RU, i18n.RU)
	if err := SetLang(ctx, pool, vera, "de"); err == nil {
		t.Fatal("SetLang accepted de")
	}
	if err := SetLang(ctx, pool, 999999, i18n.EN); err != ErrNotFound {
		t.Fatalf("SetLang of no manager: %v", err)
	}
}
