package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"b24learn/internal/jobs"
	"b24learn/internal/pgtest"
)

// River rescues a job still "running" after JOB_RESCUE_AFTER and works it
// again: at or below the sync timeout it would run a sync that is still
// legitimately running a second time. serve says so in its log at start;
// the default (2h15m) says nothing.
func TestServeWarnsWhenRescueComesBeforeTheSyncTimeout(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		rescueAfter string
		warn        bool
	}{
		"EqualToTheTimeout": {jobs.SyncTimeout.String(), true},
		"BeforeTheTimeout":  {"30m", true},
		"Default":           {"", false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{
				"DATABASE_URL": pgtest.NewDatabase(t), "B24_CLIENT_ID": "local.test", "B24_CLIENT_SECRET": "secret",
				"PUBLIC_URL": "https://app.example.com", "SECRET_KEYS": testKey, "HTTP_ADDR": "127.0.0.1:0",
				"LOG_FORMAT": "json", "JOB_RESCUE_AFTER": c.rescueAfter,
			}
			logs := &syncWriter{w: &bytes.Buffer{}}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, nil, io.Discard, logs)
			}()
			deadline := time.Now().Add(60 * time.Second)
			for !strings.Contains(logs.String(), "workers started") {
				select {
				case err := <-done:
					t.Fatalf("serve ended before its workers started: %v\n%s", err, logs.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("serve's workers did not start:\n%s", logs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("serve: %v", err)
			}

			var warned bool
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec struct {
					Level string `json:"level"`
					Msg   string `json:"msg"`
				}
				if json.Unmarshal([]byte(line), &rec) != nil {
					t.Fatalf("not a JSON log line: %q", line)
				}
				if rec.Level == "WARN" && strings.Contains(rec.Msg, "JOB_RESCUE_AFTER") {
					warned = true
				}
			}
			if warned != c.warn {
				t.Errorf("JOB_RESCUE_AFTER=%q: warned %v, want %v; log:\n%s", c.rescueAfter, warned, c.warn, logs.String())
			}
		})
	}
}
