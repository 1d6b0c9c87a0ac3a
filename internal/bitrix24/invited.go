package bitrix24

// Invited users who have not accepted yet: user.search's CONFIRM_CODE filter, believed only when its answer shows it worked.

import (
	"fmt"
	"strconv"
	"strings"
)

// Invited says which users were invited to the portal and have not accepted
// yet. user.get cannot tell them apart; user.search's filter on CONFIRM_CODE
// may, but how a portal treats it is not settled (docs/bitrix24-api.md,
// "Invited users"), so the answer is believed only when it shows that the
// filter worked.
type Invited struct {
	// Known: the filter worked; IDs are then every invited user the
	// listing's filter matches (none is a valid answer).
	Known bool
	IDs   []int64
	// Why says, when not Known, what Bitrix24 did: one of the Invited*
	// reasons, with detail.
	Why string
}

// Reasons the invited users could not be told apart.
const (
	InvitedRefused  = "refused"       // an error answer
	InvitedIgnored  = "ignored"       // the answer counts as many users as the listing
	InvitedSignedIn = "signed in"     // a row has LAST_LOGIN: not only the invited came back
	InvitedTooMany  = "too many"      // more than MaxInvitedPages pages
	InvitedNoCount  = "no user count" // nothing to compare the answer with
)

// InvitedReason is the Invited* reason why (an Invited's Why) starts with,
// without Bitrix24's detail (counts, an error's text), which pages do not
// translate; why itself when it starts with none.
func InvitedReason(why string) string {
	for _, r := range []string{InvitedRefused, InvitedIgnored, InvitedSignedIn, InvitedTooMany, InvitedNoCount} {
		if strings.HasPrefix(why, r) {
			return r
		}
	}
	return why
}

// MaxInvitedPages bounds the pages of invited users read (2,000 users): the
// portal says how many there are, and a portal that counts more than this is
// read as one whose invited users cannot be told apart.
const MaxInvitedPages = 40

// invitedFilterKey and invitedFilterValue find users with a CONFIRM_CODE,
// the invited who have not accepted (docs/bitrix24-api.md, "Invited users").
const (
	invitedFilterKey   = "!CONFIRM_CODE"
	invitedFilterValue = "0"
)

// invitedRow is what the check reads of a user.search row.
type invitedRow struct {
	ID        flexInt    `json:"ID"`
	LastLogin flexString `json:"LAST_LOGIN"`
}

// invitedRead collects the answers of user.search for the invited users of
// a listing whose filter counted users.
type invitedRead struct {
	users int // the listing's total, which an ignored filter repeats
	ids   []int64
	done  *Invited
}

// searchCmd is the user.search command for one page of invited users among
// those filter matches (the listing's filter, without its select).
func searchCmd(filter map[string]any, start int) BatchCommand {
	f := cloneMap(filter)
	delete(f, UserSelect)
	f[invitedFilterKey] = invitedFilterValue
	return BatchCommand{Key: "s" + strconv.Itoa(start), Method: "user.search",
		Params: map[string]any{"FILTER": f, "SORT": "ID", "ORDER": "ASC", "ADMIN_MODE": true, "start": start}}
}

// first reads the first page's answer and returns the commands of the
// pages left, or none when the outcome is settled.
func (r *invitedRead) first(res *BatchResult, key string, filter map[string]any) []BatchCommand {
	total := res.Total[key]
	switch {
	case res.Err(key) != nil:
		r.page(res, key) // records the refusal
		return nil
	case r.users <= 0:
		r.fail(InvitedNoCount)
		return nil
	case total >= r.users:
		r.fail(fmt.Sprintf("%s (%d of %d users)", InvitedIgnored, total, r.users))
		return nil
	case total > MaxInvitedPages*PageSize:
		r.fail(fmt.Sprintf("%s (%d)", InvitedTooMany, total))
		return nil
	case !r.page(res, key):
		return nil
	}
	// The pages follow the first at PageSize steps up to the count, which
	// is bounded above; next is not used, since a next below the first page
	// would ask for pages without bound, one past it would skip users, and
	// a missing one would leave the invited of later pages to be created.
	var cmds []BatchCommand
	for start := PageSize; start < total; start += PageSize {
		cmds = append(cmds, searchCmd(filter, start))
	}
	return cmds
}

// page reads one page's answer; false once the outcome is settled as
// unknown.
func (r *invitedRead) page(res *BatchResult, key string) bool {
	if r.done != nil {
		return false
	}
	if err := res.Err(key); err != nil {
		r.fail(fmt.Sprintf("%s: %v", InvitedRefused, err))
		return false
	}
	var rows []invitedRow
	if err := decodePage(res.Result[key], &rows); err != nil {
		r.fail(fmt.Sprintf("%s: not a page of users", InvitedRefused))
		return false
	}
	for _, u := range rows {
		if u.LastLogin != "" {
			r.fail(fmt.Sprintf("%s (user %d)", InvitedSignedIn, u.ID))
			return false
		}
		r.ids = append(r.ids, int64(u.ID))
	}
	return true
}

func (r *invitedRead) fail(why string) {
	r.ids = nil
	r.done = &Invited{Why: why}
}

// result is the outcome once every page is read.
func (r *invitedRead) result() Invited {
	if r.done != nil {
		return *r.done
	}
	return Invited{Known: true, IDs: r.ids}
}
