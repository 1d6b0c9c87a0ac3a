// A run's read of both sides: Bitrix24's departments and employees, Learn's departments and users.

package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"b24learn/internal/bitrix24"
	"b24learn/internal/learn"
	"b24learn/internal/remote"
	"b24learn/internal/safe"
)

// read fetches Bitrix24 (departments, employees) and Learn users at once,
// plus the stored mapping. The Learn listing goes out under learnCtx, the
// read_learn span, which read ends; signIn is the login the credentials
// name, whose user's role the listing shows (Actual.SignIn); extra are the
// Learn fields the field mapping adds to the fixed set.
func (s *Syncer) read(ctx, learnCtx context.Context, learnSpan trace.Span, portalID int64, lc Learn, org *orgRead, phases map[string]time.Duration, pr *progress, signIn string, extra ...string) (Input, error) {
	var in Input
	org.start()
	pr.to(PhaseRead)
	start := time.Now()
	lctx, cancel := context.WithCancel(learnCtx)
	defer cancel()
	go func() {
		select {
		case <-org.done:
			if org.err != nil {
				cancel() // no plan without Bitrix24: the Learn read is cut short
				return
			}
			pr.narrow(PhaseRead, PhaseReadLearn)
		case <-lctx.Done():
		}
	}()
	// Page by page, so the client's form of 100,000 users (a map of fields
	// each) is never held at once. The values many users share (their
	// department, subordination) are kept once.
	ids := newInterner()
	// An account synced before holds about the users the mapping names:
	// one list of that size rather than a list grown by copies (a quarter
	// of it left over at the end).
	mapped, err := s.store.userMappingCount(ctx, portalID)
	if err != nil {
		return in, err
	}
	in.Actual.Users = make([]LearnUser, 0, mapped+mapped/64)
	err = lc.ListUsersWithin(lctx, learn.UserFilter{}, org.learnLimits(), func(page []learn.User) error {
		// The page's ids in one allocation (they outlive the users, in the
		// plan), not one each.
		idOf := make([]*string, len(page))
		for i := range page {
			idOf[i] = &page[i].ID
		}
		concat(idOf)
		for _, u := range page {
			in.Actual.SignIn.see(u, signIn)
			in.Actual.Users = append(in.Actual.Users, learnUser(u, ids, extra...))
		}
		return nil
	})
	learnTook := time.Since(start)
	endSpan(learnSpan, err)
	if err == nil {
		select {
		case <-org.done:
		default:
			pr.narrow(PhaseRead, PhaseReadBitrix24)
		}
	}
	var errs []error
	if err != nil && !org.failed() {
		errs = append(errs, fmt.Errorf("read learn users: %w", err))
		org.stop() // and the other way round
	}
	desired, b24Took, b24Err := org.wait(context.WithoutCancel(ctx))
	// Once Learn's read failed, a Bitrix24 read cut short (by the stop
	// above, or by the process stopping) says nothing more; kept, it would
	// make Learn's failure read as the cut (StopCause).
	if b24Err != nil && !cancelEcho(ctx, b24Err) || len(errs) == 0 {
		errs = append(errs, b24Err)
	}
	if err := errors.Join(errs...); err != nil {
		return in, err
	}
	in.Desired = desired
	phases["read_learn"], phases["read_bitrix24"] = learnTook, b24Took
	shareProfiles(in.Actual.Users, in.Desired.Employees)
	// A mapping row's Learn id is the Learn user's own string when the
	// user was read: one copy of each id.
	us := in.Actual.Users
	byID := make([]int32, len(us))
	for i := range byID {
		byID[i] = int32(i)
	}
	slices.SortFunc(byID, func(x, y int32) int { return strings.Compare(us[x].ID, us[y].ID) })
	learnID := func(id []byte) string {
		i, ok := slices.BinarySearchFunc(byID, id, func(x int32, id []byte) int {
			switch s := us[x].ID; { // string(id) in comparisons is not a copy
			case s < string(id):
				return -1
			case s > string(id):
				return 1
			}
			return 0
		})
		if !ok {
			return ""
		}
		return us[byID[i]].ID
	}
	m, err := s.store.readMappings(ctx, portalID, len(us)+len(in.Desired.Departments), learnID)
	if err != nil {
		return in, err
	}
	in.Actual.Mappings = m
	return in, nil
}

