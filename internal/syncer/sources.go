package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/bitrix24"
	"b24learn/internal/fieldmap"
	"b24learn/internal/learn"
	"b24learn/internal/secret"
	"b24learn/internal/settings"
)

// Learn is what the syncer calls on a Learn account; *learn.Client has it.
type Learn interface {
	ListDepartmentsWithin(ctx context.Context, lim learn.Limits) ([]learn.Department, error)
	ListUsersWithin(ctx context.Context, f learn.UserFilter, lim learn.Limits, fn func(page []learn.User) error) error
	CreateDepartment(ctx context.Context, d learn.NewDepartment) (string, error)
	UpdateDepartment(ctx context.Context, id string, u learn.DepartmentUpdate) error
	// SetDepartmentSubordination and SetUserSubordination take the links
	// the run listed, so that a link the step leaves alone is sent back
	// without a read (learn.Links).
	SetDepartmentSubordination(ctx context.Context, id string, sub, co *learn.Subordination, listed *learn.Links) error
	// GetDepartment reads back the root's links after they are set (see
	// applier.rootLinks).
	GetDepartment(ctx context.Context, id string) (learn.Department, error)
	CreateUser(ctx context.Context, u learn.NewUser) (string, error)
	UpdateUser(ctx context.Context, id string, u learn.UserUpdate) error
	MoveUsers(ctx context.Context, departmentID string, userIDs []string) error
	SetUserStatus(ctx context.Context, id string, status int) error
	DeactivateUsers(ctx context.Context, ids []string) error
	SetUserSubordination(ctx context.Context, id string, sub, co *learn.Subordination, listed *learn.Links) error
}

// Bitrix24 is what the syncer reads from a portal; *bitrix24.Client has it.
type Bitrix24 interface {
	Departments(ctx context.Context) ([]bitrix24.Department, error)
	Users(ctx context.Context, filter map[string]any) ([]bitrix24.User, error)
}

// orgReader reads departments and users together, sharing batch calls
// (*bitrix24.Client.ReadOrg: 10,000 employees in 5 requests instead of 7),
// and hands the users over page by page. It is optional so that wrappers of
// Bitrix24 that override one listing (test fakes) keep the separate calls.
type orgReader interface {
	ReadOrg(ctx context.Context, filter map[string]any, p bitrix24.OrgPages) ([]bitrix24.Department, error)
}

// userFielder lists the portal's own user fields (*bitrix24.Client's
// UserFields): the options of the list fields a mapping reads. Optional like
// orgReader.
type userFielder interface {
	UserFields(ctx context.Context, lang string) ([]bitrix24.UserField, error)
}

// invitedAsker asks which employees were invited and have not accepted yet
// (*bitrix24.Client's Invited): one person's run asks it, as the org read
// does. Optional like orgReader.
type invitedAsker interface {
	Invited(ctx context.Context, filter map[string]any) (bitrix24.Invited, error)
}

var (
	_ Learn        = (*learn.Client)(nil)
	_ Bitrix24     = (*bitrix24.Client)(nil)
	_ orgReader    = (*bitrix24.Client)(nil)
	_ userFielder  = (*bitrix24.Client)(nil)
	_ invitedAsker = (*bitrix24.Client)(nil)
)

// Settings are a portal's sync settings, the Learn password decrypted.
type Settings struct {
	MemberID string
	// Domain is the portal's address; it names the portal's root in a
	// shared account when Learn refuses a namesake (applier.withUniqueName).
	Domain        string
	LearnURL      string
	LearnEmail    string
	LearnPassword string
	// LearnClientID and LearnClientSecret are the API key, when the admin
	// gave one: the client then signs in with a token (docs/learn-api.md,
	// "Authentication").
	LearnClientID, LearnClientSecret string
	SendLoginEmail                   bool
	HeadsAsManagers                  bool
	ParentHeadsAsSupervisors         bool
	Selection                        Selection
	// LearnAPIURL is where the account's API answered before; "" until a
	// check or run finds it (see Syncer.findLearnAPI).
	LearnAPIURL string
	// FieldMap is the field mapping (fieldmap.Effective of the saved one);
	// nil is the fixed mapping.
	FieldMap map[string]string
}

// LearnCredentials are what the Learn client signs in with.
func (s Settings) LearnCredentials() learn.Credentials {
	return learn.Credentials{AccountURL: s.LearnURL, Email: s.LearnEmail, Password: s.LearnPassword,
		ClientID: s.LearnClientID, ClientSecret: s.LearnClientSecret}
}

