package inbox

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// t0 is the fixed origin of every test clock.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// at returns t0 plus sec seconds.
func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// ent is a compact entry literal: id, priority, enqueued at sec.
func ent(id string, p, sec float64) Entry[int] {
	return Entry[int]{ID: id, Priority: p, Enqueued: at(sec)}
}

func mustPush(t *testing.T, q *Inbox[int], e Entry[int]) Outcome {
	t.Helper()
	out, err := q.Push(e)
	if err != nil {
		t.Fatalf("Push(%q): %v", e.ID, err)
	}
	return out
}

func pushAll(t *testing.T, q *Inbox[int], es ...Entry[int]) {
	t.Helper()
	for _, e := range es {
		mustPush(t, q, e)
	}
}

func ids(es []Entry[int]) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// drainIDs takes every queued entry, top first, and finishes it as handled.
func drainIDs(t *testing.T, q *Inbox[int]) []string {
	t.Helper()
	var out []string
	for {
		e, ok := q.TakeTop()
		if !ok {
			return out
		}
		if !q.Finish(e.ID, Handled) {
			t.Fatalf("Finish(%q) after TakeTop reported false", e.ID)
		}
		out = append(out, e.ID)
	}
}

func checkBalanced(t *testing.T, q *Inbox[int]) Counts {
	t.Helper()
	c := q.Counts()
	if !c.Balanced() {
		t.Fatalf("counts do not balance: %+v", c)
	}
	return c
}

func TestOptionsDefaults(t *testing.T) {
	got := New[int](Options{}).Options()
	want := Options{
		Capacity:         1000,
		Urgent:           0.8,
		Aging:            0.005,
		DeferredCapacity: 10000,
		DeferredTTL:      10 * time.Minute,
		LowWater:         0.5,
	}
	if got.Capacity != want.Capacity || got.Urgent != want.Urgent || got.Aging != want.Aging ||
		got.DeferredCapacity != want.DeferredCapacity || got.DeferredTTL != want.DeferredTTL ||
		got.LowWater != want.LowWater || got.Notify != nil {
		t.Errorf("zero Options gave %+v, want %+v", got, want)
	}
	if a := New[int](Options{Aging: -1}).Options().Aging; a != 0 {
		t.Errorf("negative aging became %v, want 0 (disabled)", a)
	}
	if d := New[int](Options{Capacity: 7}).Options().DeferredCapacity; d != 70 {
		t.Errorf("deferred capacity for capacity 7 = %d, want 70", d)
	}
	if l := New[int](Options{LowWater: 1.5}).Options().LowWater; l != DefaultLowWater {
		t.Errorf("low water 1.5 became %v, want the default", l)
	}
}

func TestAccountString(t *testing.T) {
	for a, want := range map[Account]string{Handled: "handled", Declined: "declined", Expired: "expired", Failed: "failed", 9: "unknown"} {
		if got := a.String(); got != want {
			t.Errorf("Account(%d).String() = %q, want %q", int(a), got, want)
		}
	}
}

func TestOrder(t *testing.T) {
	tests := []struct {
		name  string
		aging float64
		in    []Entry[int]
		want  []string
	}{
		{
			name: "higher priority first",
			in:   []Entry[int]{ent("a", 0.2, 0), ent("b", 0.9, 0), ent("c", 0.5, 0)},
			want: []string{"b", "c", "a"},
		},
		{
			name: "equal priorities first in first out",
			in:   []Entry[int]{ent("a", 0.5, 0), ent("b", 0.5, 0), ent("c", 0.5, 0), ent("d", 0.5, 0)},
			want: []string{"a", "b", "c", "d"},
		},
		{
			name: "ties keep push order among other priorities",
			in: []Entry[int]{ent("x1", 0.4, 0), ent("h", 0.9, 0), ent("x2", 0.4, 0),
				ent("l", 0.1, 0), ent("x3", 0.4, 0)},
			want: []string{"h", "x1", "x2", "x3", "l"},
		},
		{
			name: "urgent entries first however long the others waited",
			// n has aged to 0.5+0.005*1000 = 5.5 by the time u arrives.
			in:   []Entry[int]{ent("n", 0.5, 0), ent("u2", 0.8, 1000), ent("u1", 0.9, 1000)},
			want: []string{"u1", "u2", "n"},
		},
		{
			name:  "without aging an old low entry stays behind",
			aging: -1,
			in:    []Entry[int]{ent("old", 0.2, 0), ent("new", 0.5, 100000)},
			want:  []string{"new", "old"},
		},
		{
			name:  "equal effective priorities first in first out",
			aging: 1.0 / 64,
			// old: 0.25 + 16/64 = 0.5 at t=16, equal to new's 0.5.
			in:   []Entry[int]{ent("old", 0.25, 0), ent("new", 0.5, 16)},
			want: []string{"old", "new"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New[int](Options{Aging: tt.aging})
			pushAll(t, q, tt.in...)
			if top, _ := q.Top(); top.ID != tt.want[0] {
				t.Errorf("Top = %q, want %q", top.ID, tt.want[0])
			}
			if got := drainIDs(t, q); !slices.Equal(got, tt.want) {
				t.Errorf("taken in order %v, want %v", got, tt.want)
			}
			checkBalanced(t, q)
		})
	}
}

