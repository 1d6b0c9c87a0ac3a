package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"b24learn/internal/config"
	"b24learn/internal/jobs"
	"b24learn/internal/metrics"
	"b24learn/internal/server"
	"b24learn/internal/store"
)

// Shutdown bounds: HTTP drains first, then running jobs get time to finish
// before they are cancelled and go back to the queue for another process.
const (
	httpDrainTimeout = 20 * time.Second
	jobFinishTimeout = 60 * time.Second
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	noHTTP := fs.Bool("no-http", false, "run only the River workers")
	noWorkers := fs.Bool("no-workers", false, "run only the HTTP server")
	noMigrate := fs.Bool("no-migrate", false, "do not apply migrations on start")
	addr := fs.String("addr", "", "listen address (overrides HTTP_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *noHTTP && *noWorkers {
		return errors.New("serve: --no-http and --no-workers leave nothing to run")
	}
	cfg, err := config.Load(getenv, true)
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.HTTPAddr = *addr
	}
	log := newLogger(cfg, stderr)

	if !*noMigrate {
		if err := store.CreateDatabase(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}
	pool, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if !*noMigrate {
		if _, err := store.Migrate(ctx, pool, log); err != nil {
			return err
		}
	}

	m := metrics.New()
	riverCfg := &river.Config{Logger: log}
	if !*noWorkers {
		riverCfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}}
		workers, err := jobs.NewWorkers(jobs.Deps{Log: log, Config: cfg, Pool: pool})
		if err != nil {
			return err
		}
		riverCfg.Workers = workers
		riverCfg.PeriodicJobs = jobs.PeriodicJobs()
	}
	riverClient, err := river.NewClient[pgx.Tx](riverpgxv5.New(pool), riverCfg)
	if err != nil {
		return fmt.Errorf("river client: %w", err)
	}

	errc := make(chan error, 2)
	var httpServer *http.Server
	if !*noHTTP {
		httpServer = &http.Server{
			Addr: cfg.HTTPAddr,
			Handler: server.New(server.Deps{
				Log: log, Config: cfg, Pool: pool, River: riverClient, Metrics: m,
			}),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		}
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
		}
		log.Info("http listening", "addr", ln.Addr().String())
		go func() {
			if err := httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http: %w", err)
			}
		}()
	}
	if !*noWorkers {
		// Start gets a context of its own: cancelling ctx must not abort jobs
		// mid-write; Stop below hands them a bounded, orderly end.
		if err := riverClient.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("start river: %w", err)
		}
		metrics.WatchRiver(ctx, m, riverClient)
		log.Info("workers started")
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		log.Error("stopping after error", "error", err)
		return shutdown(log, httpServer, riverClient, !*noWorkers, err)
	}
	return shutdown(log, httpServer, riverClient, !*noWorkers, nil)
}

func shutdown(log interface{ Info(string, ...any) }, hs *http.Server, rc *river.Client[pgx.Tx], workers bool, cause error) error {
	if hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), httpDrainTimeout)
		_ = hs.Shutdown(ctx)
		cancel()
	}
	if workers {
		ctx, cancel := context.WithTimeout(context.Background(), jobFinishTimeout)
		err := rc.Stop(ctx)
		cancel()
		if err != nil {
			// Jobs still running are cancelled; River marks them for retry so
			// another process resumes them (syncs are resumable).
			log.Info("jobs did not finish in time; cancelling them", "timeout", jobFinishTimeout)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = rc.StopAndCancel(ctx)
			cancel()
		}
	}
	log.Info("stopped")
	return cause
}
