package learn

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"b24learn/internal/learn/learnsim"
)

// The sample traffic in testdata/samples (see its README) is the contract:
// TestGoldenClient has the client decode every sample answer and send requests
// of the samples' shape; TestGoldenSim has learnsim answer every sample request
// with the sample answer's shape.

func sample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// shape is the structure of a JSON or XML document. XML elements with children
// are objects, repeated elements lists, text-only elements leaves of kind "text".
type shape struct {
	kind     string // object, list, string, number, bool, null, text
	keys     map[string]*shape
	items    []*shape
	repeated bool // a list of repeated XML elements
}

func (s *shape) String() string {
	switch s.kind {
	case "object":
		names := make([]string, 0, len(s.keys))
		for k, v := range s.keys {
			names = append(names, k+":"+v.String())
		}
		sort.Strings(names)
		return "{" + strings.Join(names, ",") + "}"
	case "list":
		parts := make([]string, len(s.items))
		for i, v := range s.items {
			parts[i] = v.String()
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return s.kind
}

func jsonShape(t *testing.T, doc string) *shape {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %q", err, doc)
	}
	var conv func(any) *shape
	conv = func(v any) *shape {
		switch x := v.(type) {
		case map[string]any:
			s := &shape{kind: "object", keys: map[string]*shape{}}
			for k, e := range x {
				s.keys[k] = conv(e)
			}
			return s
		case []any:
			s := &shape{kind: "list"}
			for _, e := range x {
				s.items = append(s.items, conv(e))
			}
			return s
		case string:
			return &shape{kind: "string"}
		case json.Number:
			return &shape{kind: "number"}
		case bool:
			return &shape{kind: "bool"}
		}
		return &shape{kind: "null"}
	}
	return conv(v)
}

// xmlShape returns the shape of the root element's content, keyed by the root's name.
func xmlShape(t *testing.T, doc string) *shape {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(doc))
	var elem func(xml.StartElement) (*shape, error)
	elem = func(xml.StartElement) (*shape, error) {
		var s *shape
		for {
			tok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			switch x := tok.(type) {
			case xml.StartElement:
				c, err := elem(x)
				if err != nil {
					return nil, err
				}
				if s == nil {
					s = &shape{kind: "object", keys: map[string]*shape{}}
				}
				switch prev := s.keys[x.Name.Local]; {
				case prev == nil:
					s.keys[x.Name.Local] = c
				case prev.repeated:
					prev.items = append(prev.items, c)
				default:
					s.keys[x.Name.Local] = &shape{kind: "list", items: []*shape{prev, c}, repeated: true}
				}
			case xml.EndElement:
				if s == nil {
					return &shape{kind: "text"}, nil
				}
				return s, nil
			}
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("not XML: %v: %q", err, doc)
		}
		if se, ok := tok.(xml.StartElement); ok {
			s, err := elem(se)
			if err != nil {
				t.Fatalf("not XML: %v: %q", err, doc)
			}
			return &shape{kind: "object", keys: map[string]*shape{se.Name.Local: s}}
		}
	}
}

func docShape(t *testing.T, doc string) *shape {
	t.Helper()
	if strings.HasPrefix(strings.TrimSpace(doc), "<") {
		return xmlShape(t, doc)
	}
	return jsonShape(t, doc)
}

