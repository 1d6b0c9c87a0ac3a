package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"b24learn/internal/learn/learnsim"
)

// servers are the HTTP servers a command runs (serve, demo, sim): each
// serves in a goroutine of its own, the first failure is reported on wait,
// and shutdown drains them all.
type servers struct {
	errc chan error
	list []*http.Server
}

func newServers() *servers { return &servers{errc: make(chan error, 1)} }

// start listens on addr and serves srv there until shutdown; a serve
// failure is reported as "name: error". It returns the listener's address.
func (s *servers) start(name, addr string, srv *http.Server) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.list = append(s.list, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case s.errc <- fmt.Errorf("%s: %w", name, err):
			default: // the first failure already stops the command
			}
		}
	}()
	return ln.Addr().String(), nil
}

// wait blocks until ctx ends (nil) or a server fails (its error).
func (s *servers) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.errc:
		return err
	}
}

// shutdown drains every server within timeout.
func (s *servers) shutdown(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, srv := range s.list {
		_ = srv.Shutdown(ctx)
	}
}

// close stops every server at once.
func (s *servers) close() {
	for _, srv := range s.list {
		_ = srv.Close()
	}
}

// startLearnSim starts the Learn simulator of demo and sim on addr, with the
// demo account (demoLearnEmail) at accountURL, or at the listener's own URL
// when accountURL is "". MountBoth: the account URL serves the API under
// /api/v2, as an account on its own domain does; a Host of api-learn.* gets
// it at the root. It returns the account's URL.
func startLearnSim(srvs *servers, addr, accountURL, rootName string, o learnsim.Options) (string, error) {
	o.Mount = learnsim.MountBoth
	ls := learnsim.New(o)
	got, err := srvs.start("learn simulator", addr, &http.Server{Handler: ls.Handler(), ReadHeaderTimeout: 10 * time.Second})
	if err != nil {
		return "", fmt.Errorf("start learn simulator: %w", err)
	}
	if accountURL == "" {
		accountURL = "http://" + got
	}
	if _, err := ls.AddAccount(learnsim.AccountOptions{URL: accountURL, Email: demoLearnEmail, Password: demoLearnPassword, RootName: rootName,
		ClientID: demoLearnClientID, ClientSecret: demoLearnClientSecret}); err != nil {
		return "", err
	}
	return accountURL, nil
}

// learnSignIn is how the demo and sim tell the newcomer to sign in to the
// simulated account: with the e-mail and the password or the API key, or,
// when the account takes only the key, with the key.
func learnSignIn(keyOnly bool) string {
	key := fmt.Sprintf("API key: Client ID %s, Client Secret %s", demoLearnClientID, demoLearnClientSecret)
	if keyOnly {
		return fmt.Sprintf("e-mail %s and the %s (this Learn refuses the password: -learn-key-only)", demoLearnEmail, key)
	}
	return fmt.Sprintf("e-mail %s and password %s, or the %s", demoLearnEmail, demoLearnPassword, key)
}

// learnSimView is the simulator's page showing the account at learnURL.
func learnSimView(learnURL string) string {
	return learnURL + "/_sim/account?url=" + url.QueryEscape(learnURL)
}
