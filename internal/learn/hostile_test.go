package learn

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// hostileServer serves h over TLS and returns its URL and a client for it:
// the address rule lets the server through as its one exemption, as a
// public server the portal admin chose would be.
func hostileServer(t *testing.T, h http.Handler) (string, *http.Client) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	addr := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "https://"))
	return srv.URL, NewHTTPClient(DialerOptions{TLSConfig: &tls.Config{RootCAs: pool},
		exempt: func(ap netip.AddrPort) bool { return ap == addr }})
}

// hostileCreds are the admin's, for the hostile server's account.
var hostileCreds = Credentials{AccountURL: "https://learn.hostile.example", Email: testEmail, Password: testPassword}

// hostileClient is a client for an account whose API is h (see hostileServer).
func hostileClient(t *testing.T, h http.Handler, retry RetryPolicy) *Client {
	t.Helper()
	u, hc := hostileServer(t, h)
	c, err := New(hostileCreds, Options{HTTPClient: hc, BaseURL: u, Retry: retry})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// allocated is how many bytes fn allocates (the test runs alone: no
// t.Parallel, so the package's parallel tests wait for it).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A create's answer is read for the new ID through any number of
// {"response": …} envelopes, each one parsed again from its copy: 140 KB of
// nested envelopes (well under the 1 MiB answer cap) cost gigabytes of
// allocations and seconds of CPU for one create, and parallel creates
// against a hostile server take the worker's memory, every tenant's jobs
// with it. Learn wraps at most once.
func TestHostileCreateIDEnvelopesAreBounded(t *testing.T) {
	const levels = 9000 // under encoding/json's nesting limit of 10,000
	body := strings.Repeat(`{"response":`, levels) + `"d-1"` + strings.Repeat("}", levels)
	c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}), fastRetry)
	var err error
	n := allocated(func() {
		_, err = c.CreateDepartment(context.Background(), NewDepartment{Name: "x", ParentID: "root"})
	})
	if n > 64<<20 {
		t.Fatalf("one create answer of %d KB allocated %d MB", len(body)>>10, n>>20)
	}
	t.Logf("err = %v, allocated %d MB", err, n>>20)
}

// An error's text is stored with the run, shown on the status panel and
// logged: what a hostile server wrote must not reach it whole. Go's decoders
// quote the offending input in their errors: a number literal as long as
// the object window (1 MiB), an XML name with bytes that are not UTF-8
// (PostgreSQL refuses to store such text).
func TestHostileDecodeErrorsAreBoundedText(t *testing.T) {
	t.Parallel()
	digits := strings.Repeat("9", 500_000)
	c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/users"):
			w.Write([]byte(`{"userProfiles":[{"userId":"u1","status":` + digits + `}]}`))
		case strings.HasPrefix(r.URL.Path, "/department/"):
			w.Write([]byte("<response><department><\xff\xfe>x</\xff\xfe></department></response>"))
		case r.URL.Path == "/user/profile/fields":
			w.Write([]byte(`[{"name":"x","orderPriority":` + digits + `}]`))
		}
	}), fastRetry)
	ctx := context.Background()
	_, usersErr := c.AllUsers(ctx, UserFilter{})
	_, deptErr := c.GetDepartment(ctx, "d1")
	_, fieldsErr := c.ProfileFields(ctx)
	for name, err := range map[string]error{"users": usersErr, "department": deptErr, "fields": fieldsErr} {
		if !errors.Is(err, ErrUnexpected) {
			t.Errorf("%s: err = %v, want ErrUnexpected", name, err)
			continue
		}
		if s := err.Error(); len(s) > 1<<10 || !utf8.ValidString(s) {
			t.Errorf("%s: error text of %d bytes (valid UTF-8: %v): %.200q", name, len(s), utf8.ValidString(s), s)
		}
	}
}

// Go's HTTP transport quotes a malformed answer in its error: a status line
// or a header line as long as the transport reads (megabytes), a header
// line's bytes unescaped. That error is the call's, stored with the run and
// logged, so its text must be short and valid however the server broke HTTP.
func TestHostileTransportErrorsAreBoundedText(t *testing.T) {
	t.Parallel()
	junk := strings.Repeat("\xff", 300_000)
	for name, answer := range map[string]string{
		"status line": "HTTP/1.1 200 " + strings.Repeat("z", 300_000) + "\xff\r\n\r\n",
		"header line": "HTTP/1.1 200 OK\r\n" + junk + "\r\n\r\n",
	} {
		c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			buf.WriteString(answer)
			buf.Flush()
			conn.Close()
		}), RetryPolicy{MaxAttempts: 1})
		_, err := c.GetDepartment(context.Background(), "d1")
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if s := err.Error(); len(s) > 1<<10 || !utf8.ValidString(s) {
			t.Errorf("%s: error text of %d bytes (valid UTF-8: %v): %.200q", name, len(s), utf8.ValidString(s), s)
		}
	}
}

