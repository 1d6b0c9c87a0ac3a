package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/riverqueue/rivercontrib/otelriver"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"b24learn/internal/calllog"
	"b24learn/internal/config"
	"b24learn/internal/connect"
	"b24learn/internal/jobs"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/metrics"
	"b24learn/internal/server"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
	"b24learn/internal/tracing"
)

// httpDrainTimeout bounds the HTTP drain on shutdown; running jobs then get
// cfg.ShutdownTimeout to finish before they go back to the queue.
const httpDrainTimeout = 20 * time.Second

func runServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o serveOptions
	fs.BoolVar(&o.noHTTP, "no-http", false, "run only the River workers")
	fs.BoolVar(&o.noWorkers, "no-workers", false, "run only the HTTP server")
	fs.BoolVar(&o.noMigrate, "no-migrate", false, "do not apply migrations on start")
	addr := fs.String("addr", "", "listen address (overrides HTTP_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.noHTTP && o.noWorkers {
		return errors.New("serve: --no-http and --no-workers leave nothing to run")
	}
	cfg, err := config.Load(getenv, true)
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.HTTPAddr = *addr
	}
	return serve(ctx, cfg, newLogger(cfg, stderr), o)
}

type serveOptions struct {
	noHTTP, noWorkers, noMigrate bool
	// ready, when set, is called once the HTTP listener is up and the
	// workers have started, with the listener's address.
	ready func(addr string)
}

// serve runs the service until ctx ends, then shuts down in order: HTTP
// drains, running jobs finish within a bound or go back to the queue.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, o serveOptions) error {
	if !o.noWorkers {
		warnRescueBeforeSyncTimeout(cfg, log)
	}
	pool, _, err := openDatabase(ctx, cfg.DatabaseURL, log, !o.noMigrate, cfg.Keyring)
	if err != nil {
		return err
	}
	defer pool.Close()

	// Traces leave the process only when the OTEL_* variables name an
	// endpoint; otherwise the provider is a no-op and nothing is wrapped.
	tr, err := tracingFromEnv(ctx)
	if err != nil {
		return err
	}
	if tr.exporting() {
		log.Info("exporting traces over OTLP")
	}
	defer func() {
		// After the workers stopped: their last spans are in the batch.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tr.shutdown(sctx); err != nil {
			log.Warn("traces not all exported", "error", err)
		}
	}()

	calls := calllog.NewRecorder(pool, log)
	defer calls.Close()
	clients := connect.New(connect.Options{
		Pool: pool, Keyring: cfg.Keyring, CallLog: calls, Log: log,
		OAuthServers: cfg.OAuthServers(),
		Rate:         cfg.B24RateLimit, Burst: cfg.B24Burst, AllowPrivateHosts: cfg.LearnAllowPrivateHosts,
		B24AllowPrivateHosts: cfg.B24AllowPrivateHosts, Tracer: tr.provider,
	})
	m := metrics.New()
	riverClient, err := newRiverClient(pool, cfg, log, clients, m, tr.provider, o)
	if err != nil {
		return err
	}

	srvs := newServers()
	addr := ""
	if !o.noHTTP {
		addr, err = srvs.start("http", cfg.HTTPAddr, &http.Server{
			Handler: server.New(server.Deps{
				Log: log, Config: cfg, Pool: pool, River: riverClient, Metrics: m, Clients: clients, Context: ctx, Tracer: tr.provider,
			}),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		})
		if err != nil {
			return err
		}
		log.Info("http listening", "addr", addr)
	}
	// The private metrics listener runs in every role: workers export job
	// and queue metrics too.
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		maddr, err := srvs.start("metrics http", cfg.MetricsAddr, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second})
		if err != nil {
			srvs.close()
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		log.Info("metrics listening", "addr", maddr)
	}
	if !o.noWorkers {
		// Start gets a context of its own: cancelling ctx must not abort jobs
		// mid-write; shutdown hands them a bounded, orderly end.
		if err := riverClient.Start(context.WithoutCancel(ctx)); err != nil {
			srvs.close()
			if errors.Is(store.Ready(ctx, pool), store.ErrNotMigrated) {
				// --no-migrate on a database nobody migrated: River's missing
				// table is what fails first, and says nothing of the cause.
				return fmt.Errorf("the database is not migrated: run `b24learn migrate` (or serve without --no-migrate): %w", err)
			}
			return fmt.Errorf("start river: %w", err)
		}
		metrics.WatchRiver(ctx, m, riverClient)
		log.Info("workers started")
	}
	if o.ready != nil {
		o.ready(addr)
	}

	cause := srvs.wait(ctx)
	if cause == nil {
		log.Info("shutting down")
	} else {
		log.Error("stopping after error", "error", cause)
	}
	srvs.shutdown(httpDrainTimeout)
	if !o.noWorkers {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		err := riverClient.Stop(sctx)
		cancel()
		if err != nil {
			// Jobs still running are cancelled; River schedules them for a
			// retry so another process resumes them (syncs are resumable).
			log.Info("jobs did not finish in time; handing them back", "timeout", cfg.ShutdownTimeout)
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = riverClient.StopAndCancel(sctx)
			cancel()
		}
	}
	log.Info("stopped")
	return cause
}

