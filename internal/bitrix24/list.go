package bitrix24

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strconv"
)

// PageSize is Bitrix24's fixed page size for list methods.
const PageSize = 50

// DefaultMaxDepartments and DefaultMaxUsers bound a listing (Config), far
// above any real portal.
// The portal's REST endpoint says how many rows there are and whether
// another page follows, and an on-premise portal's owner controls what it
// says: believed without a bound, a claimed total would size the page
// commands and the caller's lists, and full pages that never end would be
// read until memory runs out, in the process that syncs every portal.
const (
	DefaultMaxDepartments = 100_000
	DefaultMaxUsers       = 500_000
)

// ErrListTooLong is a listing that counts, or runs to, more rows than the
// client's bound.
var ErrListTooLong = errors.New("bitrix24 listing longer than any real portal")

// DefaultMaxDepartmentNameBytes bounds the department names of one
// listing (Config.MaxDepartmentNameBytes). A real portal's 100,000
// departments (the most a listing may hold) are named in about 4 MB. A
// self-hosted portal's owner writes its answers, and each name is cut only
// at 1 KiB (maxTextBytes): 100,000 of them, held by every reader of the
// tree at once (a sync, its preview, the settings page, a people search),
// would cost hundreds of megabytes in the process that serves every portal.
const DefaultMaxDepartmentNameBytes = 8 << 20

// ErrOrgTooLarge is an org whose answers hold more than any real portal's:
// department names past the listing's bound, or (the syncer's) employees
// past what a sync keeps.
var ErrOrgTooLarge = errors.New("the Bitrix24 org's answers hold more than any real portal")

// namesWithin is a page callback of one department listing: it counts the
// departments' names as their pages are decoded, and ends the listing with
// ErrOrgTooLarge at the first page past the client's bound, before the next
// pages are asked for. Every listing of departments passes it, so no reader
// of the tree holds more than the bound and a batch.
func (c *Client) namesWithin() func([]Department) error {
	names, depts := 0, 0
	return func(page []Department) error {
		depts += len(page)
		for _, d := range page {
			names += len(d.Name)
		}
		if names > c.cfg.MaxDepartmentNameBytes {
			return fmt.Errorf("list departments: %d read, names over %d bytes: %w", depts, c.cfg.MaxDepartmentNameBytes, ErrOrgTooLarge)
		}
		return nil
	}
}

// checkTotal refuses a claimed total beyond limit.
func checkTotal(what string, total, limit int) error {
	if total > limit {
		return fmt.Errorf("%s: %d counted, at most %d read: %w", what, total, limit, ErrListTooLong)
	}
	return nil
}

