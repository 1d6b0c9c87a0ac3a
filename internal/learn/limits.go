package learn

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// What a Learn account may send is bounded, so that a hostile or broken server
// (an admin can point the app at any host) cannot exhaust a worker's memory or
// keep it paging forever. A listing's limits scale with the size of the portal's
// org: one Learn account may be shared by several portals and hold users of its
// own, so the allowance is a generous multiple of the org plus a floor.
const (
	limitFloorObjects = 10_000  // objects any listing may hold, whatever the org
	limitOrgMultiple  = 10      // objects allowed per department or employee of the org
	limitObjectBytes  = 2 << 10 // average answer bytes allowed per object; real ones are under 1 KiB
	// limitPageFill is the fewest objects a page is assumed to carry on
	// average when bounding pages. Learn documents its default page size,
	// not a maximum (docs/learn-api.md, "Answers, statuses and paging"), so
	// the bound allows pages far smaller than asked; the objects bound still
	// ends a listing of tiny pages.
	limitPageFill   = 10
	limitSlackPages = 10

	// maxPageBytes bounds one page of a listing: pageSize objects of about 16 KiB each.
	maxPageBytes = 16 << 20
	// maxObjectBytes bounds one object or token of a page, so the decoder's
	// buffer stays small whatever the page holds.
	maxObjectBytes = 1 << 20
	// maxAnswerBytes bounds every other answer (one object, an ID, an error).
	maxAnswerBytes = 1 << 20
	// maxPageTokenLen bounds a nextPageToken, which goes back into a URL.
	maxPageTokenLen = 4 << 10
)

// Limits bound one listing: all pages of GET /departments or GET /users/v2.
type Limits struct {
	Objects int   // departments or users
	Pages   int   // answers
	Bytes   int64 // bytes of all answers together
	// Raise, when set, is called once, before a page that might cross these
	// limits; the listing goes on under the limits it returns. A caller that
	// learns the org size while Learn is being read (the syncer reads Bitrix24
	// at the same time) starts with LimitsFor(0) and waits there for the size.
	Raise func(ctx context.Context) (Limits, error)
}

// LimitsFor returns the limits of a listing for a portal whose org has
// orgSize departments and employees.
func LimitsFor(orgSize int) Limits {
	objects := limitFloorObjects + limitOrgMultiple*max(orgSize, 0)
	return Limits{
		Objects: objects,
		Pages:   objects/limitPageFill + limitSlackPages,
		Bytes:   int64(objects) * limitObjectBytes,
	}
}

// Names of the limits in a LimitError.
const (
	LimitObjects     = "objects"
	LimitPages       = "pages"
	LimitBytes       = "bytes"        // of a whole listing
	LimitAnswerBytes = "answer bytes" // of one answer
	LimitObjectBytes = "object bytes" // of one object or token in a page
	LimitPageToken   = "page token"   // repeated, or too long
	LimitFields      = "fields"       // profile field definitions
	LimitDepth       = "depth"        // nesting of a page's skipped members
)

// LimitError says Learn sent more than the client accepts. It is permanent:
// the same account answers the same way again, so the call is not retried.
type LimitError struct {
	Limit string // LimitObjects, LimitPages, ...
	What  string // the listing or route, e.g. "users", "POST /user"
	Value int64  // the limit that was crossed (for LimitPageToken, the page number)
}

func (e *LimitError) Error() string {
	switch e.Limit {
	case LimitObjects:
		return fmt.Sprintf("learn: the account sent more %s than the limit of %d (the limit grows with the Bitrix24 org size)", e.What, e.Value)
	case LimitPages:
		return fmt.Sprintf("learn: the list of %s went on past the limit of %d pages", e.What, e.Value)
	case LimitBytes:
		return fmt.Sprintf("learn: the list of %s exceeded the size limit of %s (the limit grows with the Bitrix24 org size)", e.What, sizeText(e.Value))
	case LimitAnswerBytes:
		return fmt.Sprintf("learn: an answer to %s exceeded the size limit of %s", e.What, sizeText(e.Value))
	case LimitObjectBytes:
		return fmt.Sprintf("learn: an object in an answer to %s exceeded the size limit of %s", e.What, sizeText(e.Value))
	case LimitFields:
		return fmt.Sprintf("learn: the account defines more than %d profile fields", e.Value)
	case LimitDepth:
		return fmt.Sprintf("learn: an answer to %s nested deeper than %d levels", e.What, e.Value)
	case LimitPageToken:
		return fmt.Sprintf("learn: the list of %s repeated a page token or sent an overlong one at page %d, so it would never end", e.What, e.Value)
	}
	return fmt.Sprintf("learn: %s exceeded the %s limit of %d", e.What, e.Limit, e.Value)
}

// Unwrap makes a LimitError match ErrUnexpected.
func (e *LimitError) Unwrap() error { return ErrUnexpected }

