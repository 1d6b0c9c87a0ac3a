package syncer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"

	"b24learn/internal/learn"
)

// bulkSize bounds one bulk move or deactivation, so a run killed mid-way has
// recorded most of what it did.
const bulkSize = 100

// errMissingRef is a step whose department or supervisor was not created.
type errMissingRef struct{ what string }

func (e *errMissingRef) Error() string { return e.what + " was not created in this run" }

// applier executes one plan against Learn and records every applied step
// right after its Learn write.
type applier struct {
	store      *Store
	lc         Learn
	log        *slog.Logger
	portalID   int64
	runID      int64
	par        int
	invitation string
	layout     Layout
	account    string // AccountOf the Learn account
	domain     string // the portal's address (withUniqueName)
	// lim is the account's write limiter, nil without one: the last writes
	// of a group go out without probing it (see schedule).
	lim *learn.Limiter
	rec *recorder

	// sendLoginEmail: a create asks Learn to mail the sign-in details
	// (Plan.SendLoginEmail).
	sendLoginEmail bool

	mu      sync.Mutex
	deptIDs map[int64]string
	userIDs map[int64]string
	counts  map[string]int
	issues  int // refused or failed steps
	writes  int
	// owned are the Learn users this portal owns; others are claimed before
	// the first write to them.
	owned map[string]bool
	// createdUsers (Learn ids in userIDs) and reactivated (b24 id -> Learn
	// id) are the users this run activated: Learn may have left them
	// inactive past its plan, which a read-back tells (see activated). The
	// creates are a list: a second map of 100,000 in a first sync was the
	// largest thing the writes kept.
	createdUsers []int64
	reactivated  map[int64]string
	// refusedActivation are reactivations Learn refused: past the plan.
	refusedActivation []int64
	tried             []int64 // reactivations tried (applied or refused)
	conflicts         []Conflict
	// emptyOK says, per profile field, whether Learn took (true) or refused
	// (false) an empty value in this run; later updates do not ask again.
	emptyOK map[string]bool
	// probe serialises the updates that send an empty value not yet in
	// emptyOK, so that one refusal answers for the whole run.
	probe sync.Mutex
}

func newApplier(st *Store, lc Learn, log *slog.Logger, portalID, runID int64, par int, invitation string, p *Plan) *applier {
	a := &applier{store: st, lc: lc, log: log, portalID: portalID, runID: runID, par: par, invitation: invitation,
		layout: p.Layout, sendLoginEmail: p.SendLoginEmail, deptIDs: map[int64]string{}, userIDs: map[int64]string{}, counts: map[string]int{},
		owned: map[string]bool{}, reactivated: map[int64]string{},
		emptyOK: map[string]bool{}}
	for k, v := range p.DeptIDs {
		a.deptIDs[k] = v
	}
	for k, v := range p.UserIDs {
		a.userIDs[k] = v
	}
	return a
}

// fatal errors stop the run: nothing else can succeed.
func fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, learn.ErrBadCredentials) || errors.Is(err, learn.ErrNoAPIAccess) ||
		errors.Is(err, learn.ErrNoToken) || // the API key refused, or no token after the fetch's retries: every step needs one
		errors.Is(err, learn.ErrForbiddenAddr) ||
		errors.Is(err, learn.ErrTimeout) // the server is too slow for any other step (docs/learn-api.md, "Deadlines")
}

// refusal errors are Learn saying no to this one object.
// stepReason is the report's reason for a step Learn did not apply: the
// client's error text (our words, status and code) and, for a refusal, the
// profile field Learn's message names when it is one we know, so the admin
// learns which field to fill without being shown the server's text.
func stepReason(s Step, err error) Reasons {
	known := []string{"login", "email", "first_name", "last_name", "job_title", "phone"}
	known = append(known, slices.Sorted(maps.Keys(s.after()))...)
	if f := learn.MentionedField(err, known); f != "" {
		return because(ReasonLearn, err.Error()).and(because(ReasonLearnField, f))
	}
	return because(ReasonLearn, err.Error())
}

func refusal(err error) bool {
	var v *learn.ValidationError
	var m *errMissingRef
	return errors.As(err, &v) || errors.As(err, &m) || errors.Is(err, learn.ErrDuplicate) || errors.Is(err, learn.ErrNotFound) ||
		errors.Is(err, learn.ErrPermissionDenied) // beyond the credentials' reach (docs/learn-api.md, "Whose credentials")
}

