package archtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxLines is where a production file stops being one thing a newcomer
// reads at once.
const maxLines = 600

// A production file over maxLines says in a comment why it is one file
// ("on purpose"); otherwise it is split by what its parts are.
func TestLongFilesSayWhy(t *testing.T) {
	root := repoRoot(t)
	for _, p := range sources(t, root) {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("\n")); n > maxLines && !bytes.Contains(b, []byte("on purpose")) {
			rel, _ := filepath.Rel(root, p)
			t.Errorf("%s has %d lines (more than %d) and no comment saying why it is one file (\"on purpose\")", rel, n, maxLines)
		}
	}
}
