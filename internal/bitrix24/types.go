package bitrix24

import (
	"bytes"
	"encoding/json"
	"strings"
)

// The row types below name each field's Bitrix24 key in a b24 tag, and
// decodeRow reads them with the flex types' tolerance.

// Department is a row of department.get. Parent and Head are 0 when Bitrix24
// left the key out (root department, no head).
type Department struct {
	ID     int64  `b24:"ID"`
	Name   string `b24:"NAME"`
	Parent int64  `b24:"PARENT"`
	Head   int64  `b24:"UF_HEAD"`
	Sort   int    `b24:"SORT"`
}

func (d *Department) UnmarshalJSON(b []byte) error { return decodeRow(b, d) }

// User is a row of user.get, tolerant of omitted null keys, ACTIVE as bool or
// "Y"/"N"/"1"/"0", IDs as strings or numbers, UF_DEPARTMENT as a list of either.
type User struct {
	ID             int64   `b24:"ID"`
	Active         bool    `b24:"ACTIVE"`
	Name           string  `b24:"NAME"`
	LastName       string  `b24:"LAST_NAME"`
	SecondName     string  `b24:"SECOND_NAME"`
	Email          string  `b24:"EMAIL"`
	WorkPosition   string  `b24:"WORK_POSITION"`
	PersonalMobile string  `b24:"PERSONAL_MOBILE"`
	PersonalPhone  string  `b24:"PERSONAL_PHONE"`
	WorkPhone      string  `b24:"WORK_PHONE"`
	Departments    []int64 `b24:"UF_DEPARTMENT"` // empty for extranet users
	UserType       string  `b24:"USER_TYPE"`     // "employee", "extranet", … ("" when not sent)
	DateRegister   string  `b24:"DATE_REGISTER"` // ISO 8601 as sent; not parsed
	TimeZone       string  `b24:"TIME_ZONE"`
	PersonalCity   string  `b24:"PERSONAL_CITY"`
	Birthday       string  `b24:"PERSONAL_BIRTHDAY"`  // as sent
	EmploymentDate string  `b24:"UF_EMPLOYMENT_DATE"` // as sent
	// UF holds the portal's own UF_* fields of the row, by code, as text
	// (a list joined with ", "); they come only when the request selects
	// them (see UserSelect).
	UF map[string]string
}

func (u *User) UnmarshalJSON(b []byte) error {
	if err := decodeRow(b, u); err != nil {
		return err
	}
	u.Name, u.LastName = strings.TrimSpace(u.Name), strings.TrimSpace(u.LastName)
	u.SecondName, u.Email = strings.TrimSpace(u.SecondName), strings.TrimSpace(u.Email)
	u.UserType = strings.ToLower(u.UserType)
	if !hasOwnUF(b) {
		return nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for k, v := range all {
		if strings.HasPrefix(k, "UF_") && !builtinUF[k] && len(u.UF) < maxOwnUF {
			if u.UF == nil {
				u.UF = map[string]string{}
			}
			u.UF[k] = ufText(v)
		}
	}
	return nil
}

// maxOwnUF bounds the custom fields kept of one user: a portal defines
// tens, and a self-hosted one's row of a million keys must not be held.
const maxOwnUF = 500

// builtinUF are the UF_* fields every portal's user.get sends unasked.
var builtinUF = map[string]bool{
	"UF_DEPARTMENT": true, "UF_EMPLOYMENT_DATE": true, "UF_PHONE_INNER": true, "UF_SKYPE": true, "UF_SKYPE_LINK": true,
	"UF_ZOOM": true, "UF_TWITTER": true, "UF_FACEBOOK": true, "UF_LINKEDIN": true, "UF_XING": true, "UF_WEB_SITES": true,
	"UF_SKILLS": true, "UF_INTERESTS": true, "UF_DISTRICT": true, "UF_TIMEMAN": true, "UF_USER_CRM_ENTITY": true,
}

// hasOwnUF reports whether the row has a UF_* key beyond builtinUF, so the
// usual row is decoded once only.
func hasOwnUF(b []byte) bool {
	for rest := b; ; {
		i := bytes.Index(rest, []byte(`"UF_`))
		if i < 0 {
			return false
		}
		rest = rest[i+1:]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return false
		}
		if !builtinUF[string(rest[:j])] && bytes.HasPrefix(bytes.TrimLeft(rest[j+1:], " \t\r\n"), []byte(":")) {
			return true
		}
	}
}

// ufText renders a UF value as text: a scalar as it is, a list (a multiple
// field) joined with ", ", null and false as "".
func ufText(v json.RawMessage) string {
	var list []json.RawMessage
	if json.Unmarshal(v, &list) == nil {
		parts := make([]string, 0, len(list))
		for _, x := range list {
			if t := ufText(x); t != "" {
				parts = append(parts, t)
			}
		}
		return cutText(strings.Join(parts, ", "))
	}
	s, quoted, err := jsonText(v)
	if err != nil || (!quoted && !isNumber(s) && s != "true") {
		return ""
	}
	return cutText(strings.TrimSpace(s))
}

// IsExtranet reports whether the user is an extranet (external) user: by
// USER_TYPE, or by having no department when USER_TYPE was not sent.
func (u User) IsExtranet() bool {
	if u.UserType != "" {
		return u.UserType == "extranet"
	}
	return len(u.Departments) == 0
}

// Profile is the answer of `profile`: the user who owns the access token.
type Profile struct {
	ID       int64  `b24:"ID"`
	Admin    bool   `b24:"ADMIN"`
	Name     string `b24:"NAME"`
	LastName string `b24:"LAST_NAME"`
	Email    string `b24:"EMAIL"`
}

func (p *Profile) UnmarshalJSON(b []byte) error { return decodeRow(b, p) }

// AppInfo is the portal's `app.info` answer.
type AppInfo struct {
	ID             int64  `b24:"ID"`
	Code           string `b24:"CODE"`
	Version        int    `b24:"VERSION"`
	Status         string `b24:"STATUS"`
	Installed      bool   `b24:"INSTALLED"`
	PaymentExpired bool   `b24:"PAYMENT_EXPIRED"`
	Days           int    `b24:"DAYS"`
	LanguageID     string `b24:"LANGUAGE_ID"`
	License        string `b24:"LICENSE"`
}

func (a *AppInfo) UnmarshalJSON(b []byte) error { return decodeRow(b, a) }

// EventHandler is a row of event.get.
type EventHandler struct {
	Event   string `b24:"event"`
	Handler string `b24:"handler"`
}

func (h *EventHandler) UnmarshalJSON(b []byte) error {
	if err := decodeRow(b, h); err != nil {
		return err
	}
	h.Event = strings.ToUpper(h.Event)
	return nil
}
