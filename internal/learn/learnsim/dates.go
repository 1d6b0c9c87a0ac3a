package learnsim

import (
	"fmt"
	"strings"
	"time"
)

// DateFormat is the form Learn takes a date profile field's value in; none
// is documented (docs/learn-api.md, "Unsettled behaviour").
type DateFormat int

const (
	DateISO      DateFormat = iota // 2006-01-02, the form the API's other dates take
	DateDotted                     // 02.01.2006, the form Learn's Russian UI shows
	DateDateTime                   // 2006-01-02T15:04:05, with or without a zone
)

func (f DateFormat) String() string {
	switch f {
	case DateDotted:
		return "DD.MM.YYYY"
	case DateDateTime:
		return "YYYY-MM-DDThh:mm:ss"
	}
	return "YYYY-MM-DD"
}

// accepts says whether v is a date in format f.
func (f DateFormat) accepts(v string) bool {
	layouts := []string{time.DateOnly}
	switch f {
	case DateDotted:
		layouts = []string{"02.01.2006"}
	case DateDateTime:
		layouts = []string{"2006-01-02T15:04:05", time.RFC3339}
	}
	for _, l := range layouts {
		if _, err := time.Parse(l, v); err == nil {
			return true
		}
	}
	return false
}

// dateType reports whether a field of Learn type typ holds a date.
func dateType(typ string) bool { return typ == "birthdate" || typ == "date" }

// checkType refuses a value that does not fit its field's type: a date
// field takes a date in the account's format, or "" (no date).
func checkType(def *fieldDef, v string, dates DateFormat) *apiErr {
	v = strings.TrimSpace(v)
	if v == "" || !dateType(def.Type) || dates.accepts(v) {
		return nil
	}
	return errf(400, "Invalid value %s. Field %s must be a date in the format %s.", v, def.Name, dates)
}

// SetFieldType changes the type of an account's profile field, as an admin
// can in Learn's settings after the app's mapping was saved.
func (s *Sim) SetFieldType(accountURL, name, typ string) error {
	return s.edit("set field type", accountURL, func(a *account) error {
		def := a.fieldByName[strings.ToLower(name)]
		if def == nil {
			return fmt.Errorf("account %s has no field %s", accountURL, name)
		}
		def.Type = typ
		return nil
	})
}
