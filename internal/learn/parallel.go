package learn

import (
	"context"
	"sync"

	"b24learn/internal/safe"
)

// Parallel calls fn for every item with at most n calls in flight (n <= 0 means 1).
// The first error cancels the context given to the remaining calls and is returned;
// items not started by then are skipped. Callers that want per-item failures to be
// recorded rather than fatal handle them inside fn and return nil.
func Parallel[T any](ctx context.Context, n int, items []T, fn func(ctx context.Context, item T) error) error {
	if n <= 0 {
		n = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		sem   = make(chan struct{}, n)
	)
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := safe.Call(func() error { return fn(ctx, it) }); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
