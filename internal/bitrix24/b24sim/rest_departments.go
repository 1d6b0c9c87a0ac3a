package b24sim

// department.get: paging, the filter, and the tree order Bitrix24 answers in.

import (
	"cmp"
	"slices"
	"sort"
	"strings"
)

// page cuts n sorted rows by start as Bitrix24 does: 50 per page, total and
// next for start ≥ 0, neither (total 0, or no key under u.CountlessTotal)
// for start=-1. Only the page is rendered.
func page(n int, render func(i int) map[string]any, params map[string]any, emptyWithoutTotal bool, u Unsettled) (*restOK, *restErr) {
	start := 0
	for _, k := range []string{"start", "START"} {
		if v, ok := params[k]; ok {
			start = int(num(v))
		}
	}
	rows := func(from, to int) []any {
		out := make([]any, 0, to-from)
		for i := from; i < to; i++ {
			out = append(out, render(i))
		}
		return out
	}
	if start < 0 {
		ok := &restOK{result: rows(0, min(n, pageSize)), total: intp(0)}
		if (n == 0 && emptyWithoutTotal) || u.CountlessTotal {
			ok.total = nil
		}
		return ok, nil
	}
	start = min(start, n)
	end := min(n, start+pageSize)
	ok := &restOK{result: rows(start, end), total: intp(n)}
	if end < n {
		ok.next = intp(end)
	}
	if n == 0 && emptyWithoutTotal {
		ok.total = nil // user.get's empty answer has no total (docs/bitrix24-api.md, "Answers")
	}
	return ok, nil
}

// upperKeys upper-cases the keys of a parameter map.
func upperKeys(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !strings.HasPrefix(k, "\x00") {
			out[strings.ToUpper(k)] = v
		}
	}
	return out
}

func (p *Portal) departmentGet(params map[string]any) (*restOK, *restErr) {
	q := upperKeys(params)
	sortBy, order := strings.ToUpper(str(q["SORT"])), strings.ToUpper(str(q["ORDER"]))
	// Unlike user.get, department.get matches filter keys as sent: a key in
	// another case than upper filters nothing, and only an upper-case
	// FILTER array replaces the top-level keys.
	filter := map[string]any{}
	for k, v := range params {
		if !isControl(k) && !strings.HasPrefix(k, "\x00") {
			filter[k] = v
		}
	}
	if f, ok := params["FILTER"].(map[string]any); ok {
		filter = f
	}
	terms := parseFilter(filter)
	var ds []*Department
	switch sortBy {
	case "ID", "NAME", "SORT", "PARENT", "UF_HEAD":
		for _, d := range p.depts {
			if deptMatches(d, terms) {
				ds = append(ds, d)
			}
		}
		sort.Slice(ds, func(i, j int) bool {
			a, b := ds[i], ds[j]
			var less, eq bool
			switch sortBy {
			case "NAME":
				less, eq = a.Name < b.Name, a.Name == b.Name
			case "SORT":
				less, eq = a.Sort < b.Sort, a.Sort == b.Sort
			case "PARENT":
				less, eq = a.Parent < b.Parent, a.Parent == b.Parent
			case "UF_HEAD":
				less, eq = a.Head < b.Head, a.Head == b.Head
			default:
				eq = true
			}
			if eq {
				less = a.ID < b.ID
			}
			if order == "DESC" {
				return !less
			}
			return less
		})
	default:
		ds = matching(p.treeOrder(), terms) // LEFT_MARGIN order: parents before children
	}
	u := p.sim.unsettled()
	return page(len(ds), func(i int) map[string]any {
		d := ds[i]
		row := map[string]any{"ID": u.id(d.ID), "NAME": d.Name, "SORT": d.Sort}
		if d.Parent != 0 { // null keys are left out (unless EmptyValues)
			row["PARENT"] = u.id(d.Parent)
		} else {
			u.noValue(row, "PARENT")
		}
		if d.Head != 0 {
			row["UF_HEAD"] = u.id(d.Head)
		} else {
			u.noValue(row, "UF_HEAD")
		}
		return row
	}, params, false, u)
}

type term struct {
	op, field string
	v         any
}

func parseFilter(f map[string]any) []term {
	out := make([]term, 0, len(f))
	for k, v := range f {
		op, field := splitOp(k)
		out = append(out, term{op, field, v})
	}
	return out
}

func deptMatches(d *Department, terms []term) bool {
	for _, t := range terms {
		op, field, v := t.op, t.field, t.v
		if isEmpty(v) {
			continue
		}
		var have int64
		switch field {
		case "ID":
			have = d.ID
		case "PARENT":
			have = d.Parent
		case "UF_HEAD":
			have = d.Head
		case "SORT":
			have = int64(d.Sort)
		case "NAME":
			if (op == "" || op == "=") && d.Name != str(v) {
				return false
			}
			continue
		default:
			continue
		}
		if !cmpInt(op, have, v) {
			return false
		}
	}
	return true
}

// matching is the departments of ds that match terms, in ds's order; ds
// itself when there is no term (the caller only reads it).
func matching(ds []*Department, terms []term) []*Department {
	if len(terms) == 0 {
		return ds
	}
	var out []*Department
	for _, d := range ds {
		if deptMatches(d, terms) {
			out = append(out, d)
		}
	}
	return out
}

// treeOrder is every department in tree order (s.mu held). It is built once
// after each change to the departments, not on every page: paging through a
// tree of n departments costs n/50 walks of the whole tree otherwise.
func (p *Portal) treeOrder() []*Department {
	if p.deptOrder == nil {
		p.deptOrder = walkTree(p.depts)
	}
	return p.deptOrder
}

// deptsChanged drops the cached tree order (s.mu held). Every change to a
// department or to the set of them calls it, or department.get answers
// with the tree as it was.
func (p *Portal) deptsChanged() { p.deptOrder = nil }

// walkTree sorts departments depth-first, siblings by SORT then ID.
func walkTree(depts map[int64]*Department) []*Department {
	kids := map[int64][]*Department{}
	var roots []*Department
	for _, d := range depts {
		if _, ok := depts[d.Parent]; ok && d.Parent != d.ID {
			kids[d.Parent] = append(kids[d.Parent], d)
		} else {
			roots = append(roots, d)
		}
	}
	bySort := func(l []*Department) {
		sort.Slice(l, func(i, j int) bool {
			if l[i].Sort != l[j].Sort {
				return l[i].Sort < l[j].Sort
			}
			return l[i].ID < l[j].ID
		})
	}
	out := make([]*Department, 0, len(depts))
	seen := map[int64]bool{}
	var walk func(d *Department)
	walk = func(d *Department) {
		if seen[d.ID] {
			return
		}
		seen[d.ID] = true
		out = append(out, d)
		k := kids[d.ID]
		bySort(k)
		for _, c := range k {
			walk(c)
		}
	}
	bySort(roots)
	for _, r := range roots {
		walk(r)
	}
	// Departments no root reaches (a cycle MoveDepartment made, as an
	// on-premise portal's data may hold) are listed too, after the tree:
	// the listing holds every department, as Bitrix24's does.
	var rest []*Department
	for _, d := range depts {
		if !seen[d.ID] {
			rest = append(rest, d)
		}
	}
	slices.SortFunc(rest, func(a, b *Department) int { return cmp.Compare(a.ID, b.ID) })
	return append(out, rest...)
}
