package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"b24learn/internal/bitrix24"
	"b24learn/internal/learn"
	"b24learn/internal/tracing"
)

// Config wires a Syncer. NewLearn and NewBitrix24 build the per-portal
// clients (the job layer owns tokens and limiters).
type Config struct {
	Pool        *pgxpool.Pool
	Settings    SettingsSource
	NewLearn    func(ctx context.Context, portalID int64, s Settings) (Learn, error)
	NewBitrix24 func(ctx context.Context, portalID int64) (Bitrix24, error)
	Logger      *slog.Logger
	// Parallelism bounds Learn writes in flight of a client that does not
	// find its own limit (default 4). A *learn.Client is given its account's
	// limiter instead (Limiters), which finds the limit up to MaxParallel.
	Parallelism int
	// MaxParallel is the ceiling of Learn writes in flight per account
	// (LEARN_MAX_PARALLEL), default learn.DefaultMaxParallel.
	MaxParallel int
	// Limiters share one write limiter per Learn account among the runs of
	// this process; nil makes the Syncer its own.
	Limiters *learn.Limiters
	// Safeguard bounds unapproved deactivations (default DefaultSafeguard).
	Safeguard Safeguard
	// InvitationMessage goes with login e-mails; Learn requires one.
	InvitationMessage string
	// Now is the clock (default time.Now); tests move it to pass the daily
	// retry of users waiting for a licence.
	Now func() time.Time
	// ProgressEvery is how often, at most, a writing run stores its done
	// count (default ProgressEvery).
	ProgressEvery time.Duration
	// Tracer records the run's phases (read Bitrix24, read Learn, plan,
	// apply) as child spans of the caller's span; nil records nothing.
	Tracer trace.TracerProvider
}

// LicenceRetryEvery is how often a user waiting for a licence is tried again
// when Learn's active count has not gone down.
const LicenceRetryEvery = 24 * time.Hour

// Syncer runs syncs and previews.
type Syncer struct {
	cfg    Config
	store  *Store
	log    *slog.Logger
	tracer trace.Tracer
}

// New builds a Syncer.
func New(cfg Config) *Syncer {
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 4
	}
	if cfg.MaxParallel <= 0 {
		cfg.MaxParallel = learn.DefaultMaxParallel
	}
	if cfg.Limiters == nil {
		cfg.Limiters = learn.NewLimiters(learn.LimiterOptions{Max: cfg.MaxParallel})
	}
	if cfg.Safeguard == (Safeguard{}) {
		cfg.Safeguard = DefaultSafeguard
	}
	if cfg.InvitationMessage == "" {
		cfg.InvitationMessage = "Your company has added you to iSpring Learn. / Ваша компания добавила вас в iSpring Learn."
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Syncer{cfg: cfg, store: NewStore(cfg.Pool), log: log, tracer: tracing.Tracer(cfg.Tracer)}
}

// Report is the outcome of a run.
type Report struct {
	RunID    int64
	Status   string
	Counts   map[string]int
	Plan     *Plan
	Writes   int // Learn write calls made
	Duration time.Duration
	// Phases times the parts of the run: read_learn, read_bitrix24, plan, apply.
	Phases map[string]time.Duration
	// Concurrency are the limits the run's Learn writes went out under and
	// the 429s they met (zero when the client keeps a fixed parallelism).
	Concurrency learn.WriteConcurrency
}

// ErrBusy means another sync of the portal is running.
var ErrBusy = errors.New("another sync of this portal is running")

// LockKey namespaces the per-portal advisory lock ("sync"); the jobs
// package looks for it to tell a live sync from one whose process died.
const LockKey int32 = 0x73796e63

// Preview reads both sides and records what a sync would do, writing nothing
// to Learn.
func (s *Syncer) Preview(ctx context.Context, portalID int64) (*Report, error) {
	return s.Run(ctx, portalID, TriggerPreview)
}

