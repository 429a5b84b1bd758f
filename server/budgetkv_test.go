package server

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Two daemons' budgets on one bucket keep the room's limit of one: of 40
// concurrent takes at one moment, exactly the budget succeed; the refused
// learn when the window has room again; a reply given back frees its
// place; an owed reply over the budget is taken and counted.
func TestRoomBudgetHoldsAcrossDaemons(t *testing.T) {
	b := testBus(t)
	const budget = 6
	window := time.Minute
	daemons := []*roomBudgets{
		{kv: b.replies, budget: budget, window: window},
		{kv: b.replies, budget: budget, window: window},
	}
	ctx := context.Background()
	now := time.Now()
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var gives []func()
	for i := range 40 {
		wg.Go(func() {
			give, took, next, err := daemons[i%2].take(ctx, "general", now, false)
			switch {
			case err != nil:
				t.Errorf("take: %v", err)
			case took:
				ok.Add(1)
				mu.Lock()
				gives = append(gives, give)
				mu.Unlock()
			default:
				refused.Add(1)
				if !next.Equal(now.Add(window)) {
					t.Errorf("refused with next %v, want the window's end %v", next, now.Add(window))
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != budget || refused.Load() != 40-budget {
		t.Fatalf("%d taken, %d refused; want %d and %d", ok.Load(), refused.Load(), budget, 40-budget)
	}
	gives[0]()
	if _, took, _, err := daemons[1].take(ctx, "general", now.Add(time.Second), false); err != nil || !took {
		t.Fatalf("after a reply was given back: took %v, err %v; want its place", took, err)
	}
	if _, took, _, _ := daemons[0].take(ctx, "general", now.Add(2*time.Second), false); took {
		t.Fatal("the budget is spent again, but a take succeeded")
	}
	if _, took, _, err := daemons[0].take(ctx, "general", now.Add(2*time.Second), true); err != nil || !took {
		t.Fatalf("an owed reply over the budget: took %v, err %v; want it taken", took, err)
	}
	// It was counted: past the first replies' window, the over-budget
	// reply still holds its place.
	later := now.Add(window + 500*time.Millisecond)
	n := 0
	for range budget {
		if _, took, _, _ := daemons[1].take(ctx, "general", later, false); took {
			n++
		}
	}
	if n != budget-2 { // the reply taken at +1 s and the owed one at +2 s are still in the window
		t.Fatalf("%d taken after the window moved on, want %d", n, budget-2)
	}
	// Another room has a budget of its own.
	if _, took, _, _ := daemons[0].take(ctx, "other", now, false); !took {
		t.Fatal("another room's budget refused its first reply")
	}
}
