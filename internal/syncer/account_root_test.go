package syncer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/pgtest"
	"b24learn/internal/settings"
)

// simAlias is a second address of the simulator's account, as a custom
// domain is of an account on iSpring's domain.
const simAlias = "https://learn.acme.test"

// useAddress saves learnURL as the portal's Learn account address, in its
// settings row (which other portals' runs read, with the login and the API
// key its runs sign in with) and in what its runs load. A new address
// clears the stored root, as any save of one does.
func (e *simEnv) useAddress(portalID int64, learnURL string) {
	e.t.Helper()
	e.mu.Lock()
	cur := e.settings[portalID]
	e.mu.Unlock()
	e.saveRow(portalID, func(s *settings.Settings) {
		s.LearnURL, s.LearnEmail = learnURL, cur.LearnEmail
		s.LearnClientID, s.ClientSecret = cur.LearnClientID, cur.LearnClientSecret
	})
	e.setSettings(portalID, func(s *Settings) { s.LearnURL = learnURL })
}

// aliasPortals are two portals on the two addresses of one Learn account.
type aliasPortals struct {
	idA, idB int64
	pA, pB   *b24sim.Portal
}

// onTwoAddresses gives the simulator's account its second address,
// simAlias, and adds portal A with orgA on simAccount and portal B with
// orgB on simAlias. Neither has run: B's settings row names its address
// but holds no root, so A's runs do not see it until B runs.
func (e *simEnv) onTwoAddresses(orgA, orgB b24sim.Org) aliasPortals {
	e.t.Helper()
	if err := e.lsim.AddAlias(simAccount, simAlias); err != nil {
		e.t.Fatal(err)
	}
	var ap aliasPortals
	ap.idA, ap.pA = e.addPortal(orgA)
	ap.idB, ap.pB = e.addPortal(orgB)
	e.useAddress(ap.idA, simAccount)
	e.useAddress(ap.idB, simAlias)
	return ap
}

// forgetRoot clears the portal's stored root while its address stays: a
// row as every portal's was before migration 290 (runs had synced, no root
// was stored). It bypasses the settings package on purpose: a save clears
// the root only with a new address, and the syncer only ever stores one.
func (e *simEnv) forgetRoot(portalID int64) {
	e.t.Helper()
	if _, err := e.pool.Exec(context.Background(), `UPDATE portal_settings SET learn_root_id = NULL WHERE portal_id = $1`, portalID); err != nil {
		e.t.Fatal(err)
	}
}

// recordRoot stores rootID with the portal's settings row at learnURL as a
// run there does, through the run's own check; no other portal may hold it.
func (e *simEnv) recordRoot(portalID int64, learnURL, rootID string) {
	e.t.Helper()
	e.mu.Lock()
	clientID := e.settings[portalID].LearnClientID
	e.mu.Unlock()
	if err := e.syncer.store.checkAccountRoot(context.Background(), portalID, learnURL, clientID, rootID, true,
		func() []string { return nil }); err != nil {
		e.t.Fatal(err)
	}
}

func (e *simEnv) storedRoot(portalID int64) string {
	e.t.Helper()
	var root *string
	if err := e.pool.QueryRow(context.Background(), `SELECT learn_root_id FROM portal_settings WHERE portal_id = $1`,
		portalID).Scan(&root); err != nil {
		e.t.Fatal(err)
	}
	if root == nil {
		return ""
	}
	return *root
}

