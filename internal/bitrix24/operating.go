package bitrix24

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Bitrix24 limits each method's execution time ("operating" time) per app:
// past the limit, calls of that method, plain or inside a batch, get HTTP 429
// OPERATION_TIME_LIMIT until the time the method's earlier answers named in
// time.operating_reset_at, while other methods keep working
// (docs/bitrix24-api.md, "Operating time limit"). The client keeps, per
// method, the reset time last announced and the time a blocked method is
// free again, waits for a short block and reports a long one as
// *OperatingLimitError, so that a background job can be put off until the
// reset instead of holding a worker.

// operatingMargin is added to a reset time against clock skew between us and
// Bitrix24: a call a second late costs nothing, one too early is refused again.
const operatingMargin = time.Second

// maxOperatingBlock caps a block: Bitrix24 counts operating time over ten
// minutes, so a reset further away than that is not believed.
const maxOperatingBlock = 10*time.Minute + operatingMargin

// OperatingLimitError says Bitrix24 blocked Method by its operating time
// limit until ResetAt, longer than the client waits. It matches
// ErrOperationTimeLimit with errors.Is.
type OperatingLimitError struct {
	Method  string
	ResetAt time.Time
	Err     error // Bitrix24's answer
}

func (e *OperatingLimitError) Error() string {
	return fmt.Sprintf("bitrix24: %s is blocked by the operating time limit until %s", e.Method,
		e.ResetAt.UTC().Format(time.RFC3339))
}

func (e *OperatingLimitError) Unwrap() error { return e.Err }

// methodKey is a method's name as Bitrix24 compares it.
func methodKey(method string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(method)), ".json")
}

// noteTime records the reset time an answer of method announced.
func (c *Client) noteTime(method string, t Time) {
	if t.OperatingResetAt <= 0 {
		return
	}
	c.opMu.Lock()
	c.opReset[methodKey(method)] = time.Unix(t.OperatingResetAt, 0)
	c.opMu.Unlock()
}

// block marks method blocked after an OPERATION_TIME_LIMIT answer: until the
// reset time its earlier answers announced, or for OperatingFallback when
// none is known or that time has passed.
func (c *Client) block(method string, cause error) time.Time {
	now := c.cfg.Now()
	k := methodKey(method)
	c.opMu.Lock()
	defer c.opMu.Unlock()
	until := c.opReset[k].Add(operatingMargin)
	if !until.After(now) {
		until = now.Add(c.cfg.OperatingFallback)
	}
	until = minTime(until, now.Add(maxOperatingBlock))
	if until.After(c.opBlocked[k]) {
		c.opBlocked[k] = until
	}
	c.opCause[k] = cause
	return c.opBlocked[k]
}

// awaitMethod waits while method is blocked, or returns *OperatingLimitError
// when the block lasts longer than MaxOperatingWait.
func (c *Client) awaitMethod(ctx context.Context, method string) error {
	k := methodKey(method)
	c.opMu.Lock()
	until, cause := c.opBlocked[k], c.opCause[k]
	c.opMu.Unlock()
	d := until.Sub(c.cfg.Now())
	if d <= 0 {
		return nil
	}
	if cause == nil {
		cause = &APIError{Code: ErrOperationTimeLimit.Code, HTTPStatus: 429}
	}
	if d > c.cfg.MaxOperatingWait {
		return &OperatingLimitError{Method: method, ResetAt: until, Err: cause}
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "bitrix24 method blocked by the operating time limit",
		slog.String("method", method), slog.Duration("wait", d))
	if err := c.cfg.Sleep(ctx, d); err != nil {
		return fmt.Errorf("wait for the operating limit of %s: %w", method, err)
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