func sizeText(n int64) string {
	if n >= 1<<20 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n>>10, 10) + " KiB"
}

// capReader reads at most n bytes and fails with err past them, so a decoder
// tells an answer cut at the limit from one that ended.
type capReader struct {
	r    io.Reader
	n    int64 // bytes left
	read int64
	err  *LimitError
	// rerr is the first failure of r itself (a transport error, retryable).
	rerr error
	// A decoder reads on only to finish the value at hand, so reading more
	// than maxObjectBytes past winStart means that value is too big.
	winStart int64
	winErr   *LimitError
}

// window starts the bound of the next value (see winStart).
func (c *capReader) window() { c.winStart = c.read }

func (c *capReader) Read(p []byte) (int, error) {
	if c.winErr != nil {
		if over := c.read - c.winStart - maxObjectBytes; over >= 0 {
			return 0, c.winErr
		} else if int64(len(p)) > -over {
			p = p[:-over]
		}
	}
	if c.n <= 0 {
		// One byte more tells "exactly at the limit" from "beyond it".
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, c.err
		}
		if err != nil && err != io.EOF {
			c.rerr = err
		}
		return 0, err
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	c.read += int64(n)
	if err != nil && err != io.EOF {
		c.rerr = err
	}
	return n, err
}

// pageList is one token-paged listing in progress.
type pageList[T any] struct {
	c     *Client
	what  string // "users", "departments"
	route string
	key   string // JSON key of the objects, e.g. "userProfiles"
	lim   Limits

	objects, pages int
	bytes          int64
	seen           map[[sha256.Size]byte]bool
}

// run reads every page and hands each one's objects to fn.
func (l *pageList[T]) run(ctx context.Context, q url.Values, fn func([]T) error) error {
	token := ""
	l.seen = map[[sha256.Size]byte]bool{}
	for {
		if err := l.headroom(ctx); err != nil {
			return err
		}
		if l.pages >= l.lim.Pages {
			return &LimitError{Limit: LimitPages, What: l.what, Value: int64(l.lim.Pages)}
		}
		pq := url.Values{}
		for k, v := range q {
			pq[k] = v
		}
		pq.Set("pageSize", strconv.Itoa(pageSize))
		if token != "" {
			pq.Set("pageToken", token)
		}
		var (
			items []T
			next  string
			read  int64
		)
		_, err := l.c.do(ctx, request{method: http.MethodGet, route: l.route, path: l.route, query: pq,
			stream: func(body io.Reader) error {
				var err error
				items, next, read, err = l.decodePage(body)
				return err
			}})
		if err != nil {
			return err
		}
		l.pages++
		l.bytes += read
		l.objects += len(items)
		if len(items) > 0 {
			if err := fn(items); err != nil {
				return err
			}
		}
		if next == "" || len(items) == 0 {
			return nil
		}
		// A token seen before would walk the same pages again, endlessly.
		h := sha256.Sum256([]byte(next))
		if next == token || l.seen[h] || len(next) > maxPageTokenLen {
			return &LimitError{Limit: LimitPageToken, What: l.what, Value: int64(l.pages + 1)}
		}
		l.seen[h] = true
		token = next
	}
}

// headroom asks for the final limits once the next page might cross these.
func (l *pageList[T]) headroom(ctx context.Context) error {
	if l.lim.Raise == nil {
		return nil
	}
	if l.objects+pageSize <= l.lim.Objects && l.pages+1 < l.lim.Pages && l.bytes+maxPageBytes <= l.lim.Bytes {
		return nil
	}
	raise := l.lim.Raise
	l.lim.Raise = nil
	lim, err := raise(ctx)
	if err != nil {
		return err
	}
	l.lim.Objects = max(l.lim.Objects, lim.Objects)
	l.lim.Pages = max(l.lim.Pages, lim.Pages)
	l.lim.Bytes = max(l.lim.Bytes, lim.Bytes)
	return nil
}