// TestAgingOvertake checks that, within one class (both non-urgent or both
// urgent), an older low entry comes out before a newer higher one exactly
// when its effective priority is higher:
// pLow + aging*(t - tLow) > pHigh + aging*(t - tHigh), for any t after both
// (t cancels out, which is why the inbox never re-sorts); on equality the
// older one, pushed first, comes first.
func TestAgingOvertake(t *testing.T) {
	tests := []struct {
		aging, pLow, pHigh, gap float64 // gap = tHigh - tLow in seconds
	}{
		// Exact binary fractions: the boundary gap is (0.5-0.25)*64 = 16 s.
		{1.0 / 64, 0.25, 0.5, 0},
		{1.0 / 64, 0.25, 0.5, 15},
		{1.0 / 64, 0.25, 0.5, 16},
		{1.0 / 64, 0.25, 0.5, 17},
		{1.0 / 64, 0.25, 0.5, 1000},
		// The default rate, 0.005/s: (0.5-0.3)/0.005 = 40 s.
		{DefaultAging, 0.3, 0.5, 0},
		{DefaultAging, 0.3, 0.5, 39},
		{DefaultAging, 0.3, 0.5, 41},
		{DefaultAging, 0.3, 0.5, 3600},
		// Two urgent entries age the same way: (0.95-0.8)/0.005 = 30 s.
		{DefaultAging, 0.8, 0.95, 29},
		{DefaultAging, 0.8, 0.95, 31},
	}
	for _, tt := range tests {
		tLow, tHigh := 100.0, 100.0+tt.gap
		now := tHigh + 7
		effLow := tt.pLow + tt.aging*(now-tLow)
		effHigh := tt.pHigh + tt.aging*(now-tHigh)
		wantLowFirst := effLow >= effHigh
		name := fmt.Sprintf("aging %g gap %gs: ", tt.aging, tt.gap)
		if wantLowFirst {
			name += "older low entry first"
		} else {
			name += "newer high entry first"
		}
		t.Run(name, func(t *testing.T) {
			q := New[int](Options{Aging: tt.aging})
			low, high := ent("low", tt.pLow, tLow), ent("high", tt.pHigh, tHigh)
			pushAll(t, q, low, high)
			if got := q.Effective(low, at(now)); got != effLow {
				t.Errorf("Effective(low) = %v, want %v", got, effLow)
			}
			got := drainIDs(t, q)
			want := []string{"high", "low"}
			if wantLowFirst {
				want = []string{"low", "high"}
			}
			if !slices.Equal(got, want) {
				t.Errorf("order %v, want %v (effective low %v, high %v)", got, want, effLow, effHigh)
			}
		})
	}
}

func TestEffectiveAndUrgent(t *testing.T) {
	q := New[int](Options{})
	e := ent("a", 0.3, 0)
	if got := q.Effective(e, at(100)); got < 0.8-1e-12 || got > 0.8+1e-12 {
		t.Errorf("0.3 after 100 s = %v, want 0.8 (the doc's example)", got)
	}
	if got := q.Effective(e, at(-5)); got != 0.3 {
		t.Errorf("effective before enqueue = %v, want the static 0.3", got)
	}
	if !q.Urgent(0.8) || q.Urgent(0.7999) {
		t.Error("the urgent line must be inclusive at 0.8")
	}
}

