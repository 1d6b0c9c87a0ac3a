package syncer

import (
	"context"
	"errors"
	"maps"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
)

const (
	simAccount  = "https://acme.ispringlearn.test"
	simEmail    = "admin@acme.test"
	simPassword = "s3cret"
	// The account's API key, which portals use when the Learn variant
	// needs one (learnsim.Unsettled.NeedsAPIKey).
	simClientID     = "cid-acme"
	simClientSecret = "csecret-acme-0123456789"
)

// simEnv is a database, a Learn simulator with one account and a Bitrix24
// simulator; portals are added with addPortal.
type simEnv struct {
	t        testing.TB
	pool     *pgxpool.Pool
	lsim     *learnsim.Sim
	lsrv     *httptest.Server
	bsrv     *b24sim.Server
	syncer   *Syncer
	mu       sync.Mutex
	settings map[int64]Settings
	b24      map[int64]Bitrix24
	portals  map[int64]*b24sim.Portal
	wrap     func(Learn) Learn // kill points, counters
	// newB24, when set, builds a portal's Bitrix24 client for each run,
	// as the app does, instead of the one addPortal stored.
	newB24 func(ctx context.Context, portalID int64) (Bitrix24, error)
	// key: portals sign in with the account's API key.
	key bool
	// kr seals the secrets of the settings rows saved with saveRow.
	kr *secret.Keyring
}

type simOpts struct {
	learn   learnsim.Options
	account learnsim.AccountOptions
	b24     b24sim.Options
	par     int
	// lenient keeps learn.Unsettled as given. Otherwise Learn refuses
	// what its API description does not list (StrictRequests): a request
	// it serves is served alike without the switch, so every sync test
	// also checks the app sends nothing else.
	lenient bool
}

func newSimEnv(tb testing.TB, o simOpts) *simEnv {
	tb.Helper()
	e := &simEnv{t: tb, pool: pgtest.NewPool(tb), settings: map[int64]Settings{}, b24: map[int64]Bitrix24{},
		portals: map[int64]*b24sim.Portal{}, kr: apptest.Keyring(tb)}
	if o.learn.Seed == 0 {
		o.learn.Seed = 1
	}
	if !o.lenient {
		o.learn.Unsettled.StrictRequests = true
	}
	e.lsim = learnsim.New(o.learn)
	if o.learn.Unsettled.StrictRequests {
		// A run takes a refused write in its stride (a report row), so a
		// request Learn might refuse is caught here rather than by the run.
		tb.Cleanup(func() {
			if s := e.lsim.Strays(simAccount); len(s) > 0 {
				tb.Errorf("sent what the Learn API description does not list (%d requests): %q", len(s), s[:min(len(s), 5)])
			}
		})
	}
	acct := o.account
	acct.URL, acct.Email, acct.Password, acct.RootName = simAccount, simEmail, simPassword, "Learn"
	if acct.ClientID == "" {
		acct.ClientID, acct.ClientSecret = simClientID, simClientSecret
	}
	e.key = o.learn.Unsettled.NeedsAPIKey()
	if _, err := e.lsim.AddAccount(acct); err != nil {
		tb.Fatal(err)
	}
	e.lsrv = httptest.NewServer(e.lsim.Handler())
	tb.Cleanup(e.lsrv.Close)
	if o.b24.Rate == 0 {
		o.b24.Rate = -1
	}
	e.bsrv = b24sim.Start(o.b24)
	tb.Cleanup(e.bsrv.Close)
	retry := learn.RetryPolicy{MaxAttempts: 8, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, Timeout: 10 * time.Second}
	e.syncer = New(Config{
		Pool:     e.pool,
		Settings: e,
		NewLearn: func(ctx context.Context, portalID int64, s Settings) (Learn, error) {
			c, err := newLearnClient(learn.Options{BaseURL: e.lsrv.URL, AllowHTTP: true, Retry: retry})(ctx, portalID, s)
			if err != nil {
				return nil, err
			}
			if e.wrap != nil {
				return e.wrap(c), nil
			}
			return c, nil
		},
		NewBitrix24: func(ctx context.Context, portalID int64) (Bitrix24, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.newB24 != nil {
				return e.newB24(ctx, portalID)
			}
			return e.b24[portalID], nil
		},
		Parallelism: o.par,
	})
	return e
}

func (e *simEnv) Settings(ctx context.Context, portalID int64) (Settings, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.settings[portalID]
	if !ok {
		return s, ErrNotConfigured
	}
	return s, nil
}

