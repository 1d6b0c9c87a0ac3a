package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/learn"
)

// TriggerOnDemand is a run of one employee's steps, asked for by an admin.
const TriggerOnDemand Trigger = "on_demand"

// Why codes: whether one employee is in Learn's scope, and if not why.
const (
	WhyInScope       = "in_scope"
	WhyNotInBitrix24 = "not_in_bitrix24"
	WhyDismissed     = "dismissed"
	WhyExtranet      = "extranet" // any user type other than employee
	WhyNotSelected   = "not_selected"
	WhyExcluded      = "excluded"
	WhyNoEmail       = "no_email"
	WhyLicence       = "licence"
	WhyForeign       = "foreign"
	WhyRefused       = "refused"
	// WhyInvited: the last run did not create them, as their Bitrix24
	// invitation was not accepted yet.
	WhyInvited = "invited"
)

// Verdict says whether one employee syncs and, when not, why.
type Verdict struct {
	Code string
	// Department is the Bitrix24 department the employee sits in in Learn
	// (in scope), or the department whose exclusion keeps them out.
	Department int64
	// Detail is the reason as recorded by the last run (refused, foreign).
	Detail Reasons
}

// InScope reports whether the employee is among those a run syncs.
func (v Verdict) InScope() bool { return v.Code == WhyInScope || v.Code == WhyLicence }

// Why says whether Bitrix24 user id is in scope under the options, by the
// plan's own rules (the builder's inScope and userDepartment, the checks of
// usersStep in their order). mapped is the user's stored mapping, if any;
// last is the user's item of the newest run that reported them, if any: a
// refusal or a conflict recorded there is the reason when the scope rules
// let the user in.
func Why(d Desired, o Options, mapped *Mapping, last *RunItem, id int64) Verdict {
	b := &builder{in: Input{Desired: d}, o: o}
	b.index()
	e, ok := b.employee(id)
	switch {
	case !ok:
		return Verdict{Code: WhyNotInBitrix24}
	case !e.Active:
		return Verdict{Code: WhyDismissed}
	case e.UserType != "employee":
		return Verdict{Code: WhyExtranet, Detail: because(ReasonNotEmployee, e.UserType)}
	}
	dept := b.userDepartment(e)
	if dept == 0 {
		for _, x := range e.Departments {
			if ex := b.excludedBy(x); ex != 0 {
				return Verdict{Code: WhyExcluded, Department: ex}
			}
		}
		return Verdict{Code: WhyNotSelected}
	}
	if normEmail(e.Email) == "" && mapped == nil {
		// A linked user keeps Learn's login; a new one has none to get.
		return Verdict{Code: WhyNoEmail, Department: dept}
	}
	if mapped != nil && mapped.LicenceWait {
		return Verdict{Code: WhyLicence, Department: dept, Detail: because(ReasonLicence)}
	}
	if last != nil {
		switch last.Status {
		case ItemConflict:
			if last.Action == ActionConflict && last.After["owner"] != OwnerThisPortal {
				return Verdict{Code: WhyForeign, Department: dept, Detail: because(ReasonOwnedBy, last.After["owner"])}
			}
		case ItemRefused, ItemFailed:
			return Verdict{Code: WhyRefused, Department: dept, Detail: last.Reason}
		case ItemInvited:
			if mapped == nil {
				return Verdict{Code: WhyInvited, Department: dept, Detail: because(ReasonInvited)}
			}
		}
	}
	return Verdict{Code: WhyInScope, Department: dept}
}

// excludedBy is the department whose exclusion is the nearest mark above
// id (itself included), or 0 when the nearest mark selects or none does.
func (b *builder) excludedBy(id int64) int64 {
	if _, ok := b.depts[id]; !ok {
		return 0
	}
	for x, n := id, 0; x != 0 && n <= len(b.depts); x, n = b.parentOf(x), n+1 {
		if b.excl[x] {
			return x
		}
		if b.incl[x] {
			return 0
		}
	}
	return 0
}

// ErrNoSuchEmployee means Bitrix24 has no user with the asked id.
var ErrNoSuchEmployee = errors.New("no such employee in Bitrix24")

// personMaxHeads bounds the heads read for one person: one user.get page.
const personMaxHeads = 50

