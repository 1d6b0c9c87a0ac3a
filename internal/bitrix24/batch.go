package bitrix24

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MaxBatch is the most commands Bitrix24 accepts in one batch call.
const MaxBatch = 50

// BatchCommand is one command of a batch. Params are sent as a PHP-bracket
// query string; a value may reference an earlier command's result with
// "$result[key][49][ID]".
type BatchCommand struct {
	Key    string
	Method string
	Params map[string]any
}

// BatchResult holds the per-command parts of a batch answer.
type BatchResult struct {
	Result map[string]json.RawMessage
	Errors map[string]*APIError
	Total  map[string]int
	Next   map[string]int
	Time   map[string]Time
}

// Err returns the error of command key, or nil.
func (b *BatchResult) Err(key string) error {
	if e, ok := b.Errors[key]; ok && e != nil {
		return e
	}
	return nil
}

// Batch runs up to MaxBatch commands in one HTTP request with halt=0, so each
// command's error is reported in Errors and the others still run.
//
// Commands that OPERATION_TIME_LIMIT refused are sent again once their
// method's reset time has passed, with the commands that took $result
// references from them; the results of the other commands are kept, and
// references to them are sent as the values they resolved to. So only the
// blocked method waits. A command that succeeded runs again only when it
// took a reference from a refused one: batches are for reads.
func (c *Client) Batch(ctx context.Context, cmds []BatchCommand) (*BatchResult, error) {
	if len(cmds) == 0 {
		return &BatchResult{}, nil
	}
	if len(cmds) > MaxBatch {
		return nil, fmt.Errorf("batch of %d commands: at most %d allowed", len(cmds), MaxBatch)
	}
	seen := make(map[string]bool, len(cmds))
	for _, bc := range cmds {
		if seen[bc.Key] || bc.Key == "" {
			return nil, fmt.Errorf("batch: empty or duplicate key %q", bc.Key)
		}
		seen[bc.Key] = true
	}
	var out *BatchResult
	for attempt := 0; ; attempt++ {
		for _, m := range methodsOf(cmds) {
			if err := c.awaitMethod(ctx, m); err != nil {
				return nil, fmt.Errorf("batch: %w", err)
			}
		}
		res, err := c.batchOnce(ctx, cmds)
		if err != nil {
			return nil, err
		}
		out = mergeBatch(out, res, cmds)
		var blocked []string
		for _, bc := range cmds {
			if e := res.Errors[bc.Key]; e != nil && errors.Is(e, ErrOperationTimeLimit) {
				blocked = append(blocked, bc.Key)
				c.block(bc.Method, e)
			}
		}
		if len(blocked) == 0 || attempt >= c.cfg.MaxRetries {
			return out, nil // a command still blocked reports its error
		}
		cmds = rerunOf(cmds, blocked, out)
	}
}

// batchOnce sends one batch request and records the reset times its
// commands announced.
func (c *Client) batchOnce(ctx context.Context, cmds []BatchCommand) (*BatchResult, error) {
	cmd := make(orderedCmds, 0, len(cmds))
	for _, bc := range cmds {
		cmd = append(cmd, [2]string{bc.Key, bc.Method + "?" + EncodeBrackets(bc.Params).Encode()})
	}
	env, err := c.CallEnvelope(ctx, "batch", map[string]any{"halt": 0, "cmd": cmd})
	if err != nil {
		return nil, err
	}
	res, err := decodeBatch(env.Result)
	if err != nil {
		return nil, err
	}
	for _, bc := range cmds {
		if t, ok := res.Time[bc.Key]; ok {
			c.noteTime(bc.Method, t)
		}
	}
	return res, nil
}

// mergeBatch puts the answers of cmds from res into out (nil: a new result).
func mergeBatch(out, res *BatchResult, cmds []BatchCommand) *BatchResult {
	if out == nil {
		return res
	}
	for _, bc := range cmds {
		k := bc.Key
		delete(out.Result, k)
		delete(out.Errors, k)
		delete(out.Total, k)
		delete(out.Next, k)
		delete(out.Time, k)
		if v, ok := res.Result[k]; ok {
			out.Result[k] = v
		}
		if v, ok := res.Errors[k]; ok {
			out.Errors[k] = v
		}
		if v, ok := res.Total[k]; ok {
			out.Total[k] = v
		}
		if v, ok := res.Next[k]; ok {
			out.Next[k] = v
		}
		if v, ok := res.Time[k]; ok {
			out.Time[k] = v
		}
	}
	return out
}

func methodsOf(cmds []BatchCommand) []string {
	var out []string
	seen := map[string]bool{}
	for _, bc := range cmds {
		if k := methodKey(bc.Method); !seen[k] {
			seen[k] = true
			out = append(out, bc.Method)
		}
	}
	return out
}

var resultRef = regexp.MustCompile(`\$result\[([^\]]*)\]((?:\[[^\]]*\])*)`)