// decodePage reads one page object by object, failing as soon as a limit is
// crossed, so neither the raw answer nor more objects than allowed are held.
func (l *pageList[T]) decodePage(body io.Reader) (items []T, next string, read int64, err error) {
	cr := &capReader{r: body, n: maxPageBytes,
		err: &LimitError{Limit: LimitAnswerBytes, What: "GET " + l.route, Value: maxPageBytes}}
	if left := l.lim.Bytes - l.bytes; left < cr.n {
		cr.n = max(left, 0)
		cr.err = &LimitError{Limit: LimitBytes, What: l.what, Value: l.lim.Bytes}
	}
	cr.winErr = &LimitError{Limit: LimitObjectBytes, What: "GET " + l.route, Value: maxObjectBytes}
	dec := json.NewDecoder(cr)
	var charged int64 // decoded size beyond the bytes read
	err = walkPage(dec, cr, l.key, &next, func() error {
		if l.objects+len(items) >= l.lim.Objects {
			return &LimitError{Limit: LimitObjects, What: l.what, Value: int64(l.lim.Objects)}
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if o, ok := any(v).(identified); ok && o.id() != "" && !plausibleID(o.id()) {
			return fmt.Errorf("an object's id is not one: %.40q", o.id())
		}
		if s, ok := any(v).(decodedSizer); ok {
			// What v holds beyond its bytes counts against the same limits.
			extra := s.decodedExtra()
			cr.n -= extra
			charged += extra
			if cr.n < 0 {
				return cr.err
			}
		}
		items = append(items, v)
		return nil
	})
	var le *LimitError
	switch {
	case err == nil:
		return items, next, cr.read + charged, nil
	case errors.As(err, &le):
		return nil, "", cr.read + charged, err
	case cr.rerr != nil:
		return nil, "", cr.read, cr.rerr // the connection failed: the page may be asked again
	}
	return nil, "", cr.read, fmt.Errorf("decode %s: %w: %w", l.route, ErrUnexpected, &boundedError{err})
}

// decodedSizer is an object that may take much more memory than the bytes
// it was read from: a profile field of 9 bytes ("1a2b":"",) becomes a map
// entry of about 60, an ID of 2 bytes in a list a 16-byte string header.
// decodedExtra is that excess, which a listing counts as bytes read, so
// that its limits bound memory and not only the answers.
type decodedSizer interface{ decodedExtra() int64 }

// Estimated memory of a decoded map entry and of a string in a slice,
// beyond the string's bytes.
const (
	mapEntryBytes    = 64
	sliceStringBytes = 16
)

func (u User) decodedExtra() int64 {
	return int64(len(u.Fields))*mapEntryBytes + int64(len(u.Manageable)+len(u.RoleTypes))*sliceStringBytes
}

// identified is an object with an ID, which the syncer may store in the
// portal's mappings (see plausibleID).
type identified interface{ id() string }

func (u User) id() string       { return u.ID }
func (d Department) id() string { return d.ID }

// walkPage reads {"<key>":[…],"nextPageToken":"…"}, also inside a
// {"response":{…}} envelope, calling elem with the decoder at each object.
// Other members are skipped token by token, never buffered whole.
func walkPage(dec *json.Decoder, cr *capReader, key string, next *string, elem func() error) error {
	w := &walker{dec: dec, cr: cr, depthErr: &LimitError{Limit: LimitDepth, What: cr.winErr.What, Value: maxJSONDepth}}
	if err := w.expectDelim('{'); err != nil {
		return err
	}
	return w.members(key, next, true, elem)
}

// walker reads tokens, each within its own size window.
type walker struct {
	dec      *json.Decoder
	cr       *capReader
	depthErr *LimitError
}

// maxJSONDepth bounds the nesting of a page's members the walker skips.
// Learn's go a few levels deep, and read token by token the decoder keeps a
// record of every open bracket with no limit of its own (its 10,000 levels
// bind only Decode): 16 MiB of "[", a few KB gzipped on the wire, held some
// 300 MB.
const maxJSONDepth = 64

func (w *walker) token() (json.Token, error) {
	w.cr.window()
	return w.dec.Token()
}

// members reads the members of an object whose opening brace is read.
func (w *walker) members(key string, next *string, top bool, elem func() error) error {
	for w.dec.More() {
		t, err := w.token()
		if err != nil {
			return err
		}
		name, _ := t.(string)
		if t, err = w.token(); err != nil {
			return err
		}
		switch {
		case name == key && t == json.Delim('['):
			for w.dec.More() {
				w.cr.window()
				if err := elem(); err != nil {
					return err
				}
			}
			if _, err := w.token(); err != nil {
				return err
			}
		case name == key && t != nil: // null is no objects
			return fmt.Errorf("%s is not a list", key)
		case name == "nextPageToken" && isString(t):
			*next = t.(string)
		case name == "response" && top && t == json.Delim('{'):
			if err := w.members(key, next, false, elem); err != nil {
				return err
			}
		default:
			if err := w.skipRest(t); err != nil {
				return err
			}
		}
	}
	_, err := w.token()
	return err
}

func isString(t json.Token) bool { _, ok := t.(string); return ok }

func (w *walker) expectDelim(d json.Delim) error {
	t, err := w.token()
	if err != nil {
		return err
	}
	if t != d {
		return fmt.Errorf("expected %q, got %v", d, t)
	}
	return nil
}

// skipRest skips what is left of a value whose first token was t.
func (w *walker) skipRest(t json.Token) error {
	if t != json.Delim('{') && t != json.Delim('[') {
		return nil
	}
	for depth := 1; depth > 0; {
		t, err := w.token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			if depth++; depth > maxJSONDepth {
				return w.depthErr
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}
