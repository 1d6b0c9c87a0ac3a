package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	RunID  int64
	Status string
	Counts map[string]int
	// Plan is the run's plan; once a run has written, the user specs of its
	// steps that were not held are let go (Step.User is nil).
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
	return s.recorded(ctx, portalID, trigger, func(log *slog.Logger, rep *Report, held *[]int64) error {
		pr := newProgress(ctx, s.store, log, portalID, rep.RunID, s.cfg.ProgressEvery)
		return s.run(ctx, log, portalID, trigger, 0, rep, held, pr)
	}, "sync finished")
}

// RunApproved is the sync an admin's approval of the held run heldRunID
// queues: it applies the deactivations that run held and no others. A run
// held after the admin looked (with more people in it) waits for an
// approval of its own; a held run released meanwhile approves nothing.
func (s *Syncer) RunApproved(ctx context.Context, portalID, heldRunID int64) (*Report, error) {
	if heldRunID <= 0 {
		return nil, errors.New("run approved: no held run named")
	}
	return s.recorded(ctx, portalID, TriggerApproved, func(log *slog.Logger, rep *Report, held *[]int64) error {
		pr := newProgress(ctx, s.store, log, portalID, rep.RunID, s.cfg.ProgressEvery)
		return s.run(ctx, log, portalID, TriggerApproved, heldRunID, rep, held, pr)
	}, "sync finished")
}

