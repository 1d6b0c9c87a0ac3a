// The applier's user writes: the changed fields of an update, and the bulk moves and deactivations.

package syncer

import (
	"context"
	"errors"
	"slices"

	"b24learn/internal/learn"
)

// newUserFields are the fields of a user create: the empty ones are left out.
func newUserFields(u *UserSpec) learn.Fields {
	f := learn.Fields{}
	for i, p := range u.fields() {
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
	// send sends s with the empty values, and, while Learn's answer to
	// them is not known, refused, once more without them.
	send := func(s Step) error {
		err := a.sendUpdate(ctx, s, dept, kept)
		var verr *learn.ValidationError
		switch {
		case err == nil:
			a.setEmptyOK(empty, true)
			empty = nil
		case len(empty) > 0 && errors.As(err, &verr) && !fatal(ctx, err):
			// Whether Learn takes an empty value as "clear" is not documented; a
			// 400 for an update carrying one is taken as "no", confirmed by the
			// same update without the empty values going through. Both refused,
			// the answer is still not known: the update's values may be too long
			// (longvalues.go), and its shorter writes ask again.
			if err = a.sendUpdate(ctx, s, dept, append(kept, empty...)); err == nil {
				a.setEmptyOK(empty, false)
				kept, empty = append(kept, empty...), nil
			}
		}
		return err
	}
	err := send(s)
	s, err = shorter(s, err, send)
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
	// Learn's docs call the login required in a user update: it goes with
	// every one, a department alone included.
	if u.Fields == nil {
		u.Fields = learn.Fields{}
	}
	u.Fields[learn.FieldLogin] = s.User.Login
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
	var why Reasons
	for _, f := range fields {
		after[f] = s.Before[f]
		why = why.and(because(ReasonNotCleared, f))
	}
	s.After = after
	s.Reason = why
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

// moveChunk moves a group of users into dept in one call (bulkCall).
func (a *applier) moveChunk(ctx context.Context, d string, group []Step) error {
	return a.bulkCall(ctx, group, func(ctx context.Context, ids []string) error { return a.lc.MoveUsers(ctx, d, ids) })
}

// deactivateChunk deactivates users with the bulk endpoint (bulkCall); a
// failed call falls back to one status call per user.
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
	return a.bulkCall(ctx, steps, a.lc.DeactivateUsers)
}

// bulkCall makes one Learn call for the users of steps (call gets their Learn
// ids) and records them all; when Learn refuses it (a user gone meanwhile),
// each step is applied alone so that only the refused one fails. A lone step
// is applied alone at once.
func (a *applier) bulkCall(ctx context.Context, steps []Step, call func(ctx context.Context, learnIDs []string) error) error {
	if len(steps) == 1 {
		return a.one(ctx, steps[0])
	}
	ids := learnIDs(steps)
	a.wrote()
	if err := call(ctx, ids); err != nil {
		if fatal(ctx, err) {
			return err
		}
		return learn.Parallel(ctx, a.par, steps, a.one)
	}
	return a.recordAll(ctx, steps, ids)
}

func learnIDs(steps []Step) []string {
	ids := make([]string, len(steps))
	for i, s := range steps {
		ids[i] = s.LearnID
	}
	return ids
}