// TestPeekMatchesSort is a property test: on random inputs, including after
// random removals, Peek(k) is the first k of a brute-force sort (urgent
// first, then by effective priority, ties in push order), and removes
// nothing.
func TestPeekMatchesSort(t *testing.T) {
	const aging = 1.0 / 64 // with priorities in 1/16ths and whole seconds the arithmetic is exact
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 1))
		q := New[int](Options{Aging: aging})
		type pushed struct {
			e   Entry[int]
			seq int
		}
		var live []pushed
		n := 1 + rng.IntN(60)
		for i := range n {
			e := ent(fmt.Sprintf("e%d", i), float64(rng.IntN(17))/16, float64(rng.IntN(300)))
			mustPush(t, q, e)
			live = append(live, pushed{e, i})
		}
		// Random removals by every removing operation.
		for range rng.IntN(n/2 + 1) {
			i := rng.IntN(len(live))
			id := live[i].e.ID
			switch rng.IntN(3) {
			case 0:
				if _, ok := q.Take(id); !ok {
					t.Fatalf("seed %d: Take(%q) failed", seed, id)
				}
			case 1:
				if !q.Resolve(id, Declined) {
					t.Fatalf("seed %d: Resolve(%q) failed", seed, id)
				}
			case 2:
				e, _ := q.TakeTop()
				id = e.ID
				i = slices.IndexFunc(live, func(p pushed) bool { return p.e.ID == id })
			}
			live = slices.Delete(live, i, i+1)
		}
		now := 400.0
		eff := func(p pushed) float64 { return p.e.Priority + aging*(now-p.e.Enqueued.Sub(t0).Seconds()) }
		want := slices.Clone(live)
		slices.SortStableFunc(want, func(a, b pushed) int {
			if ua, ub := a.e.Priority >= DefaultUrgent, b.e.Priority >= DefaultUrgent; ua != ub {
				if ua {
					return -1
				}
				return 1
			}
			switch ea, eb := eff(a), eff(b); {
			case ea > eb:
				return -1
			case ea < eb:
				return 1
			}
			return a.seq - b.seq
		})
		wantIDs := make([]string, len(want))
		for i, p := range want {
			wantIDs[i] = p.e.ID
		}
		for _, k := range []int{0, 1, 2, 5, len(live), len(live) + 3} {
			got := ids(q.Peek(k, nil))
			if w := wantIDs[:min(k, len(wantIDs))]; !slices.Equal(got, w) {
				t.Fatalf("seed %d: Peek(%d) = %v, want %v", seed, k, got, w)
			}
		}
		if q.Len() != len(live) {
			t.Fatalf("seed %d: Peek changed Len to %d, want %d", seed, q.Len(), len(live))
		}
		if got := drainIDs(t, q); !slices.Equal(got, wantIDs) {
			t.Fatalf("seed %d: TakeTop order %v, want %v", seed, got, wantIDs)
		}
		checkBalanced(t, q)
	}
}

func TestPeekAppendsToDst(t *testing.T) {
	q := New[int](Options{})
	pushAll(t, q, ent("a", 0.9, 0), ent("b", 0.5, 0), ent("c", 0.1, 0))
	dst := []Entry[int]{ent("prior", 0, 0)}
	got := ids(q.Peek(2, dst))
	if want := []string{"prior", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("Peek(2, one-entry dst) = %v, want %v", got, want)
	}
	if got := q.Peek(5, nil); len(got) != 3 {
		t.Errorf("Peek(5) on 3 entries returned %d", len(got))
	}
	if got := New[int](Options{}).Peek(3, nil); got != nil {
		t.Errorf("Peek on an empty inbox = %v, want nil", got)
	}
}