func (e *simEnv) setSettings(portalID int64, f func(*Settings)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.settings[portalID]
	f(&s)
	e.settings[portalID] = s
}

// addPortal adds a Bitrix24 portal with org, installs the app and stores the
// portal with settings that select its whole tree.
func (e *simEnv) addPortal(org b24sim.Org) (int64, *b24sim.Portal) {
	e.t.Helper()
	p := e.bsrv.AddPortal(b24sim.PortalOptions{Org: org})
	tok := p.Install()
	p.FinishInstall(context.Background())
	oauth := &bitrix24.OAuth{URL: e.bsrv.URL, ClientID: e.bsrv.ClientID(), ClientSecret: e.bsrv.ClientSecret()}
	c := bitrix24.New(bitrix24.Config{Endpoint: p.ClientEndpoint(), Tokens: bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token(tok)),
		RetryWait: 100 * time.Millisecond})
	id := mustPortal(e.t, e.pool, p.MemberID())
	e.mu.Lock()
	e.b24[id] = c
	e.portals[id] = p
	e.settings[id] = Settings{MemberID: p.MemberID(), Domain: p.Domain(), LearnURL: simAccount, LearnEmail: simEmail, LearnPassword: simPassword,
		Selection: Selection{Selected: []int64{1}}}
	if e.key {
		s := e.settings[id]
		s.LearnClientID, s.LearnClientSecret = simClientID, simClientSecret
		e.settings[id] = s
	}
	e.mu.Unlock()
	return id, p
}

func (e *simEnv) run(portalID int64, trigger Trigger) *Report {
	e.t.Helper()
	rep, err := e.syncer.Run(context.Background(), portalID, trigger)
	if err != nil {
		e.t.Fatalf("run: %v", err)
	}
	return rep
}

