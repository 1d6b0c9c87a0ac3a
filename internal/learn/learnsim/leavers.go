package learnsim

// LeaverLinks is the fate of the links naming a user who leaves.
type LeaverLinks int

const (
	LeaverLinksKept         LeaverLinks = iota // they still name the user
	LeaverLinksNoSupervisor                    // they become no_supervisor
	LeaverLinksInherit                         // they become inherit
)

// leaverLinks applies LeaverLinks to the links naming ids; a.mu held.
func (u Unsettled) leaverLinks(a *account, ids ...string) {
	if u.LeaverLinks == LeaverLinksKept {
		return
	}
	to := sub{Type: "no_supervisor"}
	if u.LeaverLinks == LeaverLinksInherit {
		to = sub{Type: "inherit"}
	}
	gone := map[string]bool{}
	for _, id := range ids {
		if x := a.users[id]; x == nil || x.Status != 1 {
			gone[id] = true
		}
	}
	drop := func(s *sub) {
		if s.Type == "manual" && gone[s.SupervisorID] {
			*s = to
		}
	}
	for _, d := range a.depts {
		drop(&d.Sub)
		drop(&d.CoSub)
	}
	for _, x := range a.users {
		drop(&x.Sub)
		drop(&x.CoSub)
	}
}