// A lookup asks for people by e-mail in its query; a transport failure's
// text (logged, stored with the run) names the address without it.
func TestTransportErrorsNameNoOneLookedUp(t *testing.T) {
	t.Parallel()
	c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}), RetryPolicy{MaxAttempts: 1})
	err := c.ListUsersWithin(context.Background(), UserFilter{Emails: []string{"anna.schmidt@example.com"}},
		LimitsFor(1), func([]User) error { return nil })
	if err == nil {
		t.Fatal("no error from a server that hangs up")
	}
	if s := err.Error(); strings.Contains(s, "anna") || strings.Contains(s, "example.com") {
		t.Errorf("the error names whom it looked up: %s", s)
	}
}

// Too many redirects is a server that is not Learn, however long the URL
// it last redirected to (the error's text is cut; the code must not be).
func TestHostileLongRedirectIsNotLearn(t *testing.T) {
	t.Parallel()
	u, hc := hostileServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/"+strings.Repeat("z", 2000)+r.URL.Path, http.StatusFound)
	}))
	_, err := FindAPI(context.Background(), hostileCreds, Options{HTTPClient: hc, BaseURL: u})
	var ce *CheckError
	if !errors.As(err, &ce) || ce.Code != CheckNotLearn {
		t.Fatalf("err = %.300v, want %s", err, CheckNotLearn)
	}
}

// An XML answer is read element by element, and Go's decoder keeps every
// open element: a megabyte of nested ones allocated 67 MB for one create's
// answer, 86 MB for a read's, and creates run up to 32 at once; the most
// an XML answer may hold, 256 KiB, some 20 MB.
func TestHostileDeepXMLIsRefusedEarly(t *testing.T) {
	deep := "<response>" + strings.Repeat("<a>", (maxXMLAnswerBytes-len("<response>"))/3)
	c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(deep))
	}), fastRetry)
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"create department": func() error { _, err := c.CreateDepartment(ctx, NewDepartment{Name: "x", ParentID: "p"}); return err },
		"get department":    func() error { _, err := c.GetDepartment(ctx, "d"); return err },
		"profile fields":    func() error { _, err := c.ProfileFields(ctx); return err },
	} {
		var err error
		if n := allocated(func() { err = call() }); n > 4<<20 {
			t.Errorf("%s: %d KB of nested XML allocated %d MB", name, len(deep)>>10, n>>20)
		}
		if !errors.Is(err, ErrUnexpected) {
			t.Errorf("%s: err = %v, want ErrUnexpected", name, err)
		}
	}
}

// A page member the client skips is read token by token, and the decoder
// keeps a record of every bracket open in it with no limit of its own: a
// page of 16 MiB of "[" (a few KB gzipped) held some 300 MB of it.
func TestHostileDeepPageMemberIsRefusedEarly(t *testing.T) {
	body := []byte(`{"departments":[],"x":` + strings.Repeat("[", maxPageBytes-32))
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(body)
	zw.Close()
	c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(gz.Bytes())
	}), fastRetry)
	var err error
	if n := allocated(func() { _, err = c.ListDepartments(context.Background()) }); n > 4<<20 {
		t.Errorf("%d KB on the wire (%d MB unpacked) of nested brackets allocated %d MB", gz.Len()>>10, len(body)>>20, n>>20)
	}
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitDepth {
		t.Errorf("err = %v, want a *LimitError of %s", err, LimitDepth)
	}
}

