package calllog

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/pgtest"
)

func TestMethodOfHidesSecrets(t *testing.T) {
	cases := []struct{ service, url, want string }{
		{"bitrix24", "https://a.bitrix24.ru/rest/user.get.json?auth=SECRETTOKEN", "user.get"},
		{"bitrix24", "https://a.bitrix24.ru/rest/department.get?start=-1", "department.get"},
		{"bitrix24", "https://crm.bitrix24.ru/rest/1/w3bh00ks3cret/crm.lead.add.json", "crm.lead.add"},
		{"bitrix24", "https://oauth.bitrix.info/oauth/token/?refresh_token=SECRET", "oauth.token"},
		{"bitrix24", "https://a.bitrix24.ru/rest/batch", "batch"},
		{"bitrix24", "https://a.bitrix24.ru/rest/profile.json?auth=SECRET", "profile"},
		{"bitrix24", "https://a.bitrix24.ru/rest/", "unknown"},
		{"learn", "https://api-learn.ispringlearn.ru/user/0f9c2b1e-5d0a-11ee-8c99-0242ac120002?x=1", "GET /user/{id}"},
		{"learn", "https://api-learn.ispringlearn.ru/departments/42/subordination", "GET /departments/{id}/subordination"},
	}
	for _, c := range cases {
		req := httptest.NewRequest(http.MethodGet, c.url, nil)
		got := MethodOf(c.service, req)
		if got != c.want {
			t.Errorf("MethodOf(%s) = %q, want %q", c.url, got, c.want)
		}
		if strings.Contains(got, "SECRET") || strings.Contains(got, "s3cret") {
			t.Errorf("%s leaked a secret: %q", c.url, got)
		}
	}
}

// addPortal inserts a portal of member ID m and returns its id.
func addPortal(t *testing.T, pool *pgxpool.Pool, m string) int64 {
	t.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), `INSERT INTO portals (member_id, domain) VALUES ($1, $1) RETURNING id`, m).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestTransportRecordsAndKeepsBody(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	a, b := addPortal(t, pool, "A"), addPortal(t, pool, "B")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "user.get") {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"expired_token","error_description":"The access token provided has expired."}`)
			return
		}
		io.WriteString(w, `{"result":[]}`)
	}))
	defer srv.Close()

	rec := NewRecorder(pool, slog.New(slog.DiscardHandler))
	defer rec.Close()
	hc := &http.Client{Transport: rec.Transport(a, "bitrix24", nil)}
	resp, err := hc.Get(srv.URL + "/rest/user.get.json?auth=SECRET")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "expired_token") {
		t.Fatalf("client lost the body: %q", body)
	}
	resp, err = hc.Get(srv.URL + "/rest/department.get.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	got, err := List(ctx, pool, a, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("portal A has %d entries, want 2", len(got))
	}
	byMethod := map[string]Entry{}
	for _, e := range got {
		byMethod[e.Method] = e
	}
	if e := byMethod["user.get"]; e.Status != 401 || e.ErrorCode != "expired_token" {
		t.Errorf("user.get entry = %+v", e)
	}
	if e := byMethod["department.get"]; e.Status != 200 || e.ErrorCode != "" {
		t.Errorf("department.get entry = %+v", e)
	}
	if other, _ := List(ctx, pool, b, 10); len(other) != 0 {
		t.Errorf("portal B sees %d entries of portal A", len(other))
	}
	var leaked int
	pool.QueryRow(ctx, `SELECT count(*) FROM call_log WHERE method LIKE '%SECRET%' OR error_code LIKE '%SECRET%'`).Scan(&leaked)
	if leaked != 0 {
		t.Error("a secret reached the call log")
	}

	// Entries older than the retention go; newer ones stay.
	if _, err := pool.Exec(ctx, `UPDATE call_log SET at = now() - interval '8 days' WHERE method = 'user.get'`); err != nil {
		t.Fatal(err)
	}
	n, err := Prune(ctx, pool, time.Now())
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	if left, _ := List(ctx, pool, a, 10); len(left) != 1 || left[0].Method != "department.get" {
		t.Fatalf("after prune: %+v", left)
	}
}

// The log keeps an error code, never free text a remote side wrote there.
func TestPeekErrorCodeOnlyCodes(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":"QUERY_LIMIT_EXCEEDED","error_description":"slow down"}`: "QUERY_LIMIT_EXCEEDED",
		`{"code":409,"message":"duplicate"}`:                               "409",
		`{"error":"<b>INTERNAL PANEL secret</b>"}`:                         "",
		`{"error":"two words"}`:                                            "",
	} {
		resp := &http.Response{StatusCode: 500, Body: io.NopCloser(strings.NewReader(body))}
		if got := peekErrorCode(resp); got != want {
			t.Errorf("%s: code %q, want %q", body, got, want)
		}
		if rest, _ := io.ReadAll(resp.Body); string(rest) != body {
			t.Errorf("body not put back: %q", rest)
		}
	}
}
