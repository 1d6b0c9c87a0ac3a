package syncer

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// schedSteps are n steps told apart by B24ID = index.
func schedSteps(n int) []Step {
	steps := make([]Step, n)
	for i := range steps {
		steps[i].B24ID = int64(i)
	}
	return steps
}

// A step waiting for its gate takes none of the places: a ready step later
// in the list goes out meanwhile.
func TestScheduleWaitingStepsTakeNoPlace(t *testing.T) {
	g := &gate{left: 1}
	steps := schedSteps(4) // 0 opens g; 1 and 2 wait for it; 3 waits for nothing
	freeRan := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := schedule(ctx, 2, nil, steps,
		func(i int) *gate {
			if i == 1 || i == 2 {
				return g
			}
			return nil
		},
		func(i int) []*gate {
			if i == 0 {
				return []*gate{g}
			}
			return nil
		},
		func(ctx context.Context, s Step) error {
			switch s.B24ID {
			case 0:
				select { // done only once step 3 went out beside it
				case <-freeRan:
				case <-ctx.Done():
					return ctx.Err()
				}
			case 3:
				close(freeRan)
			}
			return nil
		})
	if err != nil {
		t.Fatalf("schedule: %v (step 3 waited behind steps that wait)", err)
	}
}

// With one place the steps run in list order, each after its gate.
func TestScheduleOnePlaceKeepsTheOrder(t *testing.T) {
	gates := []*gate{{left: 1}, {left: 1}}
	steps := schedSteps(5) // 0 opens gates[0], 2 opens gates[1]; 1 waits for 0, 3 for 2
	var got []int64
	err := schedule(context.Background(), 1, nil, steps,
		func(i int) *gate {
			switch i {
			case 1:
				return gates[0]
			case 3:
				return gates[1]
			}
			return nil
		},
		func(i int) []*gate {
			switch i {
			case 0:
				return gates[:1]
			case 2:
				return gates[1:]
			}
			return nil
		},
		func(_ context.Context, s Step) error {
			got = append(got, s.B24ID)
			return nil
		})
	if err != nil || !slices.Equal(got, []int64{0, 1, 2, 3, 4}) {
		t.Fatalf("order %v, err %v; want 0..4 in order", got, err)
	}
}

// The first error stops the schedule: steps not started are skipped.
func TestScheduleStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	var mu sync.Mutex
	ran := 0
	err := schedule(context.Background(), 1, nil, schedSteps(10),
		func(int) *gate { return nil }, func(int) []*gate { return nil },
		func(_ context.Context, s Step) error {
			mu.Lock()
			ran++
			mu.Unlock()
			if s.B24ID == 2 {
				return boom
			}
			return nil
		})
	if !errors.Is(err, boom) || ran != 3 {
		t.Fatalf("err %v after %d steps, want boom after 3", err, ran)
	}
}

// A gate no step opens is reported, not waited for.
func TestScheduleReportsAStuckGate(t *testing.T) {
	g := &gate{left: 1}
	err := schedule(context.Background(), 4, nil, schedSteps(3),
		func(i int) *gate {
			if i == 2 {
				return g
			}
			return nil
		},
		func(int) []*gate { return nil },
		func(context.Context, Step) error { return nil })
	if !errors.Is(err, errStuck) {
		t.Fatalf("err %v, want errStuck", err)
	}
}
