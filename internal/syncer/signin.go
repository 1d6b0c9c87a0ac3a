// Whose credentials a run holds: the sync needs the whole account's, an
// account administrator's (docs/learn-api.md, "Whose credentials").

package syncer

import (
	"errors"
	"strings"

	"b24learn/internal/learn"
)

// ErrLearnNotAccountAdmin stops a run before it writes anything: the
// credentials are not an account administrator's (a department
// administrator's, a custom role's, a mere supervisor's), or their user is not among those they
// list. Such credentials may show their top department with no parent, and
// the run would take it for the account's root, rename it and hang the
// portal under it.
var ErrLearnNotAccountAdmin = errors.New("learn credentials are not an account administrator's: the sync needs the whole account")

// SignIn is what a listing of Learn's users showed of the user the
// credentials name.
type SignIn struct {
	Found bool
	// Limited: some user the name matches has a role known to reach only
	// part of the account (learn.User.Limited), or shows only the
	// Supervisor role (learn.User.OnlySupervises); a login may be another
	// user's e-mail, and any of them may be the one.
	Limited bool
}

// see notes u when name (the sign-in login or e-mail) is its.
func (s *SignIn) see(u learn.User, name string) {
	if !u.SignsInWith(name) {
		return
	}
	s.Found = true
	s.Limited = s.Limited || u.Limited() || u.OnlySupervises()
}

// check refuses a run whose credentials are not an account
// administrator's. An account administrator's listing shows every user,
// itself included; one that does not show the sign-in user is a
// narrower role's.
func (s SignIn) check() error {
	if !s.Found || s.Limited {
		return ErrLearnNotAccountAdmin
	}
	return nil
}

// signInNames are the forms of the sign-in name an on-demand sync's
// filtered reads ask for, so that they bring its user: as typed, and in
// lower case (whether Learn's filters ignore letter case is not settled).
func signInNames(name string) []string {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil
	case normEmail(name) != name:
		return []string{name, normEmail(name)}
	}
	return []string{name}
}