func (e *simEnv) state() learnsim.State {
	e.t.Helper()
	st, err := e.lsim.Snapshot(simAccount)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// learnUserByID is the Learn user with this id as learnsim holds it now.
func (e *simEnv) learnUserByID(id string) learnsim.User {
	e.t.Helper()
	for _, u := range e.state().Users {
		if u.ID == id {
			return u
		}
	}
	e.t.Fatalf("Learn user %s is gone", id)
	return learnsim.User{}
}

// untouched fails the test when the Learn user's fields, department or
// status are no longer was's: a run wrote to someone it must leave alone.
func (e *simEnv) untouched(id string, was learnsim.User, what string) {
	e.t.Helper()
	if now := e.learnUserByID(id); !maps.Equal(now.Fields, was.Fields) || now.DepartmentID != was.DepartmentID || now.Status != was.Status {
		e.t.Fatalf("%s became %+v, was %+v", what, now, was)
	}
}

func (e *simEnv) writes() int64 { return e.lsim.Counts(simAccount).Writes }

// refusedRun runs the portal's sync, which is to be refused before it
// writes: any Learn write fails the test. It returns the run's error and
// its stored row, whose error says why to the admin.
func (e *simEnv) refusedRun(portalID int64, trigger Trigger) (RunRecord, error) {
	e.t.Helper()
	ctx := context.Background()
	before := e.writes()
	rep, runErr := e.syncer.Run(ctx, portalID, trigger)
	if rep == nil {
		e.t.Fatalf("%s of portal %d: no report (%v)", trigger, portalID, runErr)
	}
	if w := e.writes() - before; w != 0 {
		e.t.Errorf("%s of portal %d refused, and wrote %d times", trigger, portalID, w)
	}
	run, err := e.syncer.store.Run(ctx, portalID, rep.RunID)
	if err != nil {
		e.t.Fatal(err)
	}
	return run, runErr
}

// stable runs each portal once more and fails the test for every Learn
// write: nothing changed, so nothing may be written.
func (e *simEnv) stable(portals ...int64) {
	e.t.Helper()
	for _, id := range portals {
		before := e.writes()
		e.run(id, TriggerScheduled)
		if w := e.writes() - before; w != 0 {
			e.t.Errorf("portal %d: %d writes when stable", id, w)
		}
	}
}

// expectation is the Learn state a portal should produce, computed straight
// from the Bitrix24 data and the sync rules (docs/architecture.md),
// independently of the plan code.
type expectation struct {
	depts map[int64]int64 // b24 department -> b24 parent (0 for the portal root)
	users map[string]int64
}

// expected lists, for a whole-tree selection, every department and the
// department of every syncable employee, by login.
func expected(p *b24sim.Portal) expectation {
	ex := expectation{depts: map[int64]int64{}, users: map[string]int64{}}
	for _, d := range p.Departments() {
		ex.depts[d.ID] = d.Parent
	}
	for _, u := range p.Users() {
		if !u.Active || u.Extranet || u.Email == "" || len(u.Departments) == 0 {
			continue
		}
		ex.users[strings.ToLower(u.Email)] = u.Departments[0]
	}
	return ex
}

// checkPortal verifies the Learn state for one portal: every department once
// under the right parent with its code and name, every employee once in the
// right department and active, everyone else it synced inactive.
func checkPortal(t testing.TB, st learnsim.State, p *b24sim.Portal, root string) map[int64]string {
	t.Helper()
	member := p.MemberID()
	byCode := map[string][]learnsim.Department{}
	for _, d := range st.Departments {
		byCode[d.Code] = append(byCode[d.Code], d)
	}
	return checkPortalBy(t, st, p, root, func(b24 int64) []learnsim.Department {
		return byCode[DepartmentCode(member, b24)]
	})
}

// checkPortalMapped is checkPortal for a Learn that does not keep the
// codes the app sends: it finds each department by the portal's mapping,
// and checks that its code is what Learn kept of the one sent (kept says
// whether got may be what Learn kept of code).
func (e *simEnv) checkPortalMapped(portalID int64, p *b24sim.Portal, kept func(code, got string) bool) map[int64]string {
	t := e.t
	t.Helper()
	st := e.state()
	ms, err := NewStore(e.pool).Mappings(context.Background(), portalID)
	if err != nil {
		t.Fatal(err)
	}
	byB24 := map[int64]string{}
	for _, m := range ms {
		if m.Kind == KindDepartment {
			byB24[m.B24ID] = m.LearnID
		}
	}
	return checkPortalBy(t, st, p, st.RootID, func(b24 int64) []learnsim.Department {
		d, ok := st.Department(byB24[b24])
		if !ok {
			return nil
		}
		if code := DepartmentCode(p.MemberID(), b24); !kept(code, d.Code) {
			t.Errorf("department %d has the code %q for %q", b24, d.Code, code)
		}
		for _, o := range st.Departments {
			if o.ID != d.ID && o.Name == d.Name && o.ParentID == d.ParentID {
				return []learnsim.Department{d, o} // made twice
			}
		}
		return []learnsim.Department{d}
	})
}

// checkPortalBy is checkPortal with the Learn departments standing for a
// Bitrix24 department found by find.
func checkPortalBy(t testing.TB, st learnsim.State, p *b24sim.Portal, root string, find func(b24 int64) []learnsim.Department) map[int64]string {
	t.Helper()
	ex := expected(p)
	ids := map[int64]string{1: root}
	names := map[int64]string{}
	for _, d := range p.Departments() {
		names[d.ID] = d.Name
		if d.ID == 1 && root == st.RootID {
			continue
		}
		got := find(d.ID)
		if len(got) != 1 {
			t.Fatalf("department %d: %d Learn departments with its code", d.ID, len(got))
		}
		ids[d.ID] = got[0].ID
	}
	for b24, parent := range ex.depts {
		d, _ := st.Department(ids[b24])
		if d.Name != names[b24] {
			t.Errorf("department %d named %q, want %q", b24, d.Name, names[b24])
		}
		if b24 == 1 {
			continue
		}
		if d.ParentID != ids[parent] {
			t.Errorf("department %d under %s, want %s", b24, d.ParentID, ids[parent])
		}
	}
	byLogin := map[string][]learnsim.User{}
	for _, u := range st.Users {
		byLogin[strings.ToLower(u.Fields["login"])] = append(byLogin[strings.ToLower(u.Fields["login"])], u)
	}
	for login, dept := range ex.users {
		got := byLogin[login]
		if len(got) != 1 {
			t.Fatalf("user %s: %d Learn users", login, len(got))
		}
		if got[0].DepartmentID != ids[dept] || got[0].Status != StatusActive {
			t.Errorf("user %s in %s status %d, want %s status 1", login, got[0].DepartmentID, got[0].Status, ids[dept])
		}
	}
	for _, u := range p.Users() {
		login := strings.ToLower(u.Email)
		if _, in := ex.users[login]; in || login == "" {
			continue
		}
		for _, lu := range byLogin[login] {
			if lu.Status == StatusActive {
				t.Errorf("user %d (%s) not in scope but active in Learn", u.ID, login)
			}
		}
	}
	return ids
}

// countingLearn counts Learn writes and can stop the run after the k-th.
type countingLearn struct {
	Learn
	n      *atomic.Int64
	stopAt int64
	cancel context.CancelFunc
	// lose: the k-th write reaches Learn but its answer does not reach
	// the run (the process dies before it records the write).
	lose bool
}

var errKilled = errors.New("killed")

// killAfterWrite runs the portal's sync as a process that dies right after
// its k-th Learn write (lose: before the run learns the write's answer),
// and fails the test if the run succeeds anyway.
func (e *simEnv) killAfterWrite(portalID, k int64, lose bool) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int64
	e.wrap = func(l Learn) Learn { return &countingLearn{Learn: l, n: &n, stopAt: k, cancel: cancel, lose: lose} }
	_, err := e.syncer.Run(ctx, portalID, TriggerScheduled)
	e.wrap = nil
	if err == nil {
		e.t.Fatalf("run killed after write %d succeeded", k)
	}
}