// SettingsSource supplies a portal's settings; the job layer may wrap it.
type SettingsSource interface {
	Settings(ctx context.Context, portalID int64) (Settings, error)
}

// ErrNotConfigured means the portal has no (complete) settings yet.
var ErrNotConfigured = errors.New("portal is not configured for sync")

// DBSettings reads the portal's member id, address and its saved settings (through
// the settings package), decrypting the password.
type DBSettings struct {
	Pool    *pgxpool.Pool
	Keyring *secret.Keyring
}

// Settings implements SettingsSource. Whether the portal may sync at all is
// settings.Syncable's to say, asked by the jobs before a run; here only the
// Learn account a run signs in with is required.
func (d DBSettings) Settings(ctx context.Context, portalID int64) (Settings, error) {
	var s Settings
	err := d.Pool.QueryRow(ctx, `SELECT member_id, domain FROM portals WHERE id = $1`, portalID).Scan(&s.MemberID, &s.Domain)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ErrNotConfigured
	}
	if err != nil {
		return s, fmt.Errorf("read portal: %w", err)
	}
	st, err := settings.Load(ctx, d.Pool, d.Keyring, portalID)
	if err != nil {
		return s, err
	}
	if !st.HasAccount() {
		return s, ErrNotConfigured
	}
	s.LearnURL, s.LearnEmail, s.LearnPassword = st.LearnURL, st.LearnEmail, st.Password
	if st.HasAPIKey() {
		s.LearnClientID, s.LearnClientSecret = st.LearnClientID, st.ClientSecret
	}
	s.SendLoginEmail, s.HeadsAsManagers, s.ParentHeadsAsSupervisors =
		st.SendLoginEmail, st.HeadsAsManagers, st.ParentHeadsAsSupervisors
	s.Selection = st.Departments
	s.LearnAPIURL = st.LearnAPIURL
	if st.FieldMap != nil {
		s.FieldMap = fieldmap.Effective(st.FieldMap)
	}
	return s, nil
}

// sourceCodes are the Bitrix24 fields the field mapping m reads beyond the
// ones every Employee has; nil for the fixed mapping.
func sourceCodes(m map[string]string) []string {
	var out []string
	for _, code := range m {
		switch code {
		case "NAME", "LAST_NAME", "WORK_POSITION", fieldmap.Phone, fieldmap.DepartmentName:
			continue
		}
		if !slices.Contains(out, code) {
			out = append(out, code)
		}
	}
	slices.Sort(out)
	return out
}

// userSelect is the select of the user reads: nil (Bitrix24's default set)
// unless the mapping reads a portal's own UF_* field, which user.get sends
// only when asked; then the default set and those fields.
func userSelect(codes []string) []any {
	var uf []any
	for _, c := range codes {
		if fieldmap.UserField(c) {
			uf = append(uf, c)
		}
	}
	if uf == nil {
		return nil
	}
	return append([]any{"*", "UF_DEPARTMENT", "UF_EMPLOYMENT_DATE"}, uf...)
}

// optionTexts are the choices of the portal's list (enumeration) fields
// that a mapping reads, text by option ID, by field code: user.get sends
// such a field's value as the chosen option's ID (several joined with ", "
// for a multiple field), which would mean nothing in Learn.
type optionTexts map[string]map[string]string

// readOptionTexts lists the portal's user fields when codes read one of its
// own (one request, a page of 50 fields). Without the user.userfield scope
// user.get leaves those fields out as well, so there is nothing to resolve.
// A field whose options Bitrix24 did not send keeps its IDs.
func readOptionTexts(ctx context.Context, b24 Bitrix24, codes []string) (optionTexts, error) {
	r, ok := b24.(userFielder)
	if !ok || !slices.ContainsFunc(codes, fieldmap.UserField) {
		return nil, nil
	}
	fs, err := r.UserFields(ctx, "en")
	if errors.Is(err, bitrix24.ErrInsufficientScope) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read bitrix24 user fields: %w", err)
	}
	var out optionTexts
	for _, f := range fs {
		if len(f.Options) > 0 && slices.Contains(codes, f.Name) {
			if out == nil {
				out = optionTexts{}
			}
			out[f.Name] = f.Options
		}
	}
	return out, nil
}

// apply replaces the option IDs in the employees' values of list fields by
// the options' texts; an ID without an option (one deleted since) stays.
func (t optionTexts) apply(es []Employee) {
	for code, opts := range t {
		for i := range es {
			v := es[i].Values[code]
			if v == "" {
				continue
			}
			if text, ok := opts[v]; ok {
				es[i].Values[code] = text
				continue
			}
			ids := strings.Split(v, ", ")
			for j, id := range ids {
				if text, ok := opts[id]; ok {
					ids[j] = text
				}
			}
			es[i].Values[code] = strings.Join(ids, ", ")
		}
	}
}