// Users lists every user matching filter (FILTER keys such as "ACTIVE",
// "USER_TYPE"; nil for all) ordered by ID.
//
// The first call (start=0) returns the first page and the total. The rest is
// read by keyset paging packed into batches: each command asks for the next 50
// users with ID greater than the last ID of the command before it
// ($result[cK][49][ID]) and start=-1, which skips Bitrix24's COUNT query
// (docs/bitrix24-api.md, "Answers"). Knowing the total sizes the batches, so no
// command runs on an unresolved reference. 10,000 users take 5 requests.
// ADMIN_MODE is sent so that an admin's token also sees extranet users.
func (c *Client) Users(ctx context.Context, filter map[string]any) ([]User, error) {
	params := func(f map[string]any, start int) map[string]any {
		return userParams(f, start)
	}
	limit := c.cfg.MaxUsers
	if n := max(idsNamed(filter["ID"]), idsNamed(filter["@ID"])); n > 0 {
		// A filter by id matches no more users than it names: one
		// person's read, or their heads', is not an org's.
		limit = min(limit, n)
	}
	out, err := listByID(ctx, c, "user.get", filter, limit, params, func(u User) int64 { return u.ID })
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// idsNamed is how many ids a filter value names: the length of a list, 1
// for one value, 0 for none.
func idsNamed(v any) int {
	if v == nil {
		return 0
	}
	if r := reflect.ValueOf(v); r.Kind() == reflect.Slice || r.Kind() == reflect.Array {
		return r.Len()
	}
	return 1
}

// listByID lists method's rows matching filter by keyset paging; more than
// limit rows, counted or read, fail it with ErrListTooLong.
func listByID[T any](ctx context.Context, c *Client, method string, filter map[string]any, limit int,
	params func(f map[string]any, start int) map[string]any, idOf func(T) int64) ([]T, error) {
	var out []T
	env, err := c.CallEnvelope(ctx, method, params(cloneMap(filter), 0))
	if err != nil {
		return nil, err
	}
	if err := checkTotal(method, env.Total, limit); err != nil {
		return nil, err
	}
	last, n, err := addRows(env.Result, 0, &out, idOf)
	if err != nil {
		return nil, err
	}
	if err := checkTotal(method, len(out), limit); err != nil {
		return nil, err
	}
	if !env.HasNext || n < PageSize {
		return out, nil
	}
	// Pages left by the count, plus one so that rows added meanwhile are seen;
	// a full last page keeps the loop going anyway.
	left := (env.Total-PageSize+PageSize-1)/PageSize + 1
	for {
		size := min(max(left, 1), MaxBatch)
		cmds := make([]BatchCommand, size)
		for i := range cmds {
			f := cloneMap(filter)
			if i == 0 {
				f[">ID"] = last
			} else {
				f[">ID"] = fmt.Sprintf("$result[c%d][%d][ID]", i-1, PageSize-1)
			}
			cmds[i] = BatchCommand{Key: "c" + strconv.Itoa(i), Method: method, Params: params(f, -1)}
		}
		res, err := c.Batch(ctx, cmds)
		if err != nil {
			return nil, err
		}
		for _, bc := range cmds {
			if err := res.Err(bc.Key); err != nil {
				return nil, fmt.Errorf("%s page after id %d: %w", method, last, err)
			}
			var rows int
			last, rows, err = addRows(res.Result[bc.Key], last, &out, idOf)
			if err != nil {
				return nil, err
			}
			if rows < PageSize {
				return out, nil
			}
			if err := checkTotal(method, len(out), limit); err != nil {
				return nil, err
			}
		}
		left -= size
	}
}

// addRows appends a page to out and checks that IDs ascend past after: an
// unresolved batch reference would otherwise restart the listing silently.
func addRows[T any](raw json.RawMessage, after int64, out *[]T, idOf func(T) int64) (int64, int, error) {
	rows, last, err := pageRows(raw, after, idOf)
	if err != nil {
		return after, 0, err
	}
	*out = append(*out, rows...)
	return last, len(rows), nil
}

// pageRows decodes a page and checks that its IDs ascend past after; it
// returns the rows and the last ID.
func pageRows[T any](raw json.RawMessage, after int64, idOf func(T) int64) ([]T, int64, error) {
	var rows []T
	if err := decodePage(raw, &rows); err != nil {
		return nil, after, fmt.Errorf("decode rows: %w", err)
	}
	for _, r := range rows {
		id := idOf(r)
		if id <= after {
			return nil, after, fmt.Errorf("rows out of ID order (%d after %d)", id, after)
		}
		after = id
	}
	return rows, after, nil
}

// Departments lists every department in Bitrix24's tree order (parents first).
// department.get's filter handling is not documented well enough to trust
// keyset paging (a FILTER array replaces the whole query, sort included), and
// department counts are small, so it pages by offset: one call for the first
// page and the total, then batches of offset pages (5,000 departments: 3 requests).
// Past the names' bound (Config.MaxDepartmentNameBytes) it fails with
// ErrOrgTooLarge at the batch that passes it.
func (c *Client) Departments(ctx context.Context) ([]Department, error) {
	env, err := c.CallEnvelope(ctx, "department.get", map[string]any{"start": 0})
	if err != nil {
		return nil, fmt.Errorf("list departments: %w", err)
	}
	if err := checkTotal("list departments", env.Total, c.cfg.MaxDepartments); err != nil {
		return nil, err
	}
	var out []Department
	if err := decodePage(env.Result, &out); err != nil {
		return nil, fmt.Errorf("list departments: decode: %w", err)
	}
	each := c.namesWithin()
	if err := each(out); err != nil {
		return nil, err
	}
	if !env.HasNext {
		return out, nil
	}
	if env.Total <= env.Next {
		// No usable total: follow next page by page rather than lose departments.
		rest, err := c.departmentsFrom(ctx, env.Next, each)
		if err != nil {
			return nil, err
		}
		return dedupe(append(out, rest...)), nil
	}
	// Offset pages at 50-row steps up to the bounded count, as in ReadOrg:
	// a next below the first page would ask for pages without bound.
	var cmds []BatchCommand
	for start := PageSize; start < env.Total; start += PageSize {
		cmds = append(cmds, BatchCommand{Key: "d" + strconv.Itoa(start), Method: "department.get", Params: map[string]any{"start": start}})
	}
	for len(cmds) > 0 {
		chunk := cmds[:min(len(cmds), MaxBatch)]
		cmds = cmds[len(chunk):]
		res, err := c.Batch(ctx, chunk)
		if err != nil {
			return nil, fmt.Errorf("list departments: %w", err)
		}
		for _, bc := range chunk {
			if out, err = appendDepartmentPage(out, res, bc.Key, each); err != nil {
				return nil, err
			}
		}
	}
	return dedupe(out), nil
}

// Org lists every department (in Bitrix24's tree order, parents first) and
// every user matching filter (ordered by ID) in as few requests as the page
// size allows: ceil(pages/50) batches in all, where the separate listings
// spend one extra call each to learn their totals.
//
// The first batch carries department.get start=0 (first page and the
// department total), user.get start=0 (first page and the user total) and a
// chain of 48 keyset pages, each asking for users with ID greater than the
// last ID of the command before it ($result[uK][49][ID]) with start=-1. The
// totals then size the remaining batches: the user chain first, department
// offset pages in the room left. When a page comes back short the listing is
// complete and the rest of its batch is ignored, so the commands of a small
// org that ran on a reference to a missing row (which Bitrix24 resolves to an
// empty value) never count.
func (c *Client) Org(ctx context.Context, filter map[string]any) ([]Department, []User, error) {
	var us []User
	ds, err := c.ReadOrg(ctx, filter, OrgPages{Users: func(page []User) error {
		us = append(us, page...)
		return nil
	}})
	if err != nil {
		return nil, nil, err
	}
	return ds, us, nil
}

// OrgPages receives the users of ReadOrg as they arrive.
type OrgPages struct {
	// Totals, when set, is called once, after the first batch, with the
	// departments and users Bitrix24 counted (users 0 when it sent no
	// count): a caller sizes what it reads into, or bounds what depends on
	// the org's size, before the rest of the org is read.
	Totals func(departments, users int)
	// Users is called with each page of users, in ID order; the client keeps
	// no page, so a caller that converts them to its own form never holds
	// the client's form of the whole org. An error ends the read.
	Users func(page []User) error
	// Invited, when set, asks which of the users were invited and have not
	// accepted yet; it is called once, after the last page of users. The
	// first page of the question rides in the first batch (one user page
	// fewer there); its further pages, at most MaxInvitedPages, fill the
	// room of later batches like the department pages.
	Invited func(Invited)
}

// ReadOrg is Org handing the users to p page by page; it returns the
// departments, bounded as Departments' are: past the names' bound the read
// ends with ErrOrgTooLarge at the batch that passes it.
func (c *Client) ReadOrg(ctx context.Context, filter map[string]any, p OrgPages) ([]Department, error) {
	userCmd := func(key string, start int, after any) BatchCommand {
		f := cloneMap(filter)
		if after != nil {
			f[">ID"] = after
		}
		return BatchCommand{Key: key, Method: "user.get", Params: userParams(f, start)}
	}
	chain := func(from, n int, after any) []BatchCommand {
		cmds := make([]BatchCommand, n)
		for i := range cmds {
			if i > 0 {
				after = fmt.Sprintf("$result[%s][%d][ID]", cmds[i-1].Key, PageSize-1)
			}
			cmds[i] = userCmd("u"+strconv.Itoa(from+i), -1, after)
		}
		return cmds
	}

	first := []BatchCommand{
		{Key: "d0", Method: "department.get", Params: map[string]any{"start": 0}},
		userCmd("u0", 0, nil),
	}
	var invited *invitedRead
	if p.Invited != nil {
		invited = &invitedRead{}
		first = append(first, searchCmd(filter, 0))
	}
	first = append(first, chain(1, MaxBatch-len(first), fmt.Sprintf("$result[u0][%d][ID]", PageSize-1))...)
	res, err := c.Batch(ctx, first)
	if err != nil {
		return nil, fmt.Errorf("list org: %w", err)
	}

	if err := checkTotal("list departments", res.Total["d0"], c.cfg.MaxDepartments); err != nil {
		return nil, err
	}
	if err := checkTotal("list users", res.Total["u0"], c.cfg.MaxUsers); err != nil {
		return nil, err
	}
	var ds []Department
	if err := res.Err("d0"); err != nil {
		return nil, fmt.Errorf("list departments: %w", err)
	}
	if err := decodePage(res.Result["d0"], &ds); err != nil {
		return nil, fmt.Errorf("list departments: decode: %w", err)
	}
	each := c.namesWithin()
	if err := each(ds); err != nil {
		return nil, err
	}
	var deptPages []BatchCommand
	if next, ok := res.Next["d0"]; ok {
		total := res.Total["d0"]
		if total <= next {
			// No usable total: follow next page by page rather than lose departments.
			rest, err := c.departmentsFrom(ctx, next, each)
			if err != nil {
				return nil, err
			}
			ds = append(ds, rest...)
		}
		// Offset pages at 50-row steps up to the bounded count: a next
		// below the first page would ask for pages without bound.
		for start := PageSize; start < total; start += PageSize {
			deptPages = append(deptPages, BatchCommand{Key: "d" + strconv.Itoa(start), Method: "department.get",
				Params: map[string]any{"start": start}})
		}
	}

	// The pages of the org not yet read besides the user chain: department
	// and invited users' offset pages, sent in the room the chain leaves.
	extra := deptPages
	if invited != nil {
		invited.users = res.Total["u0"]
		extra = append(extra, invited.first(res, "s0", filter)...)
	}
	if p.Totals != nil {
		p.Totals(max(res.Total["d0"], len(ds)), res.Total["u0"])
	}
	// users hands a page on and says whether it was the last (short).
	var last int64
	var seen int
	users := func(raw json.RawMessage) (bool, error) {
		rows, after, err := pageRows(raw, last, func(u User) int64 { return u.ID })
		if err != nil {
			return false, fmt.Errorf("list users: %w", err)
		}
		last = after
		seen += len(rows)
		if err := checkTotal("list users", seen, c.cfg.MaxUsers); err != nil {
			return false, err
		}
		if len(rows) > 0 {
			if err := p.Users(rows); err != nil {
				return false, err
			}
		}
		return len(rows) < PageSize, nil
	}
	read, done := 0, false
	for _, bc := range first[1:] {
		if bc.Method != "user.get" {
			continue
		}
		if err := res.Err(bc.Key); err != nil {
			return nil, fmt.Errorf("list users: %s page after id %d: %w", bc.Key, last, err)
		}
		short, err := users(res.Result[bc.Key])
		if err != nil {
			return nil, err
		}
		read++
		if short {
			done = true
			break
		}
	}
	// Pages left by the count, plus one so that rows added meanwhile are seen;
	// a full last page keeps the chain going anyway.
	left := (res.Total["u0"]+PageSize-1)/PageSize - read + 1
	if res.Total["u0"] == 0 {
		left = MaxBatch // no count: full batches until a short page
	}
	for !done || len(extra) > 0 {
		var cmds []BatchCommand
		if !done {
			cmds = chain(read, min(max(left, 1), MaxBatch), last)
		}
		room := min(MaxBatch-len(cmds), len(extra))
		cmds = append(cmds, extra[:room]...)
		extra = extra[room:]
		res, err := c.Batch(ctx, cmds)
		if err != nil {
			return nil, fmt.Errorf("list org: %w", err)
		}
		chained := 0
		for _, bc := range cmds {
			switch bc.Method {
			case "department.get":
				if ds, err = appendDepartmentPage(ds, res, bc.Key, each); err != nil {
					return nil, err
				}
				continue
			case "user.search":
				invited.page(res, bc.Key)
				continue
			}
			if done {
				continue // past the end of the users: unresolved references
			}
			if err := res.Err(bc.Key); err != nil {
				return nil, fmt.Errorf("list users: page after id %d: %w", last, err)
			}
			short, err := users(res.Result[bc.Key])
			if err != nil {
				return nil, err
			}
			read++
			chained++
			done = short
		}
		left -= chained
	}
	if invited != nil {
		p.Invited(invited.result())
	}
	return dedupe(ds), nil
}

// Invited asks, as ReadOrg's OrgPages.Invited does for the whole org,
// which users among those filter matches were invited and have not accepted
// yet: the listing's count and the question's first page in one batch, its
// further pages (at most MaxInvitedPages) in as few more as they fit. The
// question is believed only against the count of the same filter, so a
// caller that wants one user's answer asks about the whole listing and
// looks for them in it.
func (c *Client) Invited(ctx context.Context, filter map[string]any) (Invited, error) {
	res, err := c.Batch(ctx, []BatchCommand{
		{Key: "u0", Method: "user.get", Params: userParams(cloneMap(filter), 0)},
		searchCmd(filter, 0),
	})
	if err != nil {
		return Invited{}, fmt.Errorf("invited users: %w", err)
	}
	if err := res.Err("u0"); err != nil {
		return Invited{}, fmt.Errorf("invited users: count: %w", err)
	}
	r := &invitedRead{users: res.Total["u0"]}
	for rest := r.first(res, "s0", filter); len(rest) > 0; {
		n := min(MaxBatch, len(rest))
		res, err := c.Batch(ctx, rest[:n])
		if err != nil {
			return Invited{}, fmt.Errorf("invited users: %w", err)
		}
		for _, bc := range rest[:n] {
			r.page(res, bc.Key)
		}
		rest = rest[n:]
	}
	return r.result(), nil
}

// departmentsFrom follows department.get's next from offset start, one call per
// page, for a portal that does not send a usable total; each (nil: none)
// sees each page as OrgPages.Departments does.
func (c *Client) departmentsFrom(ctx context.Context, start int, each func([]Department) error) ([]Department, error) {
	return followNext(ctx, c, "list departments", "department.get", start, c.cfg.MaxDepartments, true, func(start int) map[string]any {
		return map[string]any{"start": start}
	}, each)
}

// dedupe keeps the first sighting of each department: offset pages overlap
// when the tree changes during the listing.
func dedupe(ds []Department) []Department {
	seen := make(map[int64]bool, len(ds))
	uniq := ds[:0]
	for _, d := range ds {
		if !seen[d.ID] {
			seen[d.ID] = true
			uniq = append(uniq, d)
		}
	}
	return uniq
}

// UserSelect is the key of a user filter that is not a filter: its value
// (a list of field codes) is sent as user.get's top-level select. Bitrix24
// reads SELECT before a FILTER array replaces the top-level keys
// (docs/bitrix24-api.md, "user.get select").
const UserSelect = "SELECT"

// userParams are the parameters of a user.get page: f as the filter, less
// UserSelect, which becomes the select.
func userParams(f map[string]any, start int) map[string]any {
	p := map[string]any{"FILTER": f, "SORT": "ID", "ORDER": "ASC", "ADMIN_MODE": true, "start": start}
	if sel, ok := f[UserSelect]; ok {
		delete(f, UserSelect)
		p["SELECT"] = sel
	}
	return p
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	maps.Copy(out, m)
	return out
}

// appendDepartmentPage appends the departments of one department.get page
// of a batch's answer, shown first to each (nil: none).
func appendDepartmentPage(out []Department, res *BatchResult, key string, each func([]Department) error) ([]Department, error) {
	if err := res.Err(key); err != nil {
		return nil, fmt.Errorf("list departments: %w", err)
	}
	var page []Department
	if err := decodePage(res.Result[key], &page); err != nil {
		return nil, fmt.Errorf("list departments: decode: %w", err)
	}
	if each != nil {
		if err := each(page); err != nil {
			return nil, err
		}
	}
	return append(out, page...), nil
}
