package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
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
	account    string // AccountKey of the Learn account
	rec        *recorder

	mu      sync.Mutex
	deptIDs map[int64]string
	userIDs map[int64]string
	counts  map[string]int
	issues  int // refused or failed steps
	writes  int
	// owned are the Learn users this portal owns; others are claimed before
	// the first write to them.
	owned map[string]bool
	// activated are users created or reactivated (b24 id -> Learn id): Learn
	// may have left them inactive past its plan, which a read-back tells.
	activated map[int64]string
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
		layout: p.Layout, deptIDs: map[int64]string{}, userIDs: map[int64]string{}, counts: map[string]int{},
		owned: map[string]bool{}, activated: map[int64]string{},
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
		errors.Is(err, learn.ErrForbiddenAddr)
}

// refusal errors are Learn saying no to this one object.
// stepReason is the report's words for a step Learn did not apply: the
// client's error text (our words, status and code) and, for a refusal, the
// profile field Learn's message names when it is one we know, so the admin
// learns which field to fill without being shown the server's text.
func stepReason(s Step, err error) string {
	known := []string{"login", "email", "first_name", "last_name", "job_title", "phone"}
	known = append(known, slices.Sorted(maps.Keys(s.after()))...)
	if f := learn.MentionedField(err, known); f != "" {
		return err.Error() + "; Learn names the field " + f
	}
	return err.Error()
}

