package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/config"
	"b24learn/internal/manager"
	"b24learn/internal/store"
)

const managerUsage = `Usage: b24learn manager add [--require-totp] EMAIL
       b24learn manager reset-totp EMAIL

add creates an account for the /manager console. The password is read as one
line from standard input (a prompt is shown when it is a terminal), e.g.
  printf '%s\n' "$PASSWORD" | b24learn manager add anna@ispring.example
With --require-totp the manager must set up an authenticator app (two-step
sign-in) at the first sign-in before using the console.

reset-totp removes a manager's authenticator (a lost phone); the password
alone signs in again until a new one is set up.
`

// runManager handles `manager add [--require-totp] EMAIL` and
// `manager reset-totp EMAIL`.
func runManager(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	var (
		cmd         string
		email       string
		requireTOTP bool
	)
	if len(args) > 0 {
		cmd = args[0]
	}
	rest := args[min(1, len(args)):]
	if cmd == "add" && len(rest) == 2 && rest[0] == "--require-totp" {
		requireTOTP, rest = true, rest[1:]
	}
	if (cmd != "add" && cmd != "reset-totp") || len(rest) != 1 || strings.HasPrefix(rest[0], "-") {
		_, _ = io.WriteString(stderr, managerUsage)
		return errors.New("manager: expected: manager add [--require-totp] EMAIL, or manager reset-totp EMAIL")
	}
	email = rest[0]
	var password string
	if cmd == "add" {
		if f, ok := stdin.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				// No terminal library in the module: the typed password echoes.
				fmt.Fprintf(stderr, "Password for %s (at least %d characters; it will be visible as you type): ", email, manager.MinPasswordLen)
			}
		}
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return errors.New("manager add: no password on standard input")
		}
		password = strings.TrimRight(line, "\r\n")
	}

	cfg, err := config.Load(getenv, false)
	if err != nil {
		return err
	}
	pool, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := store.Ready(ctx, pool); err != nil {
		return fmt.Errorf("manager add: %w", err)
	}
	if cmd == "reset-totp" {
		err := manager.ResetTOTP(ctx, pool, email, time.Now())
		if errors.Is(err, manager.ErrNotFound) {
			return fmt.Errorf("manager reset-totp: no manager %q", email)
		}
		if err != nil {
			return fmt.Errorf("manager reset-totp: %w", err)
		}
		fmt.Fprintf(stdout, "two-step sign-in of %s removed; their console sessions ended\n", email)
		return nil
	}
	var m *manager.Manager
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		if m, err = manager.CreateManager(ctx, tx, manager.DefaultHasher(), email, password); err != nil {
			return err
		}
		if requireTOTP {
			return manager.SetTOTPRequired(ctx, tx, m.ID, true)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("manager add: %w", err)
	}
	note := ""
	if requireTOTP {
		note = "; two-step sign-in required at the first sign-in"
	}
	fmt.Fprintf(stdout, "manager %s created (id %d)%s\n", m.Email, m.ID, note)
	return nil
}