// run is one sync. heldRunID is the held run an approved run approves (0:
// the newest one, as approvals queued before they named their run do).
func (s *Syncer) run(ctx context.Context, log *slog.Logger, portalID int64, trigger Trigger, heldRunID int64, rep *Report, held *[]int64, pr *progress) error {
	set, lc, b24, err := s.open(ctx, portalID, rep.RunID)
	if err != nil {
		return err
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
	in, err := s.read(ctx, learnCtx, learnSpan, portalID, lc, org, rep.Phases, pr, set.LearnEmail, extraLearnFields(set.FieldMap)...)
	if err != nil {
		return err
	}
	if err := in.Actual.SignIn.check(); err != nil {
		return fmt.Errorf("learn sign-in user: %w", err)
	}
	pr.to(PhasePlan)
	rep.Phases["read_learn"] += deptsTook
	in.Actual.Departments = fromLearnDepartments(ldepts)
	in.Options = Options{
		MemberID: set.MemberID, Selection: set.Selection, HeadsAsManagers: set.HeadsAsManagers,
		ParentHeadsAsSupervisors: set.ParentHeadsAsSupervisors, SendLoginEmail: set.SendLoginEmail,
		Safeguard: s.cfg.Safeguard, FieldMap: set.FieldMap, SignInLogin: set.LearnEmail,
		RetryLeaves: trigger == TriggerManual,
	}
	account := set.Account()
	if in.Actual.Foreign, err = s.store.Foreign(ctx, account, portalID); err != nil {
		return err
	}
	if in.Options.OtherSignIns, err = s.store.OtherSignIns(ctx, account, portalID); err != nil {
		return err
	}
	if in.Actual.OtherDepartments, err = s.store.OtherDepartments(ctx, account, portalID); err != nil {
		return err
	}
	if in.Actual.Refusals, err = s.store.refusals(ctx, portalID, account); err != nil {
		return err
	}
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
		if heldRunID != 0 {
			approvedRun, err = s.store.UnresolvedHeld(ctx, portalID, heldRunID)
		} else {
			approvedRun, err = s.store.LatestHeld(ctx, portalID)
		}
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
	// Before anything is written: the account's root, which the plan found
	// in the department listing, must not be another portal's under
	// another address. A preview only asks; a run records it.
	learnUsers := func() []string {
		ids := make([]string, 0, len(in.Actual.Users))
		for _, u := range in.Actual.Users {
			ids = append(ids, u.ID)
		}
		return ids
	}
	if err := s.store.checkAccountRoot(ctx, portalID, set.LearnURL, set.LearnClientID, plan.Layout.LearnRootID, trigger != TriggerPreview, learnUsers); err != nil {
		return fmt.Errorf("learn account: %w", err)
	}
	if trigger != TriggerPreview {
		if err := s.store.forgetLeaves(ctx, portalID, plan.Returned); err != nil {
			return err
		}
	}
	if plan.InvitedUnknown != "" {
		// The report says the reason in the page's language; Bitrix24's
		// detail (counts, an error's text) is for the log.
		log.InfoContext(ctx, "invited users not told apart", "portal_id", portalID, "why", plan.InvitedUnknown)
	}
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
		items = append(items, invitedItems(plan)...)
		// The portal's older previews go with this one's rows recorded.
		if err := s.store.RecordPreview(ctx, portalID, rep.RunID, items); err != nil {
			return err
		}
		rep.Counts = plan.Counts()
		rep.Status = RunPreviewed
		return nil
	}

	own, err := s.store.Owned(ctx, account, portalID, plan.learnUsers())
	if err != nil {
		return err
	}
	par, lim, release, err := s.writeLimit(ctx, account, lc)
	if err != nil {
		return err
	}
	defer release()
	a := newApplier(s.store, lc, log, portalID, rep.RunID, par, s.cfg.InvitationMessage, plan)
	a.account, a.owned, a.lim, a.domain = account, own, lim, set.Domain
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
	// The written steps' user specs are let go before the read-back of the
	// activated users: at 100,000 creates they and the Bitrix24 strings
	// they share were a third of what the run held at its end.
	plan.dropSpecs()
	waitItems, err := s.licenceOutcome(ctx, portalID, rep.RunID, lc, plan, a, learnActive)
	if err != nil {
		return err
	}
	items = append(items, waitItems...)
	rep.Counts["user."+ItemWaiting] += len(waitItems)
	items = append(items, invitedItems(plan)...)
	if len(plan.Invited) > 0 {
		rep.Counts["user."+ItemInvited] = len(plan.Invited)
	}
	if err := s.store.RecordConflicts(ctx, account, portalID, conflicts); err != nil {
		return err
	}
	contested, err := s.store.Contested(ctx, account, portalID)
	if err != nil {
		return err
	}
	for _, c := range contested {
		items = append(items, RunItem{Kind: KindUser, B24ID: c.B24ID, LearnID: c.LearnID, Action: ActionConflict,
			After: map[string]string{"owner": OwnerThisPortal, "also_in": c.Domain}, Status: ItemConflict,
			Reason: because(ReasonContested, c.Domain)})
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

// refusedStatus is the report status of a step that is not applied.
func refusedStatus(st Step) string {
	if st.Action == ActionConflict {
		return ItemConflict
	}
	return ItemRefused
}

// endSpan ends a phase's span, marked failed when err is set. The error's
// text is not recorded: errors of the clients may quote what was sent.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "failed")
	}
	span.End()
}

// invitedItems are the report's rows on invited users: one per employee
// waiting for their invitation to be accepted, or the one row saying that
// Bitrix24 could not tell them apart.
func invitedItems(plan *Plan) []RunItem {
	var items []RunItem
	for _, st := range plan.Invited {
		items = append(items, itemOf(st, ItemInvited))
	}
	if plan.InvitedUnknown != "" {
		items = append(items, RunItem{Kind: KindUser, Action: ActionInvitedUnknown, Status: ItemNotice,
			Reason: because(ReasonInvitedUnknown, strings.ReplaceAll(bitrix24.InvitedReason(plan.InvitedUnknown), " ", "_"))})
	}
	return items
}

func itemOf(st Step, status string) RunItem {
	return RunItem{Kind: st.Kind, B24ID: st.B24ID, LearnID: st.LearnID, Action: st.Action,
		Before: st.Before, After: st.after(), Reason: st.Reason, Status: status}
}

// OwnerThisPortal is a contested user's After["owner"] on the portal that
// owns it (the other portal's domain is in "also_in"). Pages say it in
// their language.
const OwnerThisPortal = "this portal"