// ReadPerson reads one Bitrix24 user, the departments, and the heads of the
// user's departments and their ancestors, the nearest 50 (personWalk):
// three requests for a tree of up to 50 departments (one page of
// department.get), a page more per 50 departments past that in the
// department listing's batch.
func ReadPerson(ctx context.Context, b24 Bitrix24, id int64, codes ...string) (Desired, error) {
	filter := func(ids any) map[string]any {
		// A list goes under @ID, the form documented to take one; what a
		// plain ID key does with a list is not (docs/bitrix24-api.md, "One
		// user and a people search").
		key := "ID"
		if _, list := ids.([]int64); list {
			key = "@ID"
		}
		f := map[string]any{key: ids}
		if sel := userSelect(codes); sel != nil {
			f[bitrix24.UserSelect] = sel
		}
		return f
	}
	texts, err := readOptionTexts(ctx, b24, codes)
	if err != nil {
		return Desired{}, err
	}
	us, err := b24.Users(ctx, filter(id))
	if err != nil {
		return Desired{}, fmt.Errorf("read bitrix24 user %d: %w", id, err)
	}
	var person *Employee
	d0 := fromBitrix24(nil, us, codes...)
	for i := range d0.Employees {
		if d0.Employees[i].ID == id {
			person = &d0.Employees[i]
		}
	}
	if person == nil {
		return Desired{}, ErrNoSuchEmployee
	}
	ds, err := b24.Departments(ctx)
	if err != nil {
		return Desired{}, fmt.Errorf("read bitrix24 departments: %w", err)
	}
	d := fromBitrix24(ds, nil)
	byID := make(map[int64]Department, len(d.Departments))
	for _, x := range d.Departments {
		byID[x.ID] = x
	}
	w := personWalk{byID: byID}
	heads, err := w.heads(ctx, person.Departments, id)
	if err != nil {
		return Desired{}, err
	}
	d.Employees = []Employee{*person}
	if len(heads) > 0 {
		hs, err := b24.Users(ctx, filter(heads))
		if err != nil {
			return Desired{}, fmt.Errorf("read bitrix24 heads: %w", err)
		}
		d.Employees = append(d.Employees, fromBitrix24(nil, hs, codes...).Employees...)
	}
	texts.apply(d.Employees)
	if a, ok := b24.(invitedAsker); ok && person.Active && person.UserType == "employee" {
		// An invited employee is not created before they accept, on
		// demand as in a full run; Bitrix24's answer holds only for the
		// listing the full run reads, so that is what is asked. Someone
		// dismissed or external is not created anyway.
		inv, err := a.Invited(ctx, employeesFilter())
		if err != nil {
			return Desired{}, fmt.Errorf("read bitrix24 invited users: %w", err)
		}
		slices.SortFunc(d.Employees, func(a, b Employee) int { return cmpInt(a.ID, b.ID) })
		markInvited(&d, inv)
	}
	return d, nil
}

// personMaxDepartments bounds the person's departments whose heads are
// read: Bitrix24 sets no limit on UF_DEPARTMENT, a real employee sits in
// one to a few, and 20 leaves room in the page of heads for the levels
// right above each. Past it the plan may lack a head of the department the
// person sits in in Learn; the next full run reads them all.
const personMaxDepartments = 20

// personWalk collects the heads above one person's departments. The
// portal chooses the org's shape (up to 100,000 departments in a chain),
// so each department is looked at once at most.
type personWalk struct {
	byID   map[int64]Department
	looked int // departments looked at (a test holds it linear)
}

// heads is the heads of deps and their ancestors but id, nearest first:
// all of deps' own, then those a level up, and so on until one page of
// heads (the plan's managers are the nearest heads that sync). Sorted.
func (w *personWalk) heads(ctx context.Context, deps []int64, id int64) ([]int64, error) {
	at := slices.Clone(deps[:min(len(deps), personMaxDepartments)])
	seen := map[int64]bool{}
	found := map[int64]bool{}
	var heads []int64
	for len(at) > 0 && len(heads) < personMaxHeads {
		next := at[:0] // each walk's next department, in place
		for _, x := range at {
			w.looked++
			if w.looked%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("read heads: %w", err)
				}
			}
			d, ok := w.byID[x]
			if !ok || seen[x] {
				continue // the top, or another walk's way from here
			}
			seen[x] = true
			if d.Head != 0 && d.Head != id && !found[d.Head] {
				found[d.Head] = true
				if heads = append(heads, d.Head); len(heads) == personMaxHeads {
					break
				}
			}
			next = append(next, d.Parent)
		}
		at = next
	}
	slices.Sort(heads)
	return heads, nil
}

