package activation

import (
	"errors"
	"strings"
	"testing"

	"b24learn/internal/i18n"
)

func TestNormalisePhone(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want, code string
	}{
		{"+7 (912) 345-67-89", "+79123456789", ""},
		{"  +7 912 345 67 89 ", "+79123456789", ""},
		{"+1.415.555.2671", "+14155552671", ""},
		{"0049 30 1234567", "+49301234567", ""},
		{"+44 20 7946 0958", "+442079460958", ""},
		{"", "", "phone_required"},
		{"   ", "", "phone_required"},
		{"8 (912) 345-67-89", "", "phone_intl"}, // domestic Russian form, no country code
		{"9123456789", "", "phone_intl"},        // no +
		{"+0 123 456 789", "", "phone_intl"},    // no country code starts with 0
		{"+7 912 345-67-89 ext 5", "", "phone_invalid"},
		{"+7 912 ABC-67-89", "", "phone_invalid"},
		{"+7 912+345", "", "phone_invalid"},        // + only at the start
		{"+1234567", "", "phone_invalid"},          // 7 digits: too short
		{"+1234567890123456", "", "phone_invalid"}, // 16 digits: too long
	}
	for _, c := range cases {
		got, code := NormalisePhone(c.in)
		if code != c.code {
			t.Errorf("NormalisePhone(%q) code = %q, want %q", c.in, code, c.code)
			continue
		}
		if code == "" && got != c.want {
			t.Errorf("NormalisePhone(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := Contact{Name: "  Иван   Петров ", Email: " ivan@example.ru ", Phone: "+7 (912) 345-67-89"}

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		c, err := Validate(good)
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		want := Contact{Name: "Иван Петров", Email: "ivan@example.ru", Phone: "+79123456789"}
		if c != want {
			t.Fatalf("Validate = %+v, want %+v", c, want)
		}
	})

	bad := []struct {
		name  string
		edit  func(*Contact)
		field string
		en    string // a fragment of the English message
		ru    string // and of the Russian one
	}{
		{"NameRequired", func(c *Contact) { c.Name = "  " }, "name", "Enter your name", "Укажите ваше имя"},
		{"NameTooLong", func(c *Contact) { c.Name = strings.Repeat("я", 201) }, "name", "too long", "слишком длинное"},
		{"NameControl", func(c *Contact) { c.Name = "Ivan\x00" }, "name", "not allowed", "недопустимые"},
		{"EmailRequired", func(c *Contact) { c.Email = "" }, "email", "Enter your e-mail", "Укажите адрес"},
		{"EmailNoAt", func(c *Contact) { c.Email = "ivan.example.ru" }, "email", "name@company.com", "name@company.ru"},
		{"EmailDisplayName", func(c *Contact) { c.Email = "Ivan <ivan@example.ru>" }, "email", "name@company.com", "name@company.ru"},
		{"EmailNoDot", func(c *Contact) { c.Email = "ivan@localhost" }, "email", "name@company.com", "name@company.ru"},
		{"EmailTwoAts", func(c *Contact) { c.Email = "a@b@example.ru" }, "email", "name@company.com", "name@company.ru"},
		{"EmailTooLong", func(c *Contact) { c.Email = strings.Repeat("a", 250) + "@x.ru" }, "email", "name@company.com", "name@company.ru"},
		{"PhoneRequired", func(c *Contact) { c.Phone = "" }, "phone", "Enter your phone", "Укажите номер"},
		{"PhoneDomestic", func(c *Contact) { c.Phone = "8 912 345 67 89" }, "phone", "international form", "международном формате"},
		{"PhoneLetters", func(c *Contact) { c.Phone = "+7 call me" }, "phone", "not a valid phone", "не номер телефона"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			in := good
			b.edit(&in)
			_, err := Validate(in)
			var fe FieldErrors
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want FieldErrors", err)
			}
			// The page shows the catalogue's sentence for the code.
			for lang, frag := range map[i18n.Lang]string{i18n.EN: b.en, i18n.RU: b.ru} {
				if msg := i18n.T(lang, "contact."+fe[b.field]); len(fe) != 1 || !strings.Contains(msg, frag) {
					t.Fatalf("%s: errors = %v (%q), want only %s containing %q", lang, fe, msg, b.field, frag)
				}
			}
		})
	}

	t.Run("AllAtOnce", func(t *testing.T) {
		t.Parallel()
		_, err := Validate(Contact{})
		var fe FieldErrors
		if !errors.As(err, &fe) || len(fe) != 3 {
			t.Fatalf("err = %v, want three field errors", err)
		}
	})
}
