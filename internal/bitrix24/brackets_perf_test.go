package bitrix24

import (
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// allocated is the bytes f allocates. The tests that use it do not run in
// parallel, so no other test's allocations are counted.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Appends to one list cost the same each, however long the list: the next
// index is remembered, not searched for.
func TestBracketsLinear(t *testing.T) {
	parse := func(n int) (map[string]any, uint64) {
		v, _ := url.ParseQuery(strings.Repeat("a[]=1&", n))
		var tree map[string]any
		return tree, allocated(func() { tree = ParseBrackets(v) })
	}
	small, a1 := parse(1000)
	large, a9 := parse(9000)
	if len(small["a"].(map[string]any)) != 1000 || len(large["a"].(map[string]any)) != 9000 {
		t.Fatalf("appends lost: %d, %d", len(small["a"].(map[string]any)), len(large["a"].(map[string]any)))
	}
	if a9 > 12*a1 {
		t.Errorf("9,000 appends allocated %d bytes, 1,000 %d: more than linear", a9, a1)
	}
}

// An anonymous event is parsed before anything proves it. A key of 64 KiB of
// "[]" used to cost every level the length of the path above it: 1.1 GB and
// 18 s for one request. Deeper than PHP's nesting limit, the key is dropped.
func TestBracketsDeepKeyDropped(t *testing.T) {
	deep := "data" + strings.Repeat("[]", (MaxFormBytes-8)/2)
	v := url.Values{deep: {"1"}, "event": {"ONAPPUNINSTALL"}}
	var tree map[string]any
	if n := allocated(func() { tree = ParseBrackets(v) }); n > 1<<20 {
		t.Errorf("a %d-byte key allocated %d KiB", len(deep), n>>10)
	}
	if _, ok := tree["data"]; ok || tree["event"] != "ONAPPUNINSTALL" {
		t.Errorf("parsed %v", tree)
	}
	// PHP's depth is kept, one more is dropped.
	at := url.Values{"a" + strings.Repeat("[x]", maxBracketDepth): {"1"}, "b" + strings.Repeat("[x]", maxBracketDepth+1): {"1"}}
	tree = ParseBrackets(at)
	node, depth := tree["a"], 0
	for ; ; depth++ {
		m, ok := node.(map[string]any)
		if !ok {
			break
		}
		node = m["x"]
	}
	if depth != maxBracketDepth || node != "1" {
		t.Errorf("a key %d deep read %d deep, leaf %v", maxBracketDepth, depth, node)
	}
	if _, ok := tree["b"]; ok {
		t.Errorf("a key %d deep was kept", maxBracketDepth+1)
	}
}