// RunPerson applies one employee's steps now: their department path, their
// create, update, move, deactivation or reactivation, and their own manager
// links. It holds the portal's sync lock like Run (ErrBusy while another run
// holds it) and records a run with TriggerOnDemand.
func (s *Syncer) RunPerson(ctx context.Context, portalID, b24ID int64) (*Report, error) {
	if b24ID <= 0 {
		return nil, fmt.Errorf("run person: bad bitrix24 user id %d", b24ID)
	}
	return s.recorded(ctx, portalID, TriggerOnDemand, func(_ *slog.Logger, rep *Report, _ *[]int64) error {
		return s.runPerson(ctx, portalID, b24ID, rep)
	}, "on-demand sync finished", slog.Int64("b24_id", b24ID))
}

func (s *Syncer) runPerson(ctx context.Context, portalID, id int64, rep *Report) error {
	set, lc, b24, err := s.open(ctx, portalID, rep.RunID)
	if err != nil {
		return err
	}
	t0 := time.Now()
	// The field mapping's own Bitrix24 fields are read and its Learn fields
	// compared, as in a full run: otherwise the person's mapped fields would
	// be planned from the fixed mapping and overwritten.
	desired, err := ReadPerson(ctx, b24, id, sourceCodes(set.FieldMap)...)
	if err != nil {
		return err
	}
	rep.Phases["read_bitrix24"] = time.Since(t0)

	t0 = time.Now()
	ldepts, err := lc.ListDepartmentsWithin(ctx, learn.LimitsFor(len(desired.Departments)))
	if err != nil {
		return fmt.Errorf("read learn departments: %w", err)
	}
	var in Input
	in.Desired = desired
	in.Actual.Departments = fromLearnDepartments(ldepts)
	all, err := s.store.Mappings(ctx, portalID)
	if err != nil {
		return err
	}
	// The person and their heads: their mappings, and the Learn users those
	// point at or whose login or e-mail is theirs.
	people := map[int64]bool{}
	var emails []string
	for _, e := range desired.Employees {
		people[e.ID] = true
		if m := normEmail(e.Email); m != "" {
			emails = append(emails, m)
			// Whether Learn's filters ignore letter case is not known
			// (docs/learn-api.md, "Unsettled behaviour"): a user added
			// in Learn by hand or by another connector may hold the
			// address as Bitrix24 writes it, so that form is asked too.
			if orig := strings.TrimSpace(e.Email); orig != m {
				emails = append(emails, orig)
			}
		}
	}
	var learnIDs []string
	for _, m := range all {
		if m.Kind == KindDepartment || people[m.B24ID] {
			in.Actual.Mappings = append(in.Actual.Mappings, m)
			if m.Kind == KindUser {
				learnIDs = append(learnIDs, m.LearnID)
			}
		}
	}
	emails = append(emails, signInNames(set.LearnEmail)...) // the credentials' user's role (signin.go)
	seen := map[string]bool{}
	ids, extra := newInterner(), extraLearnFields(set.FieldMap)
	add := func(page []learn.User) error {
		for _, u := range page {
			in.Actual.SignIn.see(u, set.LearnEmail)
			if !seen[u.ID] {
				seen[u.ID] = true
				in.Actual.Users = append(in.Actual.Users, learnUser(u, ids, extra...))
			}
		}
		return nil
	}
	if len(learnIDs) > 0 {
		if err := lc.ListUsersWithin(ctx, learn.UserFilter{UserIDs: learnIDs}, learn.LimitsFor(len(learnIDs)), add); err != nil {
			return fmt.Errorf("read learn users: %w", err)
		}
	}
	if len(emails) > 0 {
		for _, f := range []learn.UserFilter{{Emails: emails}, {Logins: emails}} {
			if err := lc.ListUsersWithin(ctx, f, learn.LimitsFor(len(emails)), add); err != nil {
				return fmt.Errorf("read learn users: %w", err)
			}
		}
	}
	var lost string // the credentials' user, when the filters missed it
	if !in.Actual.SignIn.Found {
		lost = set.LearnEmail
	}
	if err := readUnfound(ctx, lc, len(all), desired.Employees, in.Actual.Mappings, in.Actual.Users, lost, add); err != nil {
		return err
	}
	// A Learn user read by the person's address may be linked to another
	// employee (a colleague's address typed into the person's profile): its
	// mapping claims it, as in a full run, or the person would adopt it. The
	// colleague's own steps are not this run's (personPlan).
	for _, m := range all {
		if m.Kind == KindUser && !people[m.B24ID] && seen[m.LearnID] {
			in.Actual.Mappings = append(in.Actual.Mappings, m)
		}
	}
	rep.Phases["read_learn"] = time.Since(t0)
	if err := in.Actual.SignIn.check(); err != nil {
		return fmt.Errorf("learn sign-in user: %w", err)
	}
	in.Options = Options{
		MemberID: set.MemberID, Selection: set.Selection, HeadsAsManagers: set.HeadsAsManagers,
		ParentHeadsAsSupervisors: set.ParentHeadsAsSupervisors, SendLoginEmail: set.SendLoginEmail,
		Safeguard: s.cfg.Safeguard, FieldMap: set.FieldMap, Person: id, SignInLogin: set.LearnEmail,
		// An admin asked for this person: a licence wait is tried again,
		// and so is a deactivation Learn refused.
		RetryLicence: map[int64]bool{id: true}, RetryLeaves: true,
	}
	account := set.Account()
	if in.Actual.Refusals, err = s.store.refusals(ctx, portalID, account); err != nil {
		return err
	}
	own, foreign, err := s.store.Owners(ctx, account, portalID)
	if err != nil {
		return err
	}
	in.Actual.Foreign = foreign
	if in.Options.OtherSignIns, err = s.store.OtherSignIns(ctx, account, portalID); err != nil {
		return err
	}
	if in.Actual.OtherDepartments, err = s.store.OtherDepartments(ctx, account, portalID); err != nil {
		return err
	}

	t0 = time.Now()
	full, err := BuildPlan(in)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	plan := personPlan(full, in, id)
	if slices.Contains(full.Returned, id) {
		if err := s.store.forgetLeaves(ctx, portalID, []int64{id}); err != nil {
			return err
		}
	}
	if err := refuseSharedEmail(ctx, b24, plan, in, id); err != nil {
		return err
	}
	rep.Plan = plan
	rep.Phases["plan"] = time.Since(t0)

	par, _, release, err := s.writeLimit(ctx, account, lc)
	if err != nil {
		return err
	}
	defer release()
	a := newApplier(s.store, lc, s.log, portalID, rep.RunID, par, s.cfg.InvitationMessage, plan)
	a.account, a.owned, a.domain = account, own, set.Domain
	a.rec = newRecorder(ctx, s.store, portalID, rep.RunID)
	t0 = time.Now()
	applyErr := a.apply(ctx, plan.Steps)
	a.rec.close()
	rep.Phases["apply"] = time.Since(t0)
	rep.Writes = a.writes
	rep.Counts = a.counts
	if applyErr != nil {
		return fmt.Errorf("apply: %w", applyErr)
	}
	var items []RunItem
	for _, st := range plan.Refused {
		status := refusedStatus(st)
		items = append(items, itemOf(st, status))
		rep.Counts[string(st.Kind)+"."+status]++
	}
	for _, st := range plan.Waiting {
		items = append(items, itemOf(st, ItemWaiting))
		rep.Counts["user."+ItemWaiting]++
	}
	items = append(items, invitedItems(plan)...)
	if len(plan.Invited) > 0 {
		rep.Counts["user."+ItemInvited] = len(plan.Invited)
	}
	if err := s.store.RecordItems(ctx, portalID, rep.RunID, items); err != nil {
		return err
	}
	if a.issues > 0 || len(plan.Refused) > 0 {
		rep.Status = RunPartial
	} else {
		rep.Status = RunSucceeded
	}
	return nil
}

