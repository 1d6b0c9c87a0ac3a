package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/metrics"
	"b24learn/internal/pgtest"
)

// peerHeader lets a test choose the client address the app sees: the test
// server puts it into RemoteAddr, as a connection from there would.
const peerHeader = "X-Test-Peer"

// gateEnv is b24Env with small verification limits, an OAuth server that
// counts token requests, and a client address chosen per request.
type gateEnv struct {
	*b24Env
	metrics     *metrics.Metrics
	oauthTokens atomic.Int64 // requests to /oauth/token/ that reached the OAuth server
	logs        apptest.Logs // the app's log, from Info up
}

func newGateEnv(t *testing.T, limits VerifyLimits) *gateEnv {
	t.Helper()
	e := &gateEnv{b24Env: &b24Env{t: t, pool: pgtest.NewPool(t), kr: apptest.Keyring(t), now: time.Now()}, metrics: metrics.New()}
	var h http.Handler
	e.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if peer := r.Header.Get(peerHeader); peer != "" {
			r.RemoteAddr = net2hostport(peer)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.app.Close)
	e.sim = b24sim.Start(b24sim.Options{AppURL: e.app.URL, Rate: -1})
	t.Cleanup(e.sim.Close)

	// The app reaches the OAuth server through this counter.
	simURL := mustURL(t, e.sim.URL)
	proxy := httputil.NewSingleHostReverseProxy(simURL)
	oauth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/oauth/token") {
			e.oauthTokens.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(oauth.Close)
	// The counter is the portals' OAuth server: their requests name it.
	e.sim.SetBaseURL(oauth.URL)

	rc := apptest.Inserter(t, e.pool)
	e.river = rc
	cfg := &config.Config{
		B24AllowPrivateHosts: true,
		PublicURL:            mustURL(t, e.app.URL), B24OAuthURLs: []string{oauth.URL},
		B24ClientID: e.sim.ClientID(), B24ClientSecret: e.sim.ClientSecret(), Keyring: e.kr,
	}
	h = New(Deps{Log: slog.New(slog.NewTextHandler(&e.logs, nil)), Config: cfg, Pool: e.pool, River: rc,
		Metrics: e.metrics, Now: e.clock, VerifyLimits: &limits, Clients: testClients(cfg, e.pool)})
	return e
}

func net2hostport(ip string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:40000"
	}
	return ip + ":40000"
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// attack is one anonymous request to a /b24/* route.
type attack struct {
	path  string
	query url.Values
	body  url.Values
	peer  string // client address; "" is the test's own
}

// forgedFrame is a well-formed iframe POST with random tokens for memberID,
// naming the listed OAuth server as a real portal's would.
func (e *gateEnv) forgedFrame(path, memberID, peer string) attack {
	return attack{path: path, peer: peer,
		query: url.Values{"DOMAIN": {"x" + randHex(4) + ".bitrix24.com"}, "PROTOCOL": {"1"}, "LANG": {"en"}, "APP_SID": {randHex(16)}},
		body: url.Values{"AUTH_ID": {randHex(35)}, "AUTH_EXPIRES": {"3600"}, "REFRESH_ID": {randHex(35)},
			"SERVER_ENDPOINT": {e.sim.BaseURL() + "/rest/"}, "member_id": {memberID}, "status": {"F"},
			"PLACEMENT": {"DEFAULT"}}}
}

// forgedEvent is a well-formed ONAPPINSTALL or ONAPPUPDATE with random tokens.
func forgedEvent(name, memberID, peer string) attack {
	return attack{path: "/b24/events", peer: peer, query: url.Values{},
		body: url.Values{"event": {name}, "event_handler_id": {"1"}, "ts": {"1762089975"},
			"auth[access_token]": {randHex(35)}, "auth[refresh_token]": {randHex(35)}, "auth[member_id]": {memberID},
			"auth[domain]": {"x" + randHex(4) + ".bitrix24.com"}, "auth[application_token]": {randHex(16)}}}
}

