// Lookups of the plan's input lists by key, as sorted positions rather than maps.

package syncer

import (
	"cmp"
	"slices"
	"sort"
)

// sortedIndex holds the positions of a list's entries sorted by a key. At
// 100,000 users a map costs 20 to 35 bytes an entry and the plan needs one
// per lookup it makes; a position costs 4, and a lookup is a binary search
// (docs/benchmarks.md, the sync's memory). A list already
// in key order (the employees and mappings as read) needs no positions.
type sortedIndex[K cmp.Ordered] struct {
	pos []int32 // nil: the list itself, all n entries, is in key order
	n   int
	key func(i int) K
}

// indexBy indexes the entries 0..n-1 for which keep holds (nil: all) by key.
func indexBy[K cmp.Ordered](n int, key func(i int) K, keep func(i int) bool) sortedIndex[K] {
	if keep == nil {
		inOrder := true
		for i := 1; i < n && inOrder; i++ {
			inOrder = cmp.Less(key(i-1), key(i))
		}
		if inOrder {
			return sortedIndex[K]{n: n, key: key}
		}
	}
	pos := make([]int32, 0, n)
	for i := range n {
		if keep == nil || keep(i) {
			pos = append(pos, int32(i))
		}
	}
	// Among equal keys the later entry comes later, and find returns it,
	// as a map filled in list order would.
	slices.SortFunc(pos, func(x, y int32) int {
		if c := cmp.Compare(key(int(x)), key(int(y))); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
	return sortedIndex[K]{pos: pos, n: len(pos), key: key}
}

// at is the list position of the j-th entry in key order.
func (x sortedIndex[K]) at(j int) int {
	if x.pos == nil {
		return j
	}
	return int(x.pos[j])
}

// find returns the position of the last entry whose key is k, or -1.
func (x sortedIndex[K]) find(k K) int {
	// The first entry whose key is not below k.
	j := sort.Search(x.n, func(j int) bool { return x.key(x.at(j)) >= k })
	if j >= x.n || x.key(x.at(j)) != k {
		return -1
	}
	for j+1 < x.n && x.key(x.at(j+1)) == k {
		j++
	}
	return x.at(j)
}

// each calls fn with the position of each key's last entry, in key order.
func (x sortedIndex[K]) each(fn func(i int)) {
	for j := range x.n {
		if j+1 < x.n && x.key(x.at(j+1)) == x.key(x.at(j)) {
			continue
		}
		fn(x.at(j))
	}
}

// normKey is the key of entry i by normEmail of raw(i). The normal form is
// kept only where it differs from raw (an upper-case letter, a space), so
// that the index holds no copy of 100,000 addresses already lower-case.
func normKey(n int, raw func(i int) string) func(i int) string {
	other := map[int]string{}
	for i := range n {
		if s := raw(i); normEmail(s) != s {
			other[i] = normEmail(s)
		}
	}
	if len(other) == 0 {
		return raw
	}
	return func(i int) string {
		if s, ok := other[i]; ok {
			return s
		}
		return raw(i)
	}
}

// learnUser is the position of the Learn user with this id, or -1.
func (b *builder) learnUser(id string) int { return b.learnByID.find(id) }

// lu is the Learn user at position i, nil for -1.
func (b *builder) lu(i int) *LearnUser {
	if i < 0 {
		return nil
	}
	return &b.in.Actual.Users[i]
}

// employee is the Bitrix24 employee with this id.
func (b *builder) employee(id int64) (*Employee, bool) {
	i := b.emps.find(id)
	if i < 0 {
		return nil, false
	}
	return &b.in.Desired.Employees[i], true
}

// userMapping is the stored mapping of Bitrix24 user id, or nil.
func (b *builder) userMapping(id int64) *Mapping {
	i := b.userMaps.find(id)
	if i < 0 {
		return nil
	}
	return &b.in.Actual.Mappings[i]
}

// userDept is the department employee id sits in in Learn, when they sync.
func (b *builder) userDept(id int64) (int64, bool) {
	i := b.emps.find(id)
	if i < 0 || b.empDept[i] == 0 {
		return 0, false
	}
	return b.empDept[i], true
}

// synced reports whether employee id will exist in Learn.
func (b *builder) synced(id int64) bool {
	i := b.emps.find(id)
	return i >= 0 && b.empSynced[i]
}

func (b *builder) setSynced(id int64) {
	if i := b.emps.find(id); i >= 0 {
		b.empSynced[i] = true
	}
}
