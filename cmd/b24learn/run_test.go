package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/pgtest"
)

const testKey = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="

func TestServeWithoutClientIDNamesIt(t *testing.T) {
	t.Parallel()
	env := map[string]string{"B24_CLIENT_SECRET": "x", "PUBLIC_URL": "https://app.example.com", "SECRET_KEYS": testKey}
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, nil, io.Discard, &stderr)
	if err == nil {
		t.Fatal("serve started without B24_CLIENT_ID")
	}
	if msg := err.Error(); !strings.Contains(msg, "B24_CLIENT_ID") || strings.Contains(msg, "\n") {
		t.Fatalf("error %q: want one line naming B24_CLIENT_ID", msg)
	}
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	// An empty database the command creates itself.
	url := pgtest.NewDatabase(t)
	cfg, _ := pgx.ParseConfig(url)
	empty := fmt.Sprintf("postgres://%s@%s:%d/%s_fresh?sslmode=disable", cfg.User, cfg.Host, cfg.Port, cfg.Database)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), url)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database+"_fresh WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	env := map[string]string{"DATABASE_URL": empty}
	var out1, out2 bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, func(k string) string { return env[k] }, nil, &out1, io.Discard); err != nil {
		t.Fatalf("first migrate: %v", err)
	}
	if !strings.Contains(out1.String(), "applied") {
		t.Fatalf("first migrate printed %q", out1.String())
	}
	if err := run(context.Background(), []string{"migrate"}, func(k string) string { return env[k] }, nil, &out2, io.Discard); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if !strings.Contains(out2.String(), "up to date") {
		t.Fatalf("second migrate changed something: %q", out2.String())
	}
}

// TestServeHealthReadyMetrics runs serve with its database behind a TCP proxy
// that the test can cut, standing in for a database that goes down and
// comes back.
func TestServeHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	cfg, _ := pgx.ParseConfig(dbURL)
	proxy := startProxy(t, fmt.Sprintf("%s:%d", cfg.Host, cfg.Port))
	proxied := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable&pool_max_conn_idle_time=1s", cfg.User, proxy.addr, cfg.Database)

	addr, metricsAddr := freeAddr(t), freeAddr(t)
	const metricsToken = "scrape-token-0123456789"
	env := map[string]string{
		"DATABASE_URL": proxied, "B24_CLIENT_ID": "local.test", "B24_CLIENT_SECRET": "secret",
		"PUBLIC_URL": "https://app.example.com", "SECRET_KEYS": testKey, "HTTP_ADDR": addr, "LOG_LEVEL": "info",
		"METRICS_ADDR": metricsAddr, "METRICS_TOKEN": metricsToken,
	}
	// HTTP answers before River has started; cutting the database while it
	// starts would stop serve, so the cut waits for the workers.
	started := &logWatch{want: []byte("workers started")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, nil, io.Discard, started)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Error("serve did not stop")
		}
	})
	base := "http://" + addr
	waitFor(t, func() bool { return status(base+"/healthz") == 200 })

	if got := status(base + "/readyz"); got != 200 {
		t.Fatalf("/readyz = %d, want 200", got)
	}
	// The private listener serves /metrics as is; the public address only
	// with the bearer token, and a 404 like any unknown path otherwise.
	for _, c := range []struct {
		url, auth string
		want      int
	}{
		{"http://" + metricsAddr + "/metrics", "", 200},
		{base + "/metrics", "", 404},
		{base + "/metrics", "Bearer wrong-token-0123456789", 404},
		{base + "/metrics", "Bearer " + metricsToken + "x", 404},
		{base + "/metrics", "Basic " + metricsToken, 404},
		{base + "/metrics", "Bearer " + metricsToken, 200},
	} {
		req, _ := http.NewRequest(http.MethodGet, c.url, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s with %q: %d, want %d", c.url, c.auth, resp.StatusCode, c.want)
			continue
		}
		if c.want == 200 && (!strings.Contains(string(body), "b24learn_http_requests_total") || !strings.Contains(resp.Header.Get("Content-Type"), "text/plain")) {
			t.Errorf("%s is not Prometheus text:\n%.300s", c.url, body)
		}
		if c.want == 404 && strings.Contains(string(body), "b24learn_") {
			t.Errorf("a refused scrape got metrics: %.300s", body)
		}
	}

	waitFor(t, started.seen.Load)
	proxy.down()
	waitFor(t, func() bool { return status(base+"/readyz") == 503 })
	if got := status(base + "/healthz"); got != 200 {
		t.Fatalf("/healthz with database down = %d, want 200 (process up)", got)
	}
	proxy.up()
	waitFor(t, func() bool { return status(base+"/readyz") == 200 })
}

// logWatch is a log writer that notes when a line containing want went by
// (slog writes each record in one Write).
type logWatch struct {
	want []byte
	seen atomic.Bool
}

func (l *logWatch) Write(p []byte) (int, error) {
	if bytes.Contains(p, l.want) {
		l.seen.Store(true)
	}
	return len(p), nil
}

func status(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tcpProxy stands between a process and PostgreSQL so a test can cut the
// database away and bring it back. It keeps its listening port for its whole
// life: "down" closes every connection and closes new ones at once, so the
// port cannot be taken meanwhile by another socket (it is an ephemeral port).
type tcpProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	refusing     bool
	conns        []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{addr: freeAddr(t), target: target}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p.ln = ln
	go p.serve()
	t.Cleanup(func() {
		p.down()
		ln.Close()
	})
	return p
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refusing := p.refusing
		p.mu.Unlock()
		if refusing {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() { io.Copy(c, s); c.Close() }()
	}
}

// up lets connections through again.
func (p *tcpProxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusing = false
}

// down cuts every connection and refuses new ones until up.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusing = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// serve --no-migrate (as docker-compose.yml runs it) on a database nobody
// migrated says what to do, not which of River's tables is missing.
func TestServeNoMigrateOnEmptyDatabaseSaysMigrate(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(context.Background(), "DROP SCHEMA public CASCADE; CREATE SCHEMA public"); err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
	env := map[string]string{"DATABASE_URL": url, "B24_CLIENT_ID": "a", "B24_CLIENT_SECRET": "b",
		"PUBLIC_URL": "https://app.example.com", "SECRET_KEYS": testKey, "HTTP_ADDR": "127.0.0.1:0"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = run(ctx, []string{"serve", "--no-migrate"}, func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "b24learn migrate") {
		t.Fatalf("serve --no-migrate on an empty database: %v, want it to say: run b24learn migrate", err)
	}
}
