package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
	"b24learn/internal/store"
)

// Any employee may open the app, up to the gate's 30 times a minute per
// portal, and every page shows the department tree with its employee
// counts: a read of the whole org. Within treeTTL the pages share one read,
// so page opens cannot spend the portal's Bitrix24 budget that the syncs
// need; once the tree is older, the next page reads it again.
func TestPageOpensShareOneOrgRead(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(43, 120, 6)})
	e.install(p)
	orgReads := func() int { return p.Requests()["batch"] }
	p.ResetCounters()
	for i := range 6 {
		user := p.NonAdminID()
		if i%3 == 0 {
			user = p.AdminID()
		}
		if pg := e.open(p, user); pg.status != http.StatusOK {
			t.Fatalf("open %d: %d %s", i, pg.status, pg.body)
		}
	}
	if n := orgReads(); n != 1 {
		t.Fatalf("6 page opens made %d org reads (batch requests), want 1; requests %v", n, p.Requests())
	}
	e.advance(treeTTL)
	if pg := e.open(p, p.NonAdminID()); pg.status != http.StatusOK {
		t.Fatalf("open after the tree's time: %d", pg.status)
	}
	if n := orgReads(); n != 2 {
		t.Errorf("a page after %v made %d org reads in all, want a second one", treeTTL, n)
	}
}

// countingOrg counts reads; each waits for release and answers err.
type countingOrg struct {
	reads   atomic.Int32
	release chan struct{}
	err     error
}

func (o *countingOrg) OrgTree(ctx context.Context, _ store.Portal) ([]orgDept, error) {
	o.reads.Add(1)
	<-o.release
	return []orgDept{{ID: 1, Name: "Acme"}}, o.err
}

// Pages asking at once wait for one read; one that gives up does not end
// it for the others; a failed read is asked again by the next page.
func TestTreeCacheSharesReadsAndForgetsFailures(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	src := &countingOrg{release: make(chan struct{})}
	c := newTreeCache(src, func() time.Time { return now })
	p := store.Portal{ID: 7}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.OrgTree(gone, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("a page that gave up: %v", err)
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if ds, err := c.OrgTree(context.Background(), p); err != nil || len(ds) != 1 {
				t.Errorf("tree %v, %v", ds, err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond) // the five are waiting
	close(src.release)
	wg.Wait()
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("%d reads for six pages at once, want 1", n)
	}
	if _, err := c.OrgTree(context.Background(), store.Portal{ID: 8}); err != nil || src.reads.Load() != 2 {
		t.Fatalf("another portal: %v, %d reads", err, src.reads.Load())
	}

	src.err = errors.New("bitrix24 down")
	now = now.Add(treeTTL)
	if _, err := c.OrgTree(context.Background(), p); err == nil {
		t.Fatal("the failed read's error was not passed on")
	}
	src.err = nil
	if _, err := c.OrgTree(context.Background(), p); err != nil || src.reads.Load() != 4 {
		t.Fatalf("after a failure: %v, %d reads, want a new read (4)", err, src.reads.Load())
	}
}

// A portal whose tree is too large to show is told so from memory: the
// read that finds it out is the longest of all (every page of departments,
// or of users up to the listing's bound), and each open within treeTTL,
// any employee's, would otherwise make it again on the portal's budget.
func TestTooLargeTreeIsNotReadAgainWithinItsTime(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	org := b24sim.GenerateOrg(44, 20, 3)
	long := strings.Repeat("д", 512) // 1 KiB in UTF-8
	for id := int64(1000); id < 1000+bitrix24.DefaultMaxDepartmentNameBytes>>10+200; id++ {
		org.Departments = append(org.Departments, b24sim.Department{ID: id, Name: long, Parent: 1})
	}
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: org})
	e.install(p)
	reads := func() int { return p.Commands()["department.get"] }
	if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK {
		t.Fatalf("open: %d %s", pg.status, pg.body)
	}
	p.ResetCounters()
	if pg := e.open(p, p.NonAdminID()); pg.status != http.StatusOK ||
		!strings.Contains(pg.body, msgTreeError.in(i18n.EN)) && !strings.Contains(pg.body, msgTreeError.in(i18n.RU)) {
		t.Fatalf("open within the tree's time: %d, want 200 saying the tree is not shown", pg.status)
	}
	if n := reads(); n != 0 {
		t.Fatalf("an open within %v of a too large tree made %d department.get requests, want none", treeTTL, n)
	}
	e.advance(treeTTL)
	if pg := e.open(p, p.NonAdminID()); pg.status != http.StatusOK {
		t.Fatalf("open after the tree's time: %d", pg.status)
	}
	if n := reads(); n == 0 {
		t.Error("an open after the tree's time did not read the tree again")
	}
}

// A read that ran out of its time is not made again by every open within
// treeTTL: the next would take as long. A read Bitrix24 refused is
// (TestTreeCacheSharesReadsAndForgetsFailures).
func TestTreeCacheKeepsATimedOutRead(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	src := &slowOrg{}
	c := newTreeCache(src, func() time.Time { return now })
	c.timeout = 20 * time.Millisecond
	p := store.Portal{ID: 7}
	for range 3 {
		if _, err := c.OrgTree(context.Background(), p); err == nil {
			t.Fatal("a read past its time succeeded")
		}
	}
	if n := src.reads.Load(); n != 1 {
		t.Errorf("3 opens within %v of a timed-out read made %d reads, want 1", treeTTL, n)
	}
	now = now.Add(treeTTL)
	c.OrgTree(context.Background(), p)
	if n := src.reads.Load(); n != 2 {
		t.Errorf("an open after %v made %d reads in all, want a second one", treeTTL, n)
	}
}

// slowOrg counts reads; each lasts until its context ends, and fails as the
// Bitrix24 client does then, with an error of its own.
type slowOrg struct{ reads atomic.Int32 }

func (o *slowOrg) OrgTree(ctx context.Context, _ store.Portal) ([]orgDept, error) {
	o.reads.Add(1)
	<-ctx.Done()
	return nil, errors.New("bitrix24: request timed out")
}
