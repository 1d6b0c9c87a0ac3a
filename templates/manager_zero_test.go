package templates

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/a-h/templ"
)

// render renders c, a panic included as an error.
func render(c templ.Component) (html string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	var b strings.Builder
	err = c.Render(context.Background(), &b)
	return b.String(), err
}

// Every console page renders from its view's zero value (no rows, no
// pager, no portal loaded yet): a list's filter links come from the view's
// own data, not from a function field a caller could leave nil, and an
// empty list says it is empty.
func TestConsoleViewsRenderFromZero(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		page templ.Component
		want []string
	}{
		{"Requests", ManagerRequests(RequestsView{}), []string{
			`<strong>All</strong>`, `href="/manager/requests?status=new"`, `href="/manager/requests?status=rejected"`, "No requests."}},
		{"Portals", ManagerPortals(PortalsView{}), []string{
			`<strong>All</strong>`, `href="/manager/portals?state=needs_attention"`, `href="/manager/portals?state=held"`, "No portals yet."}},
		{"Portal", ManagerPortal(PortalView{}), []string{"No runs yet", "Nothing yet."}},
		{"Audit", ManagerAudit(AuditView{}), []string{"Nothing yet."}},
		{"SignIn", ManagerSignIn(SignInView{}), []string{`action="/manager/signin"`}},
	} {
		html, err := render(c.page)
		if err != nil {
			t.Errorf("%s from its zero view: %v", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(html, w) {
				t.Errorf("%s from its zero view lacks %q:\n%s", c.name, w, html)
			}
		}
	}
}

// A list's filter links keep its search and go to the filter's first
// page; the search's "clear" link keeps the filter.
func TestConsoleFilterLinksKeepTheSearch(t *testing.T) {
	t.Parallel()
	html, err := render(ManagerRequests(RequestsView{Filter: "new", Search: "acme & co"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`<strong>new</strong>`,
		`href="/manager/requests?q=acme+%26+co">All</a>`,
		`href="/manager/requests?q=acme+%26+co&amp;status=contacted"`,
		`href="/manager/requests?status=new">Clear search</a>`,
	} {
		if !strings.Contains(html, w) {
			t.Errorf("requests page lacks %q:\n%s", w, html)
		}
	}
	html, err = render(ManagerPortals(PortalsView{Filter: "held", Search: "beta"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`<strong>Held</strong>`, `href="/manager/portals?q=beta">All</a>`,
		`href="/manager/portals?q=beta&amp;state=needs_attention"`, `href="/manager/portals?state=held">Clear search</a>`} {
		if !strings.Contains(html, w) {
			t.Errorf("portals page lacks %q:\n%s", w, html)
		}
	}
}
