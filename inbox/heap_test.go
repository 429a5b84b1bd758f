package inbox

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// checkMinMax asserts the min-max heap property: every entry on an even
// level is at or below all its descendants, every entry on an odd level at
// or above them, and every node knows its slot.
func checkMinMax[T any](t *testing.T, h *mmheap[T]) {
	t.Helper()
	for i := range h.s {
		if h.s[i].n.idx != i {
			t.Fatalf("slot %d holds a node that thinks it is at %d", i, h.s[i].n.idx)
		}
		var walk func(j int)
		walk = func(j int) {
			if j >= len(h.s) {
				return
			}
			if j != i {
				if isMinLevel(i) && above(&h.s[i], &h.s[j]) {
					t.Fatalf("min-level slot %d is above its descendant %d", i, j)
				}
				if !isMinLevel(i) && above(&h.s[j], &h.s[i]) {
					t.Fatalf("max-level slot %d is below its descendant %d", i, j)
				}
			}
			walk(2*j + 1)
			walk(2*j + 2)
		}
		walk(i)
	}
}

func TestMinMaxHeapInvariantUnderEveryOperation(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 2))
	q := New[int](Options{Capacity: 40, DeferredCapacity: 30})
	now := time.Unix(0, 0)
	var ids []string
	for i := range 5000 {
		now = now.Add(time.Millisecond)
		switch rng.IntN(6) {
		case 0, 1, 2:
			id := fmt.Sprint("e", i)
			e := Entry[int]{ID: id, Priority: float64(rng.IntN(9)) / 8, Enqueued: now.Add(-time.Duration(rng.IntN(100)) * time.Second)}
			if _, err := q.Push(e); err == nil {
				ids = append(ids, id)
			}
		case 3:
			if len(ids) > 0 {
				j := rng.IntN(len(ids))
				q.Resolve(ids[j], Declined) // removal from the middle
				ids = append(ids[:j], ids[j+1:]...)
			}
		case 4:
			if e, ok := q.TakeTop(); ok {
				q.Finish(e.ID, Handled)
			}
		default:
			q.Readmit(now, 3)
		}
		checkMinMax(t, &q.h)
		if c := q.Counts(); !c.Balanced() {
			t.Fatalf("step %d: accounts do not add up: %+v", i, c)
		}
	}
}

func TestExpiriesInsideTheInboxAreReported(t *testing.T) {
	t0 := time.Unix(0, 0)
	q := New[int](Options{Capacity: 1, DeferredCapacity: 2, DeferredTTL: time.Minute, Report: true})
	for i := range 4 {
		q.Push(Entry[int]{ID: fmt.Sprint(i), Priority: 0.5, Enqueued: t0.Add(time.Duration(i) * time.Second)})
	}
	// Capacity 1: three were deferred, and the deferred store holds two, so
	// the oldest deferred one expired on the way.
	got := q.DrainRetired(nil)
	if len(got) != 1 || got[0].Account != Expired {
		t.Fatalf("overflow of the deferred store: retired %v", got)
	}
	// Take the queued one; readmitting past the time-to-live expires the rest.
	e, _ := q.TakeTop()
	q.Finish(e.ID, Handled)
	if n := q.Readmit(t0.Add(2*time.Minute), 0); n != 0 {
		t.Fatalf("readmitted %d entries past their time-to-live", n)
	}
	got = q.DrainRetired(nil)
	if len(got) != 2 {
		t.Fatalf("expired at readmit: retired %v, want 2", got)
	}
	if again := q.DrainRetired(nil); len(again) != 0 {
		t.Fatalf("drained twice: %v", again)
	}
	if c := q.Counts(); c.Expired != 3 || !c.Balanced() {
		t.Fatalf("counts %+v", c)
	}
}