func (c *countingLearn) write(ctx context.Context, f func(ctx context.Context) error) error {
	n := c.n.Add(1)
	if c.stopAt > 0 && n > c.stopAt {
		return errKilled
	}
	err := f(ctx)
	if c.stopAt > 0 && n == c.stopAt {
		c.cancel() // the process dies right after this write reached Learn
		if c.lose {
			return errKilled
		}
	}
	return err
}

func (c *countingLearn) CreateDepartment(ctx context.Context, d learn.NewDepartment) (id string, err error) {
	err = c.write(ctx, func(ctx context.Context) error { id, err = c.Learn.CreateDepartment(ctx, d); return err })
	return id, err
}

func (c *countingLearn) UpdateDepartment(ctx context.Context, id string, u learn.DepartmentUpdate) error {
	return c.write(ctx, func(ctx context.Context) error { return c.Learn.UpdateDepartment(ctx, id, u) })
}

func (c *countingLearn) SetDepartmentSubordination(ctx context.Context, id string, sub, co *learn.Subordination, l *learn.Links) error {
	return c.write(ctx, func(ctx context.Context) error { return c.Learn.SetDepartmentSubordination(ctx, id, sub, co, l) })
}

func (c *countingLearn) CreateUser(ctx context.Context, u learn.NewUser) (id string, err error) {
	err = c.write(ctx, func(ctx context.Context) error { id, err = c.Learn.CreateUser(ctx, u); return err })
	return id, err
}

func (c *countingLearn) UpdateUser(ctx context.Context, id string, u learn.UserUpdate) error {
	return c.write(ctx, func(ctx context.Context) error { return c.Learn.UpdateUser(ctx, id, u) })
}

func (c *countingLearn) MoveUsers(ctx context.Context, dept string, ids []string) error {
	return c.write(ctx, func(ctx context.Context) error { return c.Learn.MoveUsers(ctx, dept, ids) })
}

func (c *countingLearn) SetUserStatus(ctx context.Context, id string, status int) error {
	return c.write(ctx, func(ctx context.Context) error { return c.Learn.SetUserStatus(ctx, id, status) })
}

func (c *countingLearn) DeactivateUsers(ctx context.Context, ids []string) error {
	return c.write(ctx, func(ctx context.Context) error { return c.Learn.DeactivateUsers(ctx, ids) })
}

func (c *countingLearn) SetUserSubordination(ctx context.Context, id string, sub, co *learn.Subordination, l *learn.Links) error {
	return c.write(ctx, func(ctx context.Context) error { return c.Learn.SetUserSubordination(ctx, id, sub, co, l) })
}

func activeEmployees(p *b24sim.Portal) int {
	n := 0
	for _, u := range p.Users() {
		if u.Active && !u.Extranet {
			n++
		}
	}
	return n
}