func TestTake(t *testing.T) {
	setup := func(t *testing.T) *Inbox[int] {
		q := New[int](Options{})
		pushAll(t, q, ent("a", 0.9, 0), ent("b", 0.5, 0), ent("c", 0.3, 0), ent("d", 0.85, 0))
		return q
	}
	t.Run("take by id removes it and puts it in flight", func(t *testing.T) {
		q := setup(t)
		e, ok := q.Take("b")
		if !ok || e.ID != "b" || e.Priority != 0.5 {
			t.Fatalf("Take(b) = %+v, %v", e, ok)
		}
		if _, ok := q.Take("b"); ok {
			t.Error("second Take(b) succeeded")
		}
		if _, ok := q.Take("nope"); ok {
			t.Error("Take of an unknown id succeeded")
		}
		if c := checkBalanced(t, q); c.InFlight != 1 || c.Queued != 3 {
			t.Errorf("counts %+v, want 1 in flight and 3 queued", c)
		}
		if got := drainIDs(t, q); !slices.Equal(got, []string{"a", "d", "c"}) {
			t.Errorf("remaining order %v", got)
		}
	})
	t.Run("take top on empty reports false", func(t *testing.T) {
		q := New[int](Options{})
		if _, ok := q.TakeTop(); ok {
			t.Error("TakeTop on empty succeeded")
		}
		if _, ok := q.Top(); ok {
			t.Error("Top on empty succeeded")
		}
		if _, ok := q.TakeTopIf(func(Entry[int]) bool { return true }); ok {
			t.Error("TakeTopIf on empty succeeded")
		}
	})
	t.Run("take top if rejected leaves the top queued", func(t *testing.T) {
		q := setup(t)
		var seen []string
		if _, ok := q.TakeTopIf(func(e Entry[int]) bool { seen = append(seen, e.ID); return false }); ok {
			t.Fatal("rejected TakeTopIf took")
		}
		if q.Len() != 4 {
			t.Errorf("Len after a rejected TakeTopIf = %d", q.Len())
		}
		e, ok := q.TakeTopIf(func(e Entry[int]) bool { seen = append(seen, e.ID); return true })
		if !ok || e.ID != "a" {
			t.Fatalf("accepted TakeTopIf = %q, %v", e.ID, ok)
		}
		if !slices.Equal(seen, []string{"a", "a"}) {
			t.Errorf("predicate saw %v, want the top twice", seen)
		}
		if c := checkBalanced(t, q); c.InFlight != 1 {
			t.Errorf("in flight %d, want 1", c.InFlight)
		}
	})
	t.Run("take where takes every match", func(t *testing.T) {
		q := setup(t)
		got := ids(q.TakeWhere(func(e Entry[int]) bool { return e.Priority >= 0.5 }))
		slices.Sort(got)
		if !slices.Equal(got, []string{"a", "b", "d"}) {
			t.Errorf("TakeWhere = %v", got)
		}
		if c := checkBalanced(t, q); c.InFlight != 3 || c.Queued != 1 {
			t.Errorf("counts %+v", c)
		}
		if got := q.TakeWhere(func(Entry[int]) bool { return false }); len(got) != 0 {
			t.Errorf("TakeWhere(none) = %v", got)
		}
		if got := drainIDs(t, q); !slices.Equal(got, []string{"c"}) {
			t.Errorf("left %v", got)
		}
	})
	t.Run("resolve closes a queued entry's account", func(t *testing.T) {
		q := setup(t)
		if !q.Resolve("b", Declined) {
			t.Fatal("Resolve(b) failed")
		}
		if q.Resolve("b", Declined) {
			t.Error("second Resolve(b) succeeded")
		}
		q.Take("c")
		if q.Resolve("c", Handled) {
			t.Error("Resolve of an in-flight entry succeeded")
		}
		if c := checkBalanced(t, q); c.Declined != 1 || c.Queued != 2 || c.InFlight != 1 {
			t.Errorf("counts %+v", c)
		}
	})
	t.Run("finish closes each account once", func(t *testing.T) {
		q := New[int](Options{})
		for i, a := range []Account{Handled, Declined, Expired, Failed, Account(42)} {
			id := fmt.Sprint(i)
			mustPush(t, q, ent(id, 0.5, 0))
			q.Take(id)
			if !q.Finish(id, a) {
				t.Fatalf("Finish(%s, %v) failed", id, a)
			}
			if q.Finish(id, a) {
				t.Errorf("second Finish(%s) succeeded", id)
			}
		}
		if q.Finish("never", Handled) {
			t.Error("Finish of an unknown id succeeded")
		}
		c := checkBalanced(t, q)
		if c.Handled != 1 || c.Declined != 1 || c.Expired != 1 || c.Failed != 2 {
			t.Errorf("counts %+v: want one of each, an unknown account counted failed", c)
		}
	})
	t.Run("requeue returns an in-flight entry", func(t *testing.T) {
		q := setup(t)
		e, _ := q.TakeTop()
		if q.Requeue(ent("x", 0.5, 0), at(1)) {
			t.Error("Requeue of an entry not in flight succeeded")
		}
		if !q.Requeue(e, at(1)) {
			t.Fatal("Requeue failed")
		}
		if q.Requeue(e, at(1)) {
			t.Error("second Requeue succeeded")
		}
		if c := checkBalanced(t, q); c.InFlight != 0 || c.Queued != 4 {
			t.Errorf("counts %+v", c)
		}
		if top, _ := q.Top(); top.ID != "a" {
			t.Errorf("requeued top entry is not on top again: %q", top.ID)
		}
	})
	t.Run("requeue on a full inbox defers the lowest", func(t *testing.T) {
		q := New[int](Options{Capacity: 2})
		mustPush(t, q, ent("a", 0.3, 0))
		e, _ := q.TakeTop()
		pushAll(t, q, ent("b", 0.5, 0), ent("c", 0.6, 0))
		if !q.Requeue(e, at(1)) {
			t.Fatal("Requeue failed")
		}
		c := checkBalanced(t, q)
		if c.Deferred != 1 || c.Queued != 2 || c.InFlight != 0 {
			t.Errorf("counts %+v, want a deferred", c)
		}
		if _, def := q.Close(); len(def) != 1 || def[0].ID != "a" {
			t.Errorf("deferred %v, want [a]", ids(def))
		}
	})
}

