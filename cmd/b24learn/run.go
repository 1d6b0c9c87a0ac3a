package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"b24learn/internal/config"
	"b24learn/internal/tracing"
)

const usage = `b24learn — Bitrix24 → iSpring Learn sync

Usage:
  b24learn serve [--no-http] [--no-workers] [--no-migrate] [--addr :8080]
  b24learn migrate
  b24learn demo
  b24learn sim [flags]
  b24learn manager add [--require-totp] EMAIL
  b24learn manager password EMAIL
  b24learn manager disable EMAIL
  b24learn manager enable EMAIL
  b24learn manager reset-totp EMAIL
  b24learn manager list

Configuration comes from environment variables; see README.md.
`

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stderr)
	case "migrate":
		return runMigrate(ctx, getenv, stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], getenv, stdout, stderr)
	case "sim":
		return runSim(ctx, args[1:], stdout, stderr)
	case "manager":
		return runManager(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// newLogger builds the process logger from LOG_FORMAT and LOG_LEVEL.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	// Lines logged within a traced request or job carry its trace id.
	if cfg.LogFormat == "json" {
		return slog.New(tracing.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(tracing.LogHandler(slog.NewTextHandler(w, opts)))
}