func (a *applier) apply(ctx context.Context, steps []Step) error {
	// The departments and the users' first level run as one pipeline (see
	// pipeline); later groups wait for the one before.
	start := 0
	for start < len(steps) && (steps[start].Stage == StageDepartments || steps[start].Stage == StageUsers && steps[start].Level == 0) {
		start++
	}
	if err := a.group(ctx, steps[:start], a.pipeline); err != nil {
		return err
	}
	for start < len(steps) {
		end := start
		for end < len(steps) && steps[end].Stage == steps[start].Stage && steps[end].Level == steps[start].Level {
			end++
		}
		group := steps[start:end]
		start = end
		err := a.group(ctx, group, func(ctx context.Context, single []Step) error {
			return schedule(ctx, a.par, a.lim, single, func(int) *gate { return nil }, func(int) []*gate { return nil }, a.one)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// group applies the steps of a group: the single ones through run, then the
// moves and deactivations, which go in bulk calls.
func (a *applier) group(ctx context.Context, group []Step, run func(context.Context, []Step) error) error {
	if !slices.ContainsFunc(group, batched) {
		return run(ctx, group) // the usual group, not copied (100,000 creates)
	}
	var single, moves, deacts []Step
	for _, s := range group {
		switch {
		case s.Held:
		case s.Kind == KindUser && s.Action == ActionMove:
			moves = append(moves, s)
		case s.Kind == KindUser && s.Action == ActionDeactivate:
			deacts = append(deacts, s)
		default:
			single = append(single, s)
		}
	}
	if err := run(ctx, single); err != nil {
		return err
	}
	if err := a.moves(ctx, moves); err != nil {
		return err
	}
	return a.bulk(ctx, deacts, a.deactivateChunk)
}

// batched: a step group leaves to the bulk calls (or, held, to none).
func batched(s Step) bool {
	return s.Held || s.Kind == KindUser && (s.Action == ActionMove || s.Action == ActionDeactivate)
}

// pipeline applies department and user steps (in plan order) as soon as what
// each needs is done, not level by level: a department created in this run
// waits only for its parent, a user only for a department created or changed
// in this run that it goes into, so the writes of a deep tree keep the
// account's concurrency busy instead of draining it at every level. A
// department that exists and changes (a rename, a move) still waits for every
// department step of the levels above it: moves are ordered by level so that
// none puts a department under its own descendant. A step waits for the
// other's record to be durable, as it did behind the level's end; a step
// waiting takes none of the places in flight (see schedule).
func (a *applier) pipeline(ctx context.Context, steps []Step) error {
	ready := map[int64]*gate{} // department step's b24 id: open when it is done
	levels := 0
	for _, s := range steps {
		if s.Kind == KindDepartment {
			ready[s.B24ID] = &gate{left: 1}
			levels = max(levels, int(s.Level)+1)
		}
	}
	// above[l] opens once every department step of a level under l is done.
	above := make([]*gate, levels+1)
	for l := range above {
		above[l] = &gate{}
	}
	for _, s := range steps {
		if s.Kind == KindDepartment {
			for l := int(s.Level) + 1; l <= levels; l++ {
				above[l].left++
			}
		}
	}
	waitOn := func(i int) *gate {
		s := steps[i]
		switch {
		case s.Kind == KindDepartment && s.Action == ActionCreate:
			if s.Dept != nil && s.Dept.ParentLearnID == "" {
				return ready[s.Dept.ParentB24]
			}
		case s.Kind == KindDepartment:
			return above[s.Level]
		case s.User != nil && s.User.DeptLearnID == "":
			return ready[s.User.DeptB24]
		}
		return nil
	}
	opens := func(i int) []*gate {
		s := steps[i]
		if s.Kind != KindDepartment {
			return nil
		}
		return append([]*gate{ready[s.B24ID]}, above[s.Level+1:]...)
	}
	return schedule(ctx, a.par, a.lim, steps, waitOn, opens, a.one)
}

// claim makes sure this portal owns the existing Learn user a step writes
// to, before the write: a user another portal owns is left alone.
func (a *applier) claim(ctx context.Context, s Step) error {
	if s.Kind != KindUser || s.LearnID == "" || a.account == "" {
		return nil
	}
	a.mu.Lock()
	owned := a.owned[s.LearnID]
	a.mu.Unlock()
	if owned {
		return nil
	}
	if err := a.store.Claim(ctx, a.account, s.LearnID, a.portalID); err != nil {
		return err
	}
	a.mu.Lock()
	a.owned[s.LearnID] = true
	a.mu.Unlock()
	return nil
}

// one executes a single step and records its outcome.
func (a *applier) one(ctx context.Context, s Step) error {
	if err := a.claim(ctx, s); err != nil {
		return a.failed(ctx, s, err)
	}
	if s.Kind == KindUser && s.Action == ActionUpdate {
		return a.updateUser(ctx, s)
	}
	if s.Kind == KindDepartment && s.Action == ActionSupervisor && !a.layout.Multi && s.LearnID != "" && s.LearnID == a.layout.LearnRootID {
		return a.rootLinks(ctx, s)
	}
	id, err := a.exec(ctx, s)
	s, err = shorter(s, err, func(s Step) (err error) {
		id, err = a.exec(ctx, s)
		return err
	})
	if err != nil && a.nameClash(s, err) {
		s = a.withUniqueName(s)
		id, err = a.exec(ctx, s)
	}
	if err != nil {
		return a.failed(ctx, s, err)
	}
	return a.record(ctx, s, id)
}

func (a *applier) failed(ctx context.Context, s Step, err error) error {
	if fatal(ctx, err) {
		return err
	}
	var owned *ErrOwnedElsewhere
	var invalid *learn.ValidationError
	status := ItemFailed
	switch {
	case errors.As(err, &owned):
		status = ItemConflict
	case s.Action == ActionReactivate && errors.As(err, &invalid):
		// Learn refuses an activation past its plan (docs/learn-api.md,
		// "Plan limit"): the user waits for a licence, which is no failure.
		a.mu.Lock()
		a.counts[string(s.Kind)+"."+ItemWaiting]++
		a.refusedActivation = append(a.refusedActivation, s.B24ID)
		a.tried = append(a.tried, s.B24ID)
		a.mu.Unlock()
		it := RunItem{Kind: s.Kind, B24ID: s.B24ID, LearnID: s.LearnID, Action: s.Action, Before: s.Before,
			After: s.Before, Reason: because(ReasonLicenceRefused, err.Error()), Status: ItemWaiting}
		return a.rec.record(StepRecord{Item: it})
	case refusal(err):
		status = ItemRefused
	}
	a.mu.Lock()
	a.counts[string(s.Kind)+"."+status]++
	a.issues++
	if owned != nil {
		a.conflicts = append(a.conflicts, Conflict{B24ID: s.B24ID, LearnID: s.LearnID})
	}
	a.mu.Unlock()
	a.log.Warn("sync step not applied", slog.Int64("portal_id", a.portalID), slog.String("kind", string(s.Kind)),
		slog.String("action", string(s.Action)), slog.Int64("b24_id", s.B24ID), slog.Any("error", err))
	it := RunItem{Kind: s.Kind, B24ID: s.B24ID, LearnID: s.LearnID, Action: s.Action, Before: s.Before,
		After: s.after(), Reason: stepReason(s, err), Status: status}
	if owned != nil {
		// Before is the other portal's user as read: not this portal's to
		// see (see conflict in plan_users.go).
		it.Before = nil
	}
	rec := StepRecord{Item: it}
	switch {
	case status == ItemRefused && s.Reason.Has(ReasonCut):
		it.Reason = it.Reason.and(s.Reason)
		rec = StepRecord{Item: it, Refusal: refusalOf(s, err, it.Reason, a.account)}
	case status == ItemRefused && s.Action == ActionSupervisor:
		rec.Refusal = a.linksRefusal(s, err, it.Reason)
	case status == ItemRefused && s.Kind == KindUser && s.Action == ActionDeactivate && leaveRefused(err):
		it.Reason = it.Reason.and(because(ReasonLeaveRefused))
		rec = StepRecord{Item: it, Refusal: &Refusal{Kind: s.Kind, B24ID: s.B24ID, Part: PartStatus, Fingerprint: s.LearnID, Reason: it.Reason, Account: a.account}}
	}
	return a.rec.record(rec)
}

// leaveRefused says whether err is Learn refusing a deactivation for good:
// invalid (400) or not permitted (403), as it refuses the account
// owner's, not a user gone meanwhile or an answer that did not come.
func leaveRefused(err error) bool {
	var invalid *learn.ValidationError
	return errors.As(err, &invalid) || errors.Is(err, learn.ErrPermissionDenied)
}

// linksRefusal is what to remember of links step s that Learn refused with
// err, or nil: only Learn's own answer that it will not take them (400), not
// a supervisor or object missing because an earlier step failed, and not the
// Learn root's, which rootLinks remembers.
func (a *applier) linksRefusal(s Step, err error, reason Reasons) *Refusal {
	var invalid *learn.ValidationError
	if !errors.As(err, &invalid) {
		return nil
	}
	lid, terr := a.target(s) // a department this run created has its id now
	if terr != nil || !a.layout.Multi && lid == a.layout.LearnRootID {
		return nil
	}
	return &Refusal{Kind: s.Kind, B24ID: s.B24ID, Part: PartLinks, Fingerprint: linksKeyAt(lid, s.Sub), Reason: reason, Account: a.account}
}

func (a *applier) record(ctx context.Context, s Step, learnID string) error {
	return a.recordAll(ctx, []Step{s}, []string{learnID})
}

// recordAll records applied steps (learnIDs[i] is steps[i]'s object) in one
// go and returns once they are durable.
func (a *applier) recordAll(_ context.Context, steps []Step, learnIDs []string) error {
	recs := make([]StepRecord, len(steps))
	for i, s := range steps {
		recs[i].Item = RunItem{Kind: s.Kind, B24ID: s.B24ID, LearnID: learnIDs[i], Action: s.Action, Before: s.Before,
			After: s.after(), Reason: s.Reason, Status: ItemApplied}
		if s.Action != ActionSupervisor {
			m := &Mapping{Kind: s.Kind, B24ID: s.B24ID, LearnID: learnIDs[i], Fingerprint: s.fingerprint(),
				Adopted: s.Adopted && s.Action != ActionCreate}
			if s.Kind == KindUser {
				recs[i].Account = a.account
			}
			recs[i].Mapping = m
		}
	}
	if err := a.rec.record(recs...); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, s := range steps {
		learnID := learnIDs[i]
		a.counts[string(s.Kind)+"."+string(s.Action)]++
		switch {
		case s.Kind == KindUser && s.Action == ActionCreate:
			a.createdUsers = append(a.createdUsers, s.B24ID) // learnID is in userIDs (created)
		case s.Kind == KindUser && s.Action == ActionReactivate:
			a.reactivated[s.B24ID] = learnID
		}
		if s.Action == ActionReactivate {
			a.tried = append(a.tried, s.B24ID)
		}
		// A user this run created is never a step's LearnID (the plan did
		// not know it), so claim never asks about it: not kept.
		if s.Kind == KindUser && a.account != "" && s.Action != ActionCreate {
			a.owned[learnID] = true
		}
	}
	return nil
}

func (a *applier) dept(learnID string, b24 int64) (string, error) {
	if learnID != "" {
		return learnID, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if id, ok := a.deptIDs[b24]; ok {
		return id, nil
	}
	return "", &errMissingRef{what: "department " + strconv.FormatInt(b24, 10)}
}

func (a *applier) target(s Step) (string, error) {
	if s.LearnID != "" {
		return s.LearnID, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := a.userIDs
	if s.Kind == KindDepartment {
		ids = a.deptIDs
	}
	if id, ok := ids[s.B24ID]; ok {
		return id, nil
	}
	return "", &errMissingRef{what: string(s.Kind) + " " + strconv.FormatInt(s.B24ID, 10)}
}

func (a *applier) sub(t *SubTarget) (*learn.Subordination, error) {
	if t == nil {
		return nil, nil
	}
	out := &learn.Subordination{Type: t.Type}
	if t.Type != SubManual {
		return out, nil
	}
	out.SupervisorID = t.SupervisorLearnID
	if out.SupervisorID == "" {
		a.mu.Lock()
		out.SupervisorID = a.userIDs[t.SupervisorB24]
		a.mu.Unlock()
	}
	if out.SupervisorID == "" {
		return nil, &errMissingRef{what: "supervisor (user " + strconv.FormatInt(t.SupervisorB24, 10) + ")"}
	}
	return out, nil
}

// listed are the links the plan listed for supervisor step s, in the
// client's form: a link the listing left out is nil (the client then
// reads the object, except the root's, which is no manager).
func (a *applier) listed(s Step) *learn.Links {
	l := s.Sub.Listed
	if l == nil {
		return nil
	}
	link := func(x Subordination) *learn.Subordination {
		if x.Type == "" {
			return nil
		}
		return &learn.Subordination{Type: x.Type, SupervisorID: x.SupervisorID}
	}
	return &learn.Links{Subordination: link(l.Subordination), CoSubordination: link(l.CoSubordination),
		Root: s.Kind == KindDepartment && s.LearnID == a.layout.LearnRootID}
}

func (a *applier) wrote() {
	a.mu.Lock()
	a.writes++
	a.mu.Unlock()
}

// activated yields the users this run created or reactivated: Bitrix24 id
// and Learn id. Called once the writes are done.
func (a *applier) activated() iter.Seq2[int64, string] {
	return func(yield func(int64, string) bool) {
		for _, b24 := range a.createdUsers {
			if !yield(b24, a.userIDs[b24]) {
				return
			}
		}
		for b24, id := range a.reactivated {
			if !yield(b24, id) {
				return
			}
		}
	}
}

// created keeps the Learn id a create call gave the Bitrix24 object b24 in
// ids (deptIDs or userIDs), for the later steps that refer to it.
func (a *applier) created(ids map[int64]string, b24 int64, id string, err error) (string, error) {
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	ids[b24] = id
	a.mu.Unlock()
	return id, nil
}

// exec performs the Learn write of a step and returns the object's Learn id.
func (a *applier) exec(ctx context.Context, s Step) (string, error) {
	switch {
	case s.Action == ActionLink:
		return s.LearnID, nil
	case s.Kind == KindDepartment && s.Action == ActionCreate:
		parent, err := a.dept(s.Dept.ParentLearnID, s.Dept.ParentB24)
		if err != nil {
			return "", err
		}
		if err := a.store.departmentSent(ctx, a.portalID, s.B24ID); err != nil {
			return "", err
		}
		a.wrote()
		id, err := a.lc.CreateDepartment(ctx, learn.NewDepartment{Name: s.Dept.Name, ParentID: parent, Code: s.Dept.Code})
		return a.created(a.deptIDs, s.B24ID, id, err)
	case s.Kind == KindDepartment && (s.Action == ActionUpdate || s.Action == ActionMove):
		var u learn.DepartmentUpdate // only what changes is sent
		for _, c := range s.Changed {
			switch c {
			case "name":
				u.Name = s.Dept.Name
			case "code":
				u.Code = s.Dept.Code
			case "parent":
				p, err := a.dept(s.Dept.ParentLearnID, s.Dept.ParentB24)
				if err != nil {
					return "", err
				}
				u.ParentID = p
			}
		}
		if u == (learn.DepartmentUpdate{}) {
			return s.LearnID, nil
		}
		a.wrote()
		return s.LearnID, a.lc.UpdateDepartment(ctx, s.LearnID, u)
	case s.Action == ActionSupervisor:
		id, err := a.target(s)
		if err != nil {
			return "", err
		}
		sub, err := a.sub(s.Sub.Sub)
		if err != nil {
			return "", err
		}
		co, err := a.sub(s.Sub.CoSub)
		if err != nil {
			return "", err
		}
		a.wrote()
		if s.Kind == KindDepartment {
			return id, a.lc.SetDepartmentSubordination(ctx, id, sub, co, a.listed(s))
		}
		return id, a.lc.SetUserSubordination(ctx, id, sub, co, a.listed(s))
	case s.Kind == KindUser && s.Action == ActionCreate:
		dept, err := a.dept(s.User.DeptLearnID, s.User.DeptB24)
		if err != nil {
			return "", err
		}
		nu := learn.NewUser{DepartmentID: dept, Fields: newUserFields(s.User), SendLoginEmail: a.sendLoginEmail}
		if nu.SendLoginEmail {
			nu.InvitationMessage = a.invitation
		}
		a.wrote()
		id, err := a.lc.CreateUser(ctx, nu)
		return a.created(a.userIDs, s.B24ID, id, err)
	case s.Kind == KindUser && s.Action == ActionMove:
		dept, err := a.dept(s.User.DeptLearnID, s.User.DeptB24)
		if err != nil {
			return "", err
		}
		a.wrote()
		return s.LearnID, a.lc.MoveUsers(ctx, dept, []string{s.LearnID})
	case s.Kind == KindUser && (s.Action == ActionReactivate || s.Action == ActionDeactivate):
		a.wrote()
		return s.LearnID, a.lc.SetUserStatus(ctx, s.LearnID, s.Status)
	}
	return "", fmt.Errorf("apply: no executor for %s.%s", s.Kind, s.Action)
}
