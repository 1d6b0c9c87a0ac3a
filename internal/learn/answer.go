package learn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What a Learn answer holds: its JSON or XML body decoded, and the ID a create
// returns, read only where an ID may be and only if it may be one.

// decode reads a JSON answer into out, unwrapping a {"response": …} envelope
// (the OAS shows one on single-object reads, client code assumes none), or an
// XML answer (see decodeXML).
func decode(route string, body []byte, out any) error {
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '<' {
		if len(b) > maxXMLAnswerBytes {
			return fmt.Errorf("decode %s: %w", route, &LimitError{Limit: LimitAnswerBytes, What: route + " in XML", Value: maxXMLAnswerBytes})
		}
		if err := decodeXML(b, out); err != nil {
			return fmt.Errorf("decode %s: %w: %w", route, ErrUnexpected, &boundedError{err})
		}
		return nil
	}
	if len(b) > 0 && b[0] == '{' {
		var env map[string]json.RawMessage
		if json.Unmarshal(b, &env) == nil && len(env) == 1 {
			if inner, ok := env["response"]; ok {
				b = inner
			}
		}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode %s: %w: %w", route, ErrUnexpected, &boundedError{err})
	}
	return nil
}

// parseID reads the ID a create returns: a JSON string, a bare UUID, an
// <response>UUID</response> body, or the created object (when Learn returns
// it), whose ID is under key ("departmentId", "userId"). Other keys are never
// taken: a created user also carries a departmentId.
func parseID(body []byte, key string) string { return parseIDWithin(body, key, maxIDNesting) }

// maxIDNesting bounds the objects parseID looks into: {"response":
// {"userId": …}} is the deepest Learn sends. Each level is parsed again
// from its copy, so a hostile server's thousands of envelopes in one answer
// cost gigabytes.
const maxIDNesting = 3

func parseIDWithin(body []byte, key string, depth int) string {
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, "<") {
		if len(s) > maxXMLAnswerBytes {
			return ""
		}
		return xmlID([]byte(s), key)
	}
	if strings.HasPrefix(s, `"`) {
		var v string
		if json.Unmarshal([]byte(s), &v) == nil {
			return strings.TrimSpace(v)
		}
	}
	if strings.HasPrefix(s, "{") {
		var m map[string]json.RawMessage
		if depth > 0 && json.Unmarshal([]byte(s), &m) == nil {
			for _, k := range []string{"response", key, "id"} {
				if v, ok := m[k]; ok {
					return parseIDWithin(v, key, depth-1)
				}
			}
		}
		return ""
	}
	if strings.ContainsAny(s, "<>{} \n\t\"") {
		return ""
	}
	return s
}

// maxIDLen bounds a created object's ID; Learn's are UUIDs (36).
const maxIDLen = 128

// plausibleID reports whether id may be a Learn ID. A created object's ID
// is stored in the portal's mappings, loaded by every later run and put in
// the paths of later calls, so a server's megabyte of letters, or bytes
// PostgreSQL cannot store, must not pass for one.
func plausibleID(id string) bool {
	return id != "" && len(id) <= maxIDLen && utf8.ValidString(id) &&
		!strings.ContainsFunc(id, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) })
}
