package bitrix24

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"b24learn/internal/remote"
)

// Bitrix24 answers the same field as a number, a string, null, false, [] or {}
// depending on method and version (docs/bitrix24-api.md, "Answers"). These
// types accept all of them so one odd row never fails a whole listing.

// jsonText is the text of one JSON value: a string's contents (quoted), or
// the value as written (a number, true, null, [...]); "" for no value or a
// string that does not decode.
func jsonText(b []byte) (text string, quoted bool, err error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '"' {
		return string(b), false, nil
	}
	if err := json.Unmarshal(b, &text); err != nil {
		return "", true, err
	}
	return text, true, nil
}

// isNumber reports whether an unquoted JSON value is a number.
func isNumber(s string) bool { return s != "" && strings.IndexByte("-0123456789", s[0]) >= 0 }

// flexInt accepts 12, "12", 12.0, null, "", false, [], {} (the last five as 0).
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s, _, err := jsonText(b)
	*f = flexInt(parseIntLoose(s)) // anything but a number's text is 0
	return err
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
	s, _, err := jsonText(b)
	*f = 0
	if x, perr := strconv.ParseFloat(strings.TrimSpace(s), 64); perr == nil {
		*f = flexFloat(x)
	}
	return err
}

// flexBool accepts true/false, "Y"/"N", "1"/"0", 1/0, "true"/"false"; null and
// anything unknown are false.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s, _, err := jsonText(b)
	*f = flexBool(truthy(s))
	return err
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
	s, quoted, err := jsonText(b)
	*f = ""
	if quoted || isNumber(s) {
		*f = flexString(cutText(s))
	}
	return err
}

// maxTextBytes bounds a text value as read. Bitrix24's own columns hold at
// most 255 characters (names, e-mail, position, a department's name), and
// Learn keeps 255 (docs/learn-api.md, "Long values"): 1 KiB holds 255 of
// any script. What a self-hosted portal sends beyond is cut, so that half a
// million users of 13 KiB each (the answer cap over 50 rows a page) cannot
// be held.
const maxTextBytes = 1 << 10

// cutText is s cut to at most maxTextBytes, on a character's boundary.
func cutText(s string) string { return remote.Cut(s, maxTextBytes) }

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
	if b[0] == '[' || b[0] == '{' {
		if err := decodeList(b, &items); err != nil {
			return err
		}
	} else {
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

// decodeRow fills the row type *dst from one Bitrix24 object: each field
// tagged `b24:"KEY"` takes the value of KEY with the tolerance of its kind
// (int64 and int as flexInt, float64 as flexFloat, bool as flexBool, string
// as flexString, []int64 as flexIntList); untagged fields end zero. Keys
// match as encoding/json matches them. On an error *dst is left as it was.
func decodeRow[T any](b []byte, dst *T) error {
	p := planOf(reflect.TypeFor[T]())
	mirror := reflect.New(p.mirror)
	if err := json.Unmarshal(b, mirror.Interface()); err != nil {
		return err
	}
	out, in := reflect.ValueOf(dst).Elem(), mirror.Elem()
	out.SetZero()
	for i, f := range p.fields {
		v, to := in.Field(i), out.Field(f)
		switch to.Kind() {
		case reflect.Int64, reflect.Int:
			to.SetInt(v.Int())
		case reflect.Float64:
			to.SetFloat(v.Float())
		case reflect.Bool:
			to.SetBool(v.Bool())
		case reflect.String:
			to.SetString(v.String())
		default: // []int64, which a flexIntList is assignable to
			to.Set(v)
		}
	}
	return nil
}

// rowPlan is how decodeRow reads one row type: a struct of flex fields
// that encoding/json fills, and for each of its fields the row's field.
type rowPlan struct {
	mirror reflect.Type
	fields []int
}

var rowPlans sync.Map // reflect.Type → *rowPlan

// flexOf is the flex type that reads a row field of each kind.
var flexOf = map[reflect.Type]reflect.Type{
	reflect.TypeFor[int64]():   reflect.TypeFor[flexInt](),
	reflect.TypeFor[int]():     reflect.TypeFor[flexInt](),
	reflect.TypeFor[float64](): reflect.TypeFor[flexFloat](),
	reflect.TypeFor[bool]():    reflect.TypeFor[flexBool](),
	reflect.TypeFor[string]():  reflect.TypeFor[flexString](),
	reflect.TypeFor[[]int64](): reflect.TypeFor[flexIntList](),
}

func planOf(t reflect.Type) *rowPlan {
	if p, ok := rowPlans.Load(t); ok {
		return p.(*rowPlan)
	}
	p := &rowPlan{}
	var mirror []reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		key, ok := f.Tag.Lookup("b24")
		if !ok {
			continue
		}
		ft, ok := flexOf[f.Type]
		if !ok {
			panic("bitrix24: no tolerant decoding for " + t.String() + "." + f.Name + " of type " + f.Type.String())
		}
		mirror = append(mirror, reflect.StructField{
			Name: "F" + strconv.Itoa(i), Type: ft, Tag: reflect.StructTag(`json:"` + key + `"`),
		})
		p.fields = append(p.fields, i)
	}
	p.mirror = reflect.StructOf(mirror)
	actual, _ := rowPlans.LoadOrStore(t, p)
	return actual.(*rowPlan)
}
