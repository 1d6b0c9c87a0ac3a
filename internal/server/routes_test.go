package server

import (
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"b24learn/internal/config"
	"b24learn/internal/metrics"
)

// surface is the app's whole HTTP surface, as routes.go lists it. A route
// added, moved or dropped shows here, so a reviewer sees it.
var surface = []string{
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",

	"POST /b24/install",
	"POST /b24/app",
	"POST /b24/events",

	"GET /app/state",
	"GET /app/status",
	"GET /app/runs/{runID}",
	"GET /app/runs/{runID}/csv",
	"POST /app/settings",
	"GET /app/fieldmap",
	"POST /app/preview",
	"POST /app/sync",
	"POST /app/approve",
	"POST /app/activation",
	"GET /app/people",
	"GET /app/people/{user_id}",
	"POST /app/provision",
	"POST /app/alert-confirmation",

	"GET /alerts/confirm",
	"POST /alerts/confirm",

	"GET /manager/signin",
	"POST /manager/signin",
	"GET /manager/",
	"POST /manager/signout",
	"GET /manager/totp",
	"POST /manager/totp",
	"GET /manager/requests",
	"POST /manager/requests/{id}",
	"GET /manager/portals",
	"GET /manager/portals/{id}",
	"POST /manager/portals/{id}/activation",
	"GET /manager/audit",
	"POST /manager/lang",
	"GET /manager/river",
	"* /manager/river/*",

	"* /static/*",
}

// The router that New returns serves exactly the surface: no route more, no
// route less.
func TestRoutesListed(t *testing.T) {
	t.Parallel()
	h := New(Deps{Log: slog.New(slog.DiscardHandler), Config: &config.Config{}, Metrics: metrics.New()})
	methods := map[string][]string{} // route → methods
	err := chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		methods[route] = append(methods[route], method)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for route, ms := range methods {
		if len(ms) >= 9 { // chi's Handle: every method
			got = append(got, "* "+route)
			continue
		}
		for _, m := range ms {
			got = append(got, m+" "+route)
		}
	}
	for _, r := range got {
		if !slices.Contains(surface, r) {
			t.Errorf("route %s is served but not in the surface list", r)
		}
	}
	for _, r := range surface {
		if !slices.Contains(got, r) {
			t.Errorf("route %s is in the surface list but not served", r)
		}
	}
}

// No file of the package but routes.go makes a router or adds routes to
// one: a function that could add a route would have to take or make one.
func TestOnlyRoutesGoRoutes(t *testing.T) {
	t.Parallel()
	router := map[string]bool{"chi.Router": true, "chi.NewRouter": true, "chi.NewMux": true, "chi.Mux": true,
		"chi.Routes": true, "http.NewServeMux": true, "http.ServeMux": true, "http.Handle": true, "http.HandleFunc": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if name == "routes.go" || strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); ok && router[pkg.Name+"."+sel.Sel.Name] {
				t.Errorf("%s: %s.%s outside routes.go", fset.Position(sel.Pos()), pkg.Name, sel.Sel.Name)
			}
			return true
		})
	}
}
