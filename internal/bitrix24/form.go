package bitrix24

import (
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ParseBrackets turns PHP-style form fields (auth[member_id]=…, data[UF_DEPARTMENT][0]=5,
// a[]=x) into nested maps, the way PHP's parse_str reads them. Leaves are strings,
// inner nodes map[string]any; "[]" appends with keys "0", "1", … A key whose
// brackets do not close is kept literally. Later values overwrite earlier ones.
// A key nested deeper than maxBracketDepth is dropped, as PHP drops it.
func ParseBrackets(v url.Values) map[string]any {
	out := map[string]any{}
	next := map[string]int{} // next "[]" index per node path, kept so appends stay linear
	// In key order: a deterministic result for repeated or conflicting keys.
	for _, k := range slices.Sorted(maps.Keys(v)) {
		for _, val := range v[k] {
			setBracket(out, next, k, val)
		}
	}
	return out
}

// maxBracketDepth is PHP's default max_input_nesting_level. Real events
// nest three deep (data[FIELDS][UF_DEPARTMENT][0]); the bound matters
// because each level costs the length of the path above it, so an anonymous
// event of 64 KiB of "[]" would cost gigabytes and seconds of work.
const maxBracketDepth = 64

// splitBracketKey splits a[b][c] into a and [b c]; ok is false for a key
// nested deeper than maxBracketDepth.
func splitBracketKey(key string) (base string, segs []string, ok bool) {
	i := strings.IndexByte(key, '[')
	if i <= 0 {
		return key, nil, true
	}
	base, rest := key[:i], key[i:]
	for len(rest) > 0 {
		if rest[0] != '[' {
			break // PHP ignores trailing garbage after the last bracket
		}
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			if len(segs) == 0 {
				return key, nil, true
			}
			break
		}
		if len(segs) == maxBracketDepth {
			return "", nil, false
		}
		segs = append(segs, rest[1:j])
		rest = rest[j+1:]
	}
	return base, segs, true
}

func setBracket(root map[string]any, next map[string]int, key, val string) {
	base, segs, ok := splitBracketKey(key)
	if !ok {
		return
	}
	if len(segs) == 0 {
		root[key] = val
		return
	}
	node := root
	name := base
	path := base
	for _, seg := range segs {
		child, ok := node[name].(map[string]any)
		if !ok {
			child = map[string]any{}
			node[name] = child
			delete(next, path)
		}
		node = child
		n, known := next[path]
		if !known {
			n = nextIndex(node)
		}
		if seg == "" {
			seg = strconv.Itoa(n)
			n++
		} else if i, err := strconv.Atoi(seg); err == nil && i >= n {
			n = i + 1
		}
		next[path] = n
		name = seg
		path += "\x00" + seg
	}
	node[name] = val
}

// EncodeBrackets is the inverse of ParseBrackets for values built from maps,
// slices and scalars: {"FILTER": {">ID": 5}} → FILTER[>ID]=5. Booleans encode as
// "1"/"0" (PHP truthiness), nil as "".
func EncodeBrackets(params map[string]any) url.Values {
	out := url.Values{}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		encodeValue(out, k, params[k])
	}
	return out
}

func encodeValue(out url.Values, prefix string, v any) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			encodeValue(out, prefix+"["+k+"]", x[k])
		}
	case map[string]string:
		for k, s := range x {
			out.Add(prefix+"["+k+"]", s)
		}
	case []any:
		for i, e := range x {
			encodeValue(out, prefix+"["+strconv.Itoa(i)+"]", e)
		}
	case []string:
		for i, e := range x {
			out.Add(prefix+"["+strconv.Itoa(i)+"]", e)
		}
	case []int:
		for i, e := range x {
			out.Add(prefix+"["+strconv.Itoa(i)+"]", strconv.Itoa(e))
		}
	case []int64:
		for i, e := range x {
			out.Add(prefix+"["+strconv.Itoa(i)+"]", strconv.FormatInt(e, 10))
		}
	default:
		out.Add(prefix, scalarString(v))
	}
}

func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "1"
		}
		return "0"
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case interface{ String() string }:
		return x.String()
	default:
		return ""
	}
}

// sortNumericKeys orders "0","1",…,"10" numerically, other keys after them.
func sortNumericKeys(keys []string) {
	sort.SliceStable(keys, func(i, j int) bool {
		a, ea := strconv.Atoi(keys[i])
		b, eb := strconv.Atoi(keys[j])
		switch {
		case ea == nil && eb == nil:
			return a < b
		case ea == nil:
			return true
		case eb == nil:
			return false
		}
		return keys[i] < keys[j]
	})
}

// inIndexOrder lists m's values in the order of their keys (sortNumericKeys):
// a PHP list sent as an object {"0":…,"1":…}.
func inIndexOrder[V any](m map[string]V) []V {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortNumericKeys(keys)
	out := make([]V, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

func nextIndex(m map[string]any) int {
	n := 0
	for k := range m {
		if i, err := strconv.Atoi(k); err == nil && i >= n {
			n = i + 1
		}
	}
	return n
}
