package persona_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/personaos/persona"
	"github.com/personaos/persona/state"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a handler that records when each item started, and can take
// virtual time or fail.
type recorder struct {
	mu      sync.Mutex
	started map[string]time.Time
	order   []string
	took    time.Duration
	fail    func(it persona.Item[string]) error
}

func newRecorder(took time.Duration) *recorder {
	return &recorder{started: map[string]time.Time{}, took: took}
}

func (r *recorder) Handle(ctx context.Context, it persona.Item[string]) (any, error) {
	r.mu.Lock()
	r.started[it.ID] = time.Now()
	r.order = append(r.order, it.ID)
	fail := r.fail
	r.mu.Unlock()
	if r.took > 0 {
		select {
		case <-time.After(r.took):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		if err := fail(it); err != nil {
			return nil, err
		}
	}
	return "out-" + it.ID, nil
}

func (r *recorder) start(id string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.started[id]
	return t, ok
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

func item(id string, prio float64) persona.Item[string] {
	return persona.Item[string]{ID: id, Key: "room", Priority: prio, Payload: id}
}

func shutdown(t *testing.T, rt *persona.Runtime) persona.Report {
	t.Helper()
	rep, err := rt.Shutdown(context.Background())
	if err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	return rep
}

func mustSpawn(t *testing.T, rt *persona.Runtime, name string, h persona.Handler[string], o persona.Options) *persona.Persona[string] {
	t.Helper()
	p, err := persona.Spawn(rt, name, h, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUrgentWakesRestingPersonaAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{})
		rec := newRecorder(0)
		p := mustSpawn(t, rt, "helper", rec, persona.Options{})
		rt.Start()

		// A normal item: handled on the first scan, then the persona rests
		// for its cadence with another normal item pending.
		p.Deliver(item("n1", 0.5))
		synctest.Wait()
		p.Deliver(item("n2", 0.5))
		synctest.Wait()
		if _, ok := rec.start("n2"); ok {
			t.Fatal("a normal item was handled before the next scan: no batching")
		}
		snap := p.Snapshot()
		if snap.Awake || snap.Cadence < time.Second {
			t.Fatalf("persona should rest for its cadence, got awake=%v cadence=%v", snap.Awake, snap.Cadence)
		}

		time.Sleep(time.Second) // virtual: well inside the cadence
		at := time.Now()
		p.Deliver(item("u1", 0.9))
		synctest.Wait()
		got, ok := rec.start("u1")
		if !ok {
			t.Fatal("urgent item not started while the persona rested")
		}
		if d := got.Sub(at); d != 0 {
			t.Fatalf("urgent item waited %v; want it started within the same scheduler step", d)
		}
		if w := p.Snapshot().Wakes; w.Demand != 1 {
			t.Fatalf("demand wake-ups = %d, want 1 (%+v)", w.Demand, w)
		}
		shutdown(t, rt)
	})
}

func TestUrgentEngagedWhateverMoodAndEnergy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{
			// The governor at its hottest raises every non-urgent bar by 0.5.
			Governor: persona.GovernorFunc(func() persona.Adjustment {
				return persona.Adjustment{CadenceMultiplier: 4, ThresholdShift: 0.5}
			}),
		})
		rec := newRecorder(20 * time.Second) // each item drains 2.0 energy: exhausted after one
		p := mustSpawn(t, rt, "tired", rec, persona.Options{Capacity: 20})
		p.Deliver(item("exhaust", 0.9))
		for i := range 5 {
			p.Deliver(item(fmt.Sprint("n", i), 0.5))
		}
		rt.Start()
		synctest.Wait()
		time.Sleep(21 * time.Second)
		synctest.Wait()
		s := p.Snapshot()
		if s.Energy != 0 || s.Mood != state.Overwhelmed || s.Counts.Handled != 1 {
			t.Fatalf("setup: want an exhausted, overwhelmed persona, got energy %.2f mood %v %+v", s.Energy, s.Mood, s.Counts)
		}
		at := time.Now()
		p.Deliver(item("urgent", 0.8)) // inclusive line
		synctest.Wait()
		time.Sleep(25 * time.Second)
		synctest.Wait()
		got, ok := rec.start("urgent")
		if !ok {
			t.Fatal("urgent item not engaged by an exhausted, overwhelmed persona under a hot governor")
		}
		if got.Sub(at) != 0 {
			t.Fatalf("urgent item waited %v", got.Sub(at))
		}
		for i := range 5 {
			if _, ok := rec.start(fmt.Sprint("n", i)); ok {
				t.Fatalf("the exhausted persona engaged non-urgent n%d", i)
			}
		}
		shutdown(t, rt)
	})
}

