package syncer

import (
	"context"
	"fmt"

	"b24learn/internal/learn"
)

// readUnfound reads, for "Sync this employee", the Learn users whose login or
// e-mail is the address of an employee the filtered reads found no user for
// and no mapping links: filters that match letter case miss an address
// Learn holds in a third form (IVAN@acme.ru for Ivan@Acme.ru), and a Learn
// whose uniqueness keeps letter case would take the create as a second
// person (docs/learn-api.md, "Unsettled behaviour"). Before anyone is
// created the whole list is read, as a full run does; add gets only users
// with those addresses. signIn, when the filtered reads did not find the
// credentials' user, is its login or e-mail, looked for the same way: the
// run stops without it (signin.go). mapped is the portal's mapping count,
// the size the listing is bounded by.
func readUnfound(ctx context.Context, lc Learn, mapped int, emps []Employee, maps []Mapping, users []LearnUser, signIn string, add func([]learn.User) error) error {
	missing := unfoundAddresses(emps, maps, users)
	if m := normEmail(signIn); m != "" {
		missing[m] = true
	}
	if len(missing) == 0 {
		return nil
	}
	err := lc.ListUsersWithin(ctx, learn.UserFilter{}, learn.LimitsFor(mapped), func(page []learn.User) error {
		var keep []learn.User
		for _, u := range page {
			if missing[normEmail(u.Fields[learn.FieldLogin])] || missing[normEmail(u.Fields[learn.FieldEmail])] {
				keep = append(keep, u)
			}
		}
		return add(keep)
	})
	if err != nil {
		return fmt.Errorf("read learn users: %w", err)
	}
	return nil
}

// unfoundAddresses are the normalized addresses of the employees without a
// user mapping that no Learn user in users holds as login or e-mail: the
// employees a plan would create.
func unfoundAddresses(emps []Employee, maps []Mapping, users []LearnUser) map[string]bool {
	mapped := map[int64]bool{}
	for _, m := range maps {
		if m.Kind == KindUser {
			mapped[m.B24ID] = true
		}
	}
	held := map[string]bool{}
	for _, u := range users {
		held[normEmail(u.Login)], held[normEmail(u.Email)] = true, true
	}
	missing := map[string]bool{}
	for _, e := range emps {
		if m := normEmail(e.Email); m != "" && !mapped[e.ID] && !held[m] {
			missing[m] = true
		}
	}
	return missing
}