// shareProfiles points the profile strings of each Learn user at those of
// the employee whose e-mail is theirs when all of them are equal, as after
// a sync that changed nothing: one copy of the names and addresses of
// 100,000 users rather than one per side. The Learn user's own copy is let go.
func shareProfiles(us []LearnUser, es []Employee) {
	byEmail := indexBy(len(es), func(i int) string { return es[i].Email }, func(i int) bool { return es[i].Email != "" })
	for i := range us {
		u := &us[i]
		if u.Email == "" || u.Login != u.Email {
			continue
		}
		j := byEmail.find(u.Email)
		if j < 0 {
			continue
		}
		e := &es[j]
		if u.FirstName == e.FirstName && u.LastName == e.LastName && u.JobTitle == e.JobTitle && u.Phone == e.Phone {
			u.Login, u.Email = e.Email, e.Email
			u.FirstName, u.LastName, u.JobTitle, u.Phone = e.FirstName, e.LastName, e.JobTitle, e.Phone
		}
	}
}

// maxLearnTextBytes bounds a text value as read from Learn, as Bitrix24's
// are (bitrix24's maxTextBytes): Learn keeps 255 characters, and the app
// sends no more (docs/learn-api.md, "Long values"), so 1 KiB holds every
// real value whole. The account URL is the portal admin's to type, and a
// server there may send values of a megabyte, which the run's report rows
// would store as read, a row per user, every run.
const maxLearnTextBytes = 1 << 10

// learnText is a Learn value cut to maxLearnTextBytes.
func learnText(s string) string { return remote.Cut(s, maxLearnTextBytes) }

// learnUser is the compact form of one Learn user: the department and
// subordination values many users share are kept once (ids), and the
// profile strings of the user are one allocation, the login sharing the
// e-mail's bytes when they are equal.
func learnUser(u learn.User, ids interner, extra ...string) LearnUser {
	f := u.Fields
	var ex map[string]string
	if len(extra) > 0 {
		ex = make(map[string]string, len(extra))
		for _, k := range extra {
			ex[k] = learnText(f[k])
		}
	}
	lu := LearnUser{ID: u.ID, DepartmentID: ids.of(learnText(u.DepartmentID)), Status: u.Status, Administers: u.Administers(), RoleUnknown: !u.RoleShown(), Profile: Profile{Extra: ex}}
	fs := lu.fields()
	for i, p := range fs {
		*p = learnText(f[userFieldNames[i]])
	}
	pack(fs[:]...)
	var m Managers
	if s := u.Subordination; s != nil {
		m.Subordination = Subordination{Type: s.Type, SupervisorID: s.SupervisorID}
	}
	if s := u.CoSubordination; s != nil {
		m.CoSubordination = Subordination{Type: s.Type, SupervisorID: s.SupervisorID}
	}
	lu.Managers = ids.managers(m)
	return lu
}

// pack copies the strings into one allocation, each becoming a substring
// of it; a string equal to an earlier one shares its bytes. It is for the
// few strings of one object.
func pack(ss ...*string) {
	first := make([]*string, 0, len(ss)) // the first of each value
	for i, p := range ss {
		if !slices.ContainsFunc(ss[:i], func(q *string) bool { return *q == *p }) {
			first = append(first, p)
		}
	}
	concat(first)
	for i, p := range ss {
		if j := slices.IndexFunc(ss[:i], func(q *string) bool { return *q == *p }); j >= 0 {
			*p = *ss[j]
		}
	}
}