// TestLowPriorityNotStarved: under an overload of higher items, a low item
// is handled within the bound its aging implies. Its static key
// p_low - aging*t0 exceeds that of every high item delivered later than
// t0 + (p_high-p_low)/aging, so it waits at most for the backlog at t0 plus
// the items that arrive during that catch-up time.
func TestLowPriorityNotStarved(t *testing.T) {
	const (
		pLow    = 0.2
		pHigh   = 0.6
		service = time.Second
		perTick = 2 // high items per service time: the persona is overloaded
	)
	for _, tc := range []struct {
		name    string
		aging   float64
		handled bool
	}{
		{"low item handled within the aging bound", 0.01, true},
		{"without aging the same item starves", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := persona.NewRuntime(persona.RuntimeOptions{})
				rec := newRecorder(service)
				p := mustSpawn(t, rt, "busy", rec, persona.Options{
					Aging: tc.aging,
					// Isolate aging: no fatigue, no rhythm, nothing retired.
					State:       state.Config{DrainPer: 1000 * time.Hour, CadenceIdle: -1, CadenceActive: -1, CadenceTired: -1, CadenceOverwhelmed: -1, OverwhelmedLoad: 1},
					DeclinedTTL: 24 * time.Hour,
				})
				rt.Start()
				ctx, stop := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				wg.Go(func() {
					for i := 0; ; i++ {
						for j := range perTick {
							p.Deliver(item(fmt.Sprint("h", i, "-", j), pHigh))
						}
						select {
						case <-time.After(service):
						case <-ctx.Done():
							return
						}
					}
				})
				time.Sleep(10*service + service/2)
				synctest.Wait()
				t0 := time.Now()
				backlog := p.Snapshot().Counts.Queued
				p.Deliver(item("low", pLow))
				catchUp := time.Duration((pHigh - pLow) / 0.01 * float64(time.Second))
				ahead := backlog + perTick*int(catchUp/service+1) + 1 // +1: the item in flight
				bound := time.Duration(ahead) * service
				time.Sleep(bound + service)
				stop()
				wg.Wait()
				got, ok := rec.start("low")
				if tc.handled {
					if !ok {
						t.Fatalf("low item not handled within the bound %v (backlog %d)", bound, backlog)
					}
					if w := got.Sub(t0); w > bound || w < catchUp {
						t.Fatalf("low item waited %v; want between the catch-up time %v and the bound %v", w, catchUp, bound)
					}
				} else if ok {
					t.Fatalf("without aging the low item should still wait, it started after %v", got.Sub(t0))
				}
				ctx2, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				rep, _ := rt.Shutdown(ctx2)
				if c := rep.Leftovers[0].Counts; !c.Balanced() {
					t.Fatalf("accounts do not add up: %+v", c)
				}
			})
		})
	}
}

func TestOverfillDefersAndCatchesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		events := map[persona.EventKind]int{}
		var deferred []string
		rt := persona.NewRuntime(persona.RuntimeOptions{Observer: persona.ObserverFunc(func(e persona.Event) {
			mu.Lock()
			events[e.Kind]++
			if e.Kind == persona.EventDeferred {
				deferred = append(deferred, e.ItemID)
			}
			mu.Unlock()
		})})
		rec := newRecorder(0)
		p := mustSpawn(t, rt, "small", rec, persona.Options{Capacity: 10, SliceItems: 100})
		for i := range 25 {
			if err := p.Deliver(item(fmt.Sprintf("i%02d", i), 0.1+0.02*float64(i))); err != nil {
				t.Fatal(err)
			}
		}
		c := p.Snapshot().Counts
		if c.Queued != 10 || c.Deferred != 15 || c.Deferrals != 15 || !c.Balanced() {
			t.Fatalf("after overfill: %+v", c)
		}
		// The lowest were deferred: the highest ten are queued.
		top := p.Inbox().Peek(10, nil)
		if top[9].Value.ID != "i15" {
			t.Fatalf("lowest queued is %s, want i15", top[9].Value.ID)
		}
		rt.Start()
		// Overwhelmed (load above 0.05), the persona engages only what aging
		// lifts to the urgent line: 0.1 + 0.005/s reaches 0.8 in 140s.
		time.Sleep(4 * time.Minute)
		synctest.Wait()
		c = p.Snapshot().Counts
		if c.Handled != 25 || c.Readmitted != 15 || !c.Balanced() {
			t.Fatalf("deferred items should come back and be handled: %+v", c)
		}
		mu.Lock()
		defer mu.Unlock()
		if events[persona.EventDeferred] != 15 || events[persona.EventHandled] != 25 {
			t.Fatalf("events: %v", events)
		}
		// Each newcomer outranked the queue, so the lowest queued item was
		// deferred, not the newcomer: the events name i00..i14.
		for i, id := range deferred {
			if want := fmt.Sprintf("i%02d", i); id != want {
				t.Fatalf("deferral %d named %s, want %s (all: %v)", i, id, want, deferred)
			}
		}
		shutdown(t, rt)
	})
}

func TestDeferredPastTTLExpireAndAreReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var expired []string
		rt := persona.NewRuntime(persona.RuntimeOptions{
			Observer: persona.ObserverFunc(func(e persona.Event) {
				if e.Kind == persona.EventExpired {
					mu.Lock()
					expired = append(expired, e.ItemID)
					mu.Unlock()
				}
			}),
			// No catch-up: the governor keeps the system hot.
			Governor: persona.GovernorFunc(func() persona.Adjustment { return persona.Adjustment{CadenceMultiplier: 1} }),
		})
		p := mustSpawn(t, rt, "p", newRecorder(0), persona.Options{Capacity: 2, DeferredTTL: 30 * time.Second, Scan: true})
		for i := range 5 {
			p.Deliver(item(fmt.Sprint(i), 0.5))
		}
		// One with a deadline in the queue.
		rt.Start()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		c := p.Snapshot().Counts
		if c.Expired != 3 || c.Handled != 2 || !c.Balanced() {
			t.Fatalf("counts %+v", c)
		}
		mu.Lock()
		if len(expired) != 3 {
			t.Fatalf("expired events %v", expired)
		}
		mu.Unlock()
		shutdown(t, rt)
	})
}

func TestDeadlinePassedItemExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{})
		rec := newRecorder(5 * time.Second)
		p := mustSpawn(t, rt, "p", rec, persona.Options{})
		it := item("stale", 0.5)
		it.Deadline = time.Now().Add(time.Second)
		p.Deliver(item("first", 0.5))
		rt.Start()
		synctest.Wait()
		p.Deliver(it) // waits behind five seconds of work: past its deadline
		time.Sleep(time.Minute)
		synctest.Wait()
		if _, ok := rec.start("stale"); ok {
			t.Fatal("an item past its deadline was handled")
		}
		if c := p.Snapshot().Counts; c.Expired != 1 || c.Handled != 1 || !c.Balanced() {
			t.Fatalf("counts %+v", c)
		}
		shutdown(t, rt)
	})
}

