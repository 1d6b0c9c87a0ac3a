package main

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"b24learn/internal/learn"
	"b24learn/internal/pgtest"
)

// The demo's Learn account takes the API key it prints beside the e-mail
// and password; with -learn-key-only it takes the key alone, and the
// password is refused with the check's message that asks for a key.
func TestDemoPrintsALearnAPIKeyThatSignsIn(t *testing.T) {
	t.Parallel()
	signIn := regexp.MustCompile(`Learn URL (\S+?), e-mail (\S+) and (?:password (\S+), or )?the API key: Client ID (\S+), Client Secret (\S+?)[ )]`)
	for _, tc := range []struct {
		name    string
		args    []string
		keyOnly bool
	}{{"Both", nil, false}, {"KeyOnly", []string{"-learn-key-only"}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := startDemo(t, append([]string{"-addr", freeAddr(t), "-employees", "20", "-departments", "3"}, tc.args...),
				map[string]string{"DATABASE_URL": pgtest.NewDatabase(t)})
			m := signIn.FindStringSubmatch(out)
			if m == nil || tc.keyOnly != (m[3] == "") {
				t.Fatalf("the demo does not print how to sign in to Learn as wanted:\n%s", out)
			}
			opts := learn.Options{HTTPClient: learn.NewHTTPClient(learn.DialerOptions{AllowPrivate: true}), AllowHTTP: true}
			ctx := context.Background()
			if err := learn.CheckConnection(ctx, learn.Credentials{AccountURL: m[1], Email: m[2], ClientID: m[4], ClientSecret: m[5]}, opts); err != nil {
				t.Errorf("the printed API key: %v", err)
			}
			pw := learn.Credentials{AccountURL: m[1], Email: m[2], Password: demoLearnPassword}
			err := learn.CheckConnection(ctx, pw, opts)
			var ce *learn.CheckError
			switch {
			case !tc.keyOnly && err != nil:
				t.Errorf("the printed password: %v", err)
			case tc.keyOnly && (!errors.As(err, &ce) || ce.Code != learn.CheckBadCredentials):
				t.Errorf("the password with -learn-key-only: %v, want it refused", err)
			}
		})
	}
}

// sim prints the same sign-in, and -learn-key-only makes its Learn take
// only the key.
func TestSimPrintsALearnAPIKeyThatSignsIn(t *testing.T) {
	t.Parallel()
	out := &syncWriter{w: new(strings.Builder)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	learnAddr := freeAddr(t)
	go func() {
		done <- run(ctx, []string{"sim", "-b24-addr", freeAddr(t), "-learn-addr", learnAddr, "-portal-addr", freeAddr(t),
			"-employees", "10", "-departments", "2", "-learn-key-only"}, func(string) string { return "" }, nil, out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("sim: %v", err)
		}
	})
	m := regexp.MustCompile(`iSpring Learn account:\s+(\S+)\s+\(e-mail (\S+) and the API key: Client ID (\S+), Client Secret (\S+) `)
	deadline := time.Now().Add(30 * time.Second)
	for m.FindStringSubmatch(out.String()) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("sim printed no key-only sign-in:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	g := m.FindStringSubmatch(out.String())
	opts := learn.Options{HTTPClient: learn.NewHTTPClient(learn.DialerOptions{AllowPrivate: true}), AllowHTTP: true}
	if err := learn.CheckConnection(context.Background(), learn.Credentials{AccountURL: g[1], Email: g[2], ClientID: g[3], ClientSecret: g[4]}, opts); err != nil {
		t.Errorf("the printed API key: %v", err)
	}
	var ce *learn.CheckError
	if err := learn.CheckConnection(context.Background(), learn.Credentials{AccountURL: g[1], Email: g[2], Password: demoLearnPassword}, opts); !errors.As(err, &ce) || ce.Code != learn.CheckBadCredentials {
		t.Errorf("the password with -learn-key-only: %v, want it refused", err)
	}
}
