package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/activation/mailsim"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/localpg"
	"b24learn/internal/manager"
	"b24learn/internal/store"
)

// Demo accounts, printed for the newcomer; they exist only in the demo.
// The manager's password is made on every start (demoPassword): the demo
// writes the account into whatever database DATABASE_URL names, so a
// password anyone can read here would open that console to them.
const (
	demoManagerEmail  = "manager@b24learn.demo"
	demoLearnEmail    = "admin@learn.demo"
	demoLearnPassword = "learn-demo-password"
	// The simulated account's API key, taken beside the password (or alone
	// with -learn-key-only), so the demo shows both ways to sign in.
	demoLearnClientID     = "learn-demo-client-id"
	demoLearnClientSecret = "learn-demo-client-secret"
	demoDatabase          = "b24learn_demo"
	// demoAddr keeps the demo, whose accounts are printed, off the network;
	// HTTP_ADDR or --addr may pick another loopback address (demoAppURL).
	demoAddr = "127.0.0.1:8080"
)

// runDemo starts everything on this machine: PostgreSQL (found or started),
// the Bitrix24 and Learn simulators, and the app, then prints where to go.
// The demo database is recreated on every start, as the simulators are.
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "the app's listen address (overrides HTTP_ADDR; default "+demoAddr+")")
	employees := fs.Int("employees", 300, "employees in the simulated portal")
	departments := fs.Int("departments", 25, "departments in the simulated portal")
	slotEvery := fs.Duration("slot-every", 2*time.Minute, "scheduled runs happen at every multiple of this (UTC)")
	verbose := fs.Bool("v", false, "log every request")
	keyOnly := fs.Bool("learn-key-only", false, "the simulated Learn takes only its API key, not the e-mail and password (as when Learn retires header auth)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	listenAddr := *addr
	if listenAddr == "" {
		listenAddr = getenv("HTTP_ADDR")
	}
	if listenAddr == "" {
		listenAddr = demoAddr
	}
	appURL, err := demoAppURL(listenAddr)
	if err != nil {
		return err
	}
	dbURL, err := demoDatabaseURL(ctx, getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	secretKeys := base64.StdEncoding.EncodeToString(key)
	managerPassword, err := demoPassword()
	if err != nil {
		return err
	}

	// The iSpring Learn account, on a loopback port of its own.
	srvs := newServers()
	defer srvs.close()
	learnURL, err := startLearnSim(srvs, "127.0.0.1:0", "", "Demo Company", learnsim.Options{Latency: 20 * time.Millisecond, Logger: log,
		Unsettled: learnsim.Unsettled{HeaderAuthRetired: *keyOnly}})
	if err != nil {
		return err
	}

	// The mailbox: every e-mail the app sends (activation requests to the
	// demo manager, alert addresses' confirmation links, alerts) lands here
	// and is shown on a page, since the demo reaches no real mail server.
	box, boxPage, err := startMailbox(srvs)
	if err != nil {
		return err
	}
	defer box.Close()

	// Bitrix24: the customer's portal, and iSpring's own portal receiving
	// activation requests as CRM leads through its inbound webhook.
	// The customer's portal is a Russian one, so it belongs to the east
	// region and its own OAuth server, as .ru portals do; the app lists
	// both servers, as in production.
	bs := b24sim.Start(b24sim.Options{AppURL: appURL, Logger: log})
	defer bs.Close()
	eastOAuth := bs.StartRegion(b24sim.Region{Name: "east"})
	// A few employees are invited and have not accepted yet: the preview
	// and the reports list them as waiting for their invitation.
	org := b24sim.GenerateOrg(time.Now().UnixNano(), *employees, *departments)
	org.Invite(*employees / 50)
	portal := bs.AddPortal(b24sim.PortalOptions{Lang: "ru", Region: "east", Org: org})
	crm := bs.AddPortal(b24sim.PortalOptions{WebhookCode: "demo" + fmt.Sprint(time.Now().Unix())})

	cfg, err := config.Load(func(k string) string {
		switch k {
		case "DATABASE_URL":
			return dbURL
		case "HTTP_ADDR":
			return listenAddr
		case "PUBLIC_URL":
			return appURL
		case "B24_CLIENT_ID":
			return bs.ClientID()
		case "B24_CLIENT_SECRET":
			return bs.ClientSecret()
		case "B24_OAUTH_URL":
			return bs.URL + "," + eastOAuth
		case "LEARN_ALLOW_PRIVATE_HOSTS", "B24_ALLOW_PRIVATE_HOSTS":
			return "true"
		case "LEAD_WEBHOOK_URL":
			return crm.WebhookURL()
		case "SECRET_KEYS":
			return secretKeys
		case "SMTP_URL":
			return box.URL.String()
		case "MANAGER_EMAILS":
			return demoManagerEmail
		}
		return ""
	}, true)
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	cfg.DemoSlotEvery = *slotEvery
	return serve(ctx, cfg, log, serveOptions{
		ready: func(string) {
			if err := addDemoManager(ctx, dbURL, managerPassword); err != nil {
				fmt.Fprintln(stderr, "demo: manager account:", err)
			}
			fmt.Fprintf(stdout, `
b24learn demo is running. Open:

  1. Bitrix24 portal (the app opens in its iframe; install, then fill the settings):
     %s
  2. iSpring Learn account, as the simulator sees it:
     %s
     (enter in the settings: Learn URL %s, %s)
  3. Manager console (activate the portal after sending the activation request):
     %s/manager   sign in as %s / %s
  4. Mailbox: every e-mail the app sent (activation requests, alert address links):
     %s

Scheduled syncs run every %s in the demo; "Sync now" runs one at once.
Press Ctrl-C to stop.
`, portal.PageURL(), learnSimView(learnURL), learnURL, learnSignIn(*keyOnly),
				appURL, demoManagerEmail, managerPassword, boxPage, *slotEvery)
		},
	})
}

// startMailbox starts the demo's mail server on a loopback port and its
// page on another; it returns the server and the page's address.
func startMailbox(srvs *servers) (*mailsim.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("start mailbox: %w", err)
	}
	box, err := mailsim.Serve(ln, mailsim.Options{From: "b24learn@b24learn.demo"})
	if err != nil {
		return nil, "", fmt.Errorf("start mailbox: %w", err)
	}
	page, err := srvs.start("mailbox", "127.0.0.1:0", &http.Server{Handler: box.Handler(), ReadHeaderTimeout: 10 * time.Second})
	if err != nil {
		box.Close()
		return nil, "", fmt.Errorf("start mailbox page: %w", err)
	}
	return box, "http://" + page + "/", nil
}

