package bitrix24

import (
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
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*u = User{
		ID: int64(r.ID), Active: bool(r.Active),
		Name: strings.TrimSpace(string(r.Name)), LastName: strings.TrimSpace(string(r.LastName)),
		SecondName: strings.TrimSpace(string(r.SecondName)), Email: strings.TrimSpace(string(r.Email)),
		WorkPosition: string(r.WorkPosition), PersonalMobile: string(r.PersonalMobile),
		PersonalPhone: string(r.PersonalPhone), WorkPhone: string(r.WorkPhone),
		Departments: []int64(r.Departments), UserType: strings.ToLower(string(r.UserType)),
		DateRegister: string(r.DateRegister), TimeZone: string(r.TimeZone),
	}
	return nil
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
