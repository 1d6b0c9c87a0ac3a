package main

import (
	"context"
	"fmt"
	"io"

	"b24learn/internal/config"
)

func runMigrate(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(getenv, false)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	pool, applied, err := openDatabase(ctx, cfg.DatabaseURL, log, true, cfg.Keyring)
	if err != nil {
		return err
	}
	defer pool.Close()
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
		return nil
	}
	fmt.Fprintf(stdout, "applied %d migrations: %v\n", len(applied), applied)
	return nil
}
