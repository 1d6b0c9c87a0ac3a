package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/manager"
	"b24learn/internal/pgtest"
)

// The README's first command: demo prints the four addresses, each answers,
// and the demo manager can be signed in with.
func TestDemoPrintsFourWorkingAddresses(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	out := startDemo(t, []string{"-addr", freeAddr(t), "-employees", "60", "-departments", "6"},
		map[string]string{"DATABASE_URL": dbURL})
	urls := regexp.MustCompile(`http://\S+`).FindAllString(out, -1)
	var portalPage, learnView, console, mailbox string
	for _, u := range urls {
		switch {
		case strings.Contains(u, "/_sim/account"):
			learnView = u
		case strings.HasSuffix(u, "/manager"):
			console = u
		case portalPage == "":
			portalPage = u
		case strings.HasSuffix(u, "/"):
			mailbox = u
		}
	}
	for name, u := range map[string]string{"portal page": portalPage, "Learn view": learnView, "manager console": console, "mailbox": mailbox} {
		if u == "" {
			t.Fatalf("no %s address in:\n%s", name, out)
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatalf("%s %s: %v", name, u, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s: %d", name, u, resp.StatusCode)
		}
		if name == "portal page" && !strings.Contains(string(body), "/install") {
			t.Errorf("the portal page offers no install:\n%.400s", body)
		}
		if name == "mailbox" && !strings.Contains(string(body), "No e-mail yet") {
			t.Errorf("the mailbox page is not the mailbox:\n%.400s", body)
		}
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var managers int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM managers WHERE lower(email) = $1`, demoManagerEmail).Scan(&managers); err != nil {
		t.Fatal(err)
	}
	if managers != 1 {
		t.Fatalf("demo manager accounts: %d, want 1", managers)
	}
}

// The demo manager's password is nobody's to know in advance: each start
// makes and prints its own, and a demo on a database an earlier demo used
// gives the account the new one. A fixed password would open the console of
// any database a demo was once pointed at (DATABASE_URL) to anyone who has
// read this repository.
func TestDemoManagerPasswordIsMadePerStart(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	signIn := regexp.MustCompile(`sign in as ` + regexp.QuoteMeta(demoManagerEmail) + ` / (\S+)`)
	var passwords []string
	for range 2 {
		out := startDemo(t, []string{"-addr", freeAddr(t), "-employees", "10", "-departments", "2"},
			map[string]string{"DATABASE_URL": dbURL})
		m := signIn.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no demo login printed:\n%s", out)
		}
		passwords = append(passwords, m[1])
	}
	if passwords[0] == passwords[1] {
		t.Fatalf("two demo starts printed the same manager password %q", passwords[0])
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var hash string
	if err := conn.QueryRow(context.Background(), `SELECT password_hash FROM managers WHERE lower(email) = $1`, demoManagerEmail).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	h := manager.DefaultHasher()
	for i, want := range []bool{false, true} {
		if ok, err := h.Check(context.Background(), hash, passwords[i]); err != nil || ok != want {
			t.Errorf("start %d's password signs in: %v (%v), want %v", i+1, ok, err, want)
		}
	}
}

// startDemo runs `demo` with args and the environment env until the test
// ends, and returns what it printed once it was ready.
// A DATABASE_URL still set for the real service must not get the demo: it
// would print a console password for the real database and run its workers
// on the real portals with a key of its own.
func TestDemoRefusesARealDatabase(t *testing.T) {
	t.Parallel()
	for name, seed := range map[string]string{
		"a real portal":         `INSERT INTO portals (member_id, domain) VALUES ('m1', 'acme.bitrix24.ru')`,
		"a real manager":        `INSERT INTO managers (email, password_hash) VALUES ('anna@ispring.example', 'x')`,
		"a portal on a LAN":     `INSERT INTO portals (member_id, domain) VALUES ('m2', '10.0.0.5:8443')`,
		"a localhost lookalike": `INSERT INTO portals (member_id, domain) VALUES ('m3', 'localhost.example.com')`,
	} {
		dbURL := pgtest.NewDatabase(t)
		conn, err := pgx.Connect(context.Background(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), seed); err != nil {
			t.Fatal(err)
		}
		out := new(strings.Builder)
		// A demo that starts runs until its context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err = run(ctx, []string{"demo", "-addr", freeAddr(t)}, func(k string) string {
			return map[string]string{"DATABASE_URL": dbURL}[k]
		}, nil, out, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
			t.Errorf("%s: demo started on it (err %v)", name, err)
		}
		var demoManagers int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM managers WHERE lower(email) = $1`, demoManagerEmail).Scan(&demoManagers); err != nil {
			t.Fatal(err)
		}
		if demoManagers != 0 || strings.Contains(out.String(), "sign in as") {
			t.Errorf("%s: the demo manager was written or printed:\n%s", name, out)
		}
	}
}

