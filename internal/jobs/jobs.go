// Package jobs holds the River job kinds of the app and their workers: syncs
// (scheduled, manual, approved), previews, the dispatcher that turns the
// portals' UTC slots into sync jobs, and the forwarding of activation
// requests. Handlers insert jobs with these Args; workers call the domain
// packages (syncer, activation), never the other way round.
package jobs

import (
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"b24learn/internal/config"
	"b24learn/internal/connect"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/metrics"
	"b24learn/internal/syncer"
)

// Deps are what the workers need.
type Deps struct {
	Log    *slog.Logger
	Config *config.Config
	Pool   *pgxpool.Pool
	// Sync is the sync engine; nil registers no sync workers.
	Sync Syncer
	// FailuresBeforeAttention is how many failed sync attempts in a row mark
	// a portal "needs attention" (refused Learn credentials mark it at
	// once); 0 means 3.
	FailuresBeforeAttention int
	// BusySnooze is how long a sync waits while another sync of the portal
	// runs; 0 means 10 s.
	BusySnooze time.Duration
	// Metrics, when set, records every sync run's result, duration and
	// objects changed.
	Metrics *metrics.Metrics
	// SlotEvery, in the demo only, replaces every portal's run times with a
	// slot at each multiple of it, so a newcomer sees a scheduled run soon.
	SlotEvery time.Duration
	// Clients builds the portals' Bitrix24 clients for the uninstall checks
	// and the token keep-alive; pass the factory the syncs use. nil builds
	// one from Config.
	Clients *connect.Factory
}

// SyncArgs is a sync asked for from the settings page: "Sync now" (manual)
// or "Approve" of held deactivations (approved). Scheduled syncs are
// ScheduledSyncArgs. Pressing the button twice while a job waits gives one job.
type SyncArgs struct {
	PortalID int64          `json:"portal_id" river:"unique"`
	Trigger  syncer.Trigger `json:"trigger" river:"unique"`
	// HeldRun is the held run an approval approves, the one the admin saw
	// (0 in approvals queued before they named it: the newest held run).
	// An approval of a run held later is a job of its own.
	HeldRun int64 `json:"held_run,omitempty" river:"unique"`
}

func (SyncArgs) Kind() string { return "sync" }

func (SyncArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queues.Sync, MaxAttempts: syncMaxAttempts, UniqueOpts: queues.WaitingOnce()}
}

// PreviewArgs computes the plan of the next sync without writing to Learn.
type PreviewArgs struct {
	PortalID int64 `json:"portal_id" river:"unique"`
	// Trial: the portal is not activated, so the preview waits in the
	// trial queue (queues.TrialPreview) with the previews of anyone's
	// installs, not with the activated portals'.
	Trial bool `json:"trial,omitempty"`
}

func (PreviewArgs) Kind() string { return "sync_preview" }

func (a PreviewArgs) InsertOpts() river.InsertOpts {
	q := queues.Preview
	if a.Trial {
		q = queues.TrialPreview
	}
	return river.InsertOpts{Queue: q, MaxAttempts: previewMaxAttempts, UniqueOpts: queues.WaitingOnce()}
}

// periodicOnce, embedded in a periodic job's args, keeps at most one such
// job waiting: ticks that pile up while workers are busy are one tick. The
// periodic jobs (dispatcher, maintenance) insert with these options.
type periodicOnce struct{}

func (periodicOnce) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queues.System, UniqueOpts: queues.WaitingOnce()}
}

// NewWorkers registers every worker of the app.
func NewWorkers(d Deps) (*river.Workers, error) {
	r, err := register(d)
	if err != nil {
		return nil, err
	}
	return r.workers, nil
}

// registry is the workers with the args of their kinds, so a test can check
// every kind's queue (InsertOpts) without a list kept beside this one.
type registry struct {
	workers *river.Workers
	kinds   []kindArgs
}

// kindArgs is a job kind's args with its insert options.
type kindArgs interface {
	river.JobArgs
	river.JobArgsWithInsertOpts
}

// add registers one worker; its kind must have InsertOpts (its queue).
func add[T kindArgs](r *registry, w river.Worker[T]) {
	river.AddWorker(r.workers, w)
	var args T
	r.kinds = append(r.kinds, args)
}

func register(d Deps) (*registry, error) {
	r := &registry{workers: river.NewWorkers()}
	disp := &Dispatcher{Log: d.Log, Pool: d.Pool, CatchUpWindow: d.Config.CatchUpWindow, Now: time.Now, SlotEvery: d.SlotEvery}
	add(r, &DispatchWorker{Dispatcher: disp})
	clients := d.Clients
	if clients == nil {
		clients = connect.New(connect.Options{Pool: d.Pool, Keyring: d.Config.Keyring, Log: d.Log, OAuthServers: d.Config.OAuthServers(),
			Rate: d.Config.B24RateLimit, Burst: d.Config.B24Burst, AllowPrivateHosts: d.Config.LearnAllowPrivateHosts})
	}
	keep := &keepAlive{pool: d.Pool, clients: clients, log: d.Log}
	retain := &refusedRetention{pool: d.Pool, clients: clients, log: d.Log}
	add(r, &MaintenanceWorker{deps: d, now: time.Now, keep: keep, retain: retain})
	add(r, &PortalCheckWorker{log: d.Log, now: time.Now, keep: keep, retain: retain})
	add(r, NewUninstallCheckWorker(d.Pool, clients, d.Log))
	add(r, &UninstallEraseWorker{Pool: d.Pool, Clients: clients, Log: d.Log})
	if d.Sync != nil {
		sw := &syncWorkers{deps: d}
		add(r, &ScheduledSyncWorker{s: sw})
		add(r, &SyncWorker{s: sw})
		add(r, &PreviewWorker{s: sw})
		if ps, ok := d.Sync.(PersonSyncer); ok {
			add(r, &ProvisionWorker{s: sw, ps: ps})
		}
	}
	if err := addLeadWorker(r, d); err != nil {
		return nil, err
	}
	if err := addAlertWorker(r, d); err != nil {
		return nil, err
	}
	return r, nil
}

// PeriodicJobs are the jobs River inserts on a timer.
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{PeriodicDispatch(), periodicMaintenance()}
}
