package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/store"
)

// treeTTL is how long a portal's department tree is shown from memory.
// Every page open (any employee's, up to the gate's 30 a minute) shows the
// tree with its employee counts, which costs a read of the whole org: 5
// Bitrix24 requests at 10,000 employees, 41 at 100,000, against a portal
// bucket of 2 a second that the syncs need. A department added in Bitrix24
// shows on the page within a minute.
const treeTTL = time.Minute

// treeCache is an orgSource that reads each portal's tree at most once per
// treeTTL, however many pages ask at once (they wait for the one read).
// A failed read is not kept: the next page asks again. A tree too large to
// show, or a read out of time, is kept like a tree (kept): its read is the
// most expensive of all, and every open within treeTTL would otherwise pay
// it again.
type treeCache struct {
	src     orgSource
	now     func() time.Time
	timeout time.Duration // of one read: treeTimeout

	mu    sync.Mutex
	trees map[int64]*treeEntry
}

type treeEntry struct {
	done  chan struct{} // closed when the read ends
	at    time.Time
	depts []orgDept
	err   error
	// outOfTime: the read failed at its own deadline (not a page's).
	outOfTime bool
}

func newTreeCache(src orgSource, now func() time.Time) *treeCache {
	return &treeCache{src: src, now: now, timeout: treeTimeout, trees: map[int64]*treeEntry{}}
}

func (c *treeCache) OrgTree(ctx context.Context, p store.Portal) ([]orgDept, error) {
	c.mu.Lock()
	e := c.trees[p.ID]
	fresh := e != nil && (!isDone(e.done) || (kept(e.err) || e.outOfTime) && c.now().Sub(e.at) < treeTTL)
	if !fresh {
		e = &treeEntry{done: make(chan struct{})}
		c.trees[p.ID] = e
		c.evict()
		go c.read(context.WithoutCancel(ctx), p, e)
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.depts, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// read fills e; it runs on its own so that a page that gives up waiting
// does not cut the read short for the others.
func (c *treeCache) read(ctx context.Context, p store.Portal, e *treeEntry) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	e.depts, e.err = c.src.OrgTree(ctx, p)
	e.outOfTime = e.err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded)
	e.at = c.now()
	close(e.done)
}

// evict drops the trees past their time (c.mu held), so memory follows the
// portals opened in the last minute, not every portal ever opened.
func (c *treeCache) evict() {
	now := c.now()
	for id, e := range c.trees {
		if isDone(e.done) && now.Sub(e.at) >= treeTTL {
			delete(c.trees, id)
		}
	}
}

// kept says whether a read that ended in err is shown from memory for
// treeTTL: a tree, or the answer that the portal's tree is larger than the
// page shows (its names past the client's bound, or a listing past its other
// bounds). Such an answer is the portal's data, not a passing
// failure, and the read that finds it is the longest one. So is a read that
// ran out of its time (treeEntry.outOfTime): the next would take as long,
// on the portal's budget.
func kept(err error) bool {
	return err == nil || errors.Is(err, bitrix24.ErrOrgTooLarge) || errors.Is(err, bitrix24.ErrListTooLong)
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
