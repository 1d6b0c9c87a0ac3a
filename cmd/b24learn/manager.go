package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"b24learn/internal/config"
	"b24learn/internal/lead"
	"b24learn/internal/store"
)

const managerUsage = `Usage: b24learn manager add EMAIL

Creates an account for the /manager console. The password is read as one
line from standard input (a prompt is shown when it is a terminal), e.g.
  printf '%s\n' "$PASSWORD" | b24learn manager add anna@ispring.example
`

// runManager handles `manager add EMAIL`.
func runManager(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) != 2 || args[0] != "add" {
		_, _ = io.WriteString(stderr, managerUsage)
		return errors.New("manager: expected: manager add EMAIL")
	}
	email := args[1]
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			// No terminal library in the module: the typed password echoes.
			fmt.Fprintf(stderr, "Password for %s (at least %d characters; it will be visible as you type): ", email, lead.MinPasswordLen)
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return errors.New("manager add: no password on standard input")
	}
	password := strings.TrimRight(line, "\r\n")

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
	m, err := lead.CreateManager(ctx, pool, email, password)
	if err != nil {
		return fmt.Errorf("manager add: %w", err)
	}
	fmt.Fprintf(stdout, "manager %s created (id %d)\n", m.Email, m.ID)
	return nil
}
