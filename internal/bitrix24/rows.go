package bitrix24

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// maxRows bounds the entries of one list or keyed section in an answer.
// Bitrix24 pages lists by 50 and a batch holds at most 50 commands; the
// longest unpaged lists (event bindings, a list field's options) hold a few
// hundred. A self-hosted portal is run by whoever installs the app, and its
// answer of millions of empty rows would cost gigabytes once decoded, so the
// rows are read one at a time and refused as soon as the bound is passed.
const maxRows = 5000

// ErrTooManyRows is a list or section in an answer longer than maxRows.
var ErrTooManyRows = errors.New("bitrix24 answer holds more rows than any real answer")

// decodeList decodes a list result that PHP may send as [] or as {"0":…}
// (null or nothing is an empty list).
func decodeList[T any](raw json.RawMessage, out *[]T) error {
	*out = nil
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '[' {
		m, err := section(raw)
		if err != nil {
			return err
		}
		res := make([]T, 0, len(m))
		for _, raw := range inIndexOrder(m) {
			var v T
			if err := json.Unmarshal(raw, &v); err != nil {
				return err
			}
			res = append(res, v)
		}
		*out = res
		return nil
	}
	var res []T
	err := eachRow(raw, func(_ string, dec *json.Decoder) error {
		var v T
		if err := dec.Decode(&v); err != nil {
			return err
		}
		res = append(res, v)
		return nil
	})
	if err != nil {
		return err
	}
	*out = res
	return nil
}

// decodePage decodes one page of a paged listing (department.get,
// user.get, user.search): Bitrix24 sends at most PageSize rows a page, so a
// page with more is refused. A listing's bound is then its pages' count,
// which the claimed total and the configured maxima bound.
func decodePage[T any](raw json.RawMessage, out *[]T) error {
	if err := decodeList(raw, out); err != nil {
		return err
	}
	if len(*out) > PageSize {
		return fmt.Errorf("a page of %d rows, at most %d sent: %w", len(*out), PageSize, ErrTooManyRows)
	}
	return nil
}

// section decodes a keyed section that PHP sends as {} or, when empty or when
// the commands were a list, as [] (keyed by index then).
func section(raw json.RawMessage) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	err := eachRow(raw, func(key string, dec *json.Decoder) error {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		out[key] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachRow walks a JSON array (keys "0", "1", …) or object, calling row with
// the decoder positioned at each value, which row must consume; null or
// nothing holds no rows. It fails on the row after maxRows, before decoding it.
func eachRow(raw json.RawMessage, row func(key string, dec *json.Decoder) error) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	open, err := dec.Token()
	if err == io.EOF || (err == nil && open == nil) {
		return nil
	}
	if err != nil {
		return err
	}
	if open != json.Delim('[') && open != json.Delim('{') {
		return fmt.Errorf("a list or an object expected, got %v", open)
	}
	for n := 0; dec.More(); n++ {
		if n == maxRows {
			return fmt.Errorf("more than %d rows: %w", maxRows, ErrTooManyRows)
		}
		key := strconv.Itoa(n)
		if open == json.Delim('{') {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ = k.(string)
		}
		if err := row(key, dec); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the list")
	}
	return nil
}