func TestPushRejects(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, q *Inbox[int]) // leaves "dup" somewhere
		e       Entry[int]
		want    error
	}{
		{"empty id rejected", func(*testing.T, *Inbox[int]) {}, ent("", 0.5, 0), ErrEmptyID},
		{"duplicate of a queued entry rejected", func(t *testing.T, q *Inbox[int]) {
			mustPush(t, q, ent("dup", 0.5, 0))
		}, ent("dup", 0.9, 1), ErrDuplicate},
		{"duplicate of an in-flight entry rejected", func(t *testing.T, q *Inbox[int]) {
			mustPush(t, q, ent("dup", 0.5, 0))
			q.TakeTop()
		}, ent("dup", 0.5, 1), ErrDuplicate},
		{"duplicate of a deferred entry rejected", func(t *testing.T, q *Inbox[int]) {
			mustPush(t, q, ent("top", 0.9, 0))
			if out := mustPush(t, q, ent("dup", 0.1, 0)); out != DeferredOnArrival {
				t.Fatalf("setup: outcome %v", out)
			}
		}, ent("dup", 0.95, 1), ErrDuplicate},
		{"push after close rejected", func(_ *testing.T, q *Inbox[int]) { q.Close() }, ent("new", 0.5, 0), ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			notified := 0
			q := New[int](Options{Capacity: 1, Notify: func(bool) { notified++ }})
			tt.prepare(t, q)
			before, n := q.Counts(), notified
			if _, err := q.Push(tt.e); !errors.Is(err, tt.want) {
				t.Fatalf("Push error %v, want %v", err, tt.want)
			}
			if after := checkBalanced(t, q); after != before {
				t.Errorf("a rejected push changed the counts: %+v -> %+v", before, after)
			}
			if notified != n {
				t.Error("a rejected push called Notify")
			}
		})
	}
	t.Run("id reusable once its account is closed", func(t *testing.T) {
		q := New[int](Options{})
		mustPush(t, q, ent("a", 0.5, 0))
		e, _ := q.TakeTop()
		q.Finish(e.ID, Handled)
		if _, err := q.Push(ent("a", 0.5, 1)); err != nil {
			t.Errorf("re-push after Finish: %v", err)
		}
	})
}

func TestPushWhenFull(t *testing.T) {
	tests := []struct {
		name         string
		capacity     int
		queued       []Entry[int]
		newcomer     Entry[int]
		want         Outcome
		wantDeferred string
		wantQueue    []string // in order
	}{
		{
			name: "room left: accepted", capacity: 4,
			queued:   []Entry[int]{ent("a", 0.5, 0), ent("b", 0.6, 0), ent("c", 0.7, 0)},
			newcomer: ent("d", 0.1, 0), want: Accepted,
			wantQueue: []string{"c", "b", "a", "d"},
		},
		{
			name: "lowest newcomer deferred on arrival", capacity: 3,
			queued:   []Entry[int]{ent("a", 0.5, 0), ent("b", 0.6, 0), ent("c", 0.7, 0)},
			newcomer: ent("d", 0.4, 0), want: DeferredOnArrival, wantDeferred: "d",
			wantQueue: []string{"c", "b", "a"},
		},
		{
			name: "newcomer tied with the lowest deferred on arrival", capacity: 3,
			queued:   []Entry[int]{ent("a", 0.5, 0), ent("b", 0.6, 0), ent("c", 0.7, 0)},
			newcomer: ent("d", 0.5, 0), want: DeferredOnArrival, wantDeferred: "d",
			wantQueue: []string{"c", "b", "a"},
		},
		{
			name: "lowest queued deferred for a higher newcomer", capacity: 3,
			queued:   []Entry[int]{ent("a", 0.5, 0), ent("b", 0.6, 0), ent("c", 0.7, 0)},
			newcomer: ent("d", 0.65, 0), want: AcceptedEvicting, wantDeferred: "a",
			wantQueue: []string{"c", "d", "b"},
		},
		{
			name: "newest of equal lowest deferred", capacity: 3,
			queued:   []Entry[int]{ent("a", 0.5, 0), ent("b", 0.5, 0), ent("c", 0.7, 0)},
			newcomer: ent("d", 0.6, 0), want: AcceptedEvicting, wantDeferred: "b",
			wantQueue: []string{"c", "d", "a"},
		},
		{
			name: "aging protects an old low entry", capacity: 2,
			// at t=100 a is 0.3+0.5 = 0.8 effective, above b's 0.5.
			queued:   []Entry[int]{ent("a", 0.3, 0), ent("b", 0.5, 100)},
			newcomer: ent("c", 0.55, 100), want: AcceptedEvicting, wantDeferred: "b",
			wantQueue: []string{"a", "c"},
		},
		{
			name: "urgent newcomer evicts the non-urgent even when it is higher in effect", capacity: 2,
			// a has aged to 0.7+5 = 5.7 by t=1000, far above any urgent entry.
			queued:   []Entry[int]{ent("a", 0.7, 0), ent("b", 0.9, 1000)},
			newcomer: ent("c", 0.8, 1000), want: AcceptedEvicting, wantDeferred: "a",
			wantQueue: []string{"b", "c"},
		},
		{
			name: "lowest urgent kept while a non-urgent is queued", capacity: 3,
			queued:   []Entry[int]{ent("a", 0.9, 0), ent("b", 0.95, 0), ent("c", 0.1, 0)},
			newcomer: ent("d", 0.8, 0), want: AcceptedEvicting, wantDeferred: "c",
			wantQueue: []string{"b", "a", "d"},
		},
		{
			name: "non-urgent newcomer deferred when all queued are urgent, however aged", capacity: 2,
			queued:   []Entry[int]{ent("a", 0.9, 1000), ent("b", 0.95, 1000)},
			newcomer: ent("c", 0.79, 0), want: DeferredOnArrival, wantDeferred: "c",
			wantQueue: []string{"b", "a"},
		},
		{
			name: "all urgent: the lowest urgent deferred", capacity: 2,
			queued:   []Entry[int]{ent("a", 0.9, 0), ent("b", 0.95, 0)},
			newcomer: ent("c", 0.99, 0), want: AcceptedEvicting, wantDeferred: "a",
			wantQueue: []string{"c", "b"},
		},
		{
			name: "all urgent: a newcomer tied with the lowest urgent deferred on arrival", capacity: 2,
			queued:   []Entry[int]{ent("a", 0.9, 0), ent("b", 0.95, 0)},
			newcomer: ent("c", 0.9, 0), want: DeferredOnArrival, wantDeferred: "c",
			wantQueue: []string{"b", "a"},
		},
		{
			name: "all urgent: the lowest urgent newcomer deferred on arrival", capacity: 2,
			queued:   []Entry[int]{ent("a", 0.9, 0), ent("b", 0.95, 0)},
			newcomer: ent("c", 0.85, 0), want: DeferredOnArrival, wantDeferred: "c",
			wantQueue: []string{"b", "a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var notes []bool
			q := New[int](Options{Capacity: tt.capacity, Notify: func(u bool) { notes = append(notes, u) }})
			pushAll(t, q, tt.queued...)
			notes = nil
			if got := mustPush(t, q, tt.newcomer); got != tt.want {
				t.Errorf("outcome %v, want %v", got, tt.want)
			}
			if wantNotes := tt.want != DeferredOnArrival; (len(notes) == 1) != wantNotes {
				t.Errorf("Notify calls %v, want one: %v", notes, wantNotes)
			}
			c := checkBalanced(t, q)
			if tt.wantDeferred != "" && (c.Deferrals != 1 || c.Deferred != 1) {
				t.Errorf("counts %+v, want one deferral", c)
			}
			queued, deferred := q.Close()
			if got := ids(queued); !slices.Equal(got, tt.wantQueue) {
				t.Errorf("queue %v, want %v", got, tt.wantQueue)
			}
			var want []string
			if tt.wantDeferred != "" {
				want = []string{tt.wantDeferred}
			}
			if got := ids(deferred); !slices.Equal(got, want) {
				t.Errorf("deferred %v, want %v", got, want)
			}
		})
	}
}

