package calllog

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"b24learn/internal/pgtest"
)

// A Learn server is the portal admin's to choose, and every redirect hop
// is recorded with the path it went to: a hostile server picks that path.
// One with bytes that are not UTF-8 must not make the batch it is written
// in fail (taking other portals' entries with it), and a long one must not
// fill the log.
func TestHostileRedirectPathIsBoundedAndValid(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	hostile, other := addPortal(t, pool, "H"), addPortal(t, pool, "O")
	long := "/" + strings.Repeat("z", 200_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/departments":
			http.Redirect(w, r, "/%ff%fe", http.StatusFound)
		case "/\xff\xfe":
			http.Redirect(w, r, long, http.StatusFound)
		default:
			io.WriteString(w, `{"departments":[]}`)
		}
	}))
	defer srv.Close()

	rec := NewRecorder(pool, slog.New(slog.DiscardHandler))
	defer rec.Close()
	resp, err := (&http.Client{Transport: rec.Transport(hostile, "learn", nil)}).Get(srv.URL + "/departments")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = (&http.Client{Transport: rec.Transport(other, "learn", nil)}).Get(srv.URL + "/users/v2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := rec.Flush(ctx); err != nil {
		t.Fatalf("flush with a hostile path in the batch: %v", err)
	}
	if got, _ := List(ctx, pool, other, 10); len(got) != 1 {
		t.Fatalf("the other portal has %d entries, want 1 (its entry went down with the hostile one's batch)", len(got))
	}
	got, _ := List(ctx, pool, hostile, 10)
	if len(got) != 3 {
		t.Fatalf("hostile portal has %d entries, want 3", len(got))
	}
	for _, e := range got {
		if len(e.Method) > maxMethodBytes || !utf8.ValidString(e.Method) {
			t.Errorf("method of %d bytes recorded (valid UTF-8: %v)", len(e.Method), utf8.ValidString(e.Method))
		}
	}
}
