package learn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/learn/learnsim"
)

func TestNewPassword(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 200 {
		p := newPassword()
		if len(p) != passwordLen {
			t.Fatalf("%d characters, want %d", len(p), passwordLen)
		}
		for _, class := range []string{passwordUpper, passwordLower, passwordDigits, passwordSymbols} {
			if !strings.ContainsAny(p, class) {
				t.Fatalf("no character of %q", class)
			}
		}
		if seen[p] {
			t.Fatal("the same password twice")
		}
		seen[p] = true
	}
}

// passwordEnv is a client against learnsim with sent passwords recorded and
// each refused user create counted.
type passwordEnv struct {
	sim       *learnsim.Sim
	c         *Client
	dept      string
	refused   atomic.Int32
	mu        sync.Mutex
	passwords []string
}

// newPasswordEnv serves the simulator through wrap (nil: directly).
func newPasswordEnv(t *testing.T, un learnsim.Unsettled, logger *slog.Logger, wrap func(h http.Handler, passwordSent bool, w http.ResponseWriter, r *http.Request)) *passwordEnv {
	t.Helper()
	e := &passwordEnv{sim: learnsim.New(learnsim.Options{Seed: 3, Unsettled: un})}
	root, err := e.sim.AddAccount(learnsim.AccountOptions{URL: testAccount, Email: testEmail, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	if e.dept, err = e.sim.SeedDepartment(testAccount, "Sales", root, ""); err != nil {
		t.Fatal(err)
	}
	h := e.sim.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent := false
		if r.Method == http.MethodPost && r.URL.Path == "/user" {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var nu struct{ Password string }
			_ = json.Unmarshal(body, &nu)
			if sent = nu.Password != ""; sent {
				e.mu.Lock()
				e.passwords = append(e.passwords, nu.Password)
				e.mu.Unlock()
			}
		}
		if wrap != nil {
			wrap(h, sent, w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	retry := fastRetry
	retry.Timeout = 300 * time.Millisecond
	e.c, err = New(Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword}, Options{
		BaseURL: srv.URL, AllowHTTP: true, Retry: retry, Logger: logger,
		OnCall: func(c Call) {
			if c.Route == "/user" && c.Status == http.StatusBadRequest {
				e.refused.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// sent returns the passwords sent so far.
func (e *passwordEnv) sent() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.passwords)
}

func (e *passwordEnv) user(login string) NewUser {
	return NewUser{DepartmentID: e.dept, Fields: Fields{FieldLogin: login, FieldFirstName: "A", FieldLastName: "B"}}
}

func (e *passwordEnv) hasPassword(t *testing.T, login string) bool {
	t.Helper()
	st, err := e.sim.Snapshot(testAccount)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := st.UserByLogin(login)
	if !ok {
		t.Fatalf("no user %s", login)
	}
	return u.HasPassword
}

// TestCreateUserWhenPasswordRequired: an account that refuses a user without
// a password gets one, with its refusal worded or terse; the refusal is met
// once per client, not once per create.
func TestCreateUserWhenPasswordRequired(t *testing.T) {
	t.Parallel()
	for _, terse := range []bool{false, true} {
		t.Run(fmt.Sprintf("terse=%v", terse), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newPasswordEnv(t, learnsim.Unsettled{PasswordRequired: true, TerseErrors: terse}, nil, nil)
			for i, login := range []string{"a@acme.ru", "b@acme.ru", "c@acme.ru"} {
				if _, err := e.c.CreateUser(ctx, e.user(login)); err != nil {
					t.Fatalf("create %s: %v", login, err)
				}
				if !e.hasPassword(t, login) {
					t.Errorf("%s created without a password", login)
				}
				if n := e.refused.Load(); n != 1 {
					t.Errorf("after create %d: %d refused creates, want 1", i+1, n)
				}
			}
			// A refusal that is not about the password is not sent again
			// when Learn says so; a terse one is, once, and fails the same.
			e.c.sendPassword.Store(false)
			e.refused.Store(0)
			var ve *ValidationError
			_, err := e.c.CreateUser(ctx, NewUser{DepartmentID: e.dept, Fields: Fields{FieldLogin: "d@acme.ru", FieldFirstName: "D"}})
			want := int32(1)
			if terse {
				want = 2
			}
			if !errors.As(err, &ve) || e.refused.Load() != want {
				t.Errorf("missing last_name: %v after %d refused creates, want a validation error after %d", err, e.refused.Load(), want)
			}
			if e.c.sendPassword.Load() {
				t.Error("a refusal about another field made the client send passwords")
			}
		})
	}
}

// TestCreateUserSendsNoPasswordByDefault: where Learn takes a user without a
// password, none is sent, so the account's invitation can set it.
func TestCreateUserSendsNoPasswordByDefault(t *testing.T) {
	t.Parallel()
	e := newPasswordEnv(t, learnsim.Unsettled{}, nil, nil)
	if _, err := e.c.CreateUser(context.Background(), e.user("a@acme.ru")); err != nil {
		t.Fatal(err)
	}
	if e.hasPassword(t, "a@acme.ru") || len(e.sent()) != 0 || e.refused.Load() != 0 {
		t.Errorf("password sent: %d times, %d refused creates", len(e.sent()), e.refused.Load())
	}
}

// TestCreateUserWithPasswordAfterLostAnswer: the create sent again with a
// password is applied but its answer is lost; the client finds the user by
// login instead of creating it twice.
func TestCreateUserWithPasswordAfterLostAnswer(t *testing.T) {
	t.Parallel()
	var lost atomic.Int32
	e := newPasswordEnv(t, learnsim.Unsettled{PasswordRequired: true, TerseErrors: true}, nil,
		func(h http.Handler, passwordSent bool, w http.ResponseWriter, r *http.Request) {
			if passwordSent && lost.Add(1) == 1 {
				h.ServeHTTP(httptest.NewRecorder(), r) // applied...
				<-r.Context().Done()                   // ...and the client times out waiting
				return
			}
			h.ServeHTTP(w, r)
		})
	id, err := e.c.CreateUser(context.Background(), e.user("a@acme.ru"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := e.sim.Snapshot(testAccount)
	if u, ok := st.UserByLogin("a@acme.ru"); len(st.Users) != 2 || !ok || u.ID != id || !u.HasPassword {
		t.Errorf("users %+v, want the owner and %s with a password", st.Users, id)
	}
}

// TestGeneratedPasswordStaysSecret: neither an error's text nor a log line
// carries a generated password, even when Learn echoes it in a refusal.
func TestGeneratedPasswordStaysSecret(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var calls atomic.Int32
	e := newPasswordEnv(t, learnsim.Unsettled{PasswordRequired: true}, logger,
		func(h http.Handler, passwordSent bool, w http.ResponseWriter, r *http.Request) {
			if passwordSent && calls.Add(1) == 2 {
				var nu struct{ Password string }
				body, _ := io.ReadAll(r.Body)
				_ = json.Unmarshal(body, &nu)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]any{"code": 400, "message": "Invalid value " + nu.Password + ". Field password is too weak."})
				return
			}
			h.ServeHTTP(w, r)
		})
	ctx := context.Background()
	if _, err := e.c.CreateUser(ctx, e.user("a@acme.ru")); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.CreateUser(ctx, e.user("b@acme.ru"))
	if err == nil {
		t.Fatal("the echoing refusal was not reported")
	}
	if !strings.Contains(RemoteMessage(err), "[password]") {
		t.Errorf("remote message %q, want the password hidden", RemoteMessage(err))
	}
	_, dup := e.c.CreateUser(ctx, e.user("a@acme.ru"))
	if !errors.Is(dup, ErrDuplicate) {
		t.Errorf("duplicate: %v", dup)
	}
	sent := e.sent()
	if len(sent) != 3 {
		t.Fatalf("%d passwords sent, want 3", len(sent))
	}
	for _, pw := range sent {
		for what, text := range map[string]string{"error": err.Error(), "remote message": RemoteMessage(err),
			"duplicate": fmt.Sprintf("%+v %s", dup, RemoteMessage(dup)), "log": logs.String()} {
			if strings.Contains(text, pw) {
				t.Errorf("the %s holds a password: %s", what, text)
			}
		}
	}
	if !strings.Contains(logs.String(), "without a password") {
		t.Errorf("the switch to passwords was not logged: %s", logs.String())
	}
}
