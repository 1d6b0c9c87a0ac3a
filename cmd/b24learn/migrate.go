package main

import (
	"context"
	"fmt"
	"io"

	"b24learn/internal/config"
	"b24learn/internal/store"
)

func runMigrate(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(getenv, false)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if err := store.CreateDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	pool, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := store.Migrate(ctx, pool, log)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
		return nil
	}
	fmt.Fprintf(stdout, "applied %d migrations: %v\n", len(applied), applied)
	return nil
}