// sameShape reports where got differs from want. Every member of want must be
// in got with the same kind; with exact, got may have no others and lists must
// have as many items. A "text" leaf (XML) matches any scalar.
func sameShape(path string, want, got *shape, exact bool) []string {
	scalar := func(k string) bool { return k != "object" && k != "list" }
	switch {
	case scalar(want.kind) && scalar(got.kind):
		if want.kind != got.kind && want.kind != "text" && got.kind != "text" {
			return []string{fmt.Sprintf("%s: %s, want %s", path, got.kind, want.kind)}
		}
		return nil
	case want.kind != got.kind:
		return []string{fmt.Sprintf("%s: %s, want %s", path, got, want)}
	}
	var diffs []string
	if want.kind == "object" {
		for k, w := range want.keys {
			g, ok := got.keys[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			diffs = append(diffs, sameShape(path+"."+k, w, g, exact)...)
		}
		if exact {
			for k := range got.keys {
				if _, ok := want.keys[k]; !ok {
					diffs = append(diffs, fmt.Sprintf("%s.%s: not in the sample", path, k))
				}
			}
		}
		return diffs
	}
	if exact && len(got.items) != len(want.items) || len(want.items) > 0 && len(got.items) == 0 {
		return []string{fmt.Sprintf("%s: %d items, want %d", path, len(got.items), len(want.items))}
	}
	for i, w := range want.items {
		diffs = append(diffs, sameShape(fmt.Sprintf("%s[%d]", path, i), w, got.items[min(i, len(got.items)-1)], exact)...)
	}
	return diffs
}

func checkShape(t *testing.T, what, want, got string, exact bool) {
	t.Helper()
	if diffs := sameShape(what, docShape(t, want), docShape(t, got), exact); len(diffs) > 0 {
		t.Errorf("%s: shape differs from the sample:\n  %s\ngot:  %s\nwant: %s", what, strings.Join(diffs, "\n  "), got, want)
	}
}

// --- the client against the samples ---

type recorded struct {
	method, path string
	query        url.Values
	header       http.Header
	body         string
}

type canned struct {
	status int
	body   string
}

// sampleServer answers "METHOD /path" with canned answers in turn (the last one
// repeats) and records every request.
type sampleServer struct {
	mu      sync.Mutex
	answers map[string][]canned
	reqs    []recorded
}

func (s *sampleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.Path
	s.mu.Lock()
	s.reqs = append(s.reqs, recorded{method: r.Method, path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone(), body: string(b)})
	list := s.answers[key]
	var a canned
	if len(list) > 0 {
		a = list[0]
		if len(list) > 1 {
			s.answers[key] = list[1:]
		}
	}
	s.mu.Unlock()
	if a.status == 0 {
		http.Error(w, "no sample for "+key, http.StatusTeapot)
		return
	}
	switch {
	case strings.HasPrefix(a.body, "<"):
		w.Header().Set("Content-Type", "application/xml")
	case a.body != "":
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (s *sampleServer) last(t *testing.T, method, path string) recorded {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.reqs) - 1; i >= 0; i-- {
		if s.reqs[i].method == method && s.reqs[i].path == path {
			return s.reqs[i]
		}
	}
	t.Fatalf("no %s %s was sent", method, path)
	return recorded{}
}

func newSampleClient(t *testing.T, answers map[string][]canned) (*Client, *sampleServer) {
	t.Helper()
	ss := &sampleServer{answers: answers}
	srv := httptest.NewServer(ss)
	t.Cleanup(srv.Close)
	c, err := New(Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword},
		Options{BaseURL: srv.URL, AllowHTTP: true, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	return c, ss
}

func TestGoldenClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const (
		rootID  = "b00ba37c-5b6f-11e9-bb45-0a580af40556"
		salesID = "d479bc48-5b70-11e9-b123-22e9fbac4a59"
		supID   = "0ccca211-b60f-11ea-bc49-028d9ecdf612"
		page2ID = "815b8b98-0612-11ea-9bd6-0a580af40788"
		token   = "ODE1YjhiOTgtMDYxMi0xMWVhLTliZDYtMGE1ODBhZjQwNzg4"
	)
	wantRoot := Department{ID: rootID, Name: "Acme",
		Subordination: &Subordination{Type: SubordinationNoSupervisor}, CoSubordination: &Subordination{Type: SubordinationNoSupervisor}}
	wantSales := Department{ID: salesID, Name: "Sales Department", ParentID: rootID, Code: "5",
		Subordination: &Subordination{Type: SubordinationInherit}, CoSubordination: Manual(supID)}
	checkDept := func(t *testing.T, what string, got, want Department) {
		t.Helper()
		if got.ID != want.ID || got.Name != want.Name || got.ParentID != want.ParentID || got.Code != want.Code ||
			!got.Subordination.Equal(want.Subordination) || !got.CoSubordination.Equal(want.CoSubordination) ||
			got.CoSubordination.SupervisorID != want.CoSubordination.SupervisorID {
			t.Errorf("%s: got %+v (%+v, %+v), want %+v", what, got, got.Subordination, got.CoSubordination, want)
		}
	}
	wantFields := Fields{FieldLogin: "ivan.petrov@acme.ru", FieldEmail: "ivan.petrov@acme.ru", FieldFirstName: "Иван",
		FieldLastName: "Петров", FieldJobTitle: "Менеджер"}
	checkUser := func(t *testing.T, what string, u User, added string) {
		t.Helper()
		if u.ID != "f29d887c-…" || u.DepartmentID != "d48bd4fa-…" || u.Status != StatusActive || u.Role != "learner" ||
			u.AddedDate != added || !u.Subordination.Equal(&Subordination{Type: SubordinationInherit}) ||
			!u.CoSubordination.Equal(&Subordination{Type: SubordinationInherit}) || len(u.Fields) != len(wantFields) {
			t.Errorf("%s: %+v", what, u)
		}
		for k, v := range wantFields {
			if u.Fields[k] != v {
				t.Errorf("%s: field %s = %q, want %q", what, k, u.Fields[k], v)
			}
		}
	}

	t.Run("11.1 header auth and its refusal", func(t *testing.T) {
		t.Parallel()
		c, ss := newSampleClient(t, map[string][]canned{
			"GET /department/x":  {{401, sample(t, "11.1-auth-refused.response.json")}},
			"POST /department/x": {{204, ""}},
		})
		_, err := c.GetDepartment(ctx, "x")
		var ae *APIError
		if !errors.Is(err, ErrBadCredentials) || !errors.As(err, &ae) || ae.Code != 401 || ae.Message != "…" {
			t.Fatalf("refusal: %v", err)
		}
		if err := c.UpdateDepartment(ctx, "x", DepartmentUpdate{Name: "n"}); err != nil {
			t.Fatal(err)
		}
		// The headers of the sample, with its values (the same account and admin).
		for _, line := range strings.Split(sample(t, "11.1-auth.request.txt"), "\n") {
			name, val, _ := strings.Cut(line, ":")
			val, _, _ = strings.Cut(val, "#")
			if got := ss.last(t, "POST", "/department/x").header.Get(name); got != strings.TrimSpace(val) {
				t.Errorf("header %s = %q, want %q", name, got, strings.TrimSpace(val))
			}
		}
	})

	t.Run("11.3 departments in XML", func(t *testing.T) {
		t.Parallel()
		list, err := decodeDepartmentList("/department", []byte(sample(t, "11.3-departments.response.xml")))
		if err != nil || len(list) != 2 {
			t.Fatalf("decode: %v %+v", err, list)
		}
		checkDept(t, "root", list[0], wantRoot)
		checkDept(t, "sales", list[1], wantSales)
		c, ss := newSampleClient(t, map[string][]canned{"GET /department": {{200, sample(t, "11.3-departments.response.xml")}}})
		found, err := c.FindDepartmentsByCode(ctx, "5")
		if err != nil || len(found) != 1 {
			t.Fatalf("find by code: %v %+v", err, found)
		}
		checkDept(t, "found", found[0], wantSales)
		if q := ss.last(t, "GET", "/department").query; q.Get("code") != "5" {
			t.Errorf("query %v", q)
		}
	})

	t.Run("11.4 departments in pages", func(t *testing.T) {
		t.Parallel()
		c, ss := newSampleClient(t, map[string][]canned{"GET /departments": {
			{200, sample(t, "11.4-departments-page1.response.json")}, {200, sample(t, "11.4-departments-page2.response.json")}}})
		list, err := c.ListDepartments(ctx)
		if err != nil || len(list) != 3 {
			t.Fatalf("list: %v %+v", err, list)
		}
		checkDept(t, "root", list[0], wantRoot)
		checkDept(t, "sales", list[1], wantSales)
		checkDept(t, "page 2", list[2], Department{ID: page2ID, Name: "Sales", ParentID: salesID, Code: "b24-portal1-17",
			Subordination: &Subordination{Type: SubordinationInherit}, CoSubordination: &Subordination{Type: SubordinationInherit}})
		if q := ss.last(t, "GET", "/departments").query; q.Get("pageToken") != token || q.Get("pageSize") == "" {
			t.Errorf("second page asked with %v", q)
		}
	})

	t.Run("11.5 create a department", func(t *testing.T) {
		t.Parallel()
		c, ss := newSampleClient(t, map[string][]canned{"POST /department": {
			{201, sample(t, "11.5-create-department.response.xml")}, {201, sample(t, "11.5-create-department.response.json")}}})
		nd := NewDepartment{Name: "Sales", ParentID: rootID, Code: "b24-portal1-17"}
		if id, err := c.CreateDepartment(ctx, nd); err != nil || id != "d48bd4fa-5b70-11e9-b12b-22e9fbac4a59" {
			t.Errorf("XML answer: %q %v", id, err)
		}
		if id, err := c.CreateDepartment(ctx, nd); err != nil || id != "d48bd4fa-…" {
			t.Errorf("JSON answer: %q %v", id, err)
		}
		checkShape(t, "request", sample(t, "11.5-create-department.request.json"), ss.last(t, "POST", "/department").body, true)
	})

	t.Run("11.6 update a department", func(t *testing.T) {
		t.Parallel()
		c, ss := newSampleClient(t, map[string][]canned{
			"POST /department/d48": {{204, ""}},
		})
		if err := c.UpdateDepartment(ctx, "d48", DepartmentUpdate{Name: "Sales EMEA", ParentID: salesID}); err != nil {
			t.Fatal(err)
		}
		checkShape(t, "request", sample(t, "11.6-update-department.request.json"), ss.last(t, "POST", "/department/d48").body, true)
	})

	t.Run("11.7 department subordination", func(t *testing.T) {
		t.Parallel()
		c, ss := newSampleClient(t, map[string][]canned{"POST /department/d48/subordination": {{204, ""}}})
		if err := c.SetDepartmentSubordination(ctx, "d48", Manual(supID), &Subordination{Type: SubordinationNoSupervisor}, nil); err != nil {
			t.Fatal(err)
		}
		checkShape(t, "request", sample(t, "11.7-department-subordination.request.xml"),
			"<request>"+jsonToXML(t, ss.last(t, "POST", "/department/d48/subordination").body)+"</request>", true)
	})

	t.Run("11.8 create a user", func(t *testing.T) {
		t.Parallel()
		c, ss := newSampleClient(t, map[string][]canned{"POST /user": {
			{201, sample(t, "11.8-create-user.response.json")}, {201, sample(t, "11.8-create-user.response.xml")},
			{409, sample(t, "11.8-create-user-duplicate.response.json")}, {400, `{"code":400,"message":"…"}`}}})
		nu := NewUser{DepartmentID: "d48bd4fa-…", Fields: wantFields, Role: "learner"}
		if id, err := c.CreateUser(ctx, nu); err != nil || id != "f29d887c-5cff-11e9-9e6a-0a580af40692" {
			t.Errorf("JSON answer: %q %v", id, err)
		}
		checkShape(t, "request", sample(t, "11.8-create-user.request.json"), ss.last(t, "POST", "/user").body, true)
		checkShape(t, "request as XML", sample(t, "11.8-create-user.request.xml"),
			"<request>"+jsonToXML(t, ss.last(t, "POST", "/user").body)+"</request>", true)
		if id, err := c.CreateUser(ctx, nu); err != nil || id != "f29d887c-…" {
			t.Errorf("XML answer: %q %v", id, err)
		}
		_, err := c.CreateUser(ctx, nu)
		var ae *APIError
		if !errors.Is(err, ErrDuplicate) || !errors.As(err, &ae) || ae.Code != 409 || ae.Message != "User with the same login is already registered" {
			t.Errorf("duplicate: %v", err)
		}
		nu.SendLoginEmail = true
		var ve *ValidationError
		if _, err := c.CreateUser(ctx, nu); !errors.As(err, &ve) {
			t.Errorf("sendLoginEmail without invitationMessage: %v", err)
		}
	})

	t.Run("11.9 get and list users", func(t *testing.T) {
		t.Parallel()
		u := User{}
		if err := decode("/user/{id}", []byte(sample(t, "11.9-get-user.response.xml")), &u); err != nil {
			t.Fatal(err)
		}
		checkUser(t, "XML user", u, "2024-03-01T10:00:00+00:00")
		c, ss := newSampleClient(t, map[string][]canned{
			"GET /user/f29d887c-…/v2": {{200, sample(t, "11.9-get-user.response.xml")}},
			"GET /users/v2":           {{200, sample(t, "11.9-list-users-v2.response.json")}, {200, `{"userProfiles":[]}`}},
		})
		got, err := c.GetUser(ctx, "f29d887c-…")
		if err != nil {
			t.Fatal(err)
		}
		checkUser(t, "GetUser", got, "2024-03-01T10:00:00+00:00")
		all, err := c.AllUsers(ctx, UserFilter{})
		if err != nil || len(all) != 1 {
			t.Fatalf("list: %v %+v", err, all)
		}
		checkUser(t, "JSON user", all[0], "2024-03-01T10:00:00+00:00")
		if q := ss.last(t, "GET", "/users/v2").query; q.Get("pageToken") != "…" {
			t.Errorf("second page asked with %v", q)
		}
	})

	t.Run("11.10 update and move a user", func(t *testing.T) {
		t.Parallel()
		c, ss := newSampleClient(t, map[string][]canned{
			"POST /user/f29":                 {{200, ""}, {204, ""}},
			"POST /department/new/user/move": {{204, ""}},
		})
		up := UserUpdate{DepartmentID: "new", Fields: Fields{FieldLogin: "ivan.petrov@acme.ru", FieldJobTitle: "Старший менеджер"}}
		for _, status := range []string{"200", "204"} {
			if err := c.UpdateUser(ctx, "f29", up); err != nil {
				t.Errorf("update answered %s: %v", status, err)
			}
		}
		checkShape(t, "update", sample(t, "11.10-update-user.request.json"), ss.last(t, "POST", "/user/f29").body, true)
		if err := c.MoveUsers(ctx, "new", []string{"f29"}); err != nil {
			t.Fatal(err)
		}
		checkShape(t, "move", sample(t, "11.10-move-users.request.json"), ss.last(t, "POST", "/department/new/user/move").body, true)
	})

	t.Run("11.11 statuses", func(t *testing.T) {
		t.Parallel()
		c, ss := newSampleClient(t, map[string][]canned{
			"POST /user/f29/status":  {{200, ""}},
			"POST /users/deactivate": {{200, ""}},
		})
		if err := c.SetUserStatus(ctx, "f29", StatusInactive); err != nil {
			t.Fatal(err)
		}
		checkShape(t, "status", sample(t, "11.11-user-status.request.xml"),
			"<request>"+jsonToXML(t, ss.last(t, "POST", "/user/f29/status").body)+"</request>", true)
		if err := c.DeactivateUsers(ctx, []string{"a", "b"}); err != nil {
			t.Fatal(err)
		}
		checkShape(t, "deactivate", sample(t, "11.11-deactivate-users.request.json"), ss.last(t, "POST", "/users/deactivate").body, true)
	})

	t.Run("11.12 user subordination", func(t *testing.T) {
		t.Parallel()
		c, ss := newSampleClient(t, map[string][]canned{"POST /user/f29/subordination": {{204, ""}}})
		if err := c.SetUserSubordination(ctx, "f29", Manual("head"), &Subordination{Type: SubordinationInherit}, nil); err != nil {
			t.Fatal(err)
		}
		checkShape(t, "request", sample(t, "11.12-user-subordination.request.json"), ss.last(t, "POST", "/user/f29/subordination").body, true)
	})

	t.Run("11.13 profile fields", func(t *testing.T) {
		t.Parallel()
		c, _ := newSampleClient(t, map[string][]canned{"GET /user/profile/fields": {{200, sample(t, "11.13-profile-fields.response.json")}}})
		defs, err := c.ProfileFields(ctx)
		want := []FieldInfo{{ID: "…", Name: "first_name", Label: "First Name", Type: "first_name", Required: true, Order: 1}}
		if err != nil || !slices.Equal(defs, want) {
			t.Fatalf("got %+v %v, want %+v", defs, err, want)
		}
	})
}

// jsonToXML renders a JSON object's members as XML elements (lists repeat the
// element), to compare a JSON request with an XML sample.
func jsonToXML(t *testing.T, doc string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("not JSON: %q", doc)
	}
	var b bytes.Buffer
	var walk func(name string, v any)
	walk = func(name string, v any) {
		switch x := v.(type) {
		case map[string]any:
			b.WriteString("<" + name + ">")
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(k, x[k])
			}
			b.WriteString("</" + name + ">")
		case []any:
			for _, e := range x {
				walk(name, e)
			}
		default:
			b.WriteString("<" + name + ">")
			_ = xml.EscapeText(&b, []byte(fmt.Sprint(x)))
			b.WriteString("</" + name + ">")
		}
	}
	m, _ := v.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		walk(k, m[k])
	}
	return b.String()
}

