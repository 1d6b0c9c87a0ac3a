package b24sim

// The batch method: commands in order, with $result[...] references substituted.

import (
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var refRe = regexp.MustCompile(`\$result\[([^\]]*)\]((?:\[[^\]]*\])*)`)

// batch runs up to 50 commands in body order, substituting $result[key][…]
// references with earlier results; an unresolved reference becomes "" (s.mu held).
func (s *Sim) batch(p *Portal, userID int64, webhook bool, params map[string]any) (*restOK, *restErr) {
	p.commands["batch"]++
	cmdTree, ok := params["cmd"]
	if !ok {
		return nil, &restErr{http.StatusBadRequest, "ERROR_BATCH_EMPTY", "Empty batch"}
	}
	keys, cmds := orderedCmds(cmdTree, params[cmdOrderKey])
	if len(keys) > maxBatch {
		return nil, &restErr{http.StatusBadRequest, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded"}
	}
	halt := truthyPHP(params["halt"])
	results := map[string]any{} // for $result[…] references
	var res, errs, totals, nexts, times phpArray
	for _, k := range keys {
		method, query, _ := strings.Cut(cmds[k], "?")
		method = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(method)), ".json")
		sub, _, err := phpForm(query)
		if err != nil {
			errs.set(k, errBody("INVALID_REQUEST", "Bad command query"))
			continue
		}
		substitute(sub, results)
		var ok *restOK
		var e *restErr
		if method == "batch" {
			e = &restErr{http.StatusMethodNotAllowed, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage"}
		} else {
			ok, e = s.execTimed(p, userID, webhook, method, sub)
		}
		if e != nil {
			errs.set(k, s.unsettled().errBody(e.code, e.desc))
			if halt {
				break
			}
			continue
		}
		results[k] = ok.result
		res.set(k, ok.result)
		if ok.total != nil {
			totals.set(k, *ok.total)
		}
		if ok.next != nil {
			nexts.set(k, *ok.next)
		}
		times.set(k, s.methodTime(p, method))
	}
	return &restOK{result: map[string]any{
		"result": &res, "result_error": &errs, "result_total": &totals, "result_next": &nexts, "result_time": &times,
	}}, nil
}

// orderedCmds returns the batch commands and the order to run them in: a
// list in index order, an object in body order (order), keys missing from
// order after them.
func orderedCmds(tree, order any) ([]string, map[string]string) {
	cmds := map[string]string{}
	var keys []string
	switch t := tree.(type) {
	case map[string]any:
		for k, v := range t {
			cmds[k] = str(v)
		}
	case []any:
		for i, v := range t {
			k := strconv.Itoa(i)
			cmds[k] = str(v)
			keys = append(keys, k)
		}
		return keys, cmds
	}
	seen := map[string]bool{}
	if o, ok := order.([]string); ok {
		for _, k := range o {
			if _, ok := cmds[k]; ok && !seen[k] {
				keys = append(keys, k)
				seen[k] = true
			}
		}
	}
	var rest []string
	for k := range cmds {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(keys, rest...), cmds
}

func substitute(m map[string]any, results map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case string:
			if strings.Contains(x, "$result[") {
				m[k] = refRe.ReplaceAllStringFunc(x, func(ref string) string {
					sm := refRe.FindStringSubmatch(ref)
					cur, ok := results[sm[1]]
					if !ok {
						return ""
					}
					for _, seg := range splitSegs(sm[2]) {
						cur = index(cur, seg)
					}
					return str(cur) // a scalar as text, anything else ""
				})
			}
		case map[string]any:
			substitute(x, results)
		}
	}
}

func splitSegs(s string) []string {
	var out []string
	for _, part := range strings.Split(s, "]") {
		if strings.HasPrefix(part, "[") {
			out = append(out, part[1:])
		}
	}
	return out
}

func index(v any, seg string) any {
	switch x := v.(type) {
	case map[string]any:
		return x[seg]
	case []any:
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= len(x) {
			return nil
		}
		return x[i]
	}
	return nil
}
