package server

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"b24learn/internal/bitrix24"
	"b24learn/internal/store"
)

// orgDept is one department of the portal's tree with its number of active
// employees (direct members, not counting sub-departments).
type orgDept struct {
	ID        int64
	Parent    int64
	Name      string
	Sort      int
	Employees int
}

// orgSource reads a portal's department tree from Bitrix24.
type orgSource interface {
	OrgTree(ctx context.Context, p store.Portal) ([]orgDept, error)
}

// bitrix24Org lists departments and active employees through a Bitrix24
// client of the portal.
type bitrix24Org struct {
	client func(ctx context.Context, p store.Portal) (*bitrix24.Client, error)
}

// portalB24Client is the portal's client from the shared connect.Factory:
// its stored tokens through connect.Tokens (refreshes serialised across
// processes by a row lock), the portal's rate limiter shared with the
// syncs of this process, and the call log.
func (s *Server) portalB24Client(ctx context.Context, p store.Portal) (*bitrix24.Client, error) {
	return s.clients.Bitrix24(ctx, p.ID)
}

func (o bitrix24Org) OrgTree(ctx context.Context, p store.Portal) ([]orgDept, error) {
	c, err := o.client(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("bitrix24 client: %w", err)
	}
	// One pass of shared batches reads both lists (a few requests even for
	// large portals), leaving the portal's budget to the syncs. The users
	// are counted page by page and let go: a self-hosted portal's owner
	// writes its answers, and half a million users of kilobytes each, kept
	// until the read ends, would fill the process that serves every portal.
	// The departments' names are bounded by the client, as every listing
	// of them is (bitrix24.ErrOrgTooLarge): every open of the page renders
	// them into it.
	var n employeeCounts
	ds, err := c.ReadOrg(ctx, map[string]any{"ACTIVE": true}, bitrix24.OrgPages{
		Users: func(page []bitrix24.User) error {
			n.add(page)
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return n.depts(ds), nil
}

// employeeCounts is the number of active, non-extranet users in each
// department they belong to, for at most bitrix24.DefaultMaxDepartments
// departments: more ids than a listing may hold departments name none of
// them, and are not counted.
type employeeCounts map[int64]int

func (n *employeeCounts) add(us []bitrix24.User) {
	if *n == nil {
		*n = employeeCounts{}
	}
	for _, u := range us {
		if !u.Active || u.IsExtranet() {
			continue
		}
		for _, d := range u.Departments {
			if _, ok := (*n)[d]; ok || len(*n) < bitrix24.DefaultMaxDepartments {
				(*n)[d]++
			}
		}
	}
}

// depts joins the departments with their counts.
func (n employeeCounts) depts(ds []bitrix24.Department) []orgDept {
	out := make([]orgDept, len(ds))
	for i, d := range ds {
		out[i] = orgDept{ID: d.ID, Parent: d.Parent, Name: d.Name, Sort: d.Sort, Employees: n[d.ID]}
	}
	return out
}

// treeJSON is the tree as the page's script reads it: parallel arrays in
// depth-first pre-order (a parent before its children, each subtree
// contiguous), parents as indexes into the arrays (-1 for a root). Arrays of
// numbers and strings keep 5,000 departments near 150 KB of JSON.
type treeJSON struct {
	ID     []int64  `json:"i"`
	Parent []int    `json:"p"`
	Name   []string `json:"n"`
	Count  []int    `json:"c"`
}

// buildTree orders the departments depth-first, children by Bitrix24's SORT,
// then name, then id. A department whose parent is unknown, or that sits in a
// parent cycle, is shown as a root so that nothing disappears.
func buildTree(ds []orgDept) treeJSON {
	byID := make(map[int64]int, len(ds))
	for i, d := range ds {
		if _, dup := byID[d.ID]; !dup {
			byID[d.ID] = i
		}
	}
	children := make(map[int64][]int, len(ds))
	var roots []int
	for i, d := range ds {
		if byID[d.ID] != i {
			continue // duplicate id
		}
		if _, ok := byID[d.Parent]; ok && d.Parent != d.ID {
			children[d.Parent] = append(children[d.Parent], i)
		} else {
			roots = append(roots, i)
		}
	}
	order := func(a, b int) int {
		return cmp.Or(cmp.Compare(ds[a].Sort, ds[b].Sort), cmp.Compare(ds[a].Name, ds[b].Name), cmp.Compare(ds[a].ID, ds[b].ID))
	}
	t := treeJSON{
		ID: make([]int64, 0, len(ds)), Parent: make([]int, 0, len(ds)),
		Name: make([]string, 0, len(ds)), Count: make([]int, 0, len(ds)),
	}
	visited := make([]bool, len(ds))
	type frame struct{ node, parentIdx int }
	var stack []frame
	walk := func(root int) {
		stack = append(stack[:0], frame{root, -1})
		for len(stack) > 0 {
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if visited[f.node] {
				continue
			}
			visited[f.node] = true
			idx := len(t.ID)
			d := ds[f.node]
			t.ID = append(t.ID, d.ID)
			t.Parent = append(t.Parent, f.parentIdx)
			t.Name = append(t.Name, d.Name)
			t.Count = append(t.Count, d.Employees)
			kids := children[d.ID]
			slices.SortFunc(kids, order)
			for i := len(kids) - 1; i >= 0; i-- { // reversed: the stack pops the first child first
				stack = append(stack, frame{kids[i], idx})
			}
		}
	}
	slices.SortFunc(roots, order)
	for _, r := range roots {
		walk(r)
	}
	// Departments only reachable through a cycle: cut the cycle at the
	// lowest-sorted one.
	var rest []int
	for i := range ds {
		if !visited[i] && byID[ds[i].ID] == i {
			rest = append(rest, i)
		}
	}
	slices.SortFunc(rest, order)
	for _, r := range rest {
		walk(r)
	}
	return t
}