func TestDeferredStoreOverflowExpiresOldest(t *testing.T) {
	q := New[int](Options{Capacity: 1, DeferredCapacity: 2})
	pushAll(t, q, ent("top", 0.9, 0), ent("d1", 0.1, 1), ent("d2", 0.1, 2), ent("d3", 0.1, 3))
	c := checkBalanced(t, q)
	if c.Deferred != 2 || c.Expired != 1 || c.Deferrals != 3 {
		t.Errorf("counts %+v, want 2 deferred and the oldest expired", c)
	}
	if _, def := q.Close(); !slices.Equal(ids(def), []string{"d2", "d3"}) {
		t.Errorf("deferred %v, want [d2 d3]", ids(def))
	}
	// The expired ID is no longer held and may come again.
	if _, err := New[int](Options{}).Push(ent("d1", 0.1, 4)); err != nil {
		t.Error(err)
	}
}

func TestReadmit(t *testing.T) {
	t.Run("oldest first, only below the low-water mark", func(t *testing.T) {
		q := New[int](Options{Capacity: 4, LowWater: 0.5})
		pushAll(t, q, ent("a", 0.5, 0), ent("b", 0.5, 1), ent("c", 0.5, 2), ent("d", 0.5, 3),
			ent("e", 0.1, 4), ent("f", 0.1, 5), ent("g", 0.1, 6))
		if c := checkBalanced(t, q); c.Deferred != 3 {
			t.Fatalf("setup counts %+v", c)
		}
		now := at(10)
		steps := []struct {
			take, max, want int
			wantIn          string
		}{
			{take: 0, max: 0, want: 0},              // 4 queued: load 1
			{take: 2, max: 0, want: 0},              // 2 queued: load 0.5 is not below 0.5
			{take: 1, max: 0, want: 1, wantIn: "e"}, // 1 queued: e comes back, then 2
			{take: 2, max: 1, want: 1, wantIn: "f"}, // 0 queued: limited to one
			{take: 0, max: 0, want: 1, wantIn: "g"},
			{take: 0, max: 0, want: 0}, // nothing deferred
		}
		for i, s := range steps {
			for range s.take {
				e, _ := q.TakeTop()
				q.Finish(e.ID, Handled)
			}
			if got := q.Readmit(now, s.max); got != s.want {
				t.Fatalf("step %d: Readmit = %d, want %d", i, got, s.want)
			}
			if s.wantIn != "" {
				if e, ok := q.Take(s.wantIn); !ok {
					t.Fatalf("step %d: %s not readmitted", i, s.wantIn)
				} else {
					q.Requeue(e, now)
				}
			}
			checkBalanced(t, q)
		}
		if c := q.Counts(); c.Readmitted != 3 || c.Expired != 0 {
			t.Errorf("counts %+v, want 3 readmitted", c)
		}
	})
	t.Run("expired ones counted expired, not readmitted", func(t *testing.T) {
		q := New[int](Options{Capacity: 2, DeferredTTL: time.Minute})
		late := ent("late", 0.1, 30)
		late.Deadline = at(65)
		pushAll(t, q, ent("a", 0.5, 0), ent("b", 0.5, 0),
			ent("old", 0.1, 0), // deferred at 0, kept until 60
			late,               // deferred at 30, deadline 65
			ent("ok", 0.1, 40), // deferred at 40, kept until 100
		)
		drainIDs(t, q)
		if got := q.Readmit(at(70), 0); got != 1 {
			t.Fatalf("Readmit = %d, want 1", got)
		}
		if _, ok := q.Take("ok"); !ok {
			t.Error("ok was not readmitted")
		}
		c := checkBalanced(t, q)
		if c.Expired != 2 || c.Readmitted != 1 || c.Deferred != 0 {
			t.Errorf("counts %+v, want 2 expired and 1 readmitted", c)
		}
	})
	t.Run("a capacity-one inbox readmits when empty", func(t *testing.T) {
		q := New[int](Options{Capacity: 1})
		pushAll(t, q, ent("a", 0.9, 0), ent("b", 0.1, 0))
		drainIDs(t, q)
		if got := q.Readmit(at(1), 0); got != 1 {
			t.Errorf("Readmit = %d, want 1: load 0 is below the low-water mark 0.5", got)
		}
	})
}

