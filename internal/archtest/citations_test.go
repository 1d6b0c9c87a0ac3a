package archtest

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Sources are what comments live in; generated templ output repeats the
// .templ files and is skipped.
func sources(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, tree := range trees {
		err := filepath.WalkDir(filepath.Join(root, tree), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			switch filepath.Ext(p) {
			case ".go", ".templ", ".js", ".sql":
				if !strings.HasSuffix(p, "_templ.go") {
					out = append(out, p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// headings returns the "## …" headings of a markdown file.
func headings(t *testing.T, file string) map[string]bool {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if h, ok := strings.CutPrefix(sc.Text(), "#"); ok {
			out[strings.TrimSpace(strings.TrimLeft(h, "#"))] = true
		}
	}
	return out
}

// Comments cite files of this repository only, and what they cite in docs/
// exists: the file and, when named as `docs/x.md, "Heading"`, the section.
func TestCommentsCiteTheRepository(t *testing.T) {
	root := repoRoot(t)
	// Spelled with character classes so that a grep of the tree for these
	// words finds citations only, not this check.
	outside := regexp.MustCompile(`DESIG[N]|referenc[e]/|share[d]/`)
	cite := regexp.MustCompile(`docs/([a-z0-9-]+\.md)(?:,?\s*"([^"]+)")?`)
	continued := regexp.MustCompile(`\n\s*(//|--)`)
	self, _ := filepath.Abs(".")
	for _, p := range sources(t, root) {
		if filepath.Dir(p) == self {
			continue // this package's tests spell out what they look for
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		// Joining comment lines lets a citation wrap.
		text := continued.ReplaceAllString(string(b), "")
		for i, line := range strings.Split(string(b), "\n") {
			if outside.MatchString(line) {
				t.Errorf("%s:%d cites a document outside the repository: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		for _, m := range cite.FindAllStringSubmatch(text, -1) {
			doc := filepath.Join(root, "docs", m[1])
			hs := headings(t, doc)
			if hs == nil {
				t.Errorf("%s cites docs/%s, which does not exist", rel, m[1])
				continue
			}
			if m[2] != "" && !hs[m[2]] {
				t.Errorf("%s cites section %q of docs/%s, which has no such heading", rel, m[2], m[1])
			}
		}
	}
}
