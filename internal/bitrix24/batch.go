package bitrix24

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
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
func (c *Client) Batch(ctx context.Context, cmds []BatchCommand) (*BatchResult, error) {
	if len(cmds) == 0 {
		return &BatchResult{}, nil
	}
	if len(cmds) > MaxBatch {
		return nil, fmt.Errorf("batch of %d commands: at most %d allowed", len(cmds), MaxBatch)
	}
	seen := make(map[string]bool, len(cmds))
	cmd := make(orderedCmds, 0, len(cmds))
	for _, bc := range cmds {
		if seen[bc.Key] || bc.Key == "" {
			return nil, fmt.Errorf("batch: empty or duplicate key %q", bc.Key)
		}
		seen[bc.Key] = true
		cmd = append(cmd, [2]string{bc.Key, bc.Method + "?" + EncodeBrackets(bc.Params).Encode()})
	}
	env, err := c.CallEnvelope(ctx, "batch", map[string]any{"halt": 0, "cmd": cmd})
	if err != nil {
		return nil, err
	}
	return decodeBatch(env.Result)
}

type rawBatch struct {
	Result phpSection `json:"result"`
	Error  phpSection `json:"result_error"`
	Total  phpSection `json:"result_total"`
	Next   phpSection `json:"result_next"`
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
	out := &BatchResult{Result: rb.Result, Errors: map[string]*APIError{}, Total: map[string]int{}, Next: map[string]int{}}
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

// section decodes a keyed section that PHP sends as {} or, when empty or when
// the commands were a list, as [].
func section(raw json.RawMessage) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	out := map[string]json.RawMessage{}
	if len(raw) == 0 || string(raw) == "null" {
		return out, nil
	}
	if raw[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, err
		}
		for i, v := range list {
			out[strconv.Itoa(i)] = v
		}
		return out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
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
