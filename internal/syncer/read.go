// A run's read of both sides: Bitrix24's departments and employees, Learn's departments and users.

package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"b24learn/internal/bitrix24"
	"b24learn/internal/learn"
)

// read fetches Bitrix24 (departments, employees) and Learn users at once,
// plus the stored mapping. The Learn listing goes out under learnCtx, the
// read_learn span, which read ends; extra are the Learn fields the field
// mapping adds to the fixed set.
func (s *Syncer) read(ctx, learnCtx context.Context, learnSpan trace.Span, portalID int64, lc Learn, org *orgRead, phases map[string]time.Duration, pr *progress, extra ...string) (Input, error) {
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
	// department, subordination) are kept once, and so are the user ids,
	// which the mapping rows repeat.
	ids := interner{}
	err := lc.ListUsersWithin(lctx, learn.UserFilter{}, org.learnLimits(), func(page []learn.User) error {
		_, us := fromLearn(nil, page, extra...)
		for i := range us {
			u := &us[i]
			u.ID, u.DepartmentID = ids.of(u.ID), ids.of(u.DepartmentID)
			u.Subordination.Type, u.Subordination.SupervisorID = ids.of(u.Subordination.Type), ids.of(u.Subordination.SupervisorID)
			u.CoSubordination.Type, u.CoSubordination.SupervisorID = ids.of(u.CoSubordination.Type), ids.of(u.CoSubordination.SupervisorID)
		}
		in.Actual.Users = append(in.Actual.Users, us...)
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
	if b24Err != nil && !errors.Is(b24Err, context.Canceled) || len(errs) == 0 {
		errs = append(errs, b24Err)
	}
	if err := errors.Join(errs...); err != nil {
		return in, err
	}
	in.Desired = desired
	phases["read_learn"], phases["read_bitrix24"] = learnTook, b24Took
	m, err := s.store.Mappings(ctx, portalID)
	if err != nil {
		return in, err
	}
	for i := range m {
		m[i].LearnID = ids.of(m[i].LearnID) // the row's copy is let go
	}
	in.Actual.Mappings = m
	return in, nil
}

// interner keeps one copy of equal strings read from different places.
type interner map[string]string

func (n interner) of(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := n[s]; ok {
		return c
	}
	n[s] = s
	return s
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

	desired Desired // set before done closes
	took    time.Duration
	err     error
}

func newOrgRead(ctx context.Context, b24 Bitrix24, tracer trace.Tracer) *orgRead {
	ctx, cancel := context.WithCancel(ctx)
	return &orgRead{ctx: ctx, cancel: cancel, b24: b24, tracer: tracer, done: make(chan struct{})}
}

func (o *orgRead) start() {
	o.once.Do(func() {
		go func() {
			defer close(o.done)
			t0 := time.Now()
			ctx, span := o.tracer.Start(o.ctx, "sync.read_bitrix24")
			o.desired, o.err = readBitrix24(ctx, o.b24, o.codes...)
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
// the org's, waited for when the listing grows near the floor.
func (o *orgRead) learnLimits() learn.Limits {
	lim := learn.LimitsFor(0)
	lim.Raise = func(ctx context.Context) (learn.Limits, error) {
		d, _, err := o.wait(ctx)
		if err != nil {
			return learn.Limits{}, err
		}
		return learn.LimitsFor(len(d.Departments) + len(d.Employees)), nil
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

// readBitrix24 reads departments and employees (active and fired).
func readBitrix24(ctx context.Context, b24 Bitrix24, codes ...string) (Desired, error) {
	employees := map[string]any{"USER_TYPE": "employee"}
	if sel := userSelect(codes); sel != nil {
		employees[bitrix24.UserSelect] = sel
	}
	if o, ok := b24.(orgLister); ok {
		ds, us, err := o.Org(ctx, employees)
		if err != nil {
			return Desired{}, fmt.Errorf("read bitrix24: %w", err)
		}
		return fromBitrix24(ds, us, codes...), nil
	}
	ds, err := b24.Departments(ctx)
	if err != nil {
		return Desired{}, fmt.Errorf("read bitrix24 departments: %w", err)
	}
	us, err := b24.Users(ctx, employees)
	if err != nil {
		return Desired{}, fmt.Errorf("read bitrix24 users: %w", err)
	}
	return fromBitrix24(ds, us, codes...), nil
}