func refusal(err error) bool {
	var v *learn.ValidationError
	var m *errMissingRef
	return errors.As(err, &v) || errors.As(err, &m) || errors.Is(err, learn.ErrDuplicate) || errors.Is(err, learn.ErrNotFound)
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
			return learn.Parallel(ctx, a.par, single, a.one)
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

// pipeline applies department and user steps (in plan order) as soon as what
// each needs is done, not level by level: a department created in this run
// waits only for its parent, a user only for a department created or changed
// in this run that it goes into, so the writes of a deep tree keep the
// account's concurrency busy instead of draining it at every level. A
// department that exists and changes (a rename, a move) still waits for every
// department step of the levels above it: moves are ordered by level so that
// none puts a department under its own descendant. A step waits for the
// other's record to be durable, as it did behind the level's end.
func (a *applier) pipeline(ctx context.Context, steps []Step) error {
	ready := map[int64]chan struct{}{} // department step's b24 id: closed when it is done
	var levels []int                   // department steps left per level
	for _, s := range steps {
		if s.Kind == KindDepartment {
			ready[s.B24ID] = make(chan struct{})
			for len(levels) <= s.Level {
				levels = append(levels, 0)
			}
			levels[s.Level]++
		}
	}
	// above[l] is closed once every department step of a level under l is done.
	above := make([]chan struct{}, len(levels)+1)
	for i := range above {
		above[i] = make(chan struct{})
	}
	var mu sync.Mutex
	done := 0 // levels whose above[] is closed, from the top
	advance := func() {
		for done < len(levels) && levels[done] == 0 {
			done++
			close(above[done])
		}
	}
	close(above[0])
	mu.Lock()
	advance()
	mu.Unlock()
	wait := func(ctx context.Context, ch chan struct{}) error {
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return learn.Parallel(ctx, a.par, steps, func(ctx context.Context, s Step) error {
		var need chan struct{}
		switch {
		case s.Kind == KindDepartment && s.Action == ActionCreate:
			if s.Dept != nil && s.Dept.ParentLearnID == "" {
				need = ready[s.Dept.ParentB24]
			}
		case s.Kind == KindDepartment:
			need = above[s.Level]
		case s.User != nil && s.User.DeptLearnID == "":
			need = ready[s.User.DeptB24]
		}
		if err := wait(ctx, need); err != nil {
			return err
		}
		err := a.one(ctx, s)
		if s.Kind == KindDepartment {
			close(ready[s.B24ID])
			mu.Lock()
			levels[s.Level]--
			advance()
			mu.Unlock()
		}
		return err
	})
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
	id, err := a.exec(ctx, s)
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
			After: s.Before, Reason: reasonLicence + " (Learn: " + err.Error() + ")", Status: ItemWaiting}
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
	return a.rec.record(StepRecord{Item: it})
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
			m := &Mapping{Kind: s.Kind, B24ID: s.B24ID, LearnID: learnIDs[i], Fingerprint: s.Fingerprint}
			if s.Kind == KindUser {
				m.Account = a.account
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
		if s.Kind == KindUser && (s.Action == ActionCreate || s.Action == ActionReactivate) {
			a.activated[s.B24ID] = learnID
		}
		if s.Action == ActionReactivate {
			a.tried = append(a.tried, s.B24ID)
		}
		if s.Kind == KindUser && a.account != "" {
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

// newUserFields are the fields of a user create: the empty ones are left out.
func newUserFields(u *UserSpec) learn.Fields {
	f := learn.Fields{}
	for i, p := range specFields(u) {
		if *p != "" || i == 0 {
			f[userFieldNames[i]] = *p
		}
	}
	for k, v := range u.Extra {
		if v != "" {
			f[k] = v
		}
	}
	return f
}

// updateUser sends what changed of a user: the changed profile fields with
// the login, which Learn requires in every update that has fields, and the
// department if it changed (docs/learn-api.md, "Updating a user"). An empty
// Bitrix24 value clears the Learn field if Learn takes the empty value; if
// Learn refuses it, the rest is sent alone, the field keeps its value and the
// report says so. The mapping records the new fingerprint either way, so the
// next run does not try again until Bitrix24 changes.
func (a *applier) updateUser(ctx context.Context, s Step) error {
	var dept string
	for _, name := range s.Changed {
		if name == "department" {
			d, err := a.dept(s.User.DeptLearnID, s.User.DeptB24)
			if err != nil {
				return a.failed(ctx, s, err)
			}
			dept = d
		}
	}
	empty, kept, unknown := a.empties(s)
	if unknown {
		a.probe.Lock()
		defer a.probe.Unlock()
		empty, kept, _ = a.empties(s) // another update may have asked meanwhile
	}
	err := a.sendUpdate(ctx, s, dept, kept)
	var verr *learn.ValidationError
	switch {
	case err == nil:
		a.setEmptyOK(empty, true)
	case len(empty) > 0 && errors.As(err, &verr) && !fatal(ctx, err):
		// Whether Learn takes an empty value as "clear" is not documented; a
		// 400 for an update carrying one is taken as "no", confirmed by the
		// same update without the empty values going through.
		if err = a.sendUpdate(ctx, s, dept, append(kept, empty...)); err == nil {
			a.setEmptyOK(empty, false)
			kept = append(kept, empty...)
		}
	}
	if err != nil {
		return a.failed(ctx, s, err)
	}
	if len(kept) > 0 {
		s = notCleared(s, kept)
	}
	return a.record(ctx, s, s.LearnID)
}

// empties splits the fields step s empties into those to send and those
// Learn refused empty in this run; unknown says whether Learn's answer to
// one of the sent ones is not known yet.
func (a *applier) empties(s Step) (send, keep []string, unknown bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, name := range s.Changed {
		if v, ok := s.User.field(name); !ok || v != "" {
			continue
		}
		ok, known := a.emptyOK[name]
		switch {
		case !known:
			unknown = true
			send = append(send, name)
		case ok:
			send = append(send, name)
		default:
			keep = append(keep, name)
		}
	}
	return send, keep, unknown
}

func (a *applier) setEmptyOK(fields []string, ok bool) {
	a.mu.Lock()
	for _, name := range fields {
		a.emptyOK[name] = ok
	}
	a.mu.Unlock()
}

// sendUpdate sends the update of step s without the fields in skip; with
// nothing left to change it sends nothing.
func (a *applier) sendUpdate(ctx context.Context, s Step, dept string, skip []string) error {
	u := learn.UserUpdate{DepartmentID: dept}
	for _, name := range s.Changed {
		if name == "department" || slices.Contains(skip, name) {
			continue
		}
		if u.Fields == nil {
			u.Fields = learn.Fields{}
		}
		u.Fields[name], _ = s.User.field(name)
	}
	if u.Fields == nil && u.DepartmentID == "" {
		return nil
	}
	if u.Fields != nil {
		u.Fields[learn.FieldLogin] = s.User.Login
	}
	a.wrote()
	return a.lc.UpdateUser(ctx, s.LearnID, u)
}

// notCleared reports fields Learn kept because it does not take them empty:
// the step's "after" shows Learn's value and the reason names the fields. A
// step left with no change is recorded as a link (no write).
func notCleared(s Step, fields []string) Step {
	after := make(map[string]string, len(s.After))
	for k, v := range s.After {
		after[k] = v
	}
	var why []string
	for _, f := range fields {
		after[f] = s.Before[f]
		why = append(why, "not cleared: Learn does not accept an empty "+f)
	}
	s.After = after
	s.Reason = strings.Join(why, "; ")
	left := 0
	for _, c := range s.Changed {
		if !slices.Contains(fields, c) {
			left++
		}
	}
	if left == 0 {
		s.Action = ActionLink
	}
	return s
}

func (a *applier) wrote() {
	a.mu.Lock()
	a.writes++
	a.mu.Unlock()
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
		a.wrote()
		id, err := a.lc.CreateDepartment(ctx, learn.NewDepartment{Name: s.Dept.Name, ParentID: parent, Code: s.Dept.Code})
		if err != nil {
			return "", err
		}
		a.mu.Lock()
		a.deptIDs[s.B24ID] = id
		a.mu.Unlock()
		return id, nil
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
			return id, a.lc.SetDepartmentSubordination(ctx, id, sub, co)
		}
		return id, a.lc.SetUserSubordination(ctx, id, sub, co)
	case s.Kind == KindUser && s.Action == ActionCreate:
		dept, err := a.dept(s.User.DeptLearnID, s.User.DeptB24)
		if err != nil {
			return "", err
		}
		nu := learn.NewUser{DepartmentID: dept, Fields: newUserFields(s.User), SendLoginEmail: s.User.SendLoginEmail}
		if nu.SendLoginEmail {
			nu.InvitationMessage = a.invitation
		}
		a.wrote()
		id, err := a.lc.CreateUser(ctx, nu)
		if err != nil {
			return "", err
		}
		a.mu.Lock()
		a.userIDs[s.B24ID] = id
		a.mu.Unlock()
		return id, nil
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

// bulk runs chunked bulk calls one after another (they are already wide).
func (a *applier) bulk(ctx context.Context, steps []Step, fn func(context.Context, []Step) error) error {
	for start := 0; start < len(steps); start += bulkSize {
		if err := fn(ctx, steps[start:min(start+bulkSize, len(steps))]); err != nil {
			return err
		}
	}
	return nil
}

// moves moves users with the move endpoint, one call per target department
// and bulkSize users (docs/learn-api.md, "Moving users").
func (a *applier) moves(ctx context.Context, steps []Step) error {
	byDept := map[string][]Step{}
	var order []string
	for _, s := range steps {
		if err := a.claim(ctx, s); err != nil {
			if err := a.failed(ctx, s, err); err != nil {
				return err
			}
			continue
		}
		d, err := a.dept(s.User.DeptLearnID, s.User.DeptB24)
		if err != nil {
			if err := a.failed(ctx, s, err); err != nil {
				return err
			}
			continue
		}
		if _, ok := byDept[d]; !ok {
			order = append(order, d)
		}
		byDept[d] = append(byDept[d], s)
	}
	for _, d := range order {
		if err := a.bulk(ctx, byDept[d], func(ctx context.Context, group []Step) error {
			return a.moveChunk(ctx, d, group)
		}); err != nil {
			return err
		}
	}
	return nil
}

// moveChunk moves a group of users into dept in one call; when Learn refuses
// it (a user gone meanwhile), each user is moved alone so that only the
// refused one fails.
func (a *applier) moveChunk(ctx context.Context, d string, group []Step) error {
	if len(group) == 1 {
		return a.one(ctx, group[0])
	}
	ids := make([]string, len(group))
	for i, s := range group {
		ids[i] = s.LearnID
	}
	a.wrote()
	if err := a.lc.MoveUsers(ctx, d, ids); err != nil {
		if fatal(ctx, err) {
			return err
		}
		return learn.Parallel(ctx, a.par, group, a.one)
	}
	return a.recordAll(ctx, group, learnIDs(group))
}

// deactivateChunk deactivates users with the bulk endpoint; a failed call
// falls back to one status call per user.
func (a *applier) deactivateChunk(ctx context.Context, steps []Step) error {
	mine := steps[:0:0]
	for _, s := range steps {
		if err := a.claim(ctx, s); err != nil {
			if err := a.failed(ctx, s, err); err != nil {
				return err
			}
			continue
		}
		mine = append(mine, s)
	}
	steps = mine
	if len(steps) == 0 {
		return nil
	}
	if len(steps) == 1 {
		return a.one(ctx, steps[0])
	}
	ids := make([]string, len(steps))
	for i, s := range steps {
		ids[i] = s.LearnID
	}
	a.wrote()
	if err := a.lc.DeactivateUsers(ctx, ids); err != nil {
		if fatal(ctx, err) {
			return err
		}
		return learn.Parallel(ctx, a.par, steps, a.one)
	}
	return a.recordAll(ctx, steps, learnIDs(steps))
}

func learnIDs(steps []Step) []string {
	ids := make([]string, len(steps))
	for i, s := range steps {
		ids[i] = s.LearnID
	}
	return ids
}
