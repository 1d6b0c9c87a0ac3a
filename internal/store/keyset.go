package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Keyset paging for lists shown newest first by (created_at DESC, id DESC).
// A page is found by the key of a row next to it, not by an offset: a row
// added while someone pages moves nothing under their feet, and the query
// reads one page from the index instead of every row before it.

// Cursor is where a page starts: the rows older than Key (the zero Cursor:
// the newest rows) or, with Newer, the rows newer than it.
type Cursor struct {
	Key   Key
	Newer bool
}

// IsZero says whether c asks for the first page.
func (c Cursor) IsZero() bool { return c.Key == Key{} }

// Key is a row's place in a list: its created_at and id.
type Key struct {
	At time.Time
	ID int64
}

// MaxKeyLen bounds a key in a link: two int64s and a dot.
const MaxKeyLen = 40

// ErrBadCursor is a cursor that is not one String wrote.
var ErrBadCursor = errors.New("malformed list cursor")

// minMicros and maxMicros are 0001-01-01 and 9999-12-31T23:59:59.999999Z:
// the years a key's time may name.
const (
	minMicros = -62135596800000000
	maxMicros = 253402300799999999
)

// String writes k for a link: microseconds since 1970 (timestamptz's own
// precision, so the key compares equal to the row it came from) and the id.
func (k Key) String() string {
	return strconv.FormatInt(k.At.UnixMicro(), 10) + "." + strconv.FormatInt(k.ID, 10)
}