// rerunOf is what to send again after the commands of keys were refused:
// those commands and every command that took a $result reference from one
// of them (it ran on an empty value), in their original order. A reference
// to a command that succeeded is replaced by the value it resolved to, so a
// chain of pages goes on from where the limit stopped it instead of starting
// over.
func rerunOf(cmds []BatchCommand, keys []string, done *BatchResult) []BatchCommand {
	in := map[string]bool{}
	for _, k := range keys {
		in[k] = true
	}
	for changed := true; changed; {
		changed = false
		for _, bc := range cmds {
			if in[bc.Key] {
				continue
			}
			for _, r := range references(bc.Params, nil) {
				if in[r] {
					in[bc.Key], changed = true, true
					break
				}
			}
		}
	}
	var out []BatchCommand
	for _, bc := range cmds {
		if in[bc.Key] {
			bc.Params = resolveRefs(bc.Params, in, done).(map[string]any)
			out = append(out, bc)
		}
	}
	return out
}

// resolveRefs copies v with references to commands outside rerun replaced by
// their values in done ("" when the path leads nowhere, as Bitrix24 does).
func resolveRefs(v any, rerun map[string]bool, done *BatchResult) any {
	switch x := v.(type) {
	case string:
		return resultRef.ReplaceAllStringFunc(x, func(ref string) string {
			m := resultRef.FindStringSubmatch(ref)
			if rerun[m[1]] {
				return ref
			}
			var cur any
			if json.Unmarshal(done.Result[m[1]], &cur) != nil {
				return ""
			}
			for _, seg := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(m[2], "["), "]"), "][") {
				if m[2] == "" {
					break
				}
				switch c := cur.(type) {
				case map[string]any:
					cur = c[seg]
				case []any:
					i, err := strconv.Atoi(seg)
					if err != nil || i < 0 || i >= len(c) {
						return ""
					}
					cur = c[i]
				default:
					return ""
				}
			}
			switch c := cur.(type) {
			case string:
				return c
			case float64:
				return strconv.FormatFloat(c, 'f', -1, 64)
			case bool:
				if c {
					return "1"
				}
			}
			return ""
		})
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = resolveRefs(e, rerun, done)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = resolveRefs(e, rerun, done)
		}
		return out
	}
	return v
}

// references collects the command keys of $result references in v.
func references(v any, out []string) []string {
	switch x := v.(type) {
	case string:
		for _, m := range resultRef.FindAllStringSubmatch(x, -1) {
			out = append(out, m[1])
		}
	case map[string]any:
		for _, e := range x {
			out = references(e, out)
		}
	case []any:
		for _, e := range x {
			out = references(e, out)
		}
	}
	return out
}

type rawBatch struct {
	Result phpSection `json:"result"`
	Error  phpSection `json:"result_error"`
	Total  phpSection `json:"result_total"`
	Next   phpSection `json:"result_next"`
	Time   phpSection `json:"result_time"`
}

// phpSection is a keyed section that PHP sends as {} or, when empty or when the
// commands were a list, as [].
type phpSection map[string]json.RawMessage

func (p *phpSection) UnmarshalJSON(b []byte) error {
	m, err := section(b)
	*p = m
	return err
}

func decodeBatch(raw json.RawMessage) (*BatchResult, error) {
	var rb rawBatch
	if err := json.Unmarshal(raw, &rb); err != nil {
		return nil, fmt.Errorf("decode batch: %w", err)
	}
	out := &BatchResult{Result: rb.Result, Errors: map[string]*APIError{}, Total: map[string]int{}, Next: map[string]int{},
		Time: map[string]Time{}}
	if out.Result == nil {
		out.Result = map[string]json.RawMessage{}
	}
	for k, v := range rb.Error {
		var e struct {
			Error flexString `json:"error"`
			Desc  flexString `json:"error_description"`
		}
		if json.Unmarshal(v, &e) != nil || e.Error == "" {
			out.Errors[k] = &APIError{Code: "BATCH_COMMAND_FAILED", Description: snippet(v)}
			continue
		}
		out.Errors[k] = &APIError{Code: string(e.Error), Description: string(e.Desc)}
	}
	for k, v := range rb.Time {
		var t Time
		if json.Unmarshal(v, &t) == nil {
			out.Time[k] = t
		}
	}
	for dst, m := range map[*map[string]int]phpSection{&out.Total: rb.Total, &out.Next: rb.Next} {
		for k, v := range m {
			var n flexInt
			if json.Unmarshal(v, &n) == nil {
				(*dst)[k] = int(n)
			}
		}
	}
	return out, nil
}

// orderedCmds marshals as a JSON object keeping the commands' order: Bitrix24
// runs them in body order, and a Go map would sort "c10" before "c2", breaking
// $result references.
type orderedCmds [][2]string

func (o orderedCmds) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv[0])
		v, _ := json.Marshal(kv[1])
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