// One Learn account reached through two addresses is one account: a portal
// whose address is another of an account another portal syncs is refused
// before it writes, told which address to use (not the other portal's
// domain), and once it uses that address the ownership rules of a shared
// account apply. However Learn shows the root's parent.
func TestSyncRefusesAnAccountAnotherPortalReachesElsewhere(t *testing.T) {
	t.Parallel()
	for _, rp := range []learnsim.RootParent{learnsim.RootParentAbsent, learnsim.RootParentNull, learnsim.RootParentEmpty,
		learnsim.RootParentNilUUID, learnsim.RootParentSelf} {
		t.Run(fmt.Sprint(rp), func(t *testing.T) {
			t.Parallel()
			o := simOpts{}
			o.learn.Unsettled.RootParent = rp
			e := newSimEnv(t, o)
			ap := e.onTwoAddresses(flatOrg("Acme Corp", "acme.test", 4), flatOrg("Beta LLC", "beta.test", 3))
			idA, pA, idB, pB := ap.idA, ap.pA, ap.idB, ap.pB
			e.setSettings(idA, func(s *Settings) { s.HeadsAsManagers = true })
			e.setSettings(idB, func(s *Settings) { s.HeadsAsManagers = true })
			e.run(idA, TriggerScheduled)
			st := e.state()
			if got := e.storedRoot(idA); got != st.RootID {
				t.Fatalf("portal A's stored root %q, want %q", got, st.RootID)
			}

			for _, trigger := range []Trigger{TriggerPreview, TriggerScheduled} {
				run, err := e.refusedRun(idB, trigger)
				var refused *AccountElsewhereError
				if !errors.As(err, &refused) || refused.Address != simAccount {
					t.Fatalf("%s of portal B on the alias: %v", trigger, err)
				}
				key, _ := RunErrorKey(run.Error)
				args := RunErrorArgs(run.Error)
				// simAccount is not on iSpring's own domains: the sentence
				// does not name it (TestRunErrorNamesOnlyAnISpringAddress).
				if run.Status != RunFailed || key != "run_err_account_elsewhere_unnamed" || len(args) != 0 || !strings.Contains(run.Error, simAccount) {
					t.Errorf("%s of portal B: status %s, error %q (%s %v)", trigger, run.Status, run.Error, key, args)
				}
				if strings.Contains(run.Error, pA.Domain()) {
					t.Errorf("portal B's report names portal A: %q", run.Error)
				}
			}
			if got := e.storedRoot(idB); got != "" {
				t.Errorf("a refused run stored root %q", got)
			}
			if _, ok := e.state().UserByLogin("user1@beta.test"); ok {
				t.Fatal("portal B's user created")
			}

			// On the address portal A uses, B shares the account: its tree
			// goes into a child of its own, and A's head stays the manager
			// of the Learn root, not B's.
			e.useAddress(idB, simAccount)
			e.run(idB, TriggerScheduled)
			st = e.state()
			headA, _ := st.UserByLogin("user1@acme.test")
			root, _ := st.Department(st.RootID)
			if root.Name != "Acme Corp" || root.CoSubordination.SupervisorID != headA.ID {
				t.Errorf("portal B took the Learn root: %+v", root)
			}
			own := st.DepartmentsByCode(DepartmentCode(pB.MemberID(), 1))
			if len(own) != 1 || own[0].ParentID != st.RootID {
				t.Fatalf("portal B's own root department: %+v", own)
			}
			if got := e.storedRoot(idB); got != st.RootID {
				t.Errorf("portal B's stored root %q, want %q", got, st.RootID)
			}
		})
	}
}

// A portal whose own address of the account changes to another address of
// the same account is not refused by the root it stored itself: only other
// portals count. From then on the new address is the account's.
func TestSyncOwnAccountUnderANewAddress(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	ap := e.onTwoAddresses(flatOrg("Acme Corp", "acme.test", 4), flatOrg("Beta LLC", "beta.test", 3))
	idA, idB := ap.idA, ap.idB
	e.run(idA, TriggerScheduled)
	root := e.state().RootID
	// The save of the new address clears the root; the row holds it again
	// at that address (as the run's own check stores it): the run must
	// still pass.
	e.useAddress(idA, simAlias)
	e.recordRoot(idA, simAlias, root)
	if got := e.storedRoot(idA); got != root {
		t.Fatalf("stored root %q, want %q", got, root)
	}
	e.stable(idA)
	if got := e.storedRoot(idA); got != root {
		t.Errorf("stored root %q after the run on the new address, want %q", got, root)
	}
	// The account is now A's under the new address: a portal on the old
	// one is refused and told the new one.
	e.useAddress(idB, simAccount)
	before := e.writes()
	_, err := e.syncer.Run(context.Background(), idB, TriggerScheduled)
	var refused *AccountElsewhereError
	if !errors.As(err, &refused) || refused.Address != simAlias {
		t.Fatalf("portal B on the old address: %v", err)
	}
	if w := e.writes() - before; w != 0 {
		t.Errorf("portal B on the old address wrote %d times", w)
	}
}