// Run performs one sync of the portal (or a preview with TriggerPreview) and
// records its report. The returned error is the run's failure, if any; the
// report is returned whenever a run row was written.
func (s *Syncer) Run(ctx context.Context, portalID int64, trigger Trigger) (*Report, error) {
	switch trigger {
	case TriggerScheduled, TriggerManual, TriggerApproved, TriggerPreview:
	default:
		return nil, fmt.Errorf("run: unknown trigger %q", trigger)
	}
	conn, err := s.cfg.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire lock connection: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2::int)`, LockKey, portalID).Scan(&locked); err != nil {
		return nil, fmt.Errorf("take sync lock: %w", err)
	}
	if !locked {
		return nil, ErrBusy
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, $2::int)`, LockKey, portalID)

	start := time.Now()
	runID, err := s.store.StartRun(ctx, portalID, trigger)
	if err != nil {
		return nil, err
	}
	rep := &Report{RunID: runID, Counts: map[string]int{}, Phases: map[string]time.Duration{}}
	// The caller's span (the River job's) says which portal and run it is;
	// every line the run logs does too, with the trace to find it by.
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int64("portal_id", portalID), attribute.Int64("run_id", runID),
		attribute.String("trigger", string(trigger)))
	// (The applier's lines name the portal themselves.)
	log := s.log.With(append([]any{slog.Int64("run_id", runID)}, tracing.LogAttrs(ctx)...)...)
	var held []int64
	pr := newProgress(ctx, s.store, log, portalID, runID, s.cfg.ProgressEvery)
	runErr := s.run(ctx, log, portalID, trigger, rep, &held, pr)
	rep.Duration = time.Since(start)
	errText := ""
	if runErr != nil {
		rep.Status = RunFailed
		errText = runErr.Error()
	}
	// The report is written even when the run's context is gone.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.store.FinishRun(fctx, portalID, runID, rep.Status, rep.Counts, errText, held); err != nil {
		return rep, errors.Join(runErr, err)
	}
	log.Info("sync finished", slog.Int64("portal_id", portalID),
		slog.String("trigger", string(trigger)), slog.String("status", rep.Status), slog.Int("writes", rep.Writes),
		slog.Duration("duration", rep.Duration), slog.Any("counts", rep.Counts))
	return rep, runErr
}

