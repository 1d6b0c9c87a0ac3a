package b24sim

// How the REST parameters' loosely typed values are read, as PHP would:
// operators, lists, emptiness, strings and numbers.

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

var opRe = regexp.MustCompile(`^(>=|<=|!=|!@|>|<|@|=|!|%)?(.*)$`)

func splitOp(k string) (string, string) {
	m := opRe.FindStringSubmatch(k)
	return m[1], m[2]
}

func cmpInt(op string, have int64, v any) bool {
	if op == "@" || op == "!@" || isList(v) {
		in := false
		for _, x := range listOf(v) {
			if num(x) == have {
				in = true
			}
		}
		return in != (op == "!@" || op == "!")
	}
	want := num(v)
	switch op {
	case ">":
		return have > want
	case ">=":
		return have >= want
	case "<":
		return have < want
	case "<=":
		return have <= want
	case "!", "!=":
		return have != want
	}
	return have == want
}

func isList(v any) bool {
	switch v.(type) {
	case []any, map[string]any:
		return true
	}
	return false
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// truthyPHP is `value && value !== 'N'`: "false" is true, "0" and "" are false.
func truthyPHP(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case json.Number:
		f, _ := x.Float64()
		return f != 0
	case float64:
		return x != 0
	case string:
		return x != "" && x != "0" && x != "N"
	case nil:
		return false
	}
	return true
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		if x {
			return "1"
		}
		return ""
	}
	return ""
}

func num(v any) int64 {
	s := strings.TrimSpace(str(v))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return int64(f)
	}
	return 0
}

// withoutControl drops the keys that steer a list call from the top-level filter.
func withoutControl(q map[string]any) map[string]any {
	out := make(map[string]any, len(q))
	for k, v := range q {
		if !isControl(k) {
			out[k] = v
		}
	}
	return out
}

// isControl says whether parameter k of a listing, in any letter case, is
// no filter key.
func isControl(k string) bool {
	switch strings.ToUpper(k) {
	case "SORT", "ORDER", "START", "AUTH", "ACCESS_TOKEN", "ADMIN_MODE", "SELECT", "FILTER", "IMAGE_RESIZE":
		return true
	}
	return false
}
