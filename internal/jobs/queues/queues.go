// Package queues names the app's River queues and how many jobs each works
// at once, and holds the uniqueness the job kinds share (WaitingOnce): the
// one place for all three. Each job kind names its queue and uniqueness in
// its InsertOpts (internal/jobs, internal/alert), so no caller can forget
// them.
//
// The queues keep work driven by servers a portal's admin chooses (the
// portal's Learn account, its Bitrix24) from starving the rest: a preview
// may run before iSpring activates the portal, so anyone who installs the
// free app can make its Learn server drip answers until the preview's
// timeout. Previews therefore have queues of their own with few workers,
// one for the portals iSpring activated and one for the others (so that two
// installs of anyone's cannot hold every preview worker of the paying
// portals); the activated portals' syncs have theirs; the jobs every tenant
// depends on whatever the others do (e-mails, lead forwarding, the
// dispatcher, maintenance's clean-ups) have the system queue; and the short
// jobs that call one portal's Bitrix24 (uninstall checks, the erase that
// asks Bitrix24 first, maintenance's per-portal checks) have PortalCalls. A
// self-hosted portal's REST address is its owner's to choose, and its
// server can hold each call until the deadline: a few such portals, each
// with a check pending, would otherwise hold every system worker, and every
// tenant's alert e-mails, lead forwarding and scheduled syncs would wait. A
// system job calls no server a portal chooses (the OAuth servers are the
// operator's fixed list, docs/bitrix24-api.md "Regional OAuth servers").
//
// It is a package of its own because internal/alert's job kinds need the
// names and internal/jobs imports internal/alert.
package queues

import (
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

const (
	// System works the short jobs that keep every tenant served; each is
	// bounded at a few minutes and calls only the operator's servers
	// (database, SMTP, the CRM webhook), never a portal's.
	System = "system"
	// PortalCalls works the jobs that call one portal's Bitrix24, whose
	// server may hang until the call's deadline, so they cannot hold the
	// system queue's workers. Each job calls one portal, so a hanging
	// portal holds one worker for its own deadline. Jobs of these kinds
	// queued in System by an earlier version still run there: a worker is
	// registered by kind, not by queue.
	PortalCalls = "portal_calls"
	// Sync works the activated portals' syncs and "Sync this employee". It
	// is River's default queue, so jobs queued by a version before the
	// queues were split still run.
	Sync = river.QueueDefault
	// Preview works the previews of the portals iSpring activated.
	Preview = "preview"
	// TrialPreview works the previews of the portals iSpring has not
	// activated (or suspended): anyone who installs the app has one.
	TrialPreview = "trial_preview"
)

// Config is every queue with its workers, for the River client that works
// jobs (serve, and the tests that run workers).
func Config() map[string]river.QueueConfig {
	return map[string]river.QueueConfig{
		System: {MaxWorkers: 4},
		// Few: whatever the portals' servers do, they hold at most these
		// workers and never a system job's.
		PortalCalls: {MaxWorkers: 4},
		Sync:        {MaxWorkers: 10},
		// Few: whatever the servers a preview reads do, they hold at most
		// these workers and never a sync's or a system job's.
		Preview:      {MaxWorkers: 2},
		TrialPreview: {MaxWorkers: 2},
	}
}

// Unfinished are River's states of jobs that may still run.
func Unfinished() []rivertype.JobState {
	return []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled,
	}
}

// WaitingOnce makes a job unique by its args among the unfinished ones: an
// insert while such a job waits or runs is skipped as its duplicate, and
// once it has finished a new one is queued.
func WaitingOnce() river.UniqueOpts {
	return river.UniqueOpts{ByArgs: true, ByState: Unfinished()}
}
