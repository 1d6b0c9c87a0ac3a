package settings

import "slices"

// auditIDs is how many department ids one audit row names at most: a save
// may change 20,000 at once, and both whole lists made rows of ~800 KB.
// Past it the row keeps the counts and the first ids.
const auditIDs = 200

// DepartmentsChange is settings_audit's record of a changed selection: the
// ids added to and removed from each list, with their counts.
type DepartmentsChange struct {
	Selected IDsChange `json:"selected"`
	Excluded IDsChange `json:"excluded"`
}

// IDsChange is what changed of one list of ids. Added and Removed hold at
// most auditIDs ids between all the lists of a row; AddedCount and
// RemovedCount are always whole, so Added shorter than AddedCount means
// ids were left out.
type IDsChange struct {
	Added        []int64 `json:"added"`
	AddedCount   int     `json:"added_count"`
	Removed      []int64 `json:"removed"`
	RemovedCount int     `json:"removed_count"`
}

// departmentsChange lists what changed between two selections, ids in
// ascending order, keeping at most auditIDs of them.
func departmentsChange(from, to Scope) DepartmentsChange {
	left := auditIDs
	take := func(ids []int64) []int64 {
		n := min(len(ids), left)
		left -= n
		return ids[:n:n]
	}
	one := func(from, to []int64) IDsChange {
		added, removed := minus(to, from), minus(from, to)
		return IDsChange{AddedCount: len(added), RemovedCount: len(removed), Added: take(added), Removed: take(removed)}
	}
	return DepartmentsChange{Selected: one(from.Selected, to.Selected), Excluded: one(from.Excluded, to.Excluded)}
}

// minus is the ids of a not in b, sorted, without repeats.
func minus(a, b []int64) []int64 {
	in := make(map[int64]bool, len(b))
	for _, id := range b {
		in[id] = true
	}
	out := []int64{}
	for _, id := range a {
		if !in[id] {
			out = append(out, id)
			in[id] = true // once only
		}
	}
	slices.Sort(out)
	return out
}