// refuseSharedEmail refuses the create of a one-person run whose address
// is another employee's in Learn: two employees the full run syncs share it
// and the other has the lower id (emailOwners, the full run's rule). A
// one-person run reads only the person and their heads, so an employee who
// typed a colleague's address into their own profile would otherwise take
// it in Learn before the colleague's first sync, which Learn then refuses
// as taken. One more user.get, only when the run would create the person:
// `%EMAIL` is the documented filter (docs/bitrix24-api.md, "One user and a
// people search"), the address is compared whole here, and only a lower id
// can own it, so `<ID` leaves the rest of the org out of the answer.
func refuseSharedEmail(ctx context.Context, b24 Bitrix24, plan *Plan, in Input, id int64) error {
	if !slices.ContainsFunc(plan.Steps, func(st Step) bool {
		return st.Kind == KindUser && st.B24ID == id && st.Action == ActionCreate
	}) {
		return nil
	}
	var person *Employee
	for i := range in.Desired.Employees {
		if in.Desired.Employees[i].ID == id {
			person = &in.Desired.Employees[i]
		}
	}
	email := ""
	if person != nil {
		email = normEmail(person.Email)
	}
	if email == "" {
		return nil
	}
	f := employeesFilter()
	f["ACTIVE"], f["%EMAIL"], f["<ID"] = true, email, id
	us, err := b24.Users(ctx, f)
	if err != nil {
		return fmt.Errorf("read bitrix24 users with the person's e-mail: %w", err)
	}
	// The sharers the full run would sync with the person: the others
	// it leaves out (another department, dismissed) own nothing.
	b := &builder{in: in, o: in.Options}
	b.index()
	sharers := []*Employee{person}
	found := fromBitrix24(nil, us).Employees
	for i := range found {
		if e := &found[i]; e.ID != id && normEmail(e.Email) == email && b.syncDepartment(e) != 0 {
			sharers = append(sharers, e)
		}
	}
	owner := emailOwners(sharers)[email]
	if owner == 0 || owner == id {
		return nil
	}
	// None of the person's steps is done: their manager links need the
	// user the create would have made.
	plan.Steps = slices.DeleteFunc(plan.Steps, func(st Step) bool { return st.Kind == KindUser && st.B24ID == id })
	var after map[string]string
	if person.FirstName != "" || person.LastName != "" {
		after = map[string]string{"first_name": person.FirstName, "last_name": person.LastName}
	}
	plan.Refused = append(plan.Refused, Step{Stage: StageUsers, Kind: KindUser, Action: ActionRefuse, B24ID: id,
		After: after, Reason: because(ReasonEmailShared, email, strconv.FormatInt(owner, 10))})
	return nil
}