func TestSweep(t *testing.T) {
	retired := func(rs []Retired[int]) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Entry.ID+":"+r.Account.String())
		}
		slices.Sort(out)
		return out
	}
	queued := func(t *testing.T) *Inbox[int] {
		q := New[int](Options{})
		deadline := ent("deadline", 0.5, 0)
		deadline.Deadline = at(100)
		urgentDeadline := ent("urgent-deadline", 0.9, 0)
		urgentDeadline.Deadline = at(50)
		future := ent("future", 0.5, 0)
		future.Deadline = at(101) // and it waited only 10 s at 100
		future.Enqueued = at(90)
		pushAll(t, q, deadline, urgentDeadline, future,
			ent("waited", 0.3, 40), // waited exactly 60 s at 100
			ent("young", 0.3, 41),  // waited 59 s
			ent("urgent", 0.8, 0))  // waited 100 s but urgent
		return q
	}
	tests := []struct {
		name    string
		maxWait time.Duration
		want    []string
	}{
		{"deadline passed expires, waited too long declines", time.Minute,
			[]string{"deadline:expired", "urgent-deadline:expired", "waited:declined"}},
		{"zero max wait keeps waiting entries", 0,
			[]string{"deadline:expired", "urgent-deadline:expired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := queued(t)
			prior := []Retired[int]{{Entry: ent("prior", 0, 0)}}
			got := q.Sweep(at(100), tt.maxWait, prior)
			if got[0].Entry.ID != "prior" {
				t.Error("Sweep did not append to dst")
			}
			if g := retired(got[1:]); !slices.Equal(g, tt.want) {
				t.Errorf("retired %v, want %v", g, tt.want)
			}
			c := checkBalanced(t, q)
			if int(c.Expired+c.Declined) != len(tt.want) || c.Queued != 6-len(tt.want) {
				t.Errorf("counts %+v", c)
			}
		})
	}
	t.Run("deferred past time-to-live or deadline expire", func(t *testing.T) {
		q := New[int](Options{Capacity: 1, DeferredTTL: 10 * time.Minute})
		short := ent("short", 0.1, 0)
		short.Deadline = at(30)
		pushAll(t, q, ent("top", 0.9, 0), short, // deferred at 0, deadline 30
			ent("b", 0.1, 0), ent("c", 0.2, 60)) // deferred at 0 and 60, kept 10 min
		steps := []struct {
			sec  float64
			want []string
		}{
			{29, nil},
			{30, []string{"short:expired"}},
			{599, nil},
			{600, []string{"b:expired"}},
			{659, nil},
			{660, []string{"c:expired"}},
		}
		for _, s := range steps {
			if got := retired(q.Sweep(at(s.sec), 0, nil)); !slices.Equal(got, s.want) {
				t.Errorf("Sweep at %gs retired %v, want %v", s.sec, got, s.want)
			}
			checkBalanced(t, q)
		}
		if c := q.Counts(); c.Expired != 3 || c.Deferred != 0 || c.Queued != 1 {
			t.Errorf("counts %+v", c)
		}
	})
}

