package learnsim

import "strings"

// addrIndex finds users by login or by e-mail. It is keyed by the lower-case
// value and holds every user under a key: under Unsettled.CaseSensitiveUnique
// two users may hold addresses that differ only in letter case.
type addrIndex map[string][]string

func (x addrIndex) add(v, id string) {
	if k := strings.ToLower(strings.TrimSpace(v)); k != "" {
		x[k] = append(x[k], id)
	}
}

func (x addrIndex) remove(v, id string) {
	k := strings.ToLower(strings.TrimSpace(v))
	ids := x[k]
	for i, o := range ids {
		if o == id {
			ids = append(ids[:i:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(x, k)
		return
	}
	x[k] = ids
}

// find returns the users whose field holds v: letter case aside, or as
// written when exact.
func (x addrIndex) find(users map[string]*user, field, v string, exact bool) []string {
	ids := x[strings.ToLower(strings.TrimSpace(v))]
	if !exact {
		return ids
	}
	var out []string
	for _, id := range ids {
		if u := users[id]; u != nil && u.Fields[field] == strings.TrimSpace(v) {
			out = append(out, id)
		}
	}
	return out
}