type answer struct {
	status     int
	retryAfter string
}

func (e *gateEnv) send(a attack) answer {
	pg := e.page(a)
	return answer{pg.status, pg.header.Get("Retry-After")}
}

// page sends a and returns the whole answer.
func (e *gateEnv) page(a attack) page {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.app.URL+a.path+"?"+a.query.Encode(), strings.NewReader(a.body.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if a.peer != "" {
		req.Header.Set(peerHeader, a.peer)
	}
	resp, err := http.DefaultClient.Do(req)
	return readPage(e.t, resp, err)
}

// flood sends the attacks from 8 clients at once and tallies the statuses.
func (e *gateEnv) flood(attacks []attack) (map[int]int, []answer) {
	var (
		mu      sync.Mutex
		byCode  = map[int]int{}
		answers = make([]answer, len(attacks))
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(attacks) {
					return
				}
				a := e.send(attacks[i])
				mu.Lock()
				byCode[a.status]++
				answers[i] = a
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return byCode, answers
}

func (e *gateEnv) refused(reason string) int {
	return int(testutil.ToFloat64(e.metrics.B24Refused.WithLabelValues(reason)))
}

// Anonymous requests with random member_ids and tokens, from one address or
// from hundreds, cost at most Unknown.Burst OAuth calls while the clock stands
// still (and Unknown.Burst plus one per Unknown.Every after): the bound does
// not grow with the number of requests or addresses. Malformed ones and
// events for portals not on record cost none. A real admin opening the app
// from elsewhere right after gets in; a flood aimed at a real portal's
// member_id costs at most PerPortal.Burst calls and its admin gets in again
// after the Retry-After.
func TestAnonymousFloodMakesBoundedOAuthCalls(t *testing.T) {
	t.Parallel()
	limits := VerifyLimits{
		PerAddress:      Bucket{Burst: 5, Every: time.Hour},
		PerPortal:       Bucket{Burst: 5, Every: time.Hour},
		PerPortalEvents: Bucket{Burst: 3, Every: time.Hour},
		Unknown:         Bucket{Burst: 10, Every: time.Hour},
		MaxKeys:         64, // fewer than the flood's addresses: eviction must not lift the bound
	}
	e := newGateEnv(t, limits)
	p := e.addPortal(41)
	e.install(p) // the installer open is one unknown-portal verification
	if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK {
		t.Fatalf("admin open before the flood: %d %s", pg.status, pg.body)
	}
	e.oauthTokens.Store(0)

	// 200 from one address, then 200 spread over 200 addresses (IPv4 and
	// IPv6 /64s), all three routes.
	oneAddr := func(int) string { return "203.0.113.7" }
	manyAddrs := func(i int) string {
		if i%2 == 0 {
			return fmt.Sprintf("198.51.%d.%d", i/250, i%250+1)
		}
		return fmt.Sprintf("2001:db8:%x::1", i)
	}
	var frames, events int
	build := func(peer func(int) string) []attack {
		var as []attack
		for i := range 200 {
			switch i % 4 {
			case 0:
				as = append(as, e.forgedFrame("/b24/install", randHex(16), peer(i)))
				frames++
			case 1:
				as = append(as, e.forgedFrame("/b24/app", randHex(16), peer(i)))
				frames++
			case 2:
				as = append(as, forgedEvent("ONAPPINSTALL", randHex(16), peer(i)))
				events++
			default:
				as = append(as, forgedEvent("ONAPPUPDATE", randHex(16), peer(i)))
				events++
			}
		}
		return as
	}
	byCode1, _ := e.flood(build(oneAddr))
	calls1 := int(e.oauthTokens.Load())
	if calls1 > limits.PerAddress.Burst {
		t.Errorf("one address: %d OAuth calls for 200 requests, want at most PerAddress.Burst=%d (statuses %v)",
			calls1, limits.PerAddress.Burst, byCode1)
	}
	byCode2, answers := e.flood(build(manyAddrs))
	calls := int(e.oauthTokens.Load())
	if calls > limits.Unknown.Burst {
		t.Errorf("%d OAuth calls for 400 requests, want at most Unknown.Burst=%d (statuses %v, %v)",
			calls, limits.Unknown.Burst, byCode1, byCode2)
	}
	t.Logf("OAuth calls: %d for 200 requests from one address, %d after 200 more from 200 addresses", calls1, calls)
	// Each admitted frame is one call and fails verification (401); the rest
	// are 429 with a Retry-After, and events of unknown portals are ignored.
	if got := byCode1[http.StatusUnauthorized] + byCode2[http.StatusUnauthorized]; got != calls {
		t.Errorf("%d requests verified (401), %d OAuth calls", got, calls)
	}
	if got := byCode1[http.StatusTooManyRequests] + byCode2[http.StatusTooManyRequests]; got != frames-calls {
		t.Errorf("%d frame POSTs refused with 429, want %d", got, frames-calls)
	}
	if got := byCode1[http.StatusOK] + byCode2[http.StatusOK]; got != events {
		t.Errorf("%d events answered 200, want all %d", got, events)
	}
	for _, a := range answers {
		if a.status == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(a.retryAfter); err != nil || s < 1 {
				t.Errorf("429 with Retry-After %q", a.retryAfter)
			}
		}
	}
	if e.refused(refusedAddress) < 1 || e.refused(refusedUnknown) < 1 ||
		e.refused(refusedAddress)+e.refused(refusedUnknown) != frames-calls || e.refused(refusedUnknownPortal) != events {
		t.Errorf("refusals counted: address %d, unknown %d, not_installed %d; want %d frames and %d events",
			e.refused(refusedAddress), e.refused(refusedUnknown), e.refused(refusedUnknownPortal), frames-calls, events)
	}
	if n := e.count(`SELECT count(*) FROM portals`); n != 1 {
		t.Fatalf("%d portals stored after the flood, want the real one only", n)
	}

	// Malformed requests are refused before any call, whatever the buckets hold.
	e.oauthTokens.Store(0)
	noRefresh := e.forgedFrame("/b24/app", randHex(16), "192.0.2.4")
	noRefresh.body.Del("REFRESH_ID")
	longToken := forgedEvent("ONAPPINSTALL", randHex(16), "192.0.2.5")
	longToken.body.Set("auth[refresh_token]", strings.Repeat("a", 4000))
	badDomain := e.forgedFrame("/b24/install", randHex(16), "192.0.2.6")
	badDomain.query.Set("DOMAIN", "evil.example/x")
	bad := map[string]attack{
		"frame, member_id not hex":   e.forgedFrame("/b24/app", "not-a-member-id-not-a-member-id!", "192.0.2.1"),
		"frame, member_id uppercase": e.forgedFrame("/b24/install", strings.ToUpper(randHex(16)), "192.0.2.2"),
		"event, member_id short":     forgedEvent("ONAPPUPDATE", "42", "192.0.2.3"),
		"frame, no REFRESH_ID":       noRefresh,
		"event, 4000-byte token":     longToken,
		"frame, DOMAIN with a path":  badDomain,
	}
	for name, a := range bad {
		if got := e.send(a); got.status != http.StatusBadRequest {
			t.Errorf("malformed (%s): %d, want 400", name, got.status)
		}
	}
	if n := e.oauthTokens.Load(); n != 0 {
		t.Errorf("%d OAuth calls for malformed requests", n)
	}
	if got := e.refused(refusedMalformed); got != len(bad) {
		t.Errorf("malformed refusals counted: %d, want %d", got, len(bad))
	}

	// The portal's admin, from another address, is not hurt by the flood.
	if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK {
		t.Fatalf("admin open after the flood: %d %s", pg.status, pg.body)
	}

	// A flood naming the real portal's member_id, from many addresses, is
	// bounded by the portal's own bucket.
	e.oauthTokens.Store(0)
	var aimed []attack
	for i := range 60 {
		if i%3 == 2 {
			aimed = append(aimed, forgedEvent("ONAPPUPDATE", p.MemberID(), manyAddrs(1000+i)))
		} else {
			aimed = append(aimed, e.forgedFrame("/b24/app", p.MemberID(), manyAddrs(1000+i)))
		}
	}
	byCode, answers := e.flood(aimed)
	if n, bound := int(e.oauthTokens.Load()), limits.PerPortal.Burst+limits.PerPortalEvents.Burst; n > bound {
		t.Errorf("aimed flood: %d OAuth calls, want at most PerPortal.Burst+PerPortalEvents.Burst=%d (statuses %v)", n, bound, byCode)
	}
	retry := 0
	for _, a := range answers {
		if s, err := strconv.Atoi(a.retryAfter); err == nil && s > retry {
			retry = s
		}
	}
	if byCode[http.StatusTooManyRequests] == 0 || retry == 0 {
		t.Fatalf("aimed flood not limited: %v", byCode)
	}
	// Its admin waits as long as Retry-After says, then gets in.
	if pg := e.open(p, p.AdminID()); pg.status != http.StatusTooManyRequests {
		t.Fatalf("admin open during the aimed flood: %d, want 429", pg.status)
	}
	e.advance(time.Duration(retry) * time.Second)
	if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK {
		t.Fatalf("admin open after Retry-After: %d %s", pg.status, pg.body)
	}
	if pg := e.open(p, p.AdminID()); pg.status != http.StatusTooManyRequests {
		t.Fatalf("second open after one Every: %d, want 429 (one token refilled)", pg.status)
	}
}

// A request a bucket refuses takes nothing from the others, buckets refill at
// their rate, and at most MaxKeys buckets exist however many keys are seen.
func TestVerifyGateBuckets(t *testing.T) {
	t.Parallel()
	g := newVerifyGate(VerifyLimits{
		PerAddress: Bucket{Burst: 2, Every: time.Minute},
		PerPortal:  Bucket{Burst: 3, Every: time.Minute},
		Unknown:    Bucket{Burst: 1, Every: 10 * time.Second},
		MaxKeys:    100,
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	member := randHex(16)
	for i := range 2 {
		if r, _ := g.admit(now, "a", member, true); r != "" {
			t.Fatalf("request %d refused: %s", i, r)
		}
	}
	r, wait := g.admit(now, "a", member, true)
	if r != refusedAddress || wait != time.Minute {
		t.Fatalf("third from one address: %q %v, want address_limit after 1m", r, wait)
	}
	// The refused request left the portal one token, which another address gets.
	if r, _ := g.admit(now, "b", member, true); r != "" {
		t.Fatalf("portal's last token: %s", r)
	}
	if r, _ := g.admit(now, "c", member, true); r != refusedPortal {
		t.Fatalf("portal bucket empty: %q", r)
	}
	// The unknown bucket is shared by every unknown member_id and refills.
	if r, _ := g.admit(now, "d", randHex(16), false); r != "" {
		t.Fatalf("unknown: %s", r)
	}
	if r, wait := g.admit(now, "e", randHex(16), false); r != refusedUnknown || wait != 10*time.Second {
		t.Fatalf("second unknown: %q %v", r, wait)
	}
	if r, _ := g.admit(now.Add(10*time.Second), "e", randHex(16), false); r != "" {
		t.Fatalf("unknown after refill: %s", r)
	}

	for i := range 10000 {
		g.admit(now, fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), randHex(16), i%2 == 0)
	}
	if g.addrs.len() > 100 || g.portals.len() > 100 {
		t.Fatalf("%d address and %d portal buckets kept, want at most 100 each", g.addrs.len(), g.portals.len())
	}

	// Zero limits mean none.
	free := newVerifyGate(VerifyLimits{})
	for range 1000 {
		if r, _ := free.admit(now, "a", member, false); r != "" {
			t.Fatalf("unlimited gate refused: %s", r)
		}
	}
}

// Every portal user sees the portal's member_id, and events come from
// Bitrix24's few servers, so no address bucket applies to them: a flood of
// forged events naming the portal, from one machine, spends the portal's
// event bucket only, and its people still open the app.
func TestEventFloodDoesNotLockThePortalsPages(t *testing.T) {
	t.Parallel()
	limits := DefaultVerifyLimits()
	e := newGateEnv(t, limits)
	p := e.addPortal(44)
	e.install(p)
	e.oauthTokens.Store(0)
	var flood []attack
	for range 3 * limits.PerPortal.Burst {
		flood = append(flood, forgedEvent("ONAPPUPDATE", p.MemberID(), "203.0.113.9"))
	}
	byCode, _ := e.flood(flood)
	if n := int(e.oauthTokens.Load()); n > limits.PerPortalEvents.Burst {
		t.Errorf("%d OAuth calls for %d forged events, want at most PerPortalEvents.Burst=%d (%v)", n, len(flood), limits.PerPortalEvents.Burst, byCode)
	}
	for _, user := range []int64{p.AdminID(), p.NonAdminID()} {
		if pg := e.open(p, user); pg.status != http.StatusOK {
			t.Fatalf("user %d opens the app after the event flood: %d, want 200", user, pg.status)
		}
	}
}

// openFrom is userID opening the app in Bitrix24 from the client address peer.
func (e *gateEnv) openFrom(p *b24sim.Portal, userID int64, peer string) page {
	e.t.Helper()
	return e.frameFrom(p, userID, "", peer)
}

// frameFrom posts userID's frame POST of p, with fresh tokens, to path ("":
// the page Bitrix24 opens) from the client address peer.
func (e *gateEnv) frameFrom(p *b24sim.Portal, userID int64, path, peer string) page {
	e.t.Helper()
	target, q, body, err := p.FrameRequest(userID)
	if err != nil {
		e.t.Fatal(err)
	}
	if path != "" {
		target = e.app.URL + path
	}
	req, err := http.NewRequest(http.MethodPost, target+"?"+q.Encode(), strings.NewReader(body.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", strings.TrimSuffix(p.PageURL(), "/"))
	req.Header.Set(peerHeader, peer)
	resp, err := http.DefaultClient.Do(req)
	return readPage(e.t, resp, err)
}

// Every portal user sees its member_id. One of them forges frame POSTs
// naming it from as many addresses as they like and empties the portal's
// bucket for strangers; the address its people opened the app from keeps a
// bucket of its own, and they get in. The forger first opens the app for
// real from many addresses of their own, to have them remembered too: only
// their last few count, and those cannot empty the users' bucket. The OAuth
// calls stay bounded by the buckets.
func TestForgedFramesFromManyAddressesDoNotLockOutThePortalsUsers(t *testing.T) {
	t.Parallel()
	limits := DefaultVerifyLimits()
	e := newGateEnv(t, limits)
	p := e.addPortal(45)
	e.install(p)
	const office = "198.51.100.10"
	if pg := e.openFrom(p, p.AdminID(), office); pg.status != http.StatusOK {
		t.Fatalf("admin opens the app from the office: %d %s", pg.status, pg.body)
	}
	forger := p.NonAdminID()
	var own []string
	for i := range 8 {
		own = append(own, fmt.Sprintf("2001:db8:66:%x::1", i))
		if pg := e.openFrom(p, forger, own[i]); pg.status != http.StatusOK {
			t.Fatalf("forger opens the app from %s: %d %s", own[i], pg.status, pg.body)
		}
	}

	e.oauthTokens.Store(0)
	var flood []attack
	for _, peer := range own {
		for range limits.PerAddress.Burst + 5 {
			flood = append(flood, e.forgedFrame("/b24/app", p.MemberID(), peer))
		}
	}
	for i := range 3 * limits.PerPortal.Burst {
		flood = append(flood, e.forgedFrame("/b24/app", p.MemberID(), fmt.Sprintf("2001:db8:77:%x::1", i)))
	}
	byCode, _ := e.flood(flood)
	calls := int(e.oauthTokens.Load())
	// Strangers spend what the forger's own opens left in PerPortal; the
	// forger's remembered addresses spend their address buckets.
	if bound := limits.PerPortal.Burst + addressesPerUser*limits.PerAddress.Burst; calls > bound {
		t.Errorf("%d OAuth calls for %d forged frames, want at most PerPortal.Burst+%d*PerAddress.Burst=%d (%v)",
			calls, len(flood), addressesPerUser, bound, byCode)
	}
	if byCode[http.StatusUnauthorized] != calls || byCode[http.StatusTooManyRequests] != len(flood)-calls {
		t.Errorf("flood answered %v for %d OAuth calls", byCode, calls)
	}
	t.Logf("flood of %d forged frames: %d OAuth calls, statuses %v", len(flood), calls, byCode)

	if pg := e.send(e.forgedFrame("/b24/app", p.MemberID(), "203.0.113.200")); pg.status != http.StatusTooManyRequests {
		t.Fatalf("a new stranger address after the flood: %d, want 429", pg.status)
	}
	if pg := e.openFrom(p, p.AdminID(), office); pg.status != http.StatusOK {
		t.Fatalf("admin opens the app from the office after the flood: %d %s", pg.status, pg.body)
	}
	if n := int(e.oauthTokens.Load()); n > calls+1 {
		t.Errorf("%d OAuth calls after the flood and one open, want at most %d", n, calls+1)
	}
	if e.refused(refusedPortal) == 0 || e.refused(refusedPortalUsers) != 0 {
		t.Errorf("refusals counted: portal_limit %d, portal_users_limit %d; want some and none",
			e.refused(refusedPortal), e.refused(refusedPortalUsers))
	}
}

// An address a portal's user opened the app from takes from the portal's
// users' bucket, not the strangers' one, and for that portal only; each
// user's last addressesPerUser addresses count, until the user has not been
// seen for RememberAddresses; at most MaxKeys users are remembered.
func TestVerifyGateRemembersUsersAddresses(t *testing.T) {
	t.Parallel()
	g := newVerifyGate(VerifyLimits{
		PerAddress:        Bucket{Burst: 100, Every: time.Minute},
		PerPortal:         Bucket{Burst: 2, Every: time.Minute},
		PerPortalUsers:    Bucket{Burst: 3, Every: time.Minute},
		RememberAddresses: time.Hour,
		MaxKeys:           4,
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	member, other := randHex(16), randHex(16)
	g.remember(now, member, "office", 1)

	for _, addr := range []string{"x1", "x2"} {
		if r, _ := g.admit(now, addr, member, true); r != "" {
			t.Fatalf("stranger %s: %s", addr, r)
		}
	}
	if r, _ := g.admit(now, "x3", member, true); r != refusedPortal {
		t.Fatalf("third stranger: %q, want portal_limit", r)
	}
	for i := range 3 {
		if r, _ := g.admit(now, "office", member, true); r != "" {
			t.Fatalf("office request %d with the strangers' bucket empty: %s", i, r)
		}
	}
	if r, wait := g.admit(now, "office", member, true); r != refusedPortalUsers || wait != time.Minute {
		t.Fatalf("office past the users' bucket: %q %v, want portal_users_limit after 1m", r, wait)
	}
	if g.seen.has(now, other, "office") {
		t.Fatal("the office is remembered for another portal")
	}
	if r, _ := g.admit(now, "", member, true); r != "" {
		t.Fatalf("an event took the users' bucket: %s", r)
	}

	// User 2's fifth address pushes out the first and second; the office
	// stays, user 1 holds it too.
	for _, addr := range []string{"a1", "a2", "a3", "office", "a4"} {
		g.remember(now, member, addr, 2)
	}
	for addr, want := range map[string]bool{"a1": false, "a2": false, "a3": true, "a4": true, "office": true} {
		if got := g.seen.has(now, member, addr); got != want {
			t.Errorf("after user 2's five addresses, %s remembered: %v, want %v", addr, got, want)
		}
	}
	g.remember(now.Add(30*time.Minute), member, "home", 3)
	later := now.Add(time.Hour)
	for addr, want := range map[string]bool{"office": false, "a3": false, "a4": false, "home": true} {
		if got := g.seen.has(later, member, addr); got != want {
			t.Errorf("an hour on, %s remembered: %v, want %v", addr, got, want)
		}
	}
	if g.seen.len() != 1 || len(g.seen.addrs) != 1 {
		t.Errorf("an hour on, %d users and %d addresses kept, want 1 and 1", g.seen.len(), len(g.seen.addrs))
	}

	for i := range 100 {
		g.remember(later, member, fmt.Sprintf("10.0.0.%d", i), int64(100+i))
	}
	if g.seen.len() != 4 || len(g.seen.addrs) != 4 {
		t.Errorf("%d users and %d addresses kept, want MaxKeys=4 of each", g.seen.len(), len(g.seen.addrs))
	}
	if g.seen.has(later, member, "10.0.0.0") || !g.seen.has(later, member, "10.0.0.99") {
		t.Error("the least recently seen users are not the ones forgotten")
	}

	off := newVerifyGate(VerifyLimits{PerPortal: Bucket{Burst: 1, Every: time.Minute}})
	off.remember(now, member, "office", 1)
	if off.seen.has(now, member, "office") {
		t.Error("an address remembered with RememberAddresses zero")
	}
}

// One employee with many addresses of their own (IPv6 /64s are cheap) opens
// the app for real from each in turn, to have it remembered, and from each
// forges as many frame POSTs as its address bucket lets through. Only their
// last addressesPerUser addresses are remembered at any time, but every
// fresh one brings a full address bucket: without a bucket for the user
// across their addresses they empty the portal's users' bucket and lock the
// office out.
func TestOneUserRotatingAddressesDoesNotLockOutThePortalsUsers(t *testing.T) {
	t.Parallel()
	limits := DefaultVerifyLimits()
	e := newGateEnv(t, limits)
	p := e.addPortal(46)
	e.install(p)
	const office = "198.51.100.20"
	if pg := e.openFrom(p, p.AdminID(), office); pg.status != http.StatusOK {
		t.Fatalf("admin opens the app from the office: %d %s", pg.status, pg.body)
	}
	forger := p.NonAdminID()
	e.oauthTokens.Store(0)
	const rotations = 12
	forged := 0
	for i := range rotations {
		peer := fmt.Sprintf("2001:db8:88:%x::1", i)
		if pg := e.openFrom(p, forger, peer); pg.status != http.StatusOK {
			t.Fatalf("forger opens the app from %s: %d %s", peer, pg.status, pg.body)
		}
		var flood []attack
		for range limits.PerAddress.Burst {
			flood = append(flood, e.forgedFrame("/b24/app", p.MemberID(), peer))
		}
		byCode, _ := e.flood(flood)
		forged += byCode[http.StatusUnauthorized]
	}
	t.Logf("%d rotations: %d forged frames cost an OAuth call", rotations, forged)
	if pg := e.openFrom(p, p.AdminID(), office); pg.status != http.StatusOK {
		t.Fatalf("admin opens the app from the office after one user's rotation: %d %s", pg.status, pg.body)
	}
	if limit := limits.PerPortalUser.Burst; forged > limit {
		t.Errorf("one user's forged frames cost %d OAuth calls, want at most PerPortalUser.Burst=%d", forged, limit)
	}
}
