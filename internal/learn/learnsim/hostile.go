package learnsim

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Hostile makes the listing routes (GET /departments, GET /users, GET and
// POST /users/v2) answer like a server that tries to exhaust its client's
// memory or keep it paging forever, for tests and drills of the client's
// limits. Authentication still applies. Answers are generated while they are
// written, so the simulator holds none of them. The zero value is off; when
// several modes are set, HugeAnswer wins, then RepeatTokens.
type Hostile struct {
	// EndlessPages answers every page with pageSize made-up objects and a
	// fresh nextPageToken, forever.
	EndlessPages bool
	// RepeatTokens answers pages of two objects whose nextPageToken cycles
	// between two values, so a client that follows tokens never ends.
	RepeatTokens bool
	// HugeAnswer, when positive, answers with about this many bytes: a list
	// of objects with 64 KiB names, or with HugeObject one object whose name
	// goes on to the end.
	HugeAnswer int64
	HugeObject bool
	// Listing, "departments" or "users", keeps the mode to that listing;
	// empty means both.
	Listing string
}

// applies reports whether the mode is on for the route pattern.
func (h Hostile) applies(pattern string) bool {
	on := h.EndlessPages || h.RepeatTokens || h.HugeAnswer > 0
	key := hostileKey(pattern)
	return on && key != "" && (h.Listing == "" || h.Listing == "departments" && key == "departments" ||
		h.Listing == "users" && key == "userProfiles")
}

// hostileKey is the JSON key of a listing route's objects, "" for other routes.
func hostileKey(pattern string) string {
	switch pattern {
	case "GET /departments":
		return "departments"
	case "GET /users", "GET /users/v2", "POST /users/v2":
		return "userProfiles"
	}
	return ""
}

func serveHostile(w http.ResponseWriter, r *http.Request, h Hostile) {
	key := hostileKey(r.Pattern)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	tok := r.URL.Query().Get("pageToken")
	switch {
	case h.HugeAnswer > 0:
		chunk := []byte(strings.Repeat("x", 64<<10))
		fmt.Fprintf(bw, `{%q:[`, key)
		written := int64(0)
		for i := 0; written < h.HugeAnswer; i++ {
			if i == 0 || !h.HugeObject {
				sep := ","
				if i == 0 {
					sep = ""
				}
				fmt.Fprintf(bw, `%s{"departmentId":"huge-%d","userId":"huge-%d","name":"`, sep, i, i)
			}
			if _, err := bw.Write(chunk); err != nil {
				return // the client hung up, as it should
			}
			written += int64(len(chunk))
			if !h.HugeObject {
				bw.WriteString(`"}`)
			}
		}
		if h.HugeObject {
			bw.WriteString(`"}`)
		}
		bw.WriteString(`]}`)
	case h.RepeatTokens:
		next := "cycle-a"
		if tok == "cycle-a" {
			next = "cycle-b"
		}
		writeHostilePage(bw, key, tok, 2, next)
	default:
		page, _ := strconv.Atoi(strings.TrimPrefix(tok, "endless-"))
		size, err := strconv.Atoi(r.URL.Query().Get("pageSize"))
		if err != nil || size <= 0 || size > 1000 {
			size = 1000
		}
		writeHostilePage(bw, key, strconv.Itoa(page), size, "endless-"+strconv.Itoa(page+1))
	}
}

// writeHostilePage writes n made-up departments or users of page tag.
func writeHostilePage(bw *bufio.Writer, key, tag string, n int, next string) {
	fmt.Fprintf(bw, `{%q:[`, key)
	for i := range n {
		if i > 0 {
			bw.WriteByte(',')
		}
		id := fmt.Sprintf("hostile-%s-%d", tag, i)
		if key == "departments" {
			fmt.Fprintf(bw, `{"departmentId":%q,"name":"Hostile %d","parentDepartmentId":"hostile-root","code":%q}`, id, i, id)
			continue
		}
		fmt.Fprintf(bw, `{"userId":%q,"departmentId":"hostile-root","status":1,"role":"learner","fields":[`+
			`{"name":"LOGIN","value":"%s@example.com"},{"name":"EMAIL","value":"%s@example.com"},`+
			`{"name":"FIRST_NAME","value":"Hostile"},{"name":"LAST_NAME","value":"User %d"}]}`, id, id, id, i)
	}
	fmt.Fprintf(bw, `],"nextPageToken":%q}`, next)
}