// personPlan keeps of a plan built for one person (Options.Person) the
// steps that are theirs: the departments on the way from the root to their
// department, their own user steps and manager links. Links to a head whom
// this run does not create stay for the next full run.
func personPlan(full *Plan, in Input, id int64) *Plan {
	b := &builder{in: in, o: in.Options}
	b.index()
	chain := map[int64]bool{}
	for _, e := range in.Desired.Employees {
		if e.ID != id {
			continue
		}
		if d := b.userDepartment(&e); d != 0 {
			for x, n := d, 0; x != 0 && n <= len(b.depts); x, n = b.parentOf(x), n+1 {
				chain[x] = true
			}
		}
	}
	p := *full
	p.Steps, p.Refused, p.Waiting = nil, nil, nil
	known := func(t *SubTarget) bool {
		return t == nil || t.Type != SubManual || t.SupervisorLearnID != "" || t.SupervisorB24 == id
	}
	for _, st := range full.Steps {
		switch {
		case st.Kind == KindDepartment && chain[st.B24ID]:
		case st.Kind == KindUser && st.B24ID == id:
		default:
			continue
		}
		if st.Action == ActionSupervisor && (!known(st.Sub.Sub) || !known(st.Sub.CoSub)) {
			continue
		}
		p.Steps = append(p.Steps, st)
	}
	for _, st := range full.Refused {
		if st.Kind == KindUser && st.B24ID == id {
			p.Refused = append(p.Refused, st)
		}
	}
	for _, st := range full.Waiting {
		if st.B24ID == id {
			p.Waiting = append(p.Waiting, st)
		}
	}
	p.Invited = nil
	for _, st := range full.Invited {
		if st.B24ID == id {
			p.Invited = append(p.Invited, st)
		}
	}
	return &p
}

// decodeState reads a before or after column (NULL is nil).
func decodeState(raw []byte) (map[string]string, error) {
	if raw == nil {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode item state: %w", err)
	}
	return m, nil
}

// Verdicts says, for each Bitrix24 user of us, whether they are in scope
// and why (Why over the portal's departments ds): the people search's
// answer. mappings are the portal's user mappings by Bitrix24 id, lasts the
// users' newest report rows (LastPersonItems).
func Verdicts(ds []bitrix24.Department, us []bitrix24.User, o Options, mappings map[int64]*Mapping, lasts map[int64]RunItem) map[int64]Verdict {
	d := fromBitrix24(ds, us)
	out := make(map[int64]Verdict, len(us))
	for _, u := range us {
		var last *RunItem
		if it, ok := lasts[u.ID]; ok {
			last = &it
		}
		out[u.ID] = Why(d, o, mappings[u.ID], last, u.ID)
	}
	return out
}