// ParseKey reads a key String wrote, and nothing else: ASCII digits (a
// minus only before a time before 1970), no leading zeros, an id above 0
// and a time in the years 1 to 9999, so a hand-made link can neither reach
// the database malformed nor name a place two spellings share.
func ParseKey(s string) (Key, error) {
	if s == "" || len(s) > MaxKeyLen {
		return Key{}, ErrBadCursor
	}
	at, id, ok := strings.Cut(s, ".")
	if !ok || !canonicalDigits(strings.TrimPrefix(at, "-")) || at == "-0" || !canonicalDigits(id) {
		return Key{}, ErrBadCursor
	}
	us, err1 := strconv.ParseInt(at, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || n <= 0 || us < minMicros || us > maxMicros {
		return Key{}, ErrBadCursor
	}
	return Key{At: time.UnixMicro(us).UTC(), ID: n}, nil
}

// canonicalDigits: ASCII digits without a leading zero (but "0" itself).
func canonicalDigits(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// List is a list PageOf reads: rows Select ... WHERE Where, ordered by the
// columns At and ID. Where uses Args as $1..$n.
type List struct {
	What   string // names the list in errors
	Select string // SELECT columns FROM ..., without WHERE
	// CountFrom is the FROM clause Where needs, for counting without the
	// joins only the columns need.
	CountFrom string
	Where     string
	Args      []any
	At, ID    string
	// CountMax bounds the counts: a page counts at most this many rows and
	// one more, whatever the list's length (0: DefaultCountMax).
	CountMax int
}

// DefaultCountMax is how far a page counts its list. A console page is
// loaded often, and a count of every row of a table that only grows (the
// audit trail) would read all of it on each load.
const DefaultCountMax = 10_000

// Page is one page of a list.
type Page[T any] struct {
	Rows []T
	// Total is the rows in the whole list; with More, the list has more
	// than Total rows (the list's CountMax) and they were not counted.
	Total int
	More  bool
	// First is the place of Rows[0] in the list, from 1; 0 without rows,
	// and 0 with Past when more than Total rows come before the page.
	First int
	Past  bool
	// Older and Newer are the cursors of the next pages; zero when there
	// are none.
	Older, Newer Cursor
}

// Last is the place of the page's last row, 0 without rows or Past.
func (p Page[T]) Last() int {
	if len(p.Rows) == 0 || p.First == 0 {
		return 0
	}
	return p.First + len(p.Rows) - 1
}

type txBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// PageOf reads the page of l at c, size rows at most, with the list's count
// (up to its CountMax) and the cursors of its neighbours. On a pool the
// reads share one snapshot (a read-only repeatable-read transaction), so
// "51–100 of 3,412" and the links agree with the rows shown; inside a
// caller's transaction they use its snapshot. A Newer page that would come
// up short is the first page: the first page is always full.
func PageOf[T any](ctx context.Context, db DBTX, l List, c Cursor, size int, scan func(pgx.Row) (T, error), key func(T) Key) (Page[T], error) {
	var p Page[T]
	read := func(db DBTX) error {
		var err error
		p, err = pageOf(ctx, db, l, c, size, scan, key)
		return err
	}
	if b, ok := db.(txBeginner); ok {
		if err := pgx.BeginTxFunc(ctx, b, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
			func(tx pgx.Tx) error { return read(tx) }); err != nil {
			return Page[T]{}, err
		}
		return p, nil
	}
	return p, read(db)
}

func pageOf[T any](ctx context.Context, db DBTX, l List, c Cursor, size int, scan func(pgx.Row) (T, error), key func(T) Key) (Page[T], error) {
	n := len(l.Args)
	at, id := "$"+strconv.Itoa(n+1), "$"+strconv.Itoa(n+2)
	cols := "(" + l.At + ", " + l.ID + ")"
	desc := ` ORDER BY ` + l.At + ` DESC, ` + l.ID + ` DESC`
	var q string
	var args []any
	switch {
	case c.IsZero():
		q = l.Select + ` WHERE (` + l.Where + `)` + desc + ` LIMIT $` + strconv.Itoa(n+1)
		args = append(slices.Clip(l.Args), size)
	case c.Newer:
		q = l.Select + ` WHERE (` + l.Where + `) AND ` + cols + ` > (` + at + `, ` + id + `)` +
			` ORDER BY ` + l.At + ` ASC, ` + l.ID + ` ASC LIMIT $` + strconv.Itoa(n+3)
		args = append(slices.Clip(l.Args), c.Key.At, c.Key.ID, size)
	default:
		q = l.Select + ` WHERE (` + l.Where + `) AND ` + cols + ` < (` + at + `, ` + id + `)` + desc + ` LIMIT $` + strconv.Itoa(n+3)
		args = append(slices.Clip(l.Args), c.Key.At, c.Key.ID, size)
	}
	rows, err := QueryAll(ctx, db, l.What, scan, q, args...)
	if err != nil {
		return Page[T]{}, err
	}
	if c.Newer {
		if len(rows) < size {
			return pageOf(ctx, db, l, Cursor{}, size, scan, key)
		}
		slices.Reverse(rows)
	}
	// The page's place: how many rows of the list come before its first
	// row or, on an empty page past the end, before the cursor.
	anchor := c.Key
	if len(rows) > 0 {
		anchor = key(rows[0])
	}
	countMax := l.CountMax
	if countMax <= 0 {
		countMax = DefaultCountMax
	}
	// Each count stops at countMax+1 rows: one more says "more than".
	lim := "$" + strconv.Itoa(n+3)
	var total, before int
	err = db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM (SELECT FROM `+l.CountFrom+` WHERE (`+l.Where+`) LIMIT `+lim+`) t),
		(SELECT count(*) FROM (SELECT FROM `+l.CountFrom+` WHERE (`+l.Where+`) AND `+id+`::bigint > 0
			AND `+cols+` > (`+at+`::timestamptz, `+id+`::bigint) LIMIT `+lim+`) b)`,
		append(slices.Clip(l.Args), anchor.At, anchor.ID, countMax+1)...).Scan(&total, &before)
	if err != nil {
		return Page[T]{}, fmt.Errorf("count %s: %w", l.What, err)
	}
	p := Page[T]{Rows: rows, Total: min(total, countMax), More: total > countMax}
	if before > 0 {
		p.Newer = Cursor{Key: anchor, Newer: true}
	}
	if len(rows) == 0 {
		return p, nil
	}
	last := Cursor{Key: key(rows[len(rows)-1])}
	switch {
	case before > countMax:
		p.Past = true
	default:
		p.First = before + 1
	}
	switch {
	case !p.More:
		if p.Last() < total {
			p.Older = last
		}
	case !p.Past && p.Last() <= countMax:
		// More than countMax rows in all, and the page ends within them.
		p.Older = last
	default:
		// Past the counted rows: ask whether any row is older.
		var older bool
		err := db.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+l.CountFrom+` WHERE (`+l.Where+`)
			AND `+cols+` < (`+at+`::timestamptz, `+id+`::bigint))`,
			append(slices.Clip(l.Args), last.Key.At, last.Key.ID)...).Scan(&older)
		if err != nil {
			return Page[T]{}, fmt.Errorf("find older %s: %w", l.What, err)
		}
		if older {
			p.Older = last
		}
	}
	return p, nil
}

// Contains is a LIKE pattern matching s anywhere, with LIKE's own
// characters in s taken literally (backslash is LIKE's default escape).
func Contains(s string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}
