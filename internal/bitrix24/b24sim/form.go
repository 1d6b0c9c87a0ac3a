package b24sim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The simulator reads what the app sends with its own decoder, written from
// Bitrix24's documented wire format (docs/bitrix24-api.md, "Requests"), not
// with the client's encoder's inverse: a misreading of the format in the
// client must show up as a failing call, not be mirrored here.

// pageSize is Bitrix24's fixed page size for list methods; maxBatch the most
// commands one batch call may hold.
const (
	pageSize = 50
	maxBatch = 50
)

// phpForm decodes an application/x-www-form-urlencoded string (a query string
// or a form body) as PHP's parse_str does: "a[b][c]=v" nests, "a[]=v" appends
// at the next integer index, a later value of the same key wins, a key whose
// first bracket does not close stays a plain name. Leaves are strings, nested
// levels map[string]any. order lists, for each top-level name with nested
// keys, its first-level keys in the order they first appeared (batch commands
// run in body order).
func phpForm(raw string) (tree map[string]any, order map[string][]string, err error) {
	tree = map[string]any{}
	order = map[string][]string{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, nil, fmt.Errorf("bad form key %q: %w", k, err)
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, nil, fmt.Errorf("bad form value of %q: %w", key, err)
		}
		name, path := phpKey(key)
		if name == "" {
			continue // PHP drops a field without a name
		}
		if len(path) == 0 {
			tree[name] = val
			continue
		}
		node, made := level(tree, name)
		if made {
			order[name] = nil
		}
		for i, seg := range path {
			if seg == "" {
				seg = strconv.Itoa(nextIndex(node))
			}
			if i == 0 && !slices.Contains(order[name], seg) {
				order[name] = append(order[name], seg)
			}
			if i == len(path)-1 {
				node[seg] = val
				break
			}
			node, _ = level(node, seg)
		}
	}
	return tree, order, nil
}

// level is m[key] as a nested level; when it is not one (absent, or a leaf
// that a later key nests under, as PHP replaces it) a new level takes its
// place and made is true.
func level(m map[string]any, key string) (_ map[string]any, made bool) {
	if n, ok := m[key].(map[string]any); ok {
		return n, false
	}
	n := map[string]any{}
	m[key] = n
	return n, true
}

// phpKey splits "name[a][b]" into "name" and ["a", "b"]. Text after the last
// closed bracket is ignored; an unclosed first bracket leaves the whole key a
// plain name.
func phpKey(key string) (string, []string) {
	open := strings.IndexByte(key, '[')
	if open <= 0 {
		return key, nil
	}
	name, rest := key[:open], key[open:]
	var path []string
	for strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			break
		}
		path = append(path, rest[1:end])
		rest = rest[end+1:]
	}
	if len(path) == 0 {
		return key, nil
	}
	return name, path
}

// nextIndex is where "[]" appends: one past the largest integer key.
func nextIndex(m map[string]any) int {
	n := 0
	for k := range m {
		if i, err := strconv.Atoi(k); err == nil && i >= n {
			n = i + 1
		}
	}
	return n
}

// listOf reads a list parameter: a JSON array, a form array ({"0": …, "1": …}
// in index order) or a single value.
func listOf(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	case map[string]any:
		type kv struct {
			n   int
			key string
		}
		var items []kv
		for k := range x {
			n, err := strconv.Atoi(k)
			if err != nil {
				n = int(^uint(0) >> 1) // non-numeric keys after the numbered ones
			}
			items = append(items, kv{n, k})
		}
		sort.Slice(items, func(i, j int) bool {
			if items[i].n != items[j].n {
				return items[i].n < items[j].n
			}
			return items[i].key < items[j].key
		})
		out := make([]any, 0, len(items))
		for _, it := range items {
			out = append(out, x[it.key])
		}
		return out
	}
	return []any{v}
}

// phpArray is an ordered PHP array as json_encode writes it: a JSON list when
// its keys are exactly 0, 1, 2… in order (an empty one included: Bitrix24's
// empty batch sections are []), an object otherwise.
type phpArray struct {
	keys []string
	vals map[string]any
}

func (a *phpArray) set(k string, v any) {
	if a.vals == nil {
		a.vals = map[string]any{}
	}
	if _, ok := a.vals[k]; !ok {
		a.keys = append(a.keys, k)
	}
	a.vals[k] = v
}

func (a *phpArray) MarshalJSON() ([]byte, error) {
	list := true
	for i, k := range a.keys {
		if k != strconv.Itoa(i) {
			list = false
			break
		}
	}
	var b strings.Builder
	open, close := byte('{'), byte('}')
	if list {
		open, close = '[', ']'
	}
	b.WriteByte(open)
	for i, k := range a.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		if !list {
			kj, err := json.Marshal(k)
			if err != nil {
				return nil, err
			}
			b.Write(kj)
			b.WriteByte(':')
		}
		vj, err := json.Marshal(a.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(vj)
	}
	b.WriteByte(close)
	return []byte(b.String()), nil
}
