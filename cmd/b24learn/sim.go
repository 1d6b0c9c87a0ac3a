package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// runSim serves only the two simulators, each on its own address, for
// trying the app against them by hand or from another process.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	b24Addr := fs.String("b24-addr", "127.0.0.1:8081", "Bitrix24 simulator (OAuth server and portals) address")
	learnAddr := fs.String("learn-addr", "127.0.0.1:8082", "iSpring Learn simulator address")
	appURL := fs.String("app-url", "http://127.0.0.1:8080", "the app's base URL the portal page opens in its iframe")
	portalAddr := fs.String("portal-addr", "127.0.0.1:8083", "the simulated portal's own address (its DOMAIN)")
	employees := fs.Int("employees", 300, "employees in the generated org")
	departments := fs.Int("departments", 25, "departments in the generated org")
	seed := fs.Int64("seed", 1, "seed of the generated org")
	invited := fs.Int("invited", 0, "employees of the generated org invited who have not accepted yet")
	invitedFilter := fs.String("invited-filter", "honoured", "what user.search does with the CONFIRM_CODE filter: honoured, ignored or refused")
	rate := fs.Float64("b24-rate", 2, "Bitrix24 requests per second per portal (negative: no limit)")
	burst := fs.Int("b24-burst", 50, "Bitrix24 bucket size")
	b24Latency := fs.Duration("b24-latency", 0, "latency added to each Bitrix24 REST answer")
	learnLatency := fs.Duration("learn-latency", 20*time.Millisecond, "latency added to each Learn answer")
	learnErrors := fs.Float64("learn-errors", 0, "share of Learn calls answered 500 (0..1)")
	learnLimited := fs.Float64("learn-429", 0, "share of Learn calls answered 429 (0..1)")
	keyOnly := fs.Bool("learn-key-only", false, "Learn takes only its API key, not the e-mail and password (as when Learn retires header auth)")
	learnHostile := fs.String("learn-hostile", "", "Learn listings misbehave: endless, repeat-token, huge (a 1 GiB answer) or huge-object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	hostile := map[string]learnsim.Hostile{"": {}, "endless": {EndlessPages: true}, "repeat-token": {RepeatTokens: true},
		"huge": {HugeAnswer: 1 << 30}, "huge-object": {HugeAnswer: 1 << 30, HugeObject: true}}
	if _, ok := hostile[*learnHostile]; !ok {
		return fmt.Errorf("sim: -learn-hostile must be endless, repeat-token, huge or huge-object")
	}
	filters := map[string]b24sim.InvitedFilter{"honoured": b24sim.InvitedFilterHonoured, "ignored": b24sim.InvitedFilterIgnored,
		"refused": b24sim.InvitedFilterRefused}
	if _, ok := filters[*invitedFilter]; !ok {
		return fmt.Errorf("sim: -invited-filter must be honoured, ignored or refused")
	}
	for name, v := range map[string]float64{"learn-errors": *learnErrors, "learn-429": *learnLimited} {
		if v < 0 || v > 1 {
			return fmt.Errorf("sim: -%s must be between 0 and 1", name)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	bs := b24sim.New(b24sim.Options{AppURL: *appURL, Rate: *rate, Burst: *burst, Latency: *b24Latency, Logger: log,
		InvitedFilter: filters[*invitedFilter]})
	bs.SetBaseURL("http://" + *b24Addr)
	// The portal answers on its own origin, as a real portal does, so the
	// app's frame-ancestors and postMessage see the same origin as the page.
	org := b24sim.GenerateOrg(*seed, *employees, *departments)
	org.Invite(*invited)
	portal := bs.AddPortal(b24sim.PortalOptions{URL: "http://" + *portalAddr, Org: org})

	srvs := newServers()
	learnURL, err := startLearnSim(srvs, *learnAddr, "http://"+*learnAddr, "", learnsim.Options{Latency: *learnLatency, Logger: log,
		Unsettled: learnsim.Unsettled{HeaderAuthRetired: *keyOnly},
		Hostile:   hostile[*learnHostile], Faults: learnsim.Faults{ErrorRate: *learnErrors, RateLimitRate: *learnLimited, RetryAfter: time.Second}})
	if err != nil {
		return err
	}
	for _, addr := range []string{*b24Addr, *portalAddr} {
		if _, err := srvs.start("bitrix24 simulator", addr, &http.Server{Handler: bs, ReadHeaderTimeout: 10 * time.Second}); err != nil {
			srvs.close()
			return err
		}
	}
	fmt.Fprintf(stdout, `Simulators running:
  Bitrix24 OAuth server (B24_OAUTH_URL): http://%s   client_id %s, client_secret %s
  Bitrix24 portal page:                  %s
  iSpring Learn account:                 %s   (%s)
  Learn simulator view:                  %s
`, *b24Addr, bs.ClientID(), bs.ClientSecret(), portal.PageURL(), learnURL, learnSignIn(*keyOnly), learnSimView(learnURL))

	err = srvs.wait(ctx)
	srvs.shutdown(5 * time.Second)
	return err
}
