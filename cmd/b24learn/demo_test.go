package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/pgtest"
)

// The README's first command: demo prints the three addresses, each answers,
// and the demo manager can be signed in with.
func TestDemoPrintsThreeWorkingAddresses(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	addr := freeAddr(t)
	out := &syncWriter{w: new(strings.Builder)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "-addr", addr, "-employees", "60", "-departments", "6"},
			func(k string) string {
				if k == "DATABASE_URL" {
					return dbURL
				}
				return ""
			}, nil, out, io.Discard)
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
		if time.Now().After(deadline) {
			t.Fatalf("demo printed no addresses:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	urls := regexp.MustCompile(`http://\S+`).FindAllString(out.String(), -1)
	var portalPage, learnView, console string
	for _, u := range urls {
		switch {
		case strings.Contains(u, "/_sim/account"):
			learnView = u
		case strings.HasSuffix(u, "/manager"):
			console = u
		case portalPage == "":
			portalPage = u
		}
	}
	for name, u := range map[string]string{"portal page": portalPage, "Learn view": learnView, "manager console": console} {
		if u == "" {
			t.Fatalf("no %s address in:\n%s", name, out.String())
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