// sourceValue is the value of a Bitrix24 field code of u.
func sourceValue(u *bitrix24.User, code string) string {
	switch code {
	case "SECOND_NAME":
		return u.SecondName
	case "PERSONAL_MOBILE":
		return u.PersonalMobile
	case "WORK_PHONE":
		return u.WorkPhone
	case "PERSONAL_PHONE":
		return u.PersonalPhone
	case "PERSONAL_CITY":
		return u.PersonalCity
	case "PERSONAL_BIRTHDAY":
		return u.Birthday
	case "UF_EMPLOYMENT_DATE":
		return u.EmploymentDate
	}
	return u.UF[code]
}

// fromBitrix24 converts the client's rows to the plan's types; codes are
// the extra fields the mapping reads (sourceCodes).
func fromBitrix24(ds []bitrix24.Department, us []bitrix24.User, codes ...string) Desired {
	return Desired{Departments: departmentsOf(ds), Employees: appendEmployees(make([]Employee, 0, len(us)), us, codes...)}
}

func departmentsOf(ds []bitrix24.Department) []Department {
	out := make([]Department, 0, len(ds))
	for _, x := range ds {
		out = append(out, Department{ID: x.ID, Name: x.Name, Parent: x.Parent, Head: x.Head})
	}
	return out
}

// appendEmployees appends the employees of the client's rows us to out.
// The strings the plan keeps of them are copied into one allocation (a
// page's), not kept one per field as decoded: the rest of the rows is let go.
func appendEmployees(out []Employee, us []bitrix24.User, codes ...string) []Employee {
	from := len(out)
	for i := range us {
		u := &us[i]
		t := u.UserType
		switch {
		case t == "" && u.IsExtranet():
			t = "extranet"
		case t == "" || t == "employee":
			t = "employee" // the constant, not the decoder's copy per user
		}
		phone := u.PersonalMobile
		if phone == "" {
			phone = u.WorkPhone
		}
		if phone == "" {
			phone = u.PersonalPhone
		}
		var vals map[string]string
		if len(codes) > 0 {
			vals = make(map[string]string, len(codes))
			for _, c := range codes {
				vals[c] = sourceValue(u, c)
			}
		}
		out = append(out, Employee{
			ID: u.ID, Active: u.Active, UserType: t, FirstName: u.Name, LastName: u.LastName,
			Email: u.Email, JobTitle: u.WorkPosition, Phone: phone, Departments: u.Departments, Values: vals,
		})
	}
	strs := make([]*string, 0, 5*(len(out)-from))
	for i := from; i < len(out); i++ {
		e := &out[i]
		strs = append(strs, &e.FirstName, &e.LastName, &e.Email, &e.JobTitle, &e.Phone)
	}
	concat(strs)
	return out
}

func fromLearnSub(s *learn.Subordination) Subordination {
	if s == nil {
		return Subordination{}
	}
	return Subordination{Type: s.Type, SupervisorID: s.SupervisorID}
}

// fromLearnDepartments converts Learn's departments (its users are
// converted page by page as they are read: learnUser).
func fromLearnDepartments(ds []learn.Department) []LearnDepartment {
	out := make([]LearnDepartment, 0, len(ds))
	for _, d := range ds {
		out = append(out, LearnDepartment{ID: d.ID, Name: learnText(d.Name), ParentID: learnText(d.ParentID), Code: learnText(d.Code),
			Subordination: fromLearnSub(d.Subordination), CoSubordination: fromLearnSub(d.CoSubordination)})
	}
	return out
}

// Scope counts what a selection covers in a Bitrix24 org, by the same rules
// as a sync: in-scope departments (the portal's root aside) and the active
// employees who would be in Learn. The activation request reports it.
func Scope(ds []bitrix24.Department, us []bitrix24.User, sel Selection) (departments, employees int) {
	b := &builder{in: Input{Desired: fromBitrix24(ds, us)}, o: Options{Selection: sel}}
	b.index()
	for id := range b.depts {
		if id != b.rootB24 && b.inScope(id) {
			departments++
		}
	}
	for i := range b.in.Desired.Employees {
		e := &b.in.Desired.Employees[i]
		if e.Active && e.UserType == "employee" && b.userDepartment(e) != 0 {
			employees++
		}
	}
	return departments, employees
}