// A listing is bounded by its answers' bytes, but what they decode to can
// be many times larger: a profile field of 9 bytes ("1a2b":"",) is a map
// entry of about 60, an ID of 2 bytes in a list a 16-byte string header.
// Users made of tiny fields, a page each, held 150 MB for the 20 MB a
// listing of an empty org may read (AllUsers, the lookup after a create's
// lost answer, holds them all; a sync's page at a time).
func TestHostileListingBoundsDecodedSize(t *testing.T) {
	var obj strings.Builder
	obj.WriteString(`{"userId":"u","fields":{`)
	for i := 0; obj.Len() < 900_000; i++ {
		if i > 0 {
			obj.WriteByte(',')
		}
		fmt.Fprintf(&obj, `"%x":""`, i)
	}
	obj.WriteString(`}}`)
	page := `{"userProfiles":[` + obj.String() + `],"nextPageToken":"`
	var mu sync.Mutex
	n := 0
	c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		token := n
		mu.Unlock()
		fmt.Fprintf(w, `%s%d"}`, page, token)
	}), fastRetry)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	users, err := c.AllUsers(context.Background(), UserFilter{})
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if limit := LimitsFor(0).Bytes; held > 2*limit {
		t.Errorf("%d users of %d KB each held %d MB; the listing's limit is %d MB", len(users), len(page)>>10, held>>20, limit>>20)
	}
	var le *LimitError
	if !errors.As(err, &le) {
		t.Errorf("err = %v, want a *LimitError", err)
	}
	runtime.KeepAlive(users)
}

// Go's transport reads up to 10 MB of an answer's headers by default, and
// parses them at about three times that: 27 MB for one write's answer, with
// up to 32 writes in flight. No API's headers come near the guard's limit.
func TestHostileHugeHeadersAreRefused(t *testing.T) {
	timing := strings.Repeat("dur=1,", 800)
	c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 2000 {
			w.Header().Add("Server-Timing", timing)
		}
		w.Write([]byte(`{}`))
	}), RetryPolicy{MaxAttempts: 1})
	var err error
	n := allocated(func() { err = c.UpdateDepartment(context.Background(), "d", DepartmentUpdate{Name: "y"}) })
	if err == nil || n > 8<<20 {
		t.Fatalf("9.6 MB of headers: err = %v, allocated %d MB", err, n>>20)
	}
}

// Go's XML decoder parses all of an element's attributes before handing
// the element over: a megabyte of them (Learn's answers have none)
// allocated 45 MB for one answer.
func TestHostileXMLAttributeFloodIsRefused(t *testing.T) {
	flood := "<response><department " + strings.Repeat(`a="1" `, 170_000) + ">"
	c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(flood))
	}), fastRetry)
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"create department": func() error { _, err := c.CreateDepartment(ctx, NewDepartment{Name: "x", ParentID: "p"}); return err },
		"get department":    func() error { _, err := c.GetDepartment(ctx, "d"); return err },
	} {
		var err error
		if n := allocated(func() { err = call() }); n > 16<<20 {
			t.Errorf("%s: %d KB of attributes allocated %d MB", name, len(flood)>>10, n>>20)
		}
		if !errors.Is(err, ErrUnexpected) {
			t.Errorf("%s: err = %v, want ErrUnexpected", name, err)
		}
	}
}

// The settings page reads the account's profile field definitions on every
// view, before activation too, and writes a row for each: 1 MiB of empty
// definitions ([{},{},…]) were 349,001 fields and 247 MB allocated in the
// web process, per view.
func TestHostileProfileFieldsAreBounded(t *testing.T) {
	body := "[" + strings.Repeat("{},", 349_000) + "{}]"
	c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(body))
	}), fastRetry)
	var err error
	var fs []FieldInfo
	if n := allocated(func() { fs, err = c.ProfileFields(context.Background()) }); n > 16<<20 {
		t.Errorf("1 MiB of field definitions allocated %d MB", n>>20)
	}
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitFields || len(fs) != 0 {
		t.Errorf("%d fields, err = %v; want a *LimitError of fields", len(fs), err)
	}
}

