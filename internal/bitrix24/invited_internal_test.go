package bitrix24

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// rowsJSON is a page of n user rows from id on.
func rowsJSON(from, n int, extra string) json.RawMessage {
	rows := make([]string, n)
	for i := range rows {
		rows[i] = fmt.Sprintf(`{"ID":"%d"%s}`, from+i, extra)
	}
	return json.RawMessage("[" + strings.Join(rows, ",") + "]")
}

// The portal's answer to the invited users' question is believed within
// bounds only, whatever it claims: more pages than MaxInvitedPages are never
// asked for, and a page of more than 50 rows, a row of someone who signed in
// or a count no smaller than the listing's names nobody.
func TestHostileInvitedAnswers(t *testing.T) {
	t.Parallel()
	filter := map[string]any{"USER_TYPE": "employee", UserSelect: []any{"*"}}
	for _, c := range []struct {
		name  string
		users int
		res   BatchResult
		pages int    // further pages asked for
		why   string // "" when believed
	}{
		{"BelievedWithinBound", 100_000, BatchResult{Result: map[string]json.RawMessage{"s0": rowsJSON(1, 50, "")},
			Total: map[string]int{"s0": MaxInvitedPages * PageSize}, Next: map[string]int{"s0": 50}}, MaxInvitedPages - 1, ""},
		{"ClaimsHugeCount", 2_000_000_000, BatchResult{Result: map[string]json.RawMessage{"s0": rowsJSON(1, 50, "")},
			Total: map[string]int{"s0": 1_000_000_000}, Next: map[string]int{"s0": 50}}, 0, InvitedTooMany},
		{"CountsEveryone", 500, BatchResult{Result: map[string]json.RawMessage{"s0": rowsJSON(1, 50, "")},
			Total: map[string]int{"s0": 500}, Next: map[string]int{"s0": 50}}, 0, InvitedIgnored},
		{"OversizedPage", 500, BatchResult{Result: map[string]json.RawMessage{"s0": rowsJSON(1, 51, "")},
			Total: map[string]int{"s0": 51}}, 0, InvitedRefused},
		{"SignedInRow", 500, BatchResult{Result: map[string]json.RawMessage{"s0": rowsJSON(1, 3, `,"LAST_LOGIN":"2024-07-25T13:06:54+00:00"`)},
			Total: map[string]int{"s0": 3}}, 0, InvitedSignedIn},
		{"NegativeCount", 500, BatchResult{Result: map[string]json.RawMessage{"s0": rowsJSON(1, 2, "")},
			Total: map[string]int{"s0": -5}, Next: map[string]int{"s0": 50}}, 0, ""},
		{"Refused", 500, BatchResult{Errors: map[string]*APIError{"s0": {Code: "ERROR_CORE", HTTPStatus: 400}}}, 0, InvitedRefused},
		// A next far below the first page would have the pages from there
		// to the count asked for: 20,000 commands here, 40 million for
		// -2,000,000,000, each with its own filter, held at once.
		{"NegativeNext", 500, BatchResult{Result: map[string]json.RawMessage{"s0": rowsJSON(1, 50, "")},
			Total: map[string]int{"s0": 100}, Next: map[string]int{"s0": -1_000_000}}, 1, ""},
		// A count beyond the first page without a next: the pages the
		// count names are read all the same, or the invited on them would
		// be created.
		{"CountWithoutNext", 5000, BatchResult{Result: map[string]json.RawMessage{"s0": rowsJSON(1, 50, "")},
			Total: map[string]int{"s0": 150}}, 2, ""},
		{"NextPastTheFirstPage", 5000, BatchResult{Result: map[string]json.RawMessage{"s0": rowsJSON(1, 50, "")},
			Total: map[string]int{"s0": 150}, Next: map[string]int{"s0": 120}}, 2, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := &invitedRead{users: c.users}
			cmds := r.first(&c.res, "s0", filter)
			if len(cmds) != c.pages {
				t.Errorf("asked for %d further pages, want %d", len(cmds), c.pages)
			}
			for _, bc := range cmds {
				f := bc.Params["FILTER"].(map[string]any)
				if _, ok := f[UserSelect]; ok || f[invitedFilterKey] != invitedFilterValue || f["USER_TYPE"] != "employee" {
					t.Fatalf("page filter %v", f)
				}
			}
			got := r.result()
			if c.why == "" && !got.Known || c.why != "" && (got.Known || !strings.HasPrefix(got.Why, c.why) || got.IDs != nil) {
				t.Errorf("outcome %+v, want why %q", got, c.why)
			}
		})
	}
}