func (s *Syncer) run(ctx context.Context, log *slog.Logger, portalID int64, trigger Trigger, rep *Report, held *[]int64, pr *progress) error {
	set, err := s.cfg.Settings.Settings(ctx, portalID)
	if err != nil {
		return fmt.Errorf("load settings: %w", err)
	}
	lc, err := s.cfg.NewLearn(ctx, portalID, set)
	if err != nil {
		return fmt.Errorf("learn client: %w", err)
	}
	if err := s.findLearnAPI(ctx, portalID, set, lc); err != nil {
		return err
	}
	if set.FieldMap, err = s.fitFieldMap(ctx, portalID, rep.RunID, lc, set.FieldMap); err != nil {
		return err
	}
	b24, err := s.cfg.NewBitrix24(ctx, portalID)
	if err != nil {
		return fmt.Errorf("bitrix24 client: %w", err)
	}
	org := newOrgRead(ctx, b24, s.tracer)
	org.codes = sourceCodes(set.FieldMap)
	defer org.stop()
	// Learn first: wrong credentials fail the run before the slow Bitrix24 read.
	pr.to(PhaseReadLearn)
	t0 := time.Now()
	learnCtx, learnSpan := s.tracer.Start(ctx, "sync.read_learn")
	defer learnSpan.End() // a second End is ignored
	ldepts, err := lc.ListDepartmentsWithin(learnCtx, org.learnLimits())
	if err != nil && org.failed() {
		_, _, err = org.wait(ctx)
		return err
	}
	if err != nil {
		endSpan(learnSpan, err)
		return fmt.Errorf("read learn departments: %w", err)
	}
	deptsTook := time.Since(t0)
	in, err := s.read(ctx, learnCtx, learnSpan, portalID, lc, org, rep.Phases, pr, extraLearnFields(set.FieldMap)...)
	if err != nil {
		return err
	}
	pr.to(PhasePlan)
	rep.Phases["read_learn"] += deptsTook
	in.Actual.Departments, _ = fromLearn(ldepts, nil)
	in.Options = Options{
		MemberID: set.MemberID, Selection: set.Selection, HeadsAsManagers: set.HeadsAsManagers,
		ParentHeadsAsSupervisors: set.ParentHeadsAsSupervisors, SendLoginEmail: set.SendLoginEmail,
		Safeguard: s.cfg.Safeguard, FieldMap: set.FieldMap,
	}
	account := AccountKey(set.LearnURL)
	own, foreign, err := s.store.Owners(ctx, account, portalID)
	if err != nil {
		return err
	}
	in.Actual.Foreign = foreign
	learnActive := 0
	for _, u := range in.Actual.Users {
		if u.Status == StatusActive {
			learnActive++
		}
	}
	if in.Options.RetryLicence, err = s.licenceRetries(ctx, portalID, learnActive); err != nil {
		return err
	}
	var approvedRun *RunRecord
	if trigger == TriggerApproved {
		approvedRun, err = s.store.LatestHeld(ctx, portalID)
		if err != nil {
			return err
		}
		if approvedRun != nil {
			in.Options.Approved = map[int64]bool{}
			for _, id := range approvedRun.Held {
				in.Options.Approved[id] = true
			}
		}
	}
	t0 = time.Now()
	_, planSpan := s.tracer.Start(ctx, "sync.plan")
	plan, err := BuildPlan(in)
	endSpan(planSpan, err)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	rep.Plan = plan
	rep.Phases["plan"] = time.Since(t0)
	// The plan has what the rest of the run needs: both sides as read are
	// let go before the writes (at 100,000 employees, tens of MB).
	in = Input{}
	org.release()

	if trigger == TriggerPreview {
		var items []RunItem
		for _, st := range plan.Steps {
			if st.Action == ActionLink {
				continue
			}
			status := ItemPlanned
			if st.Held {
				status = ItemHeld
			}
			items = append(items, itemOf(st, status))
		}
		for _, st := range plan.Refused {
			items = append(items, itemOf(st, refusedStatus(st)))
		}
		for _, st := range plan.Waiting {
			items = append(items, itemOf(st, ItemWaiting))
		}
		if err := s.store.RecordItems(ctx, portalID, rep.RunID, items); err != nil {
			return err
		}
		rep.Counts = plan.Counts()
		rep.Status = RunPreviewed
		return nil
	}

	par, lim, err := s.writeLimit(ctx, account, lc)
	if err != nil {
		return err
	}
	a := newApplier(s.store, lc, log, portalID, rep.RunID, par, s.cfg.InvitationMessage, plan)
	a.account, a.owned = account, own
	a.rec = newRecorder(ctx, s.store, portalID, rep.RunID)
	a.rec.counted = pr.add
	pr.writing(plan.Applied())
	t0 = time.Now()
	applyCtx, applySpan := s.tracer.Start(ctx, "sync.apply", trace.WithAttributes(attribute.Int("steps", len(plan.Steps))))
	applyErr := a.apply(applyCtx, plan.Steps)
	a.rec.close()
	pr.finish()
	endSpan(applySpan, applyErr)
	rep.Phases["apply"] = time.Since(t0)
	rep.Writes = a.writes
	rep.Counts = a.counts
	if lim != nil {
		s.reportConcurrency(ctx, account, lc, lim, rep)
	}
	if applyErr != nil {
		return fmt.Errorf("apply: %w", applyErr)
	}
	var items []RunItem
	for _, st := range plan.Steps {
		if st.Held {
			items = append(items, itemOf(st, ItemHeld))
			*held = append(*held, st.B24ID)
			rep.Counts["user.held"]++
		}
	}
	conflicts := a.conflicts
	for _, st := range plan.Refused {
		status := refusedStatus(st)
		items = append(items, itemOf(st, status))
		rep.Counts[string(st.Kind)+"."+status]++
		if st.Action == ActionConflict {
			conflicts = append(conflicts, Conflict{B24ID: st.B24ID, LearnID: st.LearnID})
		}
	}
	waitItems, err := s.licenceOutcome(ctx, portalID, rep.RunID, lc, plan, a, learnActive)
	if err != nil {
		return err
	}
	items = append(items, waitItems...)
	rep.Counts["user."+ItemWaiting] += len(waitItems)
	if err := s.store.RecordConflicts(ctx, account, portalID, conflicts); err != nil {
		return err
	}
	contested, err := s.store.Contested(ctx, account, portalID)
	if err != nil {
		return err
	}
	for _, c := range contested {
		items = append(items, RunItem{Kind: KindUser, B24ID: c.B24ID, LearnID: c.LearnID, Action: ActionConflict,
			After: map[string]string{"owner": "this portal", "also_in": c.Domain}, Status: ItemConflict,
			Reason: fmt.Sprintf("also matched by an employee of portal %s; this portal synced it first and owns it", c.Domain)})
		rep.Counts["user."+ItemConflict]++
	}
	if err := s.store.RecordItems(ctx, portalID, rep.RunID, items); err != nil {
		return err
	}
	if approvedRun != nil {
		if err := s.store.ResolveHeld(ctx, portalID, approvedRun.ID, rep.RunID); err != nil {
			return err
		}
	}
	switch {
	case len(*held) > 0:
		rep.Status = RunHeld
	case a.issues > 0 || len(plan.Refused) > 0:
		rep.Status = RunPartial
	default:
		rep.Status = RunSucceeded
	}
	return nil
}

// read fetches Bitrix24 (departments, employees) and Learn users at once,
// plus the stored mapping.
// extraLearnFields are the Learn fields beyond the fixed set that the field
// mapping m fills: the Learn read keeps their values.
func extraLearnFields(m map[string]string) []string {
	var out []string
	for name := range m {
		if !slices.Contains(userFieldNames[:], name) {
			out = append(out, name)
		}
	}
	return out
}

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

// refusedStatus is the report status of a step that is not applied.
func refusedStatus(st Step) string {
	if st.Action == ActionConflict {
		return ItemConflict
	}
	return ItemRefused
}

