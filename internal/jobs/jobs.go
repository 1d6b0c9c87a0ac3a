// Package jobs holds the River job kinds of the app and their workers: syncs
// (scheduled, manual, approved), previews, the dispatcher that turns the
// portals' UTC slots into sync jobs, and the forwarding of activation
// requests. Handlers insert jobs with these Args; workers call the domain
// packages (syncer, lead), never the other way round.
package jobs

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"b24learn/internal/config"
)

// Deps are what the workers need.
type Deps struct {
	Log    *slog.Logger
	Config *config.Config
	Pool   *pgxpool.Pool
}

// Trigger says why a sync runs.
type Trigger string

const (
	TriggerScheduled Trigger = "scheduled"
	TriggerManual    Trigger = "manual"
	TriggerApproved  Trigger = "approved"
)

// SyncArgs is one sync of one portal. Slot is set for scheduled runs (the
// UTC date and time of the slot, "2026-11-25T06:00Z") and makes the job
// unique per (portal, slot).
type SyncArgs struct {
	PortalID int64   `json:"portal_id"`
	Trigger  Trigger `json:"trigger"`
	Slot     string  `json:"slot,omitempty"`
}

func (SyncArgs) Kind() string { return "sync" }

// PreviewArgs computes the plan of the next sync without writing to Learn.
type PreviewArgs struct {
	PortalID int64 `json:"portal_id"`
}

func (PreviewArgs) Kind() string { return "sync_preview" }

// NewWorkers registers every worker of the app.
func NewWorkers(d Deps) (*river.Workers, error) {
	w := river.NewWorkers()
	return w, nil
}
