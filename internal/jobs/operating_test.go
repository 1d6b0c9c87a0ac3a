package jobs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"b24learn/internal/bitrix24"
	"b24learn/internal/syncer"
)

type failingSync struct{ err error }

func (f failingSync) Run(context.Context, int64, syncer.Trigger) (*syncer.Report, error) {
	return nil, f.err
}

func (f failingSync) RunApproved(context.Context, int64, int64) (*syncer.Report, error) {
	return nil, f.err
}

// A method Bitrix24 blocked for minutes puts the sync off until its reset
// time, spending no attempt, instead of keeping a worker asleep.
func TestOperatingLimitSnoozesUntilReset(t *testing.T) {
	t.Parallel()
	for _, wait := range []time.Duration{5 * time.Minute, 40 * time.Second} {
		op := &bitrix24.OperatingLimitError{Method: "user.get", ResetAt: time.Now().Add(wait),
			Err: &bitrix24.APIError{Code: "OPERATION_TIME_LIMIT", HTTPStatus: 429}}
		s := &syncWorkers{deps: Deps{Sync: failingSync{fmt.Errorf("read bitrix24: list users: %w", op)}}}
		_, err := s.sync(context.Background(), 1, syncer.TriggerScheduled, 0)
		var snooze *river.JobSnoozeError
		if !errors.As(err, &snooze) {
			t.Fatalf("reset in %v: err = %v, want a snooze", wait, err)
		}
		if snooze.Duration > wait || snooze.Duration < wait-5*time.Second {
			t.Fatalf("snoozed %v, want until the reset in %v", snooze.Duration, wait)
		}
	}
}

// A self-hosted portal names its own reset time, and a Learn server its own
// Retry-After: neither parks a portal's sync for more than an hour.
func TestRateLimitSnoozeIsBounded(t *testing.T) {
	t.Parallel()
	far := &bitrix24.OperatingLimitError{Method: "user.get", ResetAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	if d, ok := rateLimited(far); !ok || d > time.Hour {
		t.Fatalf("a reset in the year 9999 snoozes %v (%v)", d, ok)
	}
	soon := &bitrix24.OperatingLimitError{Method: "user.get", ResetAt: time.Now().Add(5 * time.Minute)}
	if d, ok := rateLimited(soon); !ok || d < 4*time.Minute || d > 5*time.Minute {
		t.Fatalf("a reset in 5 minutes snoozes %v (%v)", d, ok)
	}
}

// OVERLOAD_LIMIT is a block Bitrix24's support sets by hand: the sync is not
// snoozed to ask again each minute, it fails and River spaces its attempts
// (docs/bitrix24-api.md, "Errors"). The request-rate and operating limits
// still snooze.
func TestOverloadLimitIsNotSnoozed(t *testing.T) {
	t.Parallel()
	blocked := fmt.Errorf("read org: %w", &bitrix24.APIError{Code: "overload_limit", HTTPStatus: 503})
	if d, ok := rateLimited(blocked); ok {
		t.Errorf("OVERLOAD_LIMIT snoozed %v", d)
	}
	busy := fmt.Errorf("read org: %w", &bitrix24.APIError{Code: "QUERY_LIMIT_EXCEEDED", HTTPStatus: 503})
	if _, ok := rateLimited(busy); !ok {
		t.Error("QUERY_LIMIT_EXCEEDED not snoozed")
	}
}