func TestItemDueBeforeTheNextScanWakesARestingPersona(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{})
		rec := newRecorder(0)
		p := mustSpawn(t, rt, "p", rec, persona.Options{})
		p.Deliver(item("first", 0.5))
		p.Deliver(item("second", 0.4))
		rt.Start()
		synctest.Wait()
		// Resting now, its next scan seconds away (idle cadence 3s). An
		// ordinary item waits for that tick; one due sooner cannot.
		start := time.Now()
		p.Deliver(item("batched", 0.5))
		due := item("due", 0.5)
		due.Deadline = start.Add(500 * time.Millisecond)
		p.Deliver(due)
		synctest.Wait()
		at, ok := rec.start("due")
		if !ok || at.Sub(start) != 0 {
			t.Fatalf("an item due in 500ms started at %v (ok %v), want at once", at.Sub(start), ok)
		}
		if c := p.Snapshot().Counts; c.Expired != 0 {
			t.Fatalf("counts %+v", c)
		}
		shutdown(t, rt)
	})
}

func TestBusyPersonaTiresSlowsAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{})
		rec := newRecorder(2 * time.Second) // 0.2 energy per item (seed: d/10s)
		p := mustSpawn(t, rt, "worker", rec, persona.Options{Capacity: 1000, SliceItems: 4})
		for i := range 20 {
			p.Deliver(item(fmt.Sprint(i), 0.6))
		}
		rt.Start()
		synctest.Wait()
		// SliceItems ends a step, not the work: it goes on past four items
		// while they are worth engaging, until its energy reaches the tired
		// floor (0.2) after five.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		s := p.Snapshot()
		if s.Counts.Handled != 5 || s.Energy > 1e-9 {
			t.Fatalf("after 10s of work: handled %d, energy %v; want 5 handled and 1 - 5*0.2 = 0", s.Counts.Handled, s.Energy)
		}
		if s.Mood != state.Tired || s.Cadence != 7*time.Second {
			t.Fatalf("a busy persona should be tired with the 7s cadence, got %v %v", s.Mood, s.Cadence)
		}
		// Tired at the floor: it engages nothing but rests, recovering 1/20
		// per second.
		time.Sleep(7 * time.Second)
		synctest.Wait()
		s = p.Snapshot()
		want := 7.0 / 20
		if math.Abs(s.Energy-want) > 0.05 || s.Counts.Handled != 5 {
			t.Fatalf("after 7s of rest: energy %v (want about %v), handled %d (want 5)", s.Energy, want, s.Counts.Handled)
		}
		shutdown(t, rt)
	})
}

func TestHandlerPanicAndErrorRecoveredRetriedAccounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{})
		rec := newRecorder(0)
		calls := map[string]int{}
		rec.fail = func(it persona.Item[string]) error {
			calls[it.ID]++
			switch it.ID {
			case "panics":
				panic("boom")
			case "flaky":
				if calls[it.ID] < 2 {
					return errors.New("transient")
				}
			case "broken":
				return errors.New("always")
			case "nope":
				return persona.ErrDecline
			}
			return nil
		}
		p := mustSpawn(t, rt, "p", rec, persona.Options{MaxAttempts: 3})
		for _, id := range []string{"panics", "flaky", "broken", "nope", "fine"} {
			p.Deliver(item(id, 0.9))
		}
		rt.Start()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		s := p.Snapshot()
		c := s.Counts
		if c.Handled != 2 || c.Failed != 2 || c.Declined != 1 || !c.Balanced() {
			t.Fatalf("counts %+v", c)
		}
		if s.Panics != 3 || s.Errors != 4 {
			t.Fatalf("panics %d errors %d, want 3 and 4", s.Panics, s.Errors)
		}
		if calls["panics"] != 3 || calls["flaky"] != 2 || calls["broken"] != 3 {
			t.Fatalf("attempts %v", calls)
		}
		// The persona lives on.
		p.Deliver(item("after", 0.9))
		synctest.Wait()
		if _, ok := rec.start("after"); !ok {
			t.Fatal("persona died after handler panics")
		}
		shutdown(t, rt)
	})
}

