// Package syncer copies a Bitrix24 org structure into iSpring Learn: it reads
// the desired state (Bitrix24) and the actual state (Learn plus the stored
// mapping), computes a plan as a pure function (BuildPlan) and applies it,
// recording each applied step at once so that a killed run converges when run
// again (docs/architecture.md, "Sync rules the code relies on").
//
// Choices of this package's own:
//
//   - Departments that leave the scope (deselected, deleted in Bitrix24) are
//     left in Learn as they are: Learn refuses to delete non-empty
//     departments, their users are deactivated and stay there for reports, and
//     the mapping brings the same department back if it returns.
//   - Names and profile fields are compared through a fingerprint of the
//     Bitrix24 values last applied: an edit made in Learn is not fought while
//     Bitrix24 stays the same, and Learn's own normalising never causes
//     endless updates. Structure (parent, department, status, supervisors) is
//     always compared with what Learn says.
//   - A user's login is their e-mail at creation; when the e-mail changes the
//     login follows only if it still equals the e-mail (a login the Learn
//     admin chose stays). A Learn user the app adopted (linked by login or
//     e-mail, not created) keeps Learn's login and e-mail while linked.
//     Users without e-mail, and a second user with the same e-mail, are
//     refused with the reason.
//   - A toggle switched off leaves the links it set in place; the syncer then
//     stops managing that link.
//   - The supervisor (parent heads) and the functional manager (heads) of a
//     department are set explicitly to the nearest synced head up the
//     Bitrix24 tree; a head who would be their own gets a user-level link to
//     the next head up.
//   - The Learn root's own managers (with one portal, the Bitrix24 root's
//     head) are sent once; when Learn refuses them or does not keep them,
//     the run reports it and later runs do not send them again until the
//     wanted managers change.
//   - With one portal the Learn root carries the Bitrix24 root's name. Once
//     another portal's department (code "<member_id>:<id>") is in Learn, or the
//     portal's own root child exists, the layout is shared for good: the
//     portal's root becomes a child of the Learn root with code
//     "<member_id>:<root id>" and its tree moves there.
//   - Safeguard: deactivations are held when there are at least MinCount of
//     them and they exceed Percent of the synced active users; an approved
//     run releases exactly the set the held run recorded.
package syncer

import "b24learn/internal/settings"

// Department is a Bitrix24 department as the plan needs it.
type Department struct {
	ID     int64
	Name   string
	Parent int64 // 0 for the root
	Head   int64 // Bitrix24 user id of the head (UF_HEAD), 0 for none
}

// Employee is a Bitrix24 user as the plan needs it.
type Employee struct {
	ID     int64
	Active bool
	// Invited: invited to Bitrix24 and not accepted yet. Such a user is not
	// created in Learn until they accept, so an invited head is no one's
	// manager until then either (only synced heads are); one already in
	// Learn syncs as before.
	Invited     bool
	UserType    string // "employee", "extranet", "email", ...
	FirstName   string
	LastName    string
	Email       string
	JobTitle    string
	Phone       string
	Departments []int64 // UF_DEPARTMENT, in Bitrix24's order
	// Values holds the other Bitrix24 fields the field mapping reads, by
	// code; nil with the fixed mapping.
	Values map[string]string
}

// Selection is the admin's department picker, the settings' one scope type:
// a department is in scope when the nearest of itself and its ancestors
// that is named there is Selected.
type Selection = settings.Scope

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

// Profile is a Learn user's profile fields the syncer writes, as Learn
// holds them (LearnUser) or as the plan wants them (UserSpec).
type Profile struct {
	Login     string
	Email     string
	FirstName string
	LastName  string
	JobTitle  string
	Phone     string
	// Extra holds the profile fields beyond the ones above that the field
	// mapping fills, by Learn name; nil with the fixed mapping.
	Extra map[string]string
}