// licenceRetries picks the users waiting for a licence whose reactivation
// this run tries: those not tried for LicenceRetryEvery, plus, when Learn's
// active count went down since the last run, as many more as seats came free.
func (s *Syncer) licenceRetries(ctx context.Context, portalID int64, learnActive int) (map[int64]bool, error) {
	waits, err := s.store.LicenceWaits(ctx, portalID)
	if err != nil || len(waits) == 0 {
		return nil, err
	}
	prev, ok, err := s.store.LastLearnActive(ctx, portalID)
	if err != nil {
		return nil, err
	}
	free := 0
	if ok && learnActive < prev {
		free = prev - learnActive
	}
	now := s.cfg.Now()
	out := map[int64]bool{}
	for _, w := range waits {
		if now.Sub(w.Tried) >= LicenceRetryEvery {
			out[w.B24ID] = true
		}
	}
	for _, w := range waits { // longest waiting first
		if free == 0 {
			break
		}
		if !out[w.B24ID] {
			out[w.B24ID] = true
			free--
		}
	}
	return out, nil
}

// readBackParallel is how many read-back listings go out at once.
const readBackParallel = 8

// licenceOutcome reads back the users this run created or reactivated: past
// its plan Learn keeps them inactive without an error (docs/learn-api.md,
// "Plan limit"). It records who waits for a licence now, and Learn's active
// count once this run's activations are done, and returns the report rows of
// the users that wait.
func (s *Syncer) licenceOutcome(ctx context.Context, portalID, runID int64, lc Learn, plan *Plan, a *applier, learnActive int) ([]RunItem, error) {
	var items []RunItem
	var waiting []int64
	for _, st := range plan.Waiting {
		items = append(items, itemOf(st, ItemWaiting))
		waiting = append(waiting, st.B24ID)
	}
	waiting = append(waiting, a.refusedActivation...)
	tried := a.tried
	if len(a.activated) > 0 {
		ids := make([]string, 0, len(a.activated))
		byLearn := make(map[string]int64, len(a.activated))
		for b24, id := range a.activated {
			ids = append(ids, id)
			byLearn[id] = b24
		}
		slices.Sort(ids)
		// In chunks, so the ids fit in the request's address; several at
		// once (reads do not take write permits), their outcomes kept in
		// chunk order.
		chunks := slices.Collect(slices.Chunk(ids, bulkSize))
		type backRead struct {
			active         int
			waiting, tried []int64
			items          []RunItem
		}
		outs := make([]backRead, len(chunks))
		idx := make([]int, len(chunks))
		for i := range idx {
			idx[i] = i
		}
		err := learn.Parallel(ctx, readBackParallel, idx, func(ctx context.Context, i int) error {
			o := &outs[i]
			return lc.ListUsersWithin(ctx, learn.UserFilter{UserIDs: chunks[i]}, learn.LimitsFor(len(chunks[i])), func(page []learn.User) error {
				for _, u := range page {
					b24, ok := byLearn[u.ID]
					if !ok {
						continue
					}
					if u.Status == StatusActive {
						o.active++
						continue
					}
					o.waiting = append(o.waiting, b24)
					o.tried = append(o.tried, b24)
					o.items = append(o.items, RunItem{Kind: KindUser, B24ID: b24, LearnID: u.ID, Action: ActionReactivate,
						Before: map[string]string{"status": strconv.Itoa(u.Status)}, After: map[string]string{"status": strconv.Itoa(u.Status)},
						Reason: reasonLicence, Status: ItemWaiting})
				}
				return nil
			})
		})
		if err != nil {
			return nil, fmt.Errorf("read back activated learn users: %w", err)
		}
		for _, o := range outs {
			learnActive += o.active
			waiting = append(waiting, o.waiting...)
			tried = append(tried, o.tried...)
			items = append(items, o.items...)
		}
	}
	// This run's deactivations are not subtracted: the count is the one at
	// which the plan was seen full, so the seats they free show as a drop at
	// the next run.
	if err := s.store.SetLicenceWaits(ctx, portalID, waiting, tried, s.cfg.Now()); err != nil {
		return nil, err
	}
	if err := s.store.SetLearnActive(ctx, portalID, runID, learnActive); err != nil {
		return nil, err
	}
	return items, nil
}

// endSpan ends a phase's span, marked failed when err is set. The error's
// text is not recorded: errors of the clients may quote what was sent.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "failed")
	}
	span.End()
}

func itemOf(st Step, status string) RunItem {
	return RunItem{Kind: st.Kind, B24ID: st.B24ID, LearnID: st.LearnID, Action: st.Action,
		Before: st.Before, After: st.after(), Reason: st.Reason, Status: status}
}
