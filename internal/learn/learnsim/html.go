package learnsim

import (
	"html/template"
	"net/http"
	"net/url"
)

// maxHTMLUsers caps the user table so the page stays usable on 100,000 users.
const maxHTMLUsers = 2000

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>iSpring Learn simulator</title>
<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}
.tree li{list-style:none}.muted{color:#888}</style></head><body>
<h1>iSpring Learn simulator</h1>
{{if .Accounts}}<h2>Accounts</h2><ul>{{range .Accounts}}<li><a href="{{.Link}}">{{.URL}}</a></li>{{end}}</ul>{{end}}
{{with .Account}}
<p><a href="/_sim/">All accounts</a></p>
<h2>{{.URL}}</h2>
<p>{{.DeptCount}} departments, {{.UserCount}} users ({{.Active}} active).</p>
<h3>Departments</h3>
<ul class="tree">{{range .Tree}}<li style="margin-left:{{.Indent}}em">{{.Name}} <span class="muted">{{.Code}} · {{.Users}} users{{if .Head}} · supervisor: {{.Head}}{{end}}</span></li>{{end}}</ul>
<h3>Users</h3>
{{if .Truncated}}<p class="muted">Showing the first {{len .Users}} users.</p>{{end}}
<table><tr><th>Login</th><th>Name</th><th>Email</th><th>Department</th><th>Status</th><th>Supervisor</th></tr>
{{range .Users}}<tr><td>{{.Login}}</td><td>{{.Name}}</td><td>{{.Email}}</td><td>{{.Dept}}</td><td>{{.Status}}</td><td>{{.Supervisor}}</td></tr>{{end}}
</table>
{{end}}
</body></html>`))

type pageAccountLink struct{ URL, Link string }

type pageTreeRow struct {
	Name, Code, Head string
	Indent, Users    int
}

type pageUserRow struct {
	Login, Name, Email, Dept, Status, Supervisor string
}

type pageAccount struct {
	URL                          string
	DeptCount, UserCount, Active int
	Tree                         []pageTreeRow
	Users                        []pageUserRow
	Truncated                    bool
}

type pageData struct {
	Accounts []pageAccountLink
	Account  *pageAccount
}

// handleIndexPage lists the accounts (GET /_sim/).
func (s *Sim) handleIndexPage(w http.ResponseWriter, r *http.Request) {
	var d pageData
	for _, u := range s.Accounts() {
		d.Accounts = append(d.Accounts, pageAccountLink{URL: u, Link: "/_sim/account?url=" + url.QueryEscape(u)})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, d)
}

var statusNames = map[int]string{1: "active", 3: "inactive", 5: "employment ended"}

// handleAccountPage shows one account's tree and users (GET /_sim/account?url=…).
func (s *Sim) handleAccountPage(w http.ResponseWriter, r *http.Request) {
	st, err := s.Snapshot(r.URL.Query().Get("url"))
	if err != nil {
		http.Error(w, "no such account", http.StatusNotFound)
		return
	}
	p := &pageAccount{URL: st.AccountURL, DeptCount: len(st.Departments), UserCount: len(st.Users)}
	names := map[string]string{}
	perDept := map[string]int{}
	for _, u := range st.Users {
		names[u.ID] = u.Fields["first_name"] + " " + u.Fields["last_name"]
		perDept[u.DepartmentID]++
		if u.Status == 1 {
			p.Active++
		}
	}
	children := map[string][]Department{}
	deptName := map[string]string{}
	for _, d := range st.Departments {
		children[d.ParentID] = append(children[d.ParentID], d)
		deptName[d.ID] = d.Name
	}
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		for _, d := range children[parent] {
			row := pageTreeRow{Name: d.Name, Code: d.Code, Indent: depth * 2, Users: perDept[d.ID]}
			if d.Subordination.Type == "manual" {
				row.Head = names[d.Subordination.SupervisorID]
			}
			if d.CoSubordination.Type == "manual" {
				row.Head += " (functional: " + names[d.CoSubordination.SupervisorID] + ")"
			}
			p.Tree = append(p.Tree, row)
			walk(d.ID, depth+1)
		}
	}
	walk("", 0)
	for i, u := range st.Users {
		if i == maxHTMLUsers {
			p.Truncated = true
			break
		}
		row := pageUserRow{Login: u.Fields["login"], Name: names[u.ID], Email: u.Fields["email"],
			Dept: deptName[u.DepartmentID], Status: statusNames[u.Status]}
		if u.Subordination.Type == "manual" {
			row.Supervisor = names[u.Subordination.SupervisorID]
		}
		p.Users = append(p.Users, row)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, pageData{Account: p})
}
