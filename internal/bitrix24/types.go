package bitrix24

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Department is a row of department.get. Parent and Head are 0 when Bitrix24
// left the key out (root department, no head).
type Department struct {
	ID     int64
	Name   string
	Parent int64
	Head   int64
	Sort   int
}

func (d *Department) UnmarshalJSON(b []byte) error {
	var r struct {
		ID     flexInt    `json:"ID"`
		Name   flexString `json:"NAME"`
		Parent flexInt    `json:"PARENT"`
		Head   flexInt    `json:"UF_HEAD"`
		Sort   flexInt    `json:"SORT"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*d = Department{ID: int64(r.ID), Name: string(r.Name), Parent: int64(r.Parent), Head: int64(r.Head), Sort: int(r.Sort)}
	return nil
}

// User is a row of user.get, tolerant of omitted null keys, ACTIVE as bool or
// "Y"/"N"/"1"/"0", IDs as strings or numbers, UF_DEPARTMENT as a list of either.
type User struct {
	ID             int64
	Active         bool
	Name           string
	LastName       string
	SecondName     string
	Email          string
	WorkPosition   string
	PersonalMobile string
	PersonalPhone  string
	WorkPhone      string
	Departments    []int64 // UF_DEPARTMENT; empty for extranet users
	UserType       string  // "employee", "extranet", … ("" when not sent)
	DateRegister   string  // ISO 8601 as sent; not parsed
	TimeZone       string
	PersonalCity   string
	Birthday       string // PERSONAL_BIRTHDAY as sent
	EmploymentDate string // UF_EMPLOYMENT_DATE as sent
	// UF holds the portal's own UF_* fields of the row, by code, as text
	// (a list joined with ", "); they come only when the request selects
	// them (see UserSelect).
	UF map[string]string
}

func (u *User) UnmarshalJSON(b []byte) error {
	var r struct {
		ID             flexInt     `json:"ID"`
		Active         flexBool    `json:"ACTIVE"`
		Name           flexString  `json:"NAME"`
		LastName       flexString  `json:"LAST_NAME"`
		SecondName     flexString  `json:"SECOND_NAME"`
		Email          flexString  `json:"EMAIL"`
		WorkPosition   flexString  `json:"WORK_POSITION"`
		PersonalMobile flexString  `json:"PERSONAL_MOBILE"`
		PersonalPhone  flexString  `json:"PERSONAL_PHONE"`
		WorkPhone      flexString  `json:"WORK_PHONE"`
		Departments    flexIntList `json:"UF_DEPARTMENT"`
		UserType       flexString  `json:"USER_TYPE"`
		DateRegister   flexString  `json:"DATE_REGISTER"`
		TimeZone       flexString  `json:"TIME_ZONE"`
		PersonalCity   flexString  `json:"PERSONAL_CITY"`
		Birthday       flexString  `json:"PERSONAL_BIRTHDAY"`
		EmploymentDate flexString  `json:"UF_EMPLOYMENT_DATE"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	var uf map[string]string
	if hasOwnUF(b) {
		var all map[string]json.RawMessage
		if err := json.Unmarshal(b, &all); err != nil {
			return err
		}
		for k, v := range all {
			if strings.HasPrefix(k, "UF_") && !builtinUF[k] && len(uf) < maxOwnUF {
				if uf == nil {
					uf = map[string]string{}
				}
				uf[k] = ufText(v)
			}
		}
	}
	*u = User{
		ID: int64(r.ID), Active: bool(r.Active),
		Name: strings.TrimSpace(string(r.Name)), LastName: strings.TrimSpace(string(r.LastName)),
		SecondName: strings.TrimSpace(string(r.SecondName)), Email: strings.TrimSpace(string(r.Email)),
		WorkPosition: string(r.WorkPosition), PersonalMobile: string(r.PersonalMobile),
		PersonalPhone: string(r.PersonalPhone), WorkPhone: string(r.WorkPhone),
		Departments: []int64(r.Departments), UserType: strings.ToLower(string(r.UserType)),
		DateRegister: string(r.DateRegister), TimeZone: string(r.TimeZone),
		PersonalCity: string(r.PersonalCity), Birthday: string(r.Birthday), EmploymentDate: string(r.EmploymentDate),
		UF: uf,
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
	ID       int64
	Admin    bool
	Name     string
	LastName string
	Email    string
}

func (p *Profile) UnmarshalJSON(b []byte) error {
	var r struct {
		ID       flexInt    `json:"ID"`
		Admin    flexBool   `json:"ADMIN"`
		Name     flexString `json:"NAME"`
		LastName flexString `json:"LAST_NAME"`
		Email    flexString `json:"EMAIL"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*p = Profile{int64(r.ID), bool(r.Admin), string(r.Name), string(r.LastName), string(r.Email)}
	return nil
}

// AppInfo is the portal's `app.info` answer.
type AppInfo struct {
	ID             int64
	Code           string
	Version        int
	Status         string
	Installed      bool
	PaymentExpired bool
	Days           int
	LanguageID     string
	License        string
}

func (a *AppInfo) UnmarshalJSON(b []byte) error {
	var r struct {
		ID             flexInt    `json:"ID"`
		Code           flexString `json:"CODE"`
		Version        flexInt    `json:"VERSION"`
		Status         flexString `json:"STATUS"`
		Installed      flexBool   `json:"INSTALLED"`
		PaymentExpired flexBool   `json:"PAYMENT_EXPIRED"`
		Days           flexInt    `json:"DAYS"`
		LanguageID     flexString `json:"LANGUAGE_ID"`
		License        flexString `json:"LICENSE"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*a = AppInfo{int64(r.ID), string(r.Code), int(r.Version), string(r.Status), bool(r.Installed),
		bool(r.PaymentExpired), int(r.Days), string(r.LanguageID), string(r.License)}
	return nil
}

// EventHandler is a row of event.get.
type EventHandler struct {
	Event   string
	Handler string
}

func (h *EventHandler) UnmarshalJSON(b []byte) error {
	var r struct {
		Event   flexString `json:"event"`
		Handler flexString `json:"handler"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*h = EventHandler{strings.ToUpper(string(r.Event)), string(r.Handler)}
	return nil
}