// LearnUser is a user as read from Learn.
type LearnUser struct {
	ID           string
	DepartmentID string
	Status       int
	// Administers: the user's Learn role has rights over others (learn.User.Administers).
	Administers bool
	// RoleUnknown: the read shows no role at all (learn.User.RoleShown), so
	// the user may be an administrator or the account owner.
	RoleUnknown bool
	Profile
	// Managers are the user's manager links, one value shared by the users
	// that have the same ones (most have inherit and inherit): 8 bytes a
	// user instead of 64. Nil reads as none set (see Links).
	Managers *Managers
}

// Managers are a Learn user's two manager links.
type Managers struct {
	Subordination   Subordination
	CoSubordination Subordination
}

// Links are the user's manager links; zero when none were read.
func (u *LearnUser) Links() Managers {
	if u.Managers == nil {
		return Managers{}
	}
	return *u.Managers
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
	// LicenceWait: the user is inactive in Learn because the plan's active
	// users are used up; it is reactivated only when Options.RetryLicence
	// names it.
	LicenceWait bool
	// Adopted: the user was in Learn before the app linked it by login or
	// e-mail (not created by the app). It keeps Learn's login and e-mail
	// while linked: the employee's address, theirs to edit, must never
	// become someone else's login. Beside LicenceWait it takes no room.
	Adopted bool
}

// Safeguard bounds how many deactivations one run applies without approval.
type Safeguard struct {
	Percent  float64 // share of the portal's synced active users, in percent
	MinCount int     // fewer deactivations than this are never held
}

// DefaultSafeguard holds deactivations of more than 10 % and at least 10
// users (docs/architecture.md, "Sync rules the code relies on").
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
	// RetryLicence holds Bitrix24 user ids waiting for a licence whose
	// reactivation this run tries again; the others keep waiting, unwritten.
	RetryLicence map[int64]bool
	// RetryLeaves sends again the deactivations Learn refused in earlier
	// runs (PartStatus): an admin's "Sync now"; other runs leave them.
	RetryLeaves bool
	// Person, when set, is the one Bitrix24 user an on-demand run is for
	// (RunPerson): its read holds them and their heads only, so a read
	// without an active employee is not an empty one.
	Person int64
	// FieldMap maps Learn profile fields to the Bitrix24 fields that fill
	// them (fieldmap.Effective); nil is the fixed mapping.
	FieldMap map[string]string
	// SignInLogin is the Learn login the run signs in with (the saved Learn
	// admin e-mail). The Learn user with that login or e-mail is never
	// linked to an employee nor written: every employee may put any address
	// in their Bitrix24 profile, and a link would hand them the account's
	// administrator (their next address written into its login) or
	// deactivate it when they leave.
	SignInLogin string
	// OtherSignIns are the sign-in logins of the other portals that sync
	// into the account (Store.OtherSignIns): held as SignInLogin is, since
	// Learn may not show such a user's rights, and this portal's employees
	// are no more trusted with another portal's administrator.
	OtherSignIns []string
}

// Desired is what Bitrix24 says.
type Desired struct {
	Departments []Department
	Employees   []Employee
	// InvitedUnknown, when set, says why the employees invited and not
	// accepted yet could not be told apart (bitrix24.Invited's Why): every
	// employee syncs, and the run report says so once.
	InvitedUnknown string
}

// Actual is what Learn holds, plus the stored mapping of this portal.
type Actual struct {
	Departments []LearnDepartment
	Users       []LearnUser
	Mappings    []Mapping
	// Foreign holds the Learn users of the account that another portal owns
	// (Learn id -> that portal's domain): this portal's run leaves them alone.
	Foreign map[string]string
	// OtherDepartments are the Learn departments of the account that
	// another portal's mapping names: this portal never takes one for a
	// department of its own when it finds one without its code.
	OtherDepartments map[string]bool
	// Refusals are the writes Learn refused for good in earlier runs
	// (refusals.go), at most one per object and part.
	Refusals []Refusal
	// SignIn is what the user listing showed of the user the credentials
	// name (signin.go).
	SignIn SignIn
}

// Input is everything Plan needs.
type Input struct {
	Options Options
	Desired Desired
	Actual  Actual
}
