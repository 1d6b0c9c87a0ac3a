package bitrix24

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// A self-hosted portal's owner controls its REST answers. One answer of a
// hundred thousand empty rows (a megabyte, inside any body cap) used to be
// decoded whole: at the old 64 MiB cap, 22 million rows and gigabytes of
// memory per call, reachable from a sync or from the people search. Every
// list and keyed section is now refused once it passes a real answer's size,
// and so is a body past the cap.
func TestHostileAnswersAreBounded(t *testing.T) {
	t.Parallel()
	const n = 100_000
	rows := func(format func(i int) string, open, close string) string {
		var b strings.Builder
		b.WriteString(open)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(format(i))
		}
		b.WriteString(close)
		return b.String()
	}
	list := rows(func(int) string { return "{}" }, "[", "]")
	object := rows(func(i int) string { return fmt.Sprintf(`"%d":{}`, i) }, "{", "}")
	page51 := func(format string) string {
		rs := make([]string, PageSize+1)
		for i := range rs {
			rs[i] = fmt.Sprintf(format, i+1)
		}
		return "[" + strings.Join(rs, ",") + "]"
	}
	depts51, users51 := page51(`{"ID":"%d","NAME":"d"}`), page51(`{"ID":"%d","ACTIVE":true}`)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		body string
		call func(*Client) error
		want error
	}{
		{"DepartmentList", `{"result":` + list + `,"total":1,"time":{}}`, func(c *Client) error {
			_, err := c.Departments(ctx)
			return err
		}, ErrTooManyRows},
		{"DepartmentsAsObject", `{"result":` + object + `,"total":1,"time":{}}`, func(c *Client) error {
			_, err := c.Departments(ctx)
			return err
		}, ErrTooManyRows},
		{"EventBindings", `{"result":` + list + `,"time":{}}`, func(c *Client) error {
			_, err := c.EventGet(ctx)
			return err
		}, ErrTooManyRows},
		{"UserDepartments", `{"result":[{"ID":"1","UF_DEPARTMENT":` + rows(func(int) string { return "1" }, "[", "]") + `}],"total":1,"time":{}}`, func(c *Client) error {
			_, err := c.Users(ctx, nil)
			return err
		}, ErrTooManyRows},
		{"BatchSection", `{"result":{"result":` + object + `,"result_error":[],"result_total":[],"result_next":[],"result_time":[]},"time":{}}`, func(c *Client) error {
			_, err := c.Batch(ctx, []BatchCommand{{Key: "a", Method: "user.get"}})
			return err
		}, ErrTooManyRows},
		// Bitrix24 pages by 50: a page of more would let the claimed total
		// (held to the bounds) stand for 100 times as many rows.
		{"DepartmentPageOver50", `{"result":` + depts51 + `,"next":50,"total":500,"time":{}}`, func(c *Client) error {
			_, err := c.Departments(ctx)
			return err
		}, ErrTooManyRows},
		{"UserPageOver50", `{"result":` + users51 + `,"next":50,"total":500,"time":{}}`, func(c *Client) error {
			_, err := c.Users(ctx, nil)
			return err
		}, ErrTooManyRows},
		{"OrgPageOver50", `{"result":{"result":{"d0":` + depts51 + `,"u0":[]},"result_error":[],"result_total":{"d0":500,"u0":0},"result_next":{"d0":50},"result_time":[]},"time":{}}`, func(c *Client) error {
			_, _, err := c.Org(ctx, nil)
			return err
		}, ErrTooManyRows},
		{"BodyOverTheCap", `{"result":[{"NAME":"` + strings.Repeat("x", maxAnswerBytes) + `"}],"time":{}}`, func(c *Client) error {
			_, err := c.Departments(ctx)
			return err
		}, ErrAnswerTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(c.body))
			}))
			t.Cleanup(srv.Close)
			cl := New(Config{Endpoint: srv.URL + "/rest/", Tokens: staticTokens{Token{AccessToken: "a"}},
				Limiter: NewLimiter(0, 0), MaxRetries: 1, HTTP: &http.Client{Timeout: 30 * time.Second},
				MaxDepartments: testMaxDepartments, MaxUsers: testMaxUsers})
			if err := c.call(cl); !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
}

// The bound leaves real answers alone: a full batch's worth of rows, in
// either of PHP's shapes, decodes in order.
func TestDecodeListKeepsRealAnswers(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`[{"ID":"1"},{"ID":"2"},{"ID":"3"}]`, `{"1":{"ID":"2"},"0":{"ID":"1"},"2":{"ID":"3"}}`} {
		var ds []Department
		if err := decodeList([]byte(raw), &ds); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if len(ds) != 3 || ds[0].ID != 1 || ds[2].ID != 3 {
			t.Fatalf("%s: decoded %+v", raw, ds)
		}
	}
	full := `[` + strings.TrimSuffix(strings.Repeat(`{"ID":"1"},`, maxRows), ",") + `]`
	var ds []Department
	if err := decodeList([]byte(full), &ds); err != nil || len(ds) != maxRows {
		t.Fatalf("%d rows: %d decoded, %v", maxRows, len(ds), err)
	}
	for _, raw := range []string{``, `null`, `[]`, `{}`} {
		if err := decodeList([]byte(raw), &ds); err != nil || len(ds) != 0 {
			t.Fatalf("%q: %d rows, %v", raw, len(ds), err)
		}
	}
	for _, raw := range []string{`[{"ID":"1"}] x`, `"x"`, `[{"ID":"1"}`} {
		if err := decodeList([]byte(raw), &ds); err == nil {
			t.Fatalf("%q decoded", raw)
		}
	}
}

// Text a real portal cannot hold (its columns take 255 characters) is cut
// as read, on a character's boundary, and a row keeps a bounded number of
// custom fields: half a million users of 13 KiB each is what the answer cap
// would let a self-hosted portal send.
func TestLongTextIsCut(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("Щ", 3000) // two bytes each: the cut falls inside one
	var b strings.Builder
	row := fmt.Sprintf(`{"ID":"7","NAME":"%s","EMAIL":"%s@x.example","UF_USR_NOTE":"%s"`, long, long, long)
	var u User
	if err := json.Unmarshal([]byte(row+"}"), &u); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"NAME": u.Name, "EMAIL": u.Email, "UF_USR_NOTE": u.UF["UF_USR_NOTE"]} {
		if len(v) > maxTextBytes || !utf8.ValidString(v) || !strings.HasPrefix(long, v) || utf8.RuneCountInString(v) < 255 {
			t.Errorf("%s kept %d bytes (valid %v)", name, len(v), utf8.ValidString(v))
		}
	}
	b.WriteString(row)
	for i := range 2 * maxOwnUF {
		fmt.Fprintf(&b, `,"UF_USR_%d":"v"`, i)
	}
	b.WriteString("}")
	if err := json.Unmarshal([]byte(b.String()), &u); err != nil {
		t.Fatal(err)
	}
	if len(u.UF) > maxOwnUF {
		t.Errorf("%d custom fields kept of %d", len(u.UF), 2*maxOwnUF+1)
	}
	short := `{"ID":"8","NAME":"Анна","UF_USR_NOTE":"ok"}`
	if err := json.Unmarshal([]byte(short), &u); err != nil || u.Name != "Анна" || u.UF["UF_USR_NOTE"] != "ok" {
		t.Fatalf("a real row read as %+v (%v)", u, err)
	}
}