// warnRescueBeforeSyncTimeout warns when River would rescue a sync that may
// still be running within its timeout: the rescued job is worked again while
// its first attempt goes on. Only a process with workers can be River's
// leader, which rescues.
func warnRescueBeforeSyncTimeout(cfg *config.Config, log *slog.Logger) {
	if cfg.JobRescueAfter <= jobs.SyncTimeout {
		log.Warn("JOB_RESCUE_AFTER is not longer than the sync timeout: River may rescue a sync that is still running and run it twice",
			"job_rescue_after", cfg.JobRescueAfter, "sync_timeout", jobs.SyncTimeout)
	}
}

// newRiverClient builds the River client: insert-only with --no-workers,
// otherwise with every worker and the periodic jobs. The workers record
// sync metrics in m; every role exports the queue depth. With tracing on,
// each job worked is a span (and each insert), the sync's spans its children.
func newRiverClient(pool *pgxpool.Pool, cfg *config.Config, log *slog.Logger, clients *connect.Factory, m *metrics.Metrics, tp trace.TracerProvider, o serveOptions) (*river.Client[pgx.Tx], error) {
	if err := m.RegisterQueueDepth(jobs.NewQueue(pool, nil), metrics.DefaultQueueTimeout, log); err != nil {
		return nil, fmt.Errorf("queue depth metric: %w", err)
	}
	riverLog := slog.New(newRepeatLimit(log.Handler(), riverLogEvery, time.Now))
	riverCfg := &river.Config{Logger: riverLog, RescueStuckJobsAfter: cfg.JobRescueAfter,
		JobTimeout: min(time.Minute, cfg.JobRescueAfter)}
	if tracing.On(tp) {
		riverCfg.Middleware = []rivertype.Middleware{otelriver.NewMiddleware(&otelriver.MiddlewareConfig{
			TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider(), // metrics are Prometheus's (internal/metrics)
			EnableWorkSpanJobKindSuffix: true,
		})}
	}
	if !o.noWorkers {
		sync := syncer.New(syncer.Config{
			Pool:     pool,
			Settings: syncer.DBSettings{Pool: pool, Keyring: cfg.Keyring},
			NewLearn: func(ctx context.Context, portalID int64, s syncer.Settings) (syncer.Learn, error) {
				return clients.Learn(portalID, s.LearnCredentials(), s.LearnAPIURL)
			},
			NewBitrix24: func(ctx context.Context, portalID int64) (syncer.Bitrix24, error) {
				return clients.Bitrix24(ctx, portalID)
			},
			Logger:      log,
			MaxParallel: cfg.LearnMaxParallel,
			Tracer:      tp,
		})
		workers, err := jobs.NewWorkers(jobs.Deps{Log: log, Config: cfg, Pool: pool, Sync: sync, Metrics: m,
			SlotEvery: cfg.DemoSlotEvery, FailuresBeforeAttention: cfg.FailuresBeforeAttention, Clients: clients})
		if err != nil {
			return nil, err
		}
		riverCfg.Queues = queues.Config()
		riverCfg.Workers = workers
		riverCfg.PeriodicJobs = jobs.PeriodicJobs()
	}
	c, err := river.NewClient(riverpgxv5.New(pool), riverCfg)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return c, nil
}
