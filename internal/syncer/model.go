// Package syncer copies a Bitrix24 org structure into iSpring Learn: it reads
// the desired state (Bitrix24) and the actual state (Learn plus the stored
// mapping), computes a plan as a pure function and applies it, recording each
// applied step at once so that a killed run converges when run again.
package syncer

// Department is a Bitrix24 department as the plan needs it.
type Department struct {
	ID     int64
	Name   string
	Parent int64 // 0 for the root
	Head   int64 // Bitrix24 user id of the head (UF_HEAD), 0 for none
}

// Employee is a Bitrix24 user as the plan needs it.
type Employee struct {
	ID          int64
	Active      bool
	UserType    string // "employee", "extranet", "email", ...
	FirstName   string
	LastName    string
	Email       string
	JobTitle    string
	Phone       string
	Departments []int64 // UF_DEPARTMENT, in Bitrix24's order
}

// Selection is the admin's department picker: a department is in scope when
// the nearest of itself and its ancestors that is named here is Selected.
// The JSON form is the one stored in portal_settings.departments.
type Selection struct {
	Selected []int64 `json:"selected"`
	Excluded []int64 `json:"excluded"`
}

// Subordination types as Learn spells them.
const (
	SubInherit = "inherit"
	SubManual  = "manual"
	SubNone    = "no_supervisor"
)

// Learn user statuses.
const (
	StatusActive   = 1
	StatusInactive = 3
	StatusEnded    = 5
)

// Subordination is one of Learn's two manager links (supervisor or
// functional manager) of a department or a user.
type Subordination struct {
	Type         string
	SupervisorID string // Learn user id when Type is manual
}

// LearnDepartment is a department as read from Learn.
type LearnDepartment struct {
	ID              string
	Name            string
	ParentID        string // empty for the root
	Code            string
	Subordination   Subordination
	CoSubordination Subordination
}

// LearnUser is a user as read from Learn.
type LearnUser struct {
	ID              string
	DepartmentID    string
	Status          int
	Login           string
	Email           string
	FirstName       string
	LastName        string
	JobTitle        string
	Phone           string
	Subordination   Subordination
	CoSubordination Subordination
}

// Kind says what a mapping row or a step is about.
type Kind string

const (
	KindDepartment Kind = "department"
	KindUser       Kind = "user"
)

// Mapping links a Bitrix24 object to the Learn object it was synced to, with
// the fingerprint of the Bitrix24 fields last applied.
type Mapping struct {
	Kind        Kind
	B24ID       int64
	LearnID     string
	Fingerprint string
}

// Safeguard bounds how many deactivations one run applies without approval.
type Safeguard struct {
	Percent  float64 // share of the portal's synced active users, in percent
	MinCount int     // fewer deactivations than this are never held
}

// DefaultSafeguard is DESIGN §6: more than 10 % and at least 10 users.
var DefaultSafeguard = Safeguard{Percent: 10, MinCount: 10}

// Options are the portal's settings that shape the plan.
type Options struct {
	MemberID                 string
	Selection                Selection
	HeadsAsManagers          bool
	ParentHeadsAsSupervisors bool
	SendLoginEmail           bool
	Safeguard                Safeguard
	// Approved holds Bitrix24 user ids whose deactivation an admin approved;
	// those are never held.
	Approved map[int64]bool
	// SharedAccount forces the multi-portal layout even before another
	// portal's departments are visible in Learn.
	SharedAccount bool
}

// Desired is what Bitrix24 says.
type Desired struct {
	Departments []Department
	Employees   []Employee
}

// Actual is what Learn holds, plus the stored mapping of this portal.
type Actual struct {
	Departments []LearnDepartment
	Users       []LearnUser
	Mappings    []Mapping
}

// Input is everything Plan needs.
type Input struct {
	Options Options
	Desired Desired
	Actual  Actual
}
