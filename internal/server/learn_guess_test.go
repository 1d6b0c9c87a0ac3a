package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/settings"
)

// learnCounted is learnAtHosts with every request that reaches the
// simulator counted: what the Learn server sees coming from the app.
func (e *settingsEnv) learnCounted(hosts ...string) (sim *learnsim.Sim, port string, calls *atomic.Int64) {
	e.t.Helper()
	e.s.cfg.LearnAllowPrivateHosts = true
	sim = learnsim.New(learnsim.Options{Mount: learnsim.MountAccountHost})
	calls = new(atomic.Int64)
	h := sim.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		h.ServeHTTP(w, r)
	}))
	e.t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	hc := learn.NewHTTPClient(learn.DialerOptions{AllowPrivate: true, LookupIP: func(_ context.Context, host string) ([]netip.Addr, error) {
		if slices.Contains(hosts, host) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}})
	e.s.check = learnFindFunc(func(ctx context.Context, c learn.Credentials) (string, error) {
		return learn.FindAPI(ctx, c, learn.Options{HTTPClient: hc, AllowHTTP: true})
	})
	return sim, u.Port(), calls
}

// The attacker: 30 trial portals, each well under its own bound of checks,
// guess the password of one Learn account through the settings page. Learn
// hears learnTargetLimit.Max wrong guesses in the window, however the
// campaign spreads; the rest are refused with the wait, and no call. The
// account's rightful portal, which saved the right password before, still
// checks and saves during the attack, with the stored password and with
// the password typed again, and a wrong password there still gets Learn's
// answer. The window over, the target is checked again.
func TestGuessesAtOneLearnAccountAreBoundedAcrossPortals(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	var now atomic.Int64
	mid := time.Now().Truncate(learnTargetLimit.Window).Add(learnTargetLimit.Window / 2)
	now.Store(mid.UnixNano())
	e.s.now = func() time.Time { return time.Unix(0, now.Load()) }
	sim, port, calls := e.learnCounted("lms.victim.test")
	account := "http://lms.victim.test:" + port
	if _, err := sim.AddAccount(learnsim.AccountOptions{URL: account, Email: "admin@victim.ru", Password: "right"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	owner := e.addPortal("victim", "en")
	_, ownerTok := e.session(owner, 1, true, "en")
	right := with(validForm(), "learn_url", account, "learn_email", "admin@victim.ru", "learn_password", "right")
	if r, sr := e.save(ownerTok, right); r.status != http.StatusOK || !sr.OK {
		t.Fatalf("the owner's first save: %d %s", r.status, r.body)
	}

	// One wrong guess: how many calls a failed check makes.
	calls.Store(0)
	a0 := e.addPortal("trial-0", "en")
	_, a0Tok := e.session(a0, 1, true, "en")
	guess := func(tok, member string, i int) resp {
		// The attacker varies the letter case and the URL; the target is the same.
		return e.do(http.MethodPost, "/app/settings", tok, with(validForm(),
			"learn_url", "http://LMS.Victim.test:"+port+"/dashboard", "learn_email", " Admin@Victim.RU",
			"learn_password", fmt.Sprintf("guess-%s-%d", member, i)))
	}
	if r := guess(a0Tok, "trial-0", 0); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "rejected the login or e-mail") {
		t.Fatalf("first guess: %d %s", r.status, r.body)
	}
	perCheck := calls.Load()
	if perCheck == 0 {
		t.Fatal("a check made no call")
	}

	answered, refused := 1, 0
	var last resp
	ownerSaved := false
	var ownerCalls int64 // the rightful portal's, counted apart
	for i := 1; i <= 30; i++ {
		member := fmt.Sprintf("trial-%d", i)
		p := e.addPortal(member, "en")
		_, tok := e.session(p, 1, true, "en")
		for j := range 3 {
			switch r := guess(tok, member, j); r.status {
			case http.StatusUnprocessableEntity:
				answered++
			case http.StatusTooManyRequests:
				refused++
				last = r
			default:
				t.Fatalf("guess %s/%d: %d %s", member, j, r.status, r.body)
			}
		}
		if i == 15 {
			// Mid-attack, the rightful portal: a wrong password gets Learn's
			// answer; the stored one, and the right one typed again, save.
			before := calls.Load()
			if r := e.do(http.MethodPost, "/app/settings", ownerTok, with(right, "learn_password", "typo")); r.status != http.StatusUnprocessableEntity ||
				!strings.Contains(r.body, "rejected the login or e-mail") {
				t.Fatalf("the owner's typo during the attack: %d %s", r.status, r.body)
			}
			if r, sr := e.save(ownerTok, with(right, "learn_password", "", "first_run", "04:00")); r.status != http.StatusOK || !sr.OK {
				t.Fatalf("the owner's save with the stored password during the attack: %d %s", r.status, r.body)
			}
			if r, sr := e.save(ownerTok, with(right, "first_run", "05:00")); r.status != http.StatusOK || !sr.OK {
				t.Fatalf("the owner's save with the password typed during the attack: %d %s", r.status, r.body)
			}
			st, err := settings.Load(ctx, e.pool, nil, owner.ID)
			if err != nil {
				t.Fatal(err)
			}
			ownerSaved = st.Schedule.First() == "05:00"
			ownerCalls = calls.Load() - before
		}
	}
	if !ownerSaved {
		t.Error("the owner's saves during the attack did not store the new run time")
	}
	if answered != learnTargetLimit.Max || refused != 91-learnTargetLimit.Max {
		t.Errorf("Learn answered %d guesses and %d were refused, want %d and %d", answered, refused, learnTargetLimit.Max, 91-learnTargetLimit.Max)
	}
	// Besides the owner's checks, Learn heard Max guesses, nothing more.
	if ownerCalls < 3*perCheck {
		t.Errorf("the owner's three checks made %d calls, want at least %d", ownerCalls, 3*perCheck)
	}
	if got, want := calls.Load()-ownerCalls, perCheck*int64(learnTargetLimit.Max); got != want {
		t.Errorf("Learn got %d calls of the attack, want %d (%d guesses of %d calls)", got, want, learnTargetLimit.Max, perCheck)
	}
	// The clock stands mid-window: the wait is the window's second half.
	half := learnTargetLimit.Window / 2
	wait := int((half + time.Minute - 1) / time.Minute)
	if last.header.Get("Retry-After") != fmt.Sprint(int(half/time.Second)+1) ||
		!strings.Contains(last.body, fmt.Sprintf("try again in %d min", wait)) {
		t.Errorf("refusal: Retry-After %q, body %s", last.header.Get("Retry-After"), last.body)
	}

	// The next window: the target is checked again.
	now.Add(int64(learnTargetLimit.Window))
	before := calls.Load()
	p := e.addPortal("trial-late", "ru")
	_, tok := e.session(p, 1, true, "ru")
	if r := guess(tok, "trial-late", 0); r.status != http.StatusUnprocessableEntity || calls.Load() == before {
		t.Errorf("a guess in the next window: %d %s, %d calls", r.status, r.body, calls.Load()-before)
	}
}

// The target is the account's host and login however they are typed; other
// hosts and logins are other targets, and however many there are, the
// counters' keys stay within learnTargetSlots.
func TestLearnTargetKey(t *testing.T) {
	t.Parallel()
	base := targetOf("https://lms.acme.test", "admin@acme.ru")
	for _, same := range [][2]string{
		{"https://lms.acme.test:8443", "admin@acme.ru"},
		{"http://LMS.acme.test.", " Admin@ACME.ru "},
	} {
		if got := targetOf(same[0], same[1]); got != base || got.key() != base.key() {
			t.Errorf("%q %q: %v (%s), want %v (%s)", same[0], same[1], got, got.key(), base, base.key())
		}
	}
	if targetOf("https://lms.acme.test", "other@acme.ru").key() == base.key() || targetOf("https://lms2.acme.test", "admin@acme.ru").key() == base.key() {
		t.Error("another login or host is the same target")
	}
	keys := map[string]bool{}
	for i := range 3 * learnTargetSlots {
		keys[targetOf(fmt.Sprintf("https://h%d.attacker.test", i), "a").key()] = true
	}
	if len(keys) > learnTargetSlots {
		t.Errorf("%d keys, want at most %d", len(keys), learnTargetSlots)
	}
}

// A portal that saved a login of its own server sharing the victim's counter
// is not the victim's rightful portal: it stays held by the victim's bound.
// (The slot is an unkeyed hash, so such a login is found offline in about
// learnTargetSlots tries.)
func TestSharedSlotDoesNotHoldTheTarget(t *testing.T) {
	t.Parallel()
	victim := targetOf("https://acme.ispringlearn.com", "admin@acme.ru")
	var colliding settings.Settings
	for i := range 64 * learnTargetSlots {
		login := fmt.Sprintf("x%d@attacker.test", i)
		if targetOf("https://lms.attacker.test", login).key() == victim.key() {
			colliding = settings.Settings{LearnURL: "https://lms.attacker.test", LearnEmail: login, Password: "p", Saved: true}
			break
		}
	}
	if colliding.LearnEmail == "" {
		t.Fatal("no login sharing the victim's slot found")
	}
	if !colliding.HasAccount() {
		t.Fatalf("settings %+v hold no account: the test proves nothing", colliding)
	}
	if holdsTarget(colliding, victim) {
		t.Errorf("settings of %s (same slot %s) hold the victim's target", colliding.LearnEmail, victim.key())
	}
	own := settings.Settings{LearnURL: "https://ACME.ispringlearn.com/", LearnEmail: "Admin@acme.ru", Password: "p", Saved: true}
	if !holdsTarget(own, victim) {
		t.Error("the victim's own saved settings do not hold its target")
	}
}
