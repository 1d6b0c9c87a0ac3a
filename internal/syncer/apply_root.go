// The managers of the Learn root department, which Learn may not take.

package syncer

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"b24learn/internal/learn"
)

// rootRefusal is the status with which Learn refused the root's links, 0
// when err is no such refusal: whether Learn takes them, and with which
// status it refuses, is not known (docs/learn-api.md, "Unsettled
// behaviour"). A 403 here is about the root: the run's reads and earlier
// writes went through. The client's words for a 403 ("no API access") do
// not fit, so the report gives the status alone.
func rootRefusal(err error) int {
	var ae *learn.APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusForbidden || ae.Status == http.StatusConflict) {
		return ae.Status
	}
	return 0
}

// rootLinks sets the Learn root's links (step s) and reads them back. When
// Learn refuses them, or answers and keeps the root as it was, the step is
// reported refused and remembered (refusals.go) with the key of the wanted
// links: the plan does not send the same links again (linksKey).
func (a *applier) rootLinks(ctx context.Context, s Step) error {
	key := linksKey(s.Sub)
	if _, err := a.exec(ctx, s); err != nil {
		if status := rootRefusal(err); status != 0 && ctx.Err() == nil {
			return a.unkept(s, key, because(ReasonRootRefused, strconv.Itoa(status)))
		}
		return a.failed(ctx, s, err)
	}
	unread := false
	d, err := a.lc.GetDepartment(ctx, s.LearnID)
	switch {
	case err != nil && rootRefusal(err) == http.StatusForbidden && ctx.Err() == nil:
		// Learn took the write and will not show its root: a 403 about the
		// root, as on its links, not the account's access. Whether it kept
		// them is not known, so they are not sent again while they stay
		// the same; the next run's read shows the root as Learn lists it.
		a.log.Warn("root department not read back", slog.Int64("portal_id", a.portalID), slog.Any("error", err))
		unread = true
	case err != nil && fatal(ctx, err):
		return err
	case err != nil:
		// The write was answered as done: it counts as kept, and a later
		// run's read shows whether it was.
		a.log.Warn("root department not read back", slog.Int64("portal_id", a.portalID), slog.Any("error", err))
	case !a.holds(d.Subordination, s.Sub.Sub) || !a.holds(d.CoSubordination, s.Sub.CoSub):
		return a.unkept(s, key, because(ReasonRootUnkept))
	}
	it := RunItem{Kind: s.Kind, B24ID: s.B24ID, LearnID: s.LearnID, Action: s.Action, Before: s.Before,
		After: s.after(), Reason: s.Reason, Status: ItemApplied}
	rec := StepRecord{Item: it}
	if unread {
		rec.Refusal = &Refusal{Kind: s.Kind, B24ID: s.B24ID, Part: PartLinks, Fingerprint: key, Reason: because(ReasonRootUnread), Account: a.account}
	}
	if err := a.rec.record(rec); err != nil {
		return err
	}
	a.mu.Lock()
	a.counts[string(s.Kind)+"."+string(s.Action)]++
	a.mu.Unlock()
	return nil
}

// holds says whether the root's link, as read back, is what was sent for
// want (nil: not sent); an inherit or missing link reads as no manager
// (rootLink).
func (a *applier) holds(link *learn.Subordination, want *SubTarget) bool {
	if want == nil {
		return true
	}
	sent, err := a.sub(want)
	if err != nil {
		return false
	}
	return !differs(rootLink(fromLearnSub(link)), &SubTarget{Type: sent.Type, SupervisorLearnID: sent.SupervisorID})
}

// unkept reports the root's links as refused and remembers them by key.
func (a *applier) unkept(s Step, key string, reason Reasons) error {
	a.mu.Lock()
	a.counts[string(s.Kind)+"."+ItemRefused]++
	a.issues++
	a.mu.Unlock()
	a.log.Warn("learn did not keep the root department's managers", slog.Int64("portal_id", a.portalID),
		slog.String("learn_id", s.LearnID), slog.String("reason", reason.encode()))
	it := RunItem{Kind: s.Kind, B24ID: s.B24ID, LearnID: s.LearnID, Action: s.Action, Before: s.Before,
		After: s.after(), Reason: reason, Status: ItemRefused}
	return a.rec.record(StepRecord{Item: it, Refusal: &Refusal{Kind: s.Kind, B24ID: s.B24ID, Part: PartLinks, Fingerprint: key, Reason: reason, Account: a.account}})
}