// A hostile server may redirect the app's calls, with the admin's
// credentials, to another Learn server (another tenant's account) or to
// plain http: the credentials never leave the first host, whether the call
// is a read or a write (307 keeps the method and body), and http is refused.
func TestHostileRedirectsKeepCredentialsHome(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		for _, h := range []string{"X-Auth-Account-Url", "X-Auth-Email", "X-Auth-Password"} {
			if v := r.Header.Get(h); v != "" {
				leaked = append(leaked, r.Method+" "+h)
			}
		}
		mu.Unlock()
		w.Write([]byte(`{"departmentId":"d","name":"x","departments":[]}`))
	}))
	t.Cleanup(other.Close)
	first := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := other.URL
		if r.URL.Query().Get("code") != "" {
			target = strings.Replace(other.URL, "https://", "http://", 1)
		}
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(first.Close)
	pool := x509.NewCertPool()
	pool.AddCert(first.Certificate())
	pool.AddCert(other.Certificate())
	ok := map[netip.AddrPort]bool{}
	for _, s := range []*httptest.Server{first, other} {
		ok[netip.MustParseAddrPort(strings.TrimPrefix(s.URL, "https://"))] = true
	}
	hc := NewHTTPClient(DialerOptions{TLSConfig: &tls.Config{RootCAs: pool},
		exempt: func(ap netip.AddrPort) bool { return ok[ap] }})
	c, err := New(hostileCreds, Options{HTTPClient: hc, BaseURL: first.URL, Retry: RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.GetDepartment(ctx, "d"); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := c.UpdateDepartment(ctx, "d", DepartmentUpdate{Name: "y"}); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, err := c.FindDepartmentsByCode(ctx, "c"); !errors.Is(err, ErrInsecureURL) {
		t.Errorf("redirect to http: err = %v, want ErrInsecureURL", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) > 0 {
		t.Errorf("credentials sent to the host redirected to: %v", leaked)
	}
}

// A created object's ID is stored in the portal's mappings, read into
// memory by every later run and put in the paths of later calls: an answer
// of a megabyte of letters was taken as the ID (a thousand creates, a
// gigabyte to load per run). Learn's IDs are UUIDs.
func TestHostileCreatedIDMustLookLikeOne(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("a", maxAnswerBytes-10)
	for name, body := range map[string]string{
		"bare":       huge,
		"JSON":       `"` + huge + `"`,
		"object":     `{"departmentId":"` + huge + `"}`,
		"XML":        "<response>" + strings.Repeat("a", 200<<10) + "</response>",
		"not UTF-8":  "d-\xff\xfe",
		"with a NUL": `"d-\u0000"`,
	} {
		c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(body))
		}), fastRetry)
		id, err := c.CreateDepartment(context.Background(), NewDepartment{Name: "x", ParentID: "p"})
		if id != "" || !errors.Is(err, ErrUnexpected) {
			t.Errorf("%s: id of %d bytes, err = %v; want none and ErrUnexpected", name, len(id), err)
		}
	}
	c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"departmentId":"0f9c2b1e-5d0a-11ee-8c99-0242ac120002"}`))
	}), fastRetry)
	if id, err := c.CreateDepartment(context.Background(), NewDepartment{Name: "x", ParentID: "p"}); err != nil || id != "0f9c2b1e-5d0a-11ee-8c99-0242ac120002" {
		t.Errorf("a UUID: id %q, err %v", id, err)
	}
}

// The lookup after a department create whose answer was lost reads the
// departments with its code, in one answer: 1 MiB of empty ones ({},{},…)
// decoded to 243 MB, once per such create, creates running in parallel.
func TestHostileFoundDepartmentsAreBounded(t *testing.T) {
	body := `{"departments":[` + strings.Repeat("{},", 349_000) + "{}]}"
	c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(body))
	}), fastRetry)
	var err error
	if n := allocated(func() { _, err = c.FindDepartmentsByCode(context.Background(), "c") }); n > 16<<20 {
		t.Errorf("1 MiB of departments allocated %d MB", n>>20)
	}
	var le *LimitError
	if !errors.As(err, &le) {
		t.Errorf("err = %v, want a *LimitError", err)
	}
}

// IDs read in a listing go into the portal's mappings too (a user linked by
// e-mail, a department by code): a listing's object of a megabyte may be
// its ID, and a NUL is text PostgreSQL cannot store.
func TestHostileListedIDsMustLookLikeOnes(t *testing.T) {
	t.Parallel()
	for name, page := range map[string]string{
		"long user ID":         `{"userProfiles":[{"userId":"` + strings.Repeat("a", 100_000) + `"}]}`,
		"department ID w/ NUL": `{"departments":[{"departmentId":"d\u0000","name":"x"}]}`,
	} {
		c := hostileClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(page))
		}), fastRetry)
		ctx := context.Background()
		var err error
		if strings.Contains(page, "userProfiles") {
			_, err = c.AllUsers(ctx, UserFilter{})
		} else {
			_, err = c.ListDepartments(ctx)
		}
		if !errors.Is(err, ErrUnexpected) {
			t.Errorf("%s: err = %v, want ErrUnexpected", name, err)
		}
	}
}
