package bitrix24

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Bitrix24 answers the same field as a number, a string, null, false, [] or {}
// depending on method and version (docs/bitrix24-api.md, "Answers"). These
// types accept all of them so one odd row never fails a whole listing.

// flexInt accepts 12, "12", 12.0, null, "", false, [], {} (the last five as 0).
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	*f = 0
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexInt(parseIntLoose(s))
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		*f = flexInt(parseIntLoose(string(b)))
	}
	return nil
}

func parseIntLoose(s string) int64 {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if x, err := strconv.ParseFloat(s, 64); err == nil && x > -9e18 && x < 9e18 {
		return int64(x)
	}
	return 0
}

// flexFloat accepts numbers and numeric strings; anything else is 0.
type flexFloat float64

func (f *flexFloat) UnmarshalJSON(b []byte) error {
	*f = 0
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if x, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
		*f = flexFloat(x)
	}
	return nil
}

// flexBool accepts true/false, "Y"/"N", "1"/"0", 1/0, "true"/"false"; null and
// anything unknown are false.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	*f = false
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	*f = flexBool(truthy(s))
	return nil
}

func truthy(s string) bool {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "Y", "1", "TRUE", "YES", "ON":
		return true
	}
	return false
}

// flexString accepts strings and numbers; null, bools, arrays and objects are "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	*f = ""
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		*f = flexString(b)
	}
	return nil
}

// flexIntList accepts [1,"2"], a single 3 or "3", {"0":"4"}, null, "", false.
// Zero entries are dropped.
type flexIntList []int64

func (f *flexIntList) UnmarshalJSON(b []byte) error {
	*f = nil
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	var items []flexInt
	switch b[0] {
	case '[':
		if err := json.Unmarshal(b, &items); err != nil {
			return err
		}
	case '{':
		var m map[string]flexInt
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sortNumericKeys(keys)
		for _, k := range keys {
			items = append(items, m[k])
		}
	default:
		var one flexInt
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		items = []flexInt{one}
	}
	for _, it := range items {
		if it != 0 {
			*f = append(*f, int64(it))
		}
	}
	return nil
}
