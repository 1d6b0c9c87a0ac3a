package archtest

import (
	"errors"
	"go/build"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The page covers the binary, the internal packages and the top-level
// packages beside them.
var trees = []string{"cmd", "internal", "migrations", "templates", "web"}

// repoRoot is the directory holding go.mod, above the test's own.
func repoRoot(t *testing.T) string {
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

// packages lists every directory under trees that holds a Go package (test
// files and files excluded by build constraints aside), slash-separated and
// relative to root.
func packages(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, tree := range trees {
		err := filepath.WalkDir(filepath.Join(root, tree), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				return nil
			}
			if name := d.Name(); name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := build.ImportDir(p, 0); err != nil {
				var noGo *build.NoGoError
				if errors.As(err, &noGo) {
					return nil
				}
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// mentions are the code-formatted paths on the page under trees or docs/.
func mentions(page string) []string {
	var out []string
	for _, m := range regexp.MustCompile("`([A-Za-z0-9_./-]+)`").FindAllStringSubmatch(page, -1) {
		p := m[1]
		top, _, _ := strings.Cut(p, "/")
		if slices.Contains(trees, top) || top == "docs" {
			out = append(out, p)
		}
	}
	return out
}

func TestArchitecturePageMatchesThePackages(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs := packages(t, root)
	if !slices.Contains(pkgs, "internal/server") || !slices.Contains(pkgs, "cmd/b24learn") {
		t.Fatalf("package walk found %v, which lacks the server or the binary", pkgs)
	}
	named := map[string]bool{}
	for _, m := range mentions(string(b)) {
		if path.Ext(m) != "" || strings.HasSuffix(m, "/") || strings.HasPrefix(m, "docs") {
			// A file or a folder: it must still be there.
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(m))); err != nil {
				t.Errorf("docs/architecture.md cites %s, which does not exist", m)
			}
			continue
		}
		named[m] = true
		if !slices.Contains(pkgs, m) {
			t.Errorf("docs/architecture.md names package %s, which does not exist", m)
		}
	}
	for _, p := range pkgs {
		if !named[p] {
			t.Errorf("package %s is not on docs/architecture.md: add a row saying what it owns", p)
		}
	}
}