// --- learnsim against the samples ---

// simCall sends a sample request to learnsim with the sample's headers (11.1),
// accept "" sending no Accept (XML answers).
func simCall(t *testing.T, base, method, path, body, accept string, hdr ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(sample(t, "11.1-auth.request.txt"), "\n") {
		name, val, _ := strings.Cut(line, ":")
		val, _, _ = strings.Cut(val, "#")
		req.Header.Set(name, strings.TrimSpace(val))
	}
	req.Header.Set("Accept", accept)
	if accept == "" {
		req.Header.Del("Accept")
	}
	switch {
	case body == "":
		req.Header.Del("Content-Type")
	case strings.HasPrefix(body, "<"):
		req.Header.Set("Content-Type", "application/xml")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b))
}

// TestGoldenSim holds learnsim to the samples, also when it refuses what
// the API description does not list (the samples' requests are all it lists).
func TestGoldenSim(t *testing.T) {
	t.Parallel()
	for _, strict := range []bool{false, true} {
		t.Run(map[bool]string{false: "Lenient", true: "StrictRequests"}[strict], func(t *testing.T) {
			t.Parallel()
			goldenSim(t, learnsim.Unsettled{StrictRequests: strict})
		})
	}
}

func goldenSim(t *testing.T, u learnsim.Unsettled) {
	sim := learnsim.New(learnsim.Options{Seed: 3, Unsettled: u})
	// The account, admin and API key of the samples (11.1, 11.2).
	root, err := sim.AddAccount(learnsim.AccountOptions{URL: "https://acme.ispringlearn.ru", Email: "admin@acme.ru",
		Password: "secret", RootName: "Acme", ClientID: "788f274b-…", ClientSecret: "…"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	const js = "application/json"
	call := func(want int, method, path, body, accept string, hdr ...string) string {
		t.Helper()
		got, b := simCall(t, srv.URL, method, path, body, accept, hdr...)
		if got != want {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, want, b)
		}
		return b
	}
	idOf := func(b string) string {
		t.Helper()
		if id := parseID([]byte(b), "departmentId"); id != "" {
			return id
		}
		t.Fatalf("no ID in %q", b)
		return ""
	}
	errShape := sample(t, "11.1-auth-refused.response.json")

	// 11.1: the sample headers pass; a wrong password is a 401 ErrorResponse.
	call(200, "GET", "/department", "", js)
	checkShape(t, "11.1 refusal", errShape, call(401, "GET", "/department", "", js, "X-Auth-Password", "wrong"), true)

	// 11.2: the sample form gets a token.
	got, b := func() (int, string) {
		res, err := http.Post(srv.URL+"/api/v3/token", "application/x-www-form-urlencoded", strings.NewReader(sample(t, "11.2-token.request.txt")))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}()
	if got != 200 {
		t.Fatalf("token: %d %s", got, b)
	}
	checkShape(t, "11.2 token", sample(t, "11.2-token.response.json"), b, true)

	// Users the samples refer to: a supervisor (0ccca211-…) made with the XML
	// create of 11.8, values filled in.
	xmlUser := strings.NewReplacer("<departmentId>…", "<departmentId>"+root, "<login>…", "<login>boss@acme.ru",
		"<email>…", "<email>boss@acme.ru", "<first_name>…", "<first_name>Boss", "<last_name>…", "<last_name>Big",
		"<job_title>…", "<job_title>Head").Replace(sample(t, "11.8-create-user.request.xml"))
	created := call(201, "POST", "/user", xmlUser, "")
	checkShape(t, "11.8 XML create", sample(t, "11.8-create-user.response.xml"), created, true)
	boss := parseID([]byte(created), "userId")

	// 11.3: the tree of the sample, read in XML (no Accept).
	sales := idOf(call(201, "POST", "/department", `{"name":"Sales Department","parentDepartmentId":"`+root+`","code":"5"}`, js))
	call(204, "POST", "/department/"+sales+"/subordination",
		`{"coSubordination":{"subordinationType":"manual","supervisorId":"`+boss+`"}}`, js)
	checkShape(t, "11.3", sample(t, "11.3-departments.response.xml"), call(200, "GET", "/department", "", ""), true)

	// 11.5: create in XML and in JSON.
	b = call(201, "POST", "/department", strings.ReplaceAll(sample(t, "11.5-create-department.request.xml"), "b00ba37c-…", root), "")
	checkShape(t, "11.5 XML", sample(t, "11.5-create-department.response.xml"), b, true)
	d48 := parseID([]byte(b), "departmentId")

	// 11.4: three departments now, two pages of two.
	page1 := call(200, "GET", "/departments?pageSize=2", "", js)
	checkShape(t, "11.4 page 1", sample(t, "11.4-departments-page1.response.json"), page1, true)
	var p1 struct{ NextPageToken string }
	_ = json.Unmarshal([]byte(page1), &p1)
	checkShape(t, "11.4 page 2", sample(t, "11.4-departments-page2.response.json"),
		call(200, "GET", "/departments?pageSize=2&pageToken="+url.QueryEscape(p1.NextPageToken), "", js), true)

	b = call(201, "POST", "/department", strings.NewReplacer(`"parentDepartmentId":"…"`, `"parentDepartmentId":"`+root+`"`,
		`"code":"…"`, `"code":"b24-portal1-18"`).Replace(sample(t, "11.5-create-department.request.json")), js)
	checkShape(t, "11.5 JSON", sample(t, "11.5-create-department.response.json"), b, true)
	userDept := idOf(b)

	// 11.7: the department's supervisor, in XML.
	call(204, "POST", "/department/"+d48+"/subordination",
		strings.ReplaceAll(sample(t, "11.7-department-subordination.request.xml"), "0ccca211-…", boss), "")

	// 11.8: create in JSON, then the refusals.
	userReq := strings.ReplaceAll(sample(t, "11.8-create-user.request.json"), "d48bd4fa-…", userDept)
	b = call(201, "POST", "/user", userReq, js)
	checkShape(t, "11.8 JSON create", sample(t, "11.8-create-user.response.json"), b, true)
	ivan := parseID([]byte(b), "userId")
	checkShape(t, "11.8 duplicate", sample(t, "11.8-create-user-duplicate.response.json"), call(409, "POST", "/user", userReq, js), true)
	noInvite := strings.NewReplacer(`"sendLoginEmail":false`, `"sendLoginEmail":true`, "ivan.petrov", "other").Replace(userReq)
	checkShape(t, "11.8 no invitationMessage", errShape, call(400, "POST", "/user", noInvite, js), true)

	// 11.9: one user in XML (exact), the v2 list in JSON (the sample elides members).
	checkShape(t, "11.9 XML", sample(t, "11.9-get-user.response.xml"), call(200, "GET", "/user/"+ivan, "", ""), true)
	checkShape(t, "11.9 JSON list", sample(t, "11.9-list-users-v2.response.json"), call(200, "GET", "/users/v2?pageSize=1", "", js), false)

	// 11.12 before 11.11: the supervisor must be active.
	call(204, "POST", "/user/"+ivan+"/subordination", strings.ReplaceAll(sample(t, "11.12-user-subordination.request.json"), "<headUserId>", boss), js)

	// 11.10: update (200) and move (204), both without a body.
	if b := call(200, "POST", "/user/"+ivan, strings.ReplaceAll(sample(t, "11.10-update-user.request.json"), "<newDept>", d48), js); b != "" {
		t.Errorf("11.10 update answered a body: %q", b)
	}
	call(204, "POST", "/department/"+userDept+"/user/move", strings.ReplaceAll(sample(t, "11.10-move-users.request.json"), "f29d887c-…", ivan), js)

	// 11.11: status in XML, bulk deactivation in JSON.
	call(200, "POST", "/user/"+ivan+"/status", sample(t, "11.11-user-status.request.xml"), "")
	call(200, "POST", "/users/deactivate", strings.Replace(strings.Replace(sample(t, "11.11-deactivate-users.request.json"), "…", ivan, 1), "…", boss, 1), js)

	// 11.6: update (move) and delete; the root and a department with users are refused.
	call(204, "POST", "/department/"+d48, strings.ReplaceAll(sample(t, "11.6-update-department.request.json"), "<newParent>", sales), js)
	checkShape(t, "11.6 refused root", errShape, call(400, "DELETE", "/department/"+root, "", js), true)
	checkShape(t, "11.6 refused users", errShape, call(400, "DELETE", "/department/"+userDept, "", js), true)
	call(204, "DELETE", "/department/"+d48, "", js)

	// 11.13: the field definitions (the sample shows one of them).
	checkShape(t, "11.13", sample(t, "11.13-profile-fields.response.json"), call(200, "GET", "/user/profile/fields", "", js), false)

	st, err := sim.Snapshot("https://acme.ispringlearn.ru")
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := st.UserByLogin("ivan.petrov@acme.ru"); !ok || u.Status != 3 || u.DepartmentID != userDept ||
		u.Fields["job_title"] != "Старший менеджер" || u.Subordination.SupervisorID != boss {
		t.Errorf("the samples' user ended as %+v", u)
	}
}