func TestSyncGeneratedOrg(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{par: 8})
	portalID, p := e.addPortal(b24sim.GenerateOrg(7, 3000, 300))
	e.setSettings(portalID, func(s *Settings) {
		s.HeadsAsManagers, s.ParentHeadsAsSupervisors, s.SendLoginEmail = true, true, true
	})

	rep := e.run(portalID, TriggerScheduled)
	if rep.Status != RunPartial { // users without e-mail are refused
		t.Fatalf("status %s, counts %v", rep.Status, rep.Counts)
	}
	st := e.state()
	ids := checkPortal(t, st, p, st.RootID)
	if want := len(expected(p).users); rep.Counts["user.create"] != want || rep.Counts["department.create"] != 299 {
		t.Errorf("counts %v, want %d user creates and 299 department creates", rep.Counts, want)
	}
	if len(st.Departments) != 300 || len(st.Users) != len(expected(p).users)+1 { // + the account owner
		t.Errorf("Learn has %d departments and %d users", len(st.Departments), len(st.Users))
	}
	for _, u := range st.Users {
		if u.ID != st.OwnerID && u.LoginEmails != 1 {
			t.Fatalf("user %s got %d login e-mails, want 1", u.ID, u.LoginEmails)
		}
	}
	t.Logf("initial: %d writes, counts %v, %s", rep.Writes, rep.Counts, rep.Duration)

	// Supervisors: a department's functional manager is its head (or the
	// next head up), its supervisor the parent's head; nobody is their own.
	learnUser := map[int64]string{}
	byLogin := map[string]string{}
	for _, u := range st.Users {
		byLogin[strings.ToLower(u.Fields["login"])] = u.ID
	}
	for _, u := range p.Users() {
		if id, ok := byLogin[strings.ToLower(u.Email)]; ok && u.Email != "" && u.Active && !u.Extranet {
			learnUser[u.ID] = id
		}
	}
	depts := map[int64]b24sim.Department{}
	for _, d := range p.Departments() {
		depts[d.ID] = d
	}
	headUp := func(d int64) string {
		for ; d != 0; d = depts[d].Parent {
			if id, ok := learnUser[depts[d].Head]; ok {
				return id
			}
		}
		return ""
	}
	for _, d := range depts {
		ld, _ := st.Department(ids[d.ID])
		if want := headUp(d.ID); want != "" && (ld.CoSubordination.Type != SubManual || ld.CoSubordination.SupervisorID != want) {
			t.Errorf("department %d functional manager %+v, want %s", d.ID, ld.CoSubordination, want)
		}
		if want := headUp(d.Parent); want != "" && (ld.Subordination.Type != SubManual || ld.Subordination.SupervisorID != want) {
			t.Errorf("department %d supervisor %+v, want %s", d.ID, ld.Subordination, want)
		}
	}
	deptOf := map[string]learnsim.Department{}
	for _, d := range st.Departments {
		deptOf[d.ID] = d
	}
	for _, u := range st.Users {
		for _, s := range []struct{ user, dept learnsim.Subordination }{
			{u.Subordination, deptOf[u.DepartmentID].Subordination},
			{u.CoSubordination, deptOf[u.DepartmentID].CoSubordination},
		} {
			eff := s.user
			if eff.Type == SubInherit || eff.Type == "" {
				eff = s.dept
			}
			if eff.Type == SubManual && eff.SupervisorID == u.ID {
				t.Errorf("user %s is their own supervisor", u.ID)
			}
		}
	}

	// Nothing changed: zero writes, zero steps.
	before := e.writes()
	rep = e.run(portalID, TriggerScheduled)
	if got := e.writes() - before; got != 0 || rep.Writes != 0 {
		t.Fatalf("second run wrote %d times (report %d): %v", got, rep.Writes, rep.Counts)
	}

	// A head change touches the department and the two heads only.
	var dept, newHead int64
	for _, d := range p.Departments() {
		hasChild := false
		for _, c := range depts {
			hasChild = hasChild || c.Parent == d.ID
		}
		if hasChild || d.Head == 0 || learnUser[d.Head] == "" {
			continue
		}
		for _, u := range p.Users() {
			if u.ID != d.Head && learnUser[u.ID] != "" && len(u.Departments) == 1 && u.Departments[0] == d.ID && !heads(depts, u.ID) {
				dept, newHead = d.ID, u.ID
				break
			}
		}
		if dept != 0 {
			break
		}
	}
	if dept == 0 {
		t.Fatal("no leaf department with a second member")
	}
	e.lsim.ResetCounts()
	if err := p.SetHead(dept, newHead); err != nil {
		t.Fatal(err)
	}
	rep = e.run(portalID, TriggerScheduled)
	c := e.lsim.Counts(simAccount)
	if c.Writes != 3 || c.ByRoute["POST /department/{id}/subordination"] != 1 || c.ByRoute["POST /user/{id}/subordination"] != 2 {
		t.Errorf("head change: %d writes %v", c.Writes, c.ByRoute)
	}
	st = e.state()
	ld, _ := st.Department(ids[dept])
	if ld.CoSubordination.SupervisorID != learnUser[newHead] {
		t.Errorf("new head not the functional manager: %+v", ld.CoSubordination)
	}
}

func heads(depts map[int64]b24sim.Department, user int64) bool {
	for _, d := range depts {
		if d.Head == user {
			return true
		}
	}
	return false
}
