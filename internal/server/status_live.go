package server

import (
	"context"
	"time"

	"b24learn/internal/i18n"
	"b24learn/internal/jobs"
)

// The status panel says what the portal's unfinished sync or preview job is
// doing, so progress shows while the page polls GET /app/status.

// portalJob is the portal's unfinished sync or preview job.
type portalJob struct {
	Kind        string // sync, sync_scheduled, sync_preview
	State       string // River's: available, running, scheduled, retryable, pending
	ScheduledAt time.Time
	attempted   bool // run before: a scheduled job was snoozed
}

// previewItems bounds the rows of a preview the panel shows; the whole
// report is one click away.
const previewItems = 50

// portalSyncJob returns the portal's unfinished sync or preview job, a
// running one first, or nil.
func portalSyncJob(ctx context.Context, q *jobs.Queue, portalID int64) (*portalJob, error) {
	j, err := q.PortalSyncJob(ctx, portalID)
	if j == nil || err != nil {
		return nil, err
	}
	return &portalJob{Kind: j.Kind, State: string(j.State), ScheduledAt: j.ScheduledAt, attempted: j.AttemptedAt != nil}, nil
}

// busy says whether the page should ask again soon: the job runs or waits
// to, or is due within a minute.
func (j *portalJob) busy(now time.Time) bool {
	switch j.State {
	case "running", "available", "pending":
		return true
	}
	return j.ScheduledAt.Before(now.Add(time.Minute))
}

// jobText says what the job is doing, in lang.
func jobText(j *portalJob, lang i18n.Lang) string {
	preview := j.Kind == jobs.PreviewArgs{}.Kind()
	switch {
	case j.State == "running" && preview:
		return msgJobRunPreview.in(lang)
	case j.State == "running":
		return msgJobRunningSync.in(lang)
	case j.State == "retryable":
		return msgJobRetry.in(lang) + " " + j.ScheduledAt.UTC().Format("15:04:05") + " UTC"
	case j.State == "scheduled" && j.attempted:
		// Snoozed: another sync of the portal holds its lock.
		return msgJobWaiting.in(lang)
	case preview:
		return msgJobQueuedPreview.in(lang)
	default:
		return msgJobQueuedSync.in(lang)
	}
}