func startDemo(t *testing.T, args []string, env map[string]string) string {
	t.Helper()
	out := &syncWriter{w: new(strings.Builder)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"demo"}, args...), func(k string) string { return env[k] }, nil, out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("demo did not stop on cancel")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "Press Ctrl-C") {
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("demo ended before it was ready: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo printed no addresses:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return out.String()
}

// demo listens on HTTP_ADDR as serve does, and --addr still overrides it.
func TestDemoListensOnHTTPAddr(t *testing.T) {
	t.Parallel()
	for name, withFlag := range map[string]bool{"HTTP_ADDR": false, "--addr over HTTP_ADDR": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			envAddr := freeAddr(t)
			args := []string{"-employees", "10", "-departments", "2"}
			want := envAddr
			if withFlag {
				want = freeAddr(t)
				args = append(args, "-addr", want)
			}
			out := startDemo(t, args, map[string]string{"DATABASE_URL": pgtest.NewDatabase(t), "HTTP_ADDR": envAddr})
			if !strings.Contains(out, "http://"+want+"/manager") {
				t.Errorf("the console address is not on %s:\n%s", want, out)
			}
			resp, err := http.Get("http://" + want + "/healthz")
			if err != nil {
				t.Fatalf("the app does not answer on %s: %v", want, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET /healthz on %s: %d", want, resp.StatusCode)
			}
			if want != envAddr {
				if conn, err := net.Dial("tcp", envAddr); err == nil {
					conn.Close()
					t.Errorf("with --addr %s the app also listens on HTTP_ADDR %s", want, envAddr)
				}
			}
		})
	}
}

// A listen address the demo cannot print links for is refused before
// anything starts, naming where it came from.
func TestDemoRefusesABadListenAddress(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"localhost", "127.0.0.1:0", "http://127.0.0.1:8080"} {
		// Bounded and on a database nobody serves, should the address be
		// let through.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := run(ctx, []string{"demo"}, func(k string) string {
			return map[string]string{"HTTP_ADDR": addr, "DATABASE_URL": "postgres://127.0.0.1:1/none"}[k]
		}, nil, io.Discard, io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "HTTP_ADDR") || !strings.Contains(err.Error(), addr) {
			t.Errorf("HTTP_ADDR %q: %v, want an error naming it", addr, err)
		}
	}
}

// The demo prints its simulated credentials and a manager account: an
// address other machines reach (every interface, a network address, a host
// name that may not be this machine) is refused before anything starts,
// naming where it came from.
func TestDemoRefusesAListenAddressOffLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{":9090", "0.0.0.0:9090", "[::]:9090", "192.0.2.10:9090", "[2001:db8::1]:9090", "demo.example.com:9090"} {
		for _, viaFlag := range []bool{false, true} {
			args, env := []string{"demo"}, map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/none"}
			if viaFlag {
				args = append(args, "-addr", addr)
			} else {
				env["HTTP_ADDR"] = addr
			}
			// Bounded and on a database nobody serves, should the address be
			// let through.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := run(ctx, args, func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
			cancel()
			if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "loopback") {
				t.Errorf("listen address %q (flag %v): %v, want an error naming it and loopback", addr, viaFlag, err)
			}
		}
	}
}

func TestDemoAppURL(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		"[::1]:9090":     "http://[::1]:9090",
		"localhost:8081": "http://localhost:8081",
	} {
		if got, err := demoAppURL(addr); err != nil || got != want {
			t.Errorf("demoAppURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
}