// concat copies the strings into one allocation, each becoming a substring
// of it.
func concat(ss []*string) {
	n := 0
	for _, p := range ss {
		n += len(*p)
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range ss {
		b.WriteString(*p)
	}
	all := b.String()
	for _, p := range ss {
		*p, all = all[:len(*p)], all[len(*p):]
	}
}

// interner keeps one copy of equal values read from different places:
// strings, and the manager links of Learn users.
type interner struct {
	strs map[string]string
	mgrs map[Managers]*Managers
}

func newInterner() interner {
	return interner{strs: map[string]string{}, mgrs: map[Managers]*Managers{}}
}

func (n interner) of(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := n.strs[s]; ok {
		return c
	}
	n.strs[s] = s
	return s
}

// managers is the one shared copy of m, whose strings are kept once too.
func (n interner) managers(m Managers) *Managers {
	if p, ok := n.mgrs[m]; ok {
		return p
	}
	for _, s := range []*Subordination{&m.Subordination, &m.CoSubordination} {
		s.Type, s.SupervisorID = n.of(s.Type), n.of(s.SupervisorID)
	}
	p := &m
	n.mgrs[m] = p
	return p
}

// orgRead reads the Bitrix24 org once, in the background, for whichever
// needs it first: the plan, or a Learn listing whose limits follow from the
// org's size (see learn.Limits.Raise).
type orgRead struct {
	ctx    context.Context
	cancel context.CancelFunc
	b24    Bitrix24
	tracer trace.Tracer
	codes  []string // the extra Bitrix24 fields the field mapping reads
	once   sync.Once
	done   chan struct{}

	// sized closes when the org's size is known from the first batch's
	// totals, long before the read ends at 100,000 employees; size is set
	// before.
	sized    chan struct{}
	sizeOnce sync.Once
	size     int // departments and employees

	desired Desired // set before done closes
	took    time.Duration
	err     error

	// maxBytes bounds what the read keeps (maxOrgBytes; tests lower it).
	maxBytes int
}

// maxOrgBytes bounds what an org read keeps of its employees: their text
// and department lists. A real portal's employee holds about a hundred
// bytes (50 MB at the 500,000 users a Bitrix24 listing may have). An
// on-premise portal's owner writes its answers, and every bound on them is
// per answer or per row: 500,000 users of 1 KiB names in 5,000 departments
// each would hold tens of GB in the process that syncs every portal, and
// a preview reads the org before iSpring has activated anyone.
const maxOrgBytes = 256 << 20

// ErrOrgTooLarge is an org read that would keep more than maxOrgBytes of
// employees, or whose department names pass the client's bound: one error,
// and one sentence for the admin (run_err_org_too_large), for either.
var ErrOrgTooLarge = bitrix24.ErrOrgTooLarge

// employeeBytes is what an employee holds beyond the struct itself.
func employeeBytes(e *Employee) int {
	n := len(e.UserType) + len(e.FirstName) + len(e.LastName) + len(e.Email) + len(e.JobTitle) + len(e.Phone) +
		8*len(e.Departments)
	for k, v := range e.Values {
		n += len(k) + len(v)
	}
	return n
}

func newOrgRead(ctx context.Context, b24 Bitrix24, tracer trace.Tracer) *orgRead {
	ctx, cancel := context.WithCancel(ctx)
	return &orgRead{ctx: ctx, cancel: cancel, b24: b24, tracer: tracer, done: make(chan struct{}), sized: make(chan struct{}),
		maxBytes: maxOrgBytes}
}

func (o *orgRead) start() {
	o.once.Do(func() {
		go func() {
			defer close(o.done)
			t0 := time.Now()
			ctx, span := o.tracer.Start(o.ctx, "sync.read_bitrix24")
			o.err = safe.Call(func() error {
				var err error
				o.desired, err = o.read(ctx)
				return err
			})
			endSpan(span, o.err)
			o.took = time.Since(t0)
		}()
	})
}

// wait starts the read if need be and returns its outcome.
func (o *orgRead) wait(ctx context.Context) (Desired, time.Duration, error) {
	o.start()
	select {
	case <-o.done:
		return o.desired, o.took, o.err
	case <-ctx.Done():
		return Desired{}, 0, ctx.Err()
	}
}

// setSize records the org's size from Bitrix24's totals.
func (o *orgRead) setSize(departments, employees int) {
	o.sizeOnce.Do(func() {
		o.size = departments + employees
		close(o.sized)
	})
}

// orgSize starts the read if need be and returns the org's size
// (departments and employees) as soon as it is known: from the first
// batch's totals, else from the read's end.
func (o *orgRead) orgSize(ctx context.Context) (int, error) {
	o.start()
	select {
	case <-o.sized:
		return o.size, nil
	case <-o.done:
		if o.err != nil {
			return 0, o.err
		}
		return len(o.desired.Departments) + len(o.desired.Employees), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// release drops the org read once the plan is built.
func (o *orgRead) release() {
	select {
	case <-o.done:
		o.desired = Desired{}
	default:
	}
}

// stop cuts the read short and waits for it, if it was started.
func (o *orgRead) stop() {
	o.cancel()
	started := true
	o.once.Do(func() { started = false; close(o.done) })
	if started {
		<-o.done
	}
}

// learnLimits are the limits of a Learn listing: the floor at first, then
// the org's, waited for when the listing grows near the floor (the first
// Bitrix24 batch gives them).
func (o *orgRead) learnLimits() learn.Limits {
	lim := learn.LimitsFor(0)
	lim.Raise = func(ctx context.Context) (learn.Limits, error) {
		n, err := o.orgSize(ctx)
		if err != nil {
			return learn.Limits{}, err
		}
		return learn.LimitsFor(n), nil
	}
	return lim
}

// failed reports whether the Bitrix24 read ended in failure. A Learn
// listing then fails too (cut short, or passing the failure on while it
// waited for the org size); the run reports the Bitrix24 failure alone.
func (o *orgRead) failed() bool {
	select {
	case <-o.done:
		return o.err != nil
	default:
		return false
	}
}

// employeesFilter is the Bitrix24 filter of the users a sync reads.
func employeesFilter() map[string]any { return map[string]any{"USER_TYPE": "employee"} }

// markInvited flags the employees Bitrix24 named as invited and not
// accepted yet, or records why it could not name them.
func markInvited(d *Desired, inv bitrix24.Invited) {
	if !inv.Known {
		d.InvitedUnknown = inv.Why
		return
	}
	es := d.Employees // in ID order, as read
	for _, id := range inv.IDs {
		if i, ok := slices.BinarySearchFunc(es, id, func(e Employee, id int64) int { return cmpInt(e.ID, id) }); ok {
			es[i].Invited = true
		}
	}
}

// read reads departments and employees (active and fired). With a client
// that reads the org in shared batches the users are converted page by
// page into a list sized by the first batch's totals, so the client's form
// of the whole org is never held.
func (o *orgRead) read(ctx context.Context) (Desired, error) {
	employees := employeesFilter()
	if sel := userSelect(o.codes); sel != nil {
		employees[bitrix24.UserSelect] = sel
	}
	texts, err := readOptionTexts(ctx, o.b24, o.codes)
	if err != nil {
		return Desired{}, err
	}
	if r, ok := o.b24.(orgReader); ok {
		var d Desired
		kept := 0
		ds, err := r.ReadOrg(ctx, employees, bitrix24.OrgPages{
			Totals: func(departments, users int) {
				if users > 0 {
					// One page more for users added during the read.
					d.Employees = make([]Employee, 0, users+bitrix24.PageSize)
					o.setSize(departments, users)
				}
			},
			Users: func(page []bitrix24.User) error {
				from := len(d.Employees)
				d.Employees = appendEmployees(d.Employees, page, o.codes...)
				texts.apply(d.Employees[from:])
				for i := from; i < len(d.Employees); i++ {
					kept += employeeBytes(&d.Employees[i])
				}
				if kept > o.maxBytes {
					return fmt.Errorf("%d employees read: %w", len(d.Employees), ErrOrgTooLarge)
				}
				return nil
			},
			Invited: func(inv bitrix24.Invited) { markInvited(&d, inv) },
		})
		if err != nil {
			return Desired{}, fmt.Errorf("read bitrix24: %w", err)
		}
		d.Departments = departmentsOf(ds)
		return d, nil
	}
	ds, err := o.b24.Departments(ctx)
	if err != nil {
		return Desired{}, fmt.Errorf("read bitrix24 departments: %w", err)
	}
	us, err := o.b24.Users(ctx, employees)
	if err != nil {
		return Desired{}, fmt.Errorf("read bitrix24 users: %w", err)
	}
	d := fromBitrix24(ds, us, o.codes...)
	texts.apply(d.Employees)
	return d, nil
}
