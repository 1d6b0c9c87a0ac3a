// Users waiting for a Learn licence: which ones a run retries, and the read-back that finds them.

package syncer

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"b24learn/internal/learn"
)

// licenceRetries picks the users waiting for a licence whose reactivation
// this run tries: those not tried for LicenceRetryEvery, plus, when Learn's
// active count went down since the last run, as many more as seats came free.
func (s *Syncer) licenceRetries(ctx context.Context, portalID int64, learnActive int) (map[int64]bool, error) {
	waits, err := s.store.LicenceWaits(ctx, portalID)
	if err != nil || len(waits) == 0 {
		return nil, err
	}
	prev, ok, err := s.store.LastLearnActive(ctx, portalID)
	if err != nil {
		return nil, err
	}
	free := 0
	if ok && learnActive < prev {
		free = prev - learnActive
	}
	now := s.cfg.Now()
	out := map[int64]bool{}
	for _, w := range waits {
		if now.Sub(w.Tried) >= LicenceRetryEvery {
			out[w.B24ID] = true
		}
	}
	for _, w := range waits { // longest waiting first
		if free == 0 {
			break
		}
		if !out[w.B24ID] {
			out[w.B24ID] = true
			free--
		}
	}
	return out, nil
}

// readBackParallel is how many read-back listings go out at once, or the
// account's write limit when that is higher and the account refused none of
// this process's writes (it took that many requests at once).
const readBackParallel = 8

func (a *applier) readBackParallel() int {
	if a.lim == nil {
		return readBackParallel
	}
	if st := a.lim.Stats(); st.Drops == 0 {
		return max(readBackParallel, st.Limit)
	}
	return readBackParallel
}

// licenceOutcome reads back the users this run created or reactivated: past
// its plan Learn keeps them inactive without an error (docs/learn-api.md,
// "Plan limit"). It records who waits for a licence now, and Learn's active
// count once this run's activations are done, and returns the report rows of
// the users that wait.
func (s *Syncer) licenceOutcome(ctx context.Context, portalID, runID int64, lc Learn, plan *Plan, a *applier, learnActive int) ([]RunItem, error) {
	var items []RunItem
	var waiting []int64
	for _, st := range plan.Waiting {
		items = append(items, itemOf(st, ItemWaiting))
		waiting = append(waiting, st.B24ID)
	}
	waiting = append(waiting, a.refusedActivation...)
	tried := a.tried
	if n := len(a.createdUsers) + len(a.reactivated); n > 0 {
		// The Learn ids sorted, and by position the Bitrix24 user each
		// stands for, found by search (100,000 creates: no second map).
		ids := make([]string, 0, n)
		for _, id := range a.activated() {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		b24s := make([]int64, len(ids))
		for b24, id := range a.activated() {
			i, _ := slices.BinarySearch(ids, id)
			b24s[i] = b24
		}
		byLearn := func(id string) (int64, bool) {
			i, ok := slices.BinarySearch(ids, id)
			if !ok {
				return 0, false
			}
			return b24s[i], true
		}
		// In chunks, so the ids fit in the request's address; several at
		// once (reads do not take write permits), their outcomes kept in
		// chunk order.
		chunks := slices.Collect(slices.Chunk(ids, bulkSize))
		type backRead struct {
			active         int
			waiting, tried []int64
			items          []RunItem
		}
		outs := make([]backRead, len(chunks))
		idx := make([]int, len(chunks))
		for i := range idx {
			idx[i] = i
		}
		err := learn.Parallel(ctx, a.readBackParallel(), idx, func(ctx context.Context, i int) error {
			o := &outs[i]
			return lc.ListUsersWithin(ctx, learn.UserFilter{UserIDs: chunks[i]}, learn.LimitsFor(len(chunks[i])), func(page []learn.User) error {
				for _, u := range page {
					b24, ok := byLearn(u.ID)
					if !ok {
						continue
					}
					if u.Status == StatusActive {
						o.active++
						continue
					}
					o.waiting = append(o.waiting, b24)
					o.tried = append(o.tried, b24)
					o.items = append(o.items, RunItem{Kind: KindUser, B24ID: b24, LearnID: u.ID, Action: ActionReactivate,
						Before: map[string]string{"status": strconv.Itoa(u.Status)}, After: map[string]string{"status": strconv.Itoa(u.Status)},
						Reason: because(ReasonLicence), Status: ItemWaiting})
				}
				return nil
			})
		})
		if err != nil {
			return nil, fmt.Errorf("read back activated learn users: %w", err)
		}
		for _, o := range outs {
			learnActive += o.active
			waiting = append(waiting, o.waiting...)
			tried = append(tried, o.tried...)
			items = append(items, o.items...)
		}
	}
	// This run's deactivations are not subtracted: the count is the one at
	// which the plan was seen full, so the seats they free show as a drop at
	// the next run.
	if err := s.store.SetLicenceWaits(ctx, portalID, waiting, tried, s.cfg.Now()); err != nil {
		return nil, err
	}
	if err := s.store.SetLearnActive(ctx, portalID, runID, learnActive); err != nil {
		return nil, err
	}
	return items, nil
}
