package activation

import (
	"errors"
	"testing"
)

// A bidi override or an invisible character in the contact would make the
// managers' e-mail, the console and the CRM lead show another name or
// address than the one stored ("\u202e" turns the rest of the line around).
func TestValidateRefusesBidiAndInvisibleCharacters(t *testing.T) {
	t.Parallel()
	good := Contact{Name: "Ivan Petrov", Email: "ivan@example.ru", Phone: "+79123456789"}
	cases := []struct {
		name  string
		edit  func(*Contact)
		field string
	}{
		{"NameRightToLeftOverride", func(c *Contact) { c.Name = "Ivan \u202evortep" }, "name"},
		{"NameIsolate", func(c *Contact) { c.Name = "Ivan \u2067Petrov" }, "name"},
		{"NameZeroWidthSpace", func(c *Contact) { c.Name = "Iv\u200ban" }, "name"},
		{"EmailOverrideInLocalPart", func(c *Contact) { c.Email = "ivan\u202e@example.ru" }, "email"},
		{"EmailOverrideInDomain", func(c *Contact) { c.Email = "ivan@\u202eur.elpmaxe" }, "email"},
		{"EmailZeroWidthInDomain", func(c *Contact) { c.Email = "ivan@exa\u200bmple.ru" }, "email"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := good
			c.edit(&in)
			_, err := Validate(in)
			var fe FieldErrors
			if !errors.As(err, &fe) || fe[c.field] == "" {
				t.Fatalf("Validate(%+q) = %v, want the %s refused", in, err, c.field)
			}
		})
	}

	t.Run("InternationalAddressStaysValid", func(t *testing.T) {
		t.Parallel()
		in := good
		in.Email = "иван@пример.рф"
		if _, err := Validate(in); err != nil {
			t.Fatalf("Validate(%q): %v", in.Email, err)
		}
	})
}