// demoAppURL is the address the simulated portal and the printed links use
// for the app listening on addr. Only loopback is accepted: the demo's
// simulated credentials and its manager account are printed, and a listener
// on every interface (":8080", "0.0.0.0:8080") or a network address would
// hand them, and the console, to anyone who can reach the machine.
func demoAppURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	// The simulated portal must know the app's port before it listens.
	if err != nil || port == "" || port == "0" {
		return "", fmt.Errorf("demo listen address %q (--addr or HTTP_ADDR): want host:port with a fixed port, e.g. %s", addr, demoAddr)
	}
	if !config.LoopbackHost(host) {
		return "", fmt.Errorf("demo listen address %q (--addr or HTTP_ADDR): the demo listens on loopback only "+
			"(localhost, 127.0.0.1 or [::1]), e.g. %s; use serve to listen on the network", addr, demoAddr)
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// demoDatabaseURL returns a fresh demo database on the server the README's
// quick start describes: DATABASE_URL, else 127.0.0.1:5432, else a throwaway
// cluster.
func demoDatabaseURL(ctx context.Context, explicit string) (string, error) {
	if explicit != "" {
		if err := checkDemoDatabase(ctx, explicit); err != nil {
			return "", err
		}
		return explicit, nil
	}
	server, err := localpg.Find(ctx, "", filepath.Join(os.TempDir(), "b24learn-demo-pg"))
	if err != nil {
		return "", err
	}
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+demoDatabase+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("reset demo database: %w", err)
	}
	cfg, err := pgx.ParseConfig(server)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, demoDatabase), nil
}

// checkDemoDatabase refuses a database that holds more than demos left
// there: a portal outside this machine or a manager other than the demo's.
// The demo prints a console password for that database and runs its workers
// on it with a key of its own, so a DATABASE_URL still set for the real
// service would open the real console and fail every real portal's sync.
func checkDemoDatabase(ctx context.Context, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to the demo database: %w", err)
	}
	defer conn.Close(ctx)
	var hasTables bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('portals') IS NOT NULL AND to_regclass('managers') IS NOT NULL`).Scan(&hasTables); err != nil {
		return fmt.Errorf("check the demo database: %w", err)
	}
	if !hasTables {
		return nil
	}
	rows, err := conn.Query(ctx, `SELECT domain FROM portals`)
	if err != nil {
		return fmt.Errorf("check the demo database: %w", err)
	}
	domains, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("check the demo database: %w", err)
	}
	var others int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM managers WHERE lower(email) <> $1`, demoManagerEmail).Scan(&others); err != nil {
		return fmt.Errorf("check the demo database: %w", err)
	}
	for _, d := range domains {
		if !onThisMachine(d) {
			others++
		}
	}
	if others > 0 {
		return errors.New("demo: DATABASE_URL names a database with real portals or manager accounts; " +
			"the demo would print a console password for it and run its workers on it. " +
			"Unset DATABASE_URL (the demo then makes " + demoDatabase + " on the local server) or name an empty database")
	}
	return nil
}

// onThisMachine reports whether a portal's domain is a loopback address, as
// the demo's simulated portals' are.
func onThisMachine(domain string) bool {
	host := domain
	if h, _, err := net.SplitHostPort(domain); err == nil {
		host = h
	}
	return config.LoopbackHost(host)
}

// demoPassword is a fresh password for the demo manager: 128 random bits.
func demoPassword() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("demo manager password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// addDemoManager makes the demo manager with password, or gives the one a
// demo made earlier on this database the new password.
func addDemoManager(ctx context.Context, dbURL, password string) error {
	pool, err := store.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	h := manager.DefaultHasher()
	_, err = manager.CreateManager(ctx, pool, h, demoManagerEmail, password)
	if errors.Is(err, manager.ErrManagerExists) {
		return manager.SetPassword(ctx, pool, h, demoManagerEmail, password)
	}
	return err
}
