package b24sim_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The simulator must not share code with the client it tests (internal/bitrix24
// and its other subpackages), directly or through another package of the
// module: a shared decoder or constant would make both sides agree on a wrong
// reading of the wire format. Only the external test package (b24sim_test)
// drives the client against the simulator.

const (
	module  = "b24learn"
	client  = module + "/internal/bitrix24"
	simPath = client + "/b24sim"
)

func TestSimSharesNoCodeWithClient(t *testing.T) {
	root := moduleRoot(t)
	if chain := clientImport(t, root, simPath, true); chain != nil {
		t.Fatalf("b24sim reaches the client: %s", strings.Join(chain, " → "))
	}
	// The check can fail: a package known to use the client is caught.
	if chain := clientImport(t, root, module+"/internal/syncer", false); chain == nil {
		t.Fatal("the import check did not see internal/syncer use the client")
	}
}

// clientImport follows the module-local imports of pkg (its non-test files,
// plus its in-package test files when withTests is set) and returns the chain
// to the first package under internal/bitrix24 other than b24sim, or nil.
func clientImport(t *testing.T, root, pkg string, withTests bool) []string {
	t.Helper()
	seen := map[string]bool{}
	var walk func(pkg string, tests bool, chain []string) []string
	walk = func(pkg string, tests bool, chain []string) []string {
		if seen[pkg] {
			return nil
		}
		seen[pkg] = true
		chain = append(slices.Clone(chain), pkg)
		for _, imp := range packageImports(t, filepath.Join(root, strings.TrimPrefix(pkg, module)), tests) {
			switch {
			case imp == simPath:
			case imp == client || strings.HasPrefix(imp, client+"/"):
				return append(chain, imp)
			case strings.HasPrefix(imp, module+"/"):
				if c := walk(imp, false, chain); c != nil {
					return c
				}
			}
		}
		return nil
	}
	return walk(pkg, withTests, nil)
}

// packageImports lists the imports of the Go files in dir; test files count
// only when tests is set and they belong to the package itself (not _test).
func packageImports(t *testing.T, dir string, tests bool) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read package dir: %v", err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") {
			continue
		}
		isTest := strings.HasSuffix(name, "_test.go")
		if isTest && !tests {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		if isTest && strings.HasSuffix(f.Name.Name, "_test") {
			continue
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatalf("import path in %s: %v", name, err)
			}
			out = append(out, p)
		}
	}
	return out
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