func TestFairnessAcrossPersonas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{})
		const n = 8
		ps := make([]*persona.Persona[string], n)
		for i := range n {
			ps[i] = mustSpawn(t, rt, fmt.Sprint("p", i), newRecorder(500*time.Millisecond), persona.Options{})
		}
		rt.Start()
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				for _, p := range ps {
					p.Deliver(item(fmt.Sprint("m", i), 0.5))
				}
				select {
				case <-time.After(2 * time.Second):
				case <-ctx.Done():
					return
				}
			}
		})
		time.Sleep(10 * time.Minute)
		stop()
		wg.Wait()
		synctest.Wait()
		var sum, sq float64
		for _, p := range ps {
			x := float64(p.Snapshot().Slices)
			if x == 0 {
				t.Fatalf("%s got no time slice", p.Name())
			}
			sum += x
			sq += x * x
		}
		if j := sum * sum / (n * sq); j < 0.95 {
			t.Fatalf("Jain's index over slices = %.3f, want >= 0.95", j)
		}
		shutdown(t, rt)
	})
}

func TestIdlePersonaHoldsNoGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		before := runtime.NumGoroutine()
		rt := persona.NewRuntime(persona.RuntimeOptions{})
		p := mustSpawn(t, rt, "p", newRecorder(0), persona.Options{})
		rt.Start()
		p.Deliver(item("a", 0.9))
		synctest.Wait()
		if s := p.Snapshot(); s.Awake || s.Counts.Handled != 1 {
			t.Fatalf("after its work the persona should sleep without a loop: %+v", s)
		}
		// An hour of virtual time passes without a single wake-up.
		time.Sleep(time.Hour)
		synctest.Wait()
		if w := p.Snapshot().Wakes; w.Demand+w.Scan+w.Dependency != 1 {
			t.Fatalf("idle persona woke up: %+v", w)
		}
		// After the linger the parked loop goroutine and the reaper are gone.
		if n := runtime.NumGoroutine(); n != before {
			t.Fatalf("%d goroutines after an idle hour, %d before the persona existed", n, before)
		}
		shutdown(t, rt)
	})
}

func TestShutdownReportsLeftoversAndCancelsHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{})
		rec := newRecorder(time.Hour) // a handler that would run for an hour
		p := mustSpawn(t, rt, "slow", rec, persona.Options{})
		for i := range 4 {
			p.Deliver(item(fmt.Sprint(i), 0.9))
		}
		rt.Start()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		rep, err := rt.Shutdown(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("shutdown err = %v, want deadline exceeded after cancelling the handler", err)
		}
		// The item whose handler shutdown cancelled is not the handler's
		// failure: it is left over with the rest, for its owner to deliver
		// again.
		l := rep.Leftovers[0]
		if len(l.Queued) != 4 || rep.Pending() != 4 || !slices.Contains(l.Queued, "0") {
			t.Fatalf("leftovers %+v", l)
		}
		if !l.Counts.Balanced() || l.Counts.Failed != 0 {
			t.Fatalf("nothing should be failed: %+v", l.Counts)
		}
		if err := p.Deliver(item("late", 0.9)); !errors.Is(err, persona.ErrClosed) {
			t.Fatalf("deliver after shutdown: %v", err)
		}
	})
}

