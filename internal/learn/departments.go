package learn

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// pageSize for token-paged lists: Learn's documented default (no maximum is
// documented; a smaller page is followed by its token like any other).
const pageSize = 1000

// bulkChunk caps the IDs sent in one bulk call (no documented limit; keep bodies small).
const bulkChunk = 500

// post sends body to a write endpoint whose answer (200 or 204) says no
// more than that it worked; what names the call in errors.
func (c *Client) post(ctx context.Context, what, route, path string, body any) error {
	if _, err := c.do(ctx, request{method: http.MethodPost, route: route, path: path, body: body}); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// bulk posts ids to a bulk endpoint, bulkChunk of them a call, each in the
// body that body makes of them.
func (c *Client) bulk(ctx context.Context, what, route, path string, ids []string, body func(chunk []string) any) error {
	for chunk := range slices.Chunk(ids, bulkChunk) {
		if err := c.post(ctx, what, route, path, body(chunk)); err != nil {
			return err
		}
	}
	return nil
}

// ListDepartments returns every department of the account, root included,
// reading all pages of GET /departments under LimitsFor(0); see ListDepartmentsWithin.
func (c *Client) ListDepartments(ctx context.Context) ([]Department, error) {
	return c.ListDepartmentsWithin(ctx, LimitsFor(0))
}

// ListDepartmentsWithin is ListDepartments under lim; crossing it fails with a *LimitError.
func (c *Client) ListDepartmentsWithin(ctx context.Context, lim Limits) ([]Department, error) {
	var all []Department
	l := &pageList[Department]{c: c, what: "departments", route: "/departments", key: "departments", lim: lim}
	err := l.run(ctx, nil, func(page []Department) error {
		all = append(all, page...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list departments: %w", err)
	}
	return all, nil
}

// FindDepartmentsByCode returns the departments whose code is code (GET /department?code=).
// Learn does not promise codes are unique, hence a list.
func (c *Client) FindDepartmentsByCode(ctx context.Context, code string) ([]Department, error) {
	res, err := c.do(ctx, request{method: http.MethodGet, route: "/department", path: "/department",
		query: url.Values{"code": {code}}})
	if err != nil {
		return nil, fmt.Errorf("find department by code: %w", err)
	}
	list, err := decodeDepartmentList("/department", res.body)
	if err != nil {
		return nil, fmt.Errorf("find department by code: %w", err)
	}
	// Filter again: whether the server matches exactly is not documented.
	var match []Department
	for _, d := range list {
		if d.Code == code {
			match = append(match, d)
		}
	}
	return match, nil
}

// decodeDepartmentList reads the answer of GET /department: {"departments":[…]}
// in JSON (a bare list is taken too), every <department> in XML.
func decodeDepartmentList(route string, body []byte) ([]Department, error) {
	b := bytes.TrimSpace(body)
	if err := countDepartments(route, b); err != nil {
		return nil, err
	}
	var list []Department
	if len(b) > 0 && (b[0] == '<' || b[0] == '[') {
		if err := decode(route, b, &list); err != nil {
			return nil, err
		}
		return list, nil
	}
	var out struct {
		Departments []Department `json:"departments"`
	}
	if err := decode(route, b, &out); err != nil {
		return nil, err
	}
	return out.Departments, nil
}

// maxFoundDepartments bounds the answer of GET /department?code=: a few
// departments share a code at most, but whether Learn filters exactly is
// not known, so it may be many; as many as a listing may always hold.
const maxFoundDepartments = limitFloorObjects

// countDepartments refuses a JSON list of departments longer than
// maxFoundDepartments before it is decoded: a list of empty structs holds
// nothing, while 1 MiB of empty departments ({},{},…) decoded to 243 MB,
// once per create whose answer was lost. An XML answer is too small to
// matter (maxXMLAnswerBytes).
func countDepartments(route string, b []byte) error {
	var n int
	switch {
	case len(b) == 0 || b[0] == '<':
		return nil
	case b[0] == '[':
		var list []struct{}
		if decode(route, b, &list) != nil {
			return nil // decoding it says what is wrong
		}
		n = len(list)
	default:
		var out struct {
			Departments []struct{} `json:"departments"`
		}
		if decode(route, b, &out) != nil {
			return nil
		}
		n = len(out.Departments)
	}
	if n > maxFoundDepartments {
		return &LimitError{Limit: LimitObjects, What: "departments", Value: maxFoundDepartments}
	}
	return nil
}

// GetDepartment reads one department. An unknown ID is ErrNotFound, or a
// *ValidationError where Learn answers 400 (its API description lists no 404
// for this route; docs/learn-api.md, "Unsettled behaviour").
func (c *Client) GetDepartment(ctx context.Context, id string) (Department, error) {
	return getOne[Department](ctx, c, "get department", "/department/{id}", "/department/"+url.PathEscape(id))
}

// getOne reads the object at path; route is its pattern, op names the call in errors.
func getOne[T any](ctx context.Context, c *Client, op, route, path string) (T, error) {
	var zero, v T
	res, err := c.do(ctx, request{method: http.MethodGet, route: route, path: path})
	if err != nil {
		return zero, fmt.Errorf("%s: %w", op, err)
	}
	if err := decode(route, res.body, &v); err != nil {
		return zero, fmt.Errorf("%s: %w", op, err)
	}
	return v, nil
}

// CreateDepartment creates a department and returns its ID.
//
// A create is not idempotent. When the answer is lost (5xx, timeout) and d.Code is
// set, the client looks the code up: an existing department with that code and
// parent is returned as the result, otherwise the create is sent again. Without a
// code, such a failure returns an error matching ErrMaybeCreated: the caller must
// look before it creates again.
//
// When Learn refuses a create that carries a code and the refusal may be
// about the code (see codeRefusal), the create is sent once more without it.
func (c *Client) CreateDepartment(ctx context.Context, d NewDepartment) (string, error) {
	id, err := c.createDepartment(ctx, d)
	// A refusal after a lost answer may be for the department that attempt
	// made: another create would make it twice.
	if err != nil && d.Code != "" && !errors.Is(err, ErrMaybeCreated) && c.withoutCode(ctx, err, "create department") {
		d.Code = ""
		return c.createDepartment(ctx, d)
	}
	return id, err
}

// createDepartment sends one create of d, found by code if its answer is lost.
func (c *Client) createDepartment(ctx context.Context, d NewDepartment) (string, error) {
	var lookup func(context.Context) (string, error)
	if d.Code != "" {
		lookup = func(ctx context.Context) (string, error) {
			found, err := c.FindDepartmentsByCode(ctx, d.Code)
			if err != nil {
				return "", err
			}
			for _, f := range found {
				if f.ParentID == d.ParentID {
					return f.ID, nil
				}
			}
			return "", nil
		}
	}
	return c.create(ctx, "create department", "/department", d, "departmentId", lookup)
}

// UpdateDepartment renames, re-codes or moves a department (200 or 204).
// An update refused while it carries a code, when the refusal may be about
// the code (see codeRefusal), is sent once more without it; one that sent
// only the code is then done, the department keeping the code it had.
func (c *Client) UpdateDepartment(ctx context.Context, id string, u DepartmentUpdate) error {
	err := c.post(ctx, "update department", "/department/{id}", "/department/"+url.PathEscape(id), u)
	if err != nil && u.Code != "" && c.withoutCode(ctx, err, "update department") {
		if u.Code = ""; u == (DepartmentUpdate{}) {
			return nil
		}
		return c.post(ctx, "update department", "/department/{id}", "/department/"+url.PathEscape(id), u)
	}
	return err
}

// SetDepartmentSubordination sets a department's supervisor (sub) and functional
// manager (co); a nil value is left unchanged. Learn may reset a link a request
// leaves out, so a nil link is sent as the department has it (see sendLinks):
// as listed shows it, when the caller listed the department, otherwise as a
// read of it shows. A listing that left that link out (listed's link nil) is
// read over, except on the root, where a missing link is no manager.
func (c *Client) SetDepartmentSubordination(ctx context.Context, id string, sub, co *Subordination, listed *Links) error {
	const what, route = "set department subordination", "/department/{id}/subordination"
	path := "/department/" + url.PathEscape(id) + "/subordination"
	if (sub == nil) == (co == nil) {
		return c.post(ctx, what, route, path, links(sub, co))
	}
	if !listed.shows(sub == nil, co == nil) {
		d, err := c.GetDepartment(ctx, id)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		listed = &Links{Subordination: d.Subordination, CoSubordination: d.CoSubordination, Root: d.ParentID == ""}
	}
	return c.sendLinks(ctx, what, route, path, sub, co,
		currentLink(listed.Subordination, listed.Root), currentLink(listed.CoSubordination, listed.Root))
}

// Links are a department's or user's two manager links as the caller
// listed them (a nil link: the listing left it out), so that a request
// setting one of them sends the other back without reading the object
// first. A sync run lists every department and user before it writes.
type Links struct {
	Subordination, CoSubordination *Subordination
	// Root: the object is the account's root department, whose missing
	// link is no manager (docs/learn-api.md, "Unsettled behaviour").
	Root bool
}

// shows reports whether l holds the links a request sends back: the
// supervisor (sub) and the functional manager (co) as asked.
func (l *Links) shows(sub, co bool) bool {
	return l != nil && (l.Root || (!sub || l.Subordination != nil) && (!co || l.CoSubordination != nil))
}

// links is the body of a subordination request; a nil link is left out.
func links(sub, co *Subordination) map[string]*Subordination {
	body := map[string]*Subordination{}
	if sub != nil {
		body["subordination"] = sub
	}
	if co != nil {
		body["coSubordination"] = co
	}
	return body
}

// sendLinks sends a subordination request whose nil links (sub, co) are
// filled with the object's links as read (curSub, curCo): the API
// description makes each link optional without saying what becomes of the
// one left out, and Learn may reset it (docs/learn-api.md, "Unsettled
// behaviour"). A manager read back that Learn refuses to take again (one who
// left since, when Learn keeps such links) makes the request go once more
// as asked, with the link left out.
func (c *Client) sendLinks(ctx context.Context, what, route, path string, sub, co, curSub, curCo *Subordination) error {
	echoed := sub == nil && curSub.Type == SubordinationManual || co == nil && curCo.Type == SubordinationManual
	full := links(cmp.Or(sub, curSub), cmp.Or(co, curCo))
	err := c.post(ctx, what, route, path, full)
	var ve *ValidationError
	if err == nil || !echoed || !errors.As(err, &ve) {
		return err
	}
	return c.post(ctx, what, route, path, links(sub, co))
}

// currentLink is a link as read, to be sent back: a link left out or
// without a type is inherit, and on the account's root (root), which
// inherits from nothing, no_supervisor, as is an inherit there.
func currentLink(s *Subordination, root bool) *Subordination {
	switch {
	case s == nil || s.Type == "" || root && s.Type == SubordinationInherit:
		if root {
			return &Subordination{Type: SubordinationNoSupervisor}
		}
		return &Subordination{Type: SubordinationInherit}
	case s.Type != SubordinationManual:
		return &Subordination{Type: s.Type}
	}
	return &Subordination{Type: s.Type, SupervisorID: s.SupervisorID}
}
