package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/config"
	"b24learn/internal/manager"
	"b24learn/internal/store"
)

const managerUsage = `Usage: b24learn manager add [--require-totp] EMAIL
       b24learn manager password EMAIL
       b24learn manager disable EMAIL
       b24learn manager enable EMAIL
       b24learn manager reset-totp EMAIL
       b24learn manager list

add creates an account for the /manager console. The password is read as one
line from standard input (a prompt is shown when it is a terminal), e.g.
  printf '%s\n' "$PASSWORD" | b24learn manager add anna@ispring.example
With --require-totp the manager must set up an authenticator app (two-step
sign-in) at the first sign-in before using the console.

password sets a new password, read as add reads it, and ends every console
session of the account.

disable stops the account from signing in (it gets the answer of a wrong
password) and ends every session of it at once; enable lets it sign in again
(its old sessions stay ended).

reset-totp removes a manager's authenticator (a lost phone); the password
alone signs in again until a new one is set up. It ends the account's
sessions too.

list shows every account: e-mail, when it was created, its last sign-in,
two-step sign-in, disabled.

Each change is written to the console's audit trail as done by "cli". An
unknown e-mail changes nothing and exits with an error.
`

// runManager handles the `manager` subcommands: add, password, disable,
// enable, reset-totp and list.
func runManager(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	var (
		cmd         string
		requireTOTP bool
	)
	if len(args) > 0 {
		cmd = args[0]
	}
	rest := args[min(1, len(args)):]
	if cmd == "add" && len(rest) == 2 && rest[0] == "--require-totp" {
		requireTOTP, rest = true, rest[1:]
	}
	var usageErr error
	switch cmd {
	case "list":
		if len(rest) != 0 {
			usageErr = errors.New("manager list: takes no arguments")
		}
	case "add", "password", "disable", "enable", "reset-totp":
		if len(rest) != 1 || strings.HasPrefix(rest[0], "-") {
			usageErr = fmt.Errorf("manager %s: expected one EMAIL", cmd)
		}
	default:
		usageErr = errors.New("manager: expected add, password, disable, enable, reset-totp or list")
	}
	if usageErr != nil {
		_, _ = io.WriteString(stderr, managerUsage)
		return usageErr
	}
	var email string
	if len(rest) == 1 {
		email = rest[0]
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
		return fmt.Errorf("manager %s: %w", cmd, err)
	}
	now := time.Now()
	// failed is the command's error for an account call's: an unknown
	// e-mail says so.
	failed := func(err error) error {
		if errors.Is(err, manager.ErrNotFound) {
			return fmt.Errorf("manager %s: no manager %q", cmd, email)
		}
		return fmt.Errorf("manager %s: %w", cmd, err)
	}

	switch cmd {
	case "list":
		return listManagers(ctx, pool, stdout)
	case "reset-totp":
		if err := manager.ResetTOTP(ctx, pool, email, now); err != nil {
			return failed(err)
		}
		fmt.Fprintf(stdout, "two-step sign-in of %s removed; their console sessions ended\n", shown(email))
		return nil
	case "disable", "enable":
		disable := cmd == "disable"
		changed, err := manager.SetDisabled(ctx, pool, email, disable, now)
		if err != nil {
			return failed(err)
		}
		switch {
		case !changed:
			fmt.Fprintf(stdout, "manager %s was already %sd; nothing changed\n", shown(email), cmd)
		case disable:
			fmt.Fprintf(stdout, "manager %s disabled; their console sessions ended\n", shown(email))
		default:
			fmt.Fprintf(stdout, "manager %s enabled; they can sign in again\n", shown(email))
		}
		return nil
	case "password":
		// Asked only of an account that exists, so nobody types a password
		// for nothing; ChangePassword checks again under its transaction.
		if _, err := manager.FindAccount(ctx, pool, email); err != nil {
			return failed(err)
		}
		password, err := readPassword(stdin, stderr, email)
		if err != nil {
			return fmt.Errorf("manager password: %w", err)
		}
		if err := manager.ChangePassword(ctx, pool, manager.DefaultHasher(), email, password, now); err != nil {
			return failed(err)
		}
		fmt.Fprintf(stdout, "password of %s changed; their console sessions ended\n", shown(email))
		return nil
	}

	password, err := readPassword(stdin, stderr, email)
	if err != nil {
		return fmt.Errorf("manager add: %w", err)
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
	fmt.Fprintf(stdout, "manager %s created (id %d)%s\n", shown(m.Email), m.ID, note)
	return nil
}

// readPassword reads one line of stdin as the password of email, with a
// prompt when stdin is a terminal.
func readPassword(stdin io.Reader, stderr io.Writer, email string) (string, error) {
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			// No terminal library in the module: the typed password echoes.
			fmt.Fprintf(stderr, "Password for %s (at least %d characters; it will be visible as you type): ", shown(email), manager.MinPasswordLen)
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// listManagers prints every account as a table; no hash or secret is read.
func listManagers(ctx context.Context, db store.DBTX, stdout io.Writer) error {
	accounts, err := manager.ListAccounts(ctx, db)
	if err != nil {
		return fmt.Errorf("manager list: %w", err)
	}
	if len(accounts) == 0 {
		_, err := io.WriteString(stdout, "no manager accounts\n")
		return err
	}
	const at = "2006-01-02 15:04"
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tCREATED (UTC)\tLAST SIGN-IN (UTC)\tTWO-STEP\tDISABLED")
	for _, a := range accounts {
		last := "never"
		if !a.LastSignIn.IsZero() {
			last = a.LastSignIn.UTC().Format(at)
		}
		totp := "off"
		switch {
		case a.TOTP:
			totp = "on"
		case a.TOTPRequired:
			totp = "off (required)"
		}
		disabled := "no"
		if a.Disabled {
			disabled = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shown(a.Email), a.CreatedAt.UTC().Format(at), last, totp, disabled)
	}
	return tw.Flush()
}

// shown is an e-mail as it goes to the terminal: quoted when it holds
// anything but printable characters, so a stored address cannot move the
// cursor or hide the rest of a line.
func shown(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}