func TestCoalesceMergesPendingItemsOfOneKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{})
		var got []persona.Item[string]
		h := persona.HandlerFunc[string](func(ctx context.Context, it persona.Item[string]) (any, error) {
			got = append(got, it)
			return nil, nil
		})
		p := mustSpawn(t, rt, "p", h, persona.Options{Coalesce: true})
		for i := range 3 {
			it := item(fmt.Sprint("m", i), 0.5)
			p.Deliver(it)
			time.Sleep(time.Second)
		}
		other := item("x", 0.5)
		other.Key = "other-room"
		p.Deliver(other)
		rt.Start()
		synctest.Wait()
		if len(got) != 2 {
			t.Fatalf("handled %d items, want 2 (one per key)", len(got))
		}
		room := got[0]
		if room.Key != "room" {
			room = got[1]
		}
		if room.ID != "m2" || len(room.Context) != 2 || room.Context[0].ID != "m0" || room.Context[1].ID != "m1" {
			t.Fatalf("want newest m2 with context m0, m1; got %s with %d context", room.ID, len(room.Context))
		}
		if c := p.Snapshot().Counts; c.Handled != 4 || !c.Balanced() {
			t.Fatalf("counts %+v", c)
		}
		shutdown(t, rt)
	})
}

// An item put back for later (persona.Later: a reply waiting for the
// room's budget) merges into a newer item of its key taken meanwhile: that
// answer answers it, and it does not come back for a reply of its own.
func TestHeldItemMergesIntoTheNextItemOfItsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{})
		var got []persona.Item[string]
		h := persona.HandlerFunc[string](func(ctx context.Context, it persona.Item[string]) (any, error) {
			if it.ID == "m0" {
				return nil, persona.Later(time.Now().Add(time.Minute))
			}
			got = append(got, it)
			return nil, nil
		})
		p := mustSpawn(t, rt, "p", h, persona.Options{Coalesce: true})
		rt.Start()
		p.Deliver(item("m0", 0.9))
		synctest.Wait()
		time.Sleep(5 * time.Second)
		p.Deliver(item("m1", 0.9))
		synctest.Wait()
		time.Sleep(2 * time.Minute) // past m0's time: it must not come back
		synctest.Wait()
		if len(got) != 1 || got[0].ID != "m1" || len(got[0].Context) != 1 || got[0].Context[0].ID != "m0" {
			t.Fatalf("handled %+v, want m1 once with m0 as its context", got)
		}
		if c := p.Snapshot().Counts; c.Handled != 2 || !c.Balanced() {
			t.Fatalf("counts %+v, want both handled", c)
		}
		shutdown(t, rt)
	})
}

func TestNoLingerGivesTheGoroutineBackAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		before := runtime.NumGoroutine()
		rt := persona.NewRuntime(persona.RuntimeOptions{Linger: -1})
		rec := newRecorder(0)
		p := mustSpawn(t, rt, "p", rec, persona.Options{})
		rt.Start()
		for i := range 3 {
			at := time.Now()
			p.Deliver(item(fmt.Sprint("u", i), 0.9))
			synctest.Wait()
			if got, ok := rec.start(fmt.Sprint("u", i)); !ok || got != at {
				t.Fatalf("urgent item %d not started at once from cold", i)
			}
			if n := runtime.NumGoroutine(); n != before {
				t.Fatalf("with no linger %d goroutines remain after the work, want %d", n, before)
			}
			time.Sleep(time.Second)
		}
		if w := p.Snapshot().Wakes; w.Demand != 3 {
			t.Fatalf("want one demand wake-up per item from cold, got %+v", w)
		}
		shutdown(t, rt)
	})
}

