// Package calllog keeps a per-portal log of the app's outgoing calls to
// Bitrix24 and iSpring Learn (time, method, status, duration, error code),
// as Bitrix24's Market review asks. It records at the HTTP transport, so no
// client can forget it, and never records tokens, passwords or bodies.
package calllog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/remote"
)

// Retention is how long calls are kept.
const Retention = 7 * 24 * time.Hour

// Entry is one outgoing call.
type Entry struct {
	PortalID  int64
	At        time.Time
	Service   string // "bitrix24" or "learn"
	Method    string // REST method ("user.get") or Learn path ("GET /user")
	Status    int    // HTTP status, 0 when no answer came
	Duration  time.Duration
	ErrorCode string
}

// Recorder buffers entries and writes them in batches, so logging never
// slows a sync down; when the buffer is full, entries are dropped and counted.
type Recorder struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	entries chan Entry
	dropped atomic.Int64
	wg      sync.WaitGroup
	flushes chan chan error
	stop    chan struct{}
	once    sync.Once
}

// NewRecorder starts the background writer; Close flushes and stops it.
func NewRecorder(pool *pgxpool.Pool, log *slog.Logger) *Recorder {
	r := &Recorder{pool: pool, log: log, entries: make(chan Entry, 10000),
		flushes: make(chan chan error), stop: make(chan struct{})}
	r.wg.Add(1)
	go r.loop()
	return r
}

// Record queues one entry without blocking.
func (r *Recorder) Record(e Entry) {
	select {
	case r.entries <- e:
	default:
		r.dropped.Add(1)
	}
}

// Dropped counts entries lost to a full buffer.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Close writes what is buffered and stops the writer.
func (r *Recorder) Close() {
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
}

// Flush writes what is buffered now; tests use it to read their entries.
func (r *Recorder) Flush(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case r.flushes <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Recorder) loop() {
	defer r.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	batch := make([]Entry, 0, 500)
	flush := func() error {
		err := r.write(context.Background(), batch)
		if err != nil {
			r.log.Warn("call log: write failed; entries dropped", "entries", len(batch), "error", err)
		}
		batch = batch[:0]
		return err
	}
	drain := func() {
		for {
			select {
			case e := <-r.entries:
				batch = append(batch, e)
			default:
				return
			}
		}
	}
	for {
		select {
		case done := <-r.flushes:
			drain()
			done <- flush()
		case e := <-r.entries:
			batch = append(batch, e)
			if len(batch) == cap(batch) {
				flush()
			}
		case <-tick.C:
			flush()
		case <-r.stop:
			drain()
			flush()
			return
		}
	}
}

func (r *Recorder) write(ctx context.Context, batch []Entry) error {
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := r.pool.CopyFrom(ctx, pgx.Identifier{"call_log"},
		[]string{"portal_id", "at", "service", "method", "status", "duration_ms", "error_code"},
		pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
			e := batch[i]
			return []any{e.PortalID, e.At, e.Service, e.Method, e.Status, int32(e.Duration.Milliseconds()), e.ErrorCode}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy call log: %w", err)
	}
	return nil
}

// Transport wraps base so every request for the portal is recorded. service
// is "bitrix24" or "learn".
func (r *Recorder) Transport(portalID int64, service string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{rec: r, portalID: portalID, service: service, base: base}
}

type transport struct {
	rec      *Recorder
	portalID int64
	service  string
	base     http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	e := Entry{PortalID: t.portalID, At: start, Service: t.service, Method: MethodOf(t.service, req), Duration: time.Since(start)}
	switch {
	case err != nil:
		e.ErrorCode = "transport_error"
	default:
		e.Status = resp.StatusCode
		if resp.StatusCode >= 400 {
			e.ErrorCode = peekErrorCode(resp)
		}
	}
	t.rec.Record(e)
	return resp, err
}

// errorCode is what a Bitrix24 or Learn error code looks like.
var errorCode = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// maxMethodBytes bounds a recorded Learn path: redirects are followed and
// recorded hop by hop, and a hostile server names where they go.
const maxMethodBytes = 200

// restMethod is a REST method name: batch, user.get, crm.lead.add.
var restMethod = regexp.MustCompile(`^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*$`)

// numeric path segments are folded so the log groups calls by endpoint and
// holds no identifiers.
var numericSegment = regexp.MustCompile(`/[0-9a-fA-F-]{6,}|/[0-9]+`)

// MethodOf names a call without anything secret: the REST method for
// Bitrix24 (never the webhook code or the query with its auth token), the
// HTTP method and path without ids or query for Learn.
func MethodOf(service string, req *http.Request) string {
	path := req.URL.Path
	if service == "bitrix24" {
		if strings.HasPrefix(path, "/oauth/") {
			return "oauth.token"
		}
		// The method is the last path segment (/rest/user.get.json,
		// /rest/1/<webhook code>/crm.lead.add), never the webhook code.
		segs := strings.Split(strings.Trim(strings.ToLower(path), "/"), "/")
		if i := slices.Index(segs, "rest"); i >= 0 && i < len(segs)-1 {
			last := strings.TrimSuffix(strings.TrimSuffix(segs[len(segs)-1], ".json"), ".xml")
			if restMethod.MatchString(last) {
				return last
			}
		}
		return "unknown"
	}
	// A redirect's path is the server's choice: kept valid UTF-8 (one bad
	// byte fails the whole batch's COPY, other portals' entries included)
	// and short.
	m := req.Method + " " + numericSegment.ReplaceAllString(strings.ToValidUTF8(path, "?"), "/{id}")
	return remote.Clip(m, maxMethodBytes-len("…"))
}

// peekErrorCode reads the error body (bounded), puts it back for the client,
// and returns Bitrix24's "error" or Learn's "code".
func peekErrorCode(resp *http.Response) string {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	rest := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), rest), rest}
	if err != nil {
		return ""
	}
	var v struct {
		Error any `json:"error"`
		Code  any `json:"code"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	for _, c := range []any{v.Error, v.Code} {
		switch c := c.(type) {
		case string:
			// A code, not free text: the remote side chooses what it answers.
			if errorCode.MatchString(c) {
				return c
			}
		case float64:
			return fmt.Sprint(int(c))
		}
	}
	return ""
}

// Prune deletes entries older than the retention.
func Prune(ctx context.Context, pool *pgxpool.Pool, now time.Time) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM call_log WHERE at < $1`, now.Add(-Retention))
	if err != nil {
		return 0, fmt.Errorf("prune call log: %w", err)
	}
	return tag.RowsAffected(), nil
}

// List returns the portal's newest calls, newest first.
func List(ctx context.Context, pool *pgxpool.Pool, portalID int64, limit int) ([]Entry, error) {
	rows, err := pool.Query(ctx, `SELECT portal_id, at, service, method, status, duration_ms, error_code
		FROM call_log WHERE portal_id = $1 ORDER BY at DESC, id DESC LIMIT $2`, portalID, limit)
	if err != nil {
		return nil, fmt.Errorf("list call log: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
		var e Entry
		var ms int32
		err := row.Scan(&e.PortalID, &e.At, &e.Service, &e.Method, &e.Status, &ms, &e.ErrorCode)
		e.Duration = time.Duration(ms) * time.Millisecond
		return e, err
	})
}