func TestNotify(t *testing.T) {
	var notes []bool
	q := New[int](Options{Capacity: 3, Notify: func(u bool) { notes = append(notes, u) }})
	steps := []struct {
		e        Entry[int]
		wantOut  Outcome
		wantNote []bool
	}{
		{ent("a", 0.5, 0), Accepted, []bool{false}},
		{ent("b", 0.8, 0), Accepted, []bool{true}}, // the urgent line is inclusive
		{ent("c", 0.79, 0), Accepted, []bool{false}},
		{ent("d", 0.1, 0), DeferredOnArrival, nil},
		{ent("e", 0.9, 0), AcceptedEvicting, []bool{true}},
		{ent("f", 0.795, 0), AcceptedEvicting, []bool{false}}, // evicts c, 0.79
	}
	for _, s := range steps {
		notes = nil
		if out := mustPush(t, q, s.e); out != s.wantOut {
			t.Errorf("push %s: outcome %v, want %v", s.e.ID, out, s.wantOut)
		}
		if !slices.Equal(notes, s.wantNote) {
			t.Errorf("push %s: Notify(%v), want %v", s.e.ID, notes, s.wantNote)
		}
	}
	if !q.HasUrgent() {
		t.Error("HasUrgent false with urgent entries queued")
	}
	q.TakeWhere(func(e Entry[int]) bool { return q.Urgent(e.Priority) })
	if q.HasUrgent() {
		t.Error("HasUrgent true after taking every urgent entry")
	}
}

func TestLenLoadAndClose(t *testing.T) {
	q := New[int](Options{Capacity: 4})
	pushAll(t, q, ent("a", 0.2, 0), ent("b", 0.9, 0), ent("c", 0.5, 0), ent("d", 0.3, 0), ent("e", 0.1, 0))
	if q.Len() != 4 || q.Load() != 1 || q.DeferredLen() != 1 {
		t.Errorf("Len %d, Load %v, DeferredLen %d; want 4, 1, 1", q.Len(), q.Load(), q.DeferredLen())
	}
	before := q.Counts()
	queued, deferred := q.Close()
	if got := ids(queued); !slices.Equal(got, []string{"b", "c", "d", "a"}) {
		t.Errorf("Close returned queued %v, want highest first", got)
	}
	if got := ids(deferred); !slices.Equal(got, []string{"e"}) {
		t.Errorf("Close returned deferred %v", got)
	}
	if after := checkBalanced(t, q); after != before {
		t.Errorf("Close changed the counts: %+v -> %+v", before, after)
	}
	if _, err := q.Push(ent("f", 0.9, 0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Push after Close: %v", err)
	}
	q.Close() // a second Close is harmless
}

// TestConcurrentProducers runs many producers against one consumer woken
// by Notify; with a small capacity entries are deferred and readmitted on
// the way. Every delivered entry must be handled exactly once.
func TestConcurrentProducers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const producers, per = 4, 200
		wake := make(chan struct{}, 1)
		q := New[int](Options{Capacity: 16, DeferredCapacity: producers * per, Notify: func(bool) {
			select {
			case wake <- struct{}{}:
			default:
			}
		}})
		handled := make(map[string]int)
		consume := func() {
			for {
				e, ok := q.TakeTop()
				if !ok {
					if q.Readmit(time.Now(), 0) == 0 {
						return
					}
					continue
				}
				handled[e.ID]++
				q.Finish(e.ID, Handled)
			}
		}
		done := make(chan struct{})
		var consumer, prods sync.WaitGroup
		consumer.Go(func() {
			for {
				consume()
				select {
				case <-wake:
				case <-done:
					consume()
					return
				}
			}
		})
		for p := range producers {
			prods.Go(func() {
				for i := range per {
					e := Entry[int]{ID: fmt.Sprintf("p%d-%d", p, i), Priority: float64((i*7+p)%10) / 10, Value: i}
					if _, err := q.Push(e); err != nil {
						t.Errorf("Push: %v", err)
					}
				}
			})
		}
		prods.Wait()
		close(done)
		consumer.Wait()

		c := checkBalanced(t, q)
		if c.Delivered != producers*per || c.Handled != c.Delivered || c.Queued+c.Deferred+c.InFlight != 0 {
			t.Errorf("counts %+v, want all %d delivered and handled", c, producers*per)
		}
		if len(handled) != producers*per {
			t.Errorf("handled %d distinct entries, want %d", len(handled), producers*per)
		}
		for id, n := range handled {
			if n != 1 || !strings.HasPrefix(id, "p") {
				t.Errorf("%s handled %d times", id, n)
			}
		}
	})
}