// Two portals' first runs at once, on two addresses of one account: one
// passes and the other is refused, never both.
func TestSyncFirstRunsOnTwoAddressesAtOnce(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	ap := e.onTwoAddresses(flatOrg("Acme Corp", "acme.test", 3), flatOrg("Beta LLC", "beta.test", 3))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []int64{ap.idA, ap.idB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.syncer.Run(context.Background(), id, TriggerScheduled)
		}()
	}
	wg.Wait()
	refused := 0
	for _, err := range errs {
		var ae *AccountElsewhereError
		switch {
		case errors.As(err, &ae):
			refused++
		case err != nil:
			t.Fatal(err)
		}
	}
	if refused != 1 {
		t.Fatalf("%d of the two runs refused: %v", refused, errs)
	}
}

// Recording a root is one at a time per root: two portals that both found
// no other portal holding it do not both record it. The test holds the
// lock until both checks wait for it.
func TestAccountRootRecordedOneAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := NewStore(pool)
	p1, p2 := mustPortal(t, pool, "a1"), mustPortal(t, pool, "b2")
	kr := apptest.Keyring(t)
	for id, u := range map[int64]string{p1: simAccount, p2: simAlias} {
		saveRow(t, pool, kr, id, func(s *settings.Settings) { s.LearnURL = u })
	}
	const root = "0b7e1a52-0000-4000-8000-000000000001"
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, rootLockKey, root); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for id, u := range map[int64]string{p1: simAccount, p2: simAlias} {
		go func() { errs <- s.checkAccountRoot(ctx, id, u, "", root, true, func() []string { return nil }) }()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var waiting int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND classid = $1::int::oid`, rootLockKey).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 2 {
			break
		}
		if len(errs) == 2 || time.Now().After(deadline) {
			t.Fatalf("%d checks wait for the root's lock, %d finished without it", waiting, len(errs))
		}
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, rootLockKey, root); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for range 2 {
		var ae *AccountElsewhereError
		switch err := <-errs; {
		case errors.As(err, &ae):
			refused++
		case err != nil:
			t.Fatal(err)
		}
	}
	if refused != 1 {
		t.Fatalf("%d of the two checks refused", refused)
	}
}

// A portal that moves to another address of its account keeps its users
// guarded there: its first run on the new address (the save cleared the
// stored root) brings its ownership rows along, so another portal on that
// address leaves its users alone before the first portal writes to them.
func TestSyncOwnershipFollowsTheNewAddress(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	// Portal B's staff have A's users' addresses.
	ap := e.onTwoAddresses(flatOrg("Acme Corp", "acme.test", 4), flatOrg("Beta LLC", "acme.test", 2))
	idA, idB := ap.idA, ap.idB
	e.run(idA, TriggerScheduled)
	e.useAddress(idA, simAlias)
	if got := e.storedRoot(idA); got != "" {
		t.Fatalf("the save of the new address kept the stored root %q", got)
	}
	e.stable(idA)

	rep := e.run(idB, TriggerScheduled)
	conflicts := 0
	for _, it := range e.items(idB, rep.RunID) {
		if it.Kind == KindUser && it.Status == ItemConflict {
			conflicts++
		}
	}
	if conflicts != 2 {
		t.Errorf("portal B's run: %d conflicts, want 2", conflicts)
	}
	for _, login := range []string{"user1@acme.test", "user2@acme.test"} {
		if u, _ := e.state().UserByLogin(login); u.Fields["last_name"] != "Acme Corp" {
			t.Errorf("portal B wrote to portal A's user %s: %+v", login, u.Fields)
		}
	}
}

// The root id is what a Learn server says, and a portal's admin chooses the
// server. A portal on a server of its own that claims another account's root
// before that account's portal records it (any portal's first run after
// migration 290, or after a save that changed its address) must not stop the
// portal that has been syncing the account at its address, nor have its runs
// and alerts tell that admin to enter the claimer's address, where the admin
// would send the Learn password.
func TestSyncNotRefusedByARootClaimedOnAnotherServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSimEnv(t, simOpts{})
	idA, _ := e.addPortal(flatOrg("Acme Corp", "acme.test", 4))
	e.useAddress(idA, simAccount)
	e.run(idA, TriggerScheduled)
	root := e.state().RootID
	// As before migration 290: A's users are owned, no root is stored.
	e.forgetRoot(idA)
	// The attacker's run on its own server recorded A's account's root.
	idB, _ := e.addPortal(flatOrg("Beta LLC", "beta.test", 2))
	const evil = "https://learn.evil.test"
	e.saveRow(idB, func(s *settings.Settings) { s.LearnURL, s.LearnEmail = evil, simEmail })
	e.recordRoot(idB, evil, root)
	if _, err := e.syncer.Run(ctx, idA, TriggerScheduled); err != nil {
		t.Fatalf("portal A's run on its own account: %v", err)
	}
	if got := e.storedRoot(idA); got != root {
		t.Errorf("portal A's stored root %q, want %q", got, root)
	}
}

// Two portals that both synced one account under two addresses before
// either stored its root (migration 290) are still one account: the one
// that records the root first refuses the other.
func TestSyncTwoEstablishedPortalsOnTwoAddressesRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSimEnv(t, simOpts{})
	ap := e.onTwoAddresses(flatOrg("Acme Corp", "acme.test", 4), flatOrg("Beta LLC", "beta.test", 3))
	idA, idB := ap.idA, ap.idB
	e.run(idA, TriggerScheduled)
	e.forgetRoot(idA)
	e.run(idB, TriggerScheduled)
	_, err := e.syncer.Run(ctx, idA, TriggerScheduled)
	var refused *AccountElsewhereError
	if !errors.As(err, &refused) || refused.Address != simAlias {
		t.Fatalf("portal A after portal B recorded the root: %v", err)
	}
}

// The refusal's sentence names the other portal's address only on iSpring's
// own domains: another address is a server that portal's admin chose, and an
// admin told to enter it would send it the Learn password.
func TestRunErrorNamesOnlyAnISpringAddress(t *testing.T) {
	t.Parallel()
	for addr, named := range map[string]bool{
		"https://acme.ispringlearn.ru":           true,
		"https://acme.ispring.com":               true,
		"https://learn.evil.test":                false,
		"https://acme.ispringlearn.ru.evil.test": false,
		"https://api-learn.ispringlearn.ru":      false,
		"https://acme.ispringlearn.ru:8443":      false,
		"http://acme.ispringlearn.ru":            false,
	} {
		raw := fmt.Errorf("learn account: %w", &AccountElsewhereError{Address: addr}).Error()
		key, detail := RunErrorKey(raw)
		args := RunErrorArgs(raw)
		if named {
			if key != "run_err_account_elsewhere" || detail || len(args) != 1 || args[0] != addr {
				t.Errorf("%s: key %q, detail %v, args %v; want it named", addr, key, detail, args)
			}
			continue
		}
		if key != "run_err_account_elsewhere_unnamed" || detail || len(args) != 0 {
			t.Errorf("%s: key %q, detail %v, args %v; want it not named", addr, key, detail, args)
		}
	}
}