// An urgent item that arrives while its persona writes an urgent reply
// starts at once with an urgent lane (Options.Lane), and waits for that
// reply without one; a shutdown cancels the lane's work at its deadline,
// and its item is left over, not lost.
func TestUrgentLaneServesUrgentBesideUrgent(t *testing.T) {
	for _, lane := range []int{0, 1} {
		t.Run(fmt.Sprint("lane ", lane), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := persona.NewRuntime(persona.RuntimeOptions{})
				rec := newRecorder(5 * time.Second)
				p := mustSpawn(t, rt, "helper", rec, persona.Options{Preempt: true, Lane: lane})
				rt.Start()
				p.Deliver(item("u1", 0.9))
				synctest.Wait()
				time.Sleep(time.Second)
				at := time.Now()
				p.Deliver(persona.Item[string]{ID: "u2", Key: "other", Priority: 0.85, Payload: "u2"})
				synctest.Wait()
				_, started := rec.start("u2")
				if lane > 0 && !started {
					t.Fatal("u2 waited for its persona's urgent reply to u1 despite the lane")
				}
				if lane == 0 && started {
					t.Fatal("u2 started beside u1 without a lane")
				}
				time.Sleep(10 * time.Second)
				got, _ := rec.start("u2")
				want := at
				if lane == 0 {
					want = at.Add(4 * time.Second) // when u1's reply ends
				}
				if !got.Equal(want) {
					t.Fatalf("u2 started %v after arriving, want %v", got.Sub(at), want.Sub(at))
				}
				snap := p.Snapshot()
				if snap.Counts.Handled != 2 || snap.Lane != uint64(lane) {
					t.Fatalf("handled %d, lane %d; want 2 and %d", snap.Counts.Handled, snap.Lane, lane)
				}
				// A lane work that outlives the shutdown's deadline is
				// cancelled and left over, not lost or failed.
				p.Deliver(item("u3", 0.9))
				synctest.Wait()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				rep, err := rt.Shutdown(ctx)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("shutdown err = %v, want the deadline", err)
				}
				if l := rep.Leftovers[0]; !slices.Contains(l.Queued, "u3") || !l.Counts.Balanced() || l.Counts.Failed != 0 {
					t.Fatalf("leftovers %+v", l)
				}
			})
		})
	}
}

// Shutdown drains: the urgent items queued when it is called are handled
// before the personas stop, the ordinary one is left over, not taken; with
// a deadline that falls during the drain, what is not done by then is left
// over too, and Shutdown says the deadline ended it.
func TestShutdownFinishesQueuedUrgentWorkUntilItsDeadline(t *testing.T) {
	for _, c := range []struct {
		name    string
		within  time.Duration
		handled []string
		left    []string
	}{
		{"time enough", time.Minute, []string{"u1", "u2", "u3"}, []string{"n1"}},
		{"deadline during u2", 1500 * time.Millisecond, []string{"u1"}, []string{"n1", "u2", "u3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := persona.NewRuntime(persona.RuntimeOptions{})
				rec := newRecorder(time.Second)
				p := mustSpawn(t, rt, "p", rec, persona.Options{})
				rt.Start()
				p.Deliver(item("u1", 0.9))
				synctest.Wait() // u1 runs
				p.Deliver(item("n1", 0.4))
				p.Deliver(item("u2", 0.9))
				p.Deliver(item("u3", 0.9))
				ctx, cancel := context.WithTimeout(context.Background(), c.within)
				defer cancel()
				rep, err := rt.Shutdown(ctx)
				if (err != nil) != (c.within < time.Minute) {
					t.Fatalf("Shutdown: %v", err)
				}
				var handled []string
				for _, id := range []string{"u1", "u2", "u3", "n1"} {
					if _, ok := rec.start(id); ok {
						handled = append(handled, id)
					}
				}
				if c.within == time.Minute && !slices.Equal(handled, c.handled) {
					t.Errorf("started %v, want %v", handled, c.handled)
				}
				var left []string
				for _, l := range rep.Leftovers {
					left = append(left, l.Queued...)
				}
				slices.Sort(left)
				if !slices.Equal(left, c.left) {
					t.Errorf("left over %v, want %v", left, c.left)
				}
				if n := p.Snapshot().Counts.Handled; n != uint64(len(c.handled)) {
					t.Errorf("handled %d, want %d", n, len(c.handled))
				}
			})
		})
	}
}
