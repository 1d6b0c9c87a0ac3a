package syncer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unsafe"

	"b24learn/internal/bitrix24"
	"b24learn/internal/learn"
	"b24learn/internal/tracing"
)

// totalsFirst is a Bitrix24 org reader that sends its totals, then waits
// for release before it hands over its one page of users.
type totalsFirst struct {
	Bitrix24
	departments, users int
	release            chan struct{}
}

func (f *totalsFirst) ReadOrg(ctx context.Context, _ map[string]any, p bitrix24.OrgPages) ([]bitrix24.Department, error) {
	p.Totals(f.departments, f.users)
	select {
	case <-f.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := p.Users([]bitrix24.User{{ID: 1, Active: true, Name: "A", Departments: []int64{1}}}); err != nil {
		return nil, err
	}
	return []bitrix24.Department{{ID: 1, Name: "Root"}}, nil
}

// A Learn listing near the floor gets the org's limits as soon as the first
// batch gives the totals, not when the whole org is read: at 100,000
// employees it would otherwise pause after 10,000 users until the end.
func TestLearnLimitsRaiseOnTotals(t *testing.T) {
	f := &totalsFirst{departments: 2_000, users: 100_000, release: make(chan struct{})}
	o := newOrgRead(context.Background(), f, tracing.Tracer(nil))
	defer o.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lim, err := o.learnLimits().Raise(ctx)
	if err != nil {
		t.Fatalf("raise before the read ended: %v", err)
	}
	if want := learn.LimitsFor(102_000); lim.Objects != want.Objects || lim.Pages != want.Pages || lim.Bytes != want.Bytes {
		t.Errorf("limits %+v, want %+v", lim, want)
	}
	select {
	case <-o.done:
		t.Fatal("the read ended before it was released")
	default:
	}
	close(f.release)
	d, _, err := o.wait(ctx)
	if err != nil || len(d.Employees) != 1 || len(d.Departments) != 1 {
		t.Fatalf("read: %+v, %v", d, err)
	}
	if c := cap(d.Employees); c < 100_000 {
		t.Errorf("employees list of capacity %d, want it sized by the total", c)
	}
}

// pack keeps every value and puts them in one allocation, an equal value
// sharing the bytes of the first.
func TestPack(t *testing.T) {
	login, email, first, empty, last := "ann@x.ru", "ann@x.ru", "Анна", "", "Li"
	pack(&login, &email, &first, &empty, &last)
	if login != "ann@x.ru" || email != "ann@x.ru" || first != "Анна" || empty != "" || last != "Li" {
		t.Fatalf("values changed: %q %q %q %q %q", login, email, first, empty, last)
	}
	if unsafe.StringData(login) != unsafe.StringData(email) {
		t.Error("equal strings do not share their bytes")
	}
	if uintptr(unsafe.Pointer(unsafe.StringData(first))) != uintptr(unsafe.Pointer(unsafe.StringData(login)))+uintptr(len(login)) {
		t.Error("strings are not laid out one after the other in one allocation")
	}
}

// shareProfiles gives a Learn user equal to its employee the employee's
// strings, and leaves one that differs alone.
func TestShareProfiles(t *testing.T) {
	es := []Employee{
		{ID: 1, FirstName: "Ann", LastName: "Lee", Email: "ann@x.ru", JobTitle: "CEO"},
		{ID: 2, FirstName: "Bob", LastName: "Ray", Email: "bob@x.ru"},
	}
	us := []LearnUser{
		{ID: "a", Profile: Profile{Login: "ann@x.ru", Email: "ann@x.ru", FirstName: "Ann", LastName: "Lee", JobTitle: "CEO"}},
		{ID: "b", Profile: Profile{Login: "bob@x.ru", Email: "bob@x.ru", FirstName: "Robert", LastName: "Ray"}},
	}
	for i := range us {
		fs := us[i].fields()
		pack(fs[:]...)
	}
	shareProfiles(us, es)
	if unsafe.StringData(us[0].FirstName) != unsafe.StringData(es[0].FirstName) ||
		unsafe.StringData(us[0].Login) != unsafe.StringData(es[0].Email) {
		t.Error("an unchanged user keeps a copy of its strings")
	}
	if us[1].FirstName != "Robert" || unsafe.StringData(us[1].LastName) == unsafe.StringData(es[1].LastName) {
		t.Errorf("a changed user was shared: %+v", us[1])
	}
}

// hugeOrg is an on-premise portal's org reader whose users are as large as
// each answer allows (1 KiB texts, thousands of departments each), page
// after page.
type hugeOrg struct {
	Bitrix24
	pages, read int
}

func (f *hugeOrg) ReadOrg(ctx context.Context, _ map[string]any, p bitrix24.OrgPages) ([]bitrix24.Department, error) {
	long := strings.Repeat("я", 512)
	depts := make([]int64, 5_000)
	for i := range depts {
		depts[i] = int64(i + 1)
	}
	for page := range f.pages {
		users := make([]bitrix24.User, bitrix24.PageSize)
		for i := range users {
			users[i] = bitrix24.User{ID: int64(page*bitrix24.PageSize + i + 1), Active: true, Name: long, LastName: long,
				Email: long, WorkPosition: long, PersonalMobile: long, Departments: depts}
		}
		f.read++
		if err := p.Users(users); err != nil {
			return nil, err
		}
	}
	return []bitrix24.Department{{ID: 1, Name: "Root"}}, nil
}

// What an org read keeps is bounded as a whole, not only per answer and per
// row: past the bound the read stops with ErrOrgTooLarge.
func TestOrgReadIsBounded(t *testing.T) {
	f := &hugeOrg{pages: 100}
	o := newOrgRead(context.Background(), f, tracing.Tracer(nil))
	o.maxBytes = 4 << 20 // a page here keeps about 2.2 MB
	defer o.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err := o.wait(ctx)
	if !errors.Is(err, ErrOrgTooLarge) {
		t.Fatalf("read of %d pages: %v, want ErrOrgTooLarge", f.read, err)
	}
	if f.read > 2 {
		t.Errorf("read went on for %d pages past a bound a page and a bit holds", f.read)
	}
}
