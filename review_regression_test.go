package persona_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/state"
)

// countObserver counts events by kind and remembers expired item IDs.
type countObserver struct {
	mu sync.Mutex
	n  map[persona.EventKind]int
}

func (o *countObserver) Observe(e persona.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[persona.EventKind]int{}
	}
	o.n[e.Kind]++
}

func (o *countObserver) count(k persona.EventKind) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[k]
}

func TestSpawnWithScanAfterStartDoesNotDeadlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{})
		rt.Start()
		// Inside a bubble a deadlock fails the test instead of hanging it.
		p, err := persona.Spawn(rt, "scanner", newRecorder(0), persona.Options{Scan: true})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if w := p.Snapshot().Wakes; w.Scan == 0 {
			t.Fatalf("a scanning persona spawned after Start never scanned: %+v", w)
		}
		shutdown(t, rt)
	})
}

func TestExpiriesBeforeShutdownAreObserved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		obs := &countObserver{}
		rt := persona.NewRuntime(persona.RuntimeOptions{Observer: obs})
		block := make(chan struct{})
		h := persona.HandlerFunc[string](func(ctx context.Context, it persona.Item[string]) (any, error) {
			<-block
			return nil, nil
		})
		p := mustSpawn(t, rt, "p", h, persona.Options{Capacity: 1})
		rt.Start()
		p.Deliver(item("busy", 0.9)) // taken; its handler blocks
		synctest.Wait()
		// Capacity 1 and a deferred store of 10: the overflow expires
		// inside the inbox while the loop is stuck in the handler.
		for i := range 12 {
			p.Deliver(item(fmt.Sprint("n", i), 0.5))
		}
		go func() { time.Sleep(time.Millisecond); close(block) }()
		shutdown(t, rt)
		c := p.Snapshot().Counts
		if c.Expired == 0 || !c.Balanced() {
			t.Fatalf("setup: want expiries, got %+v", c)
		}
		if got := obs.count(persona.EventExpired); got != int(c.Expired) {
			t.Fatalf("%d items expired but %d expiry events were observed", c.Expired, got)
		}
	})
}

func TestLeavingAForgottenDecisionOpensNoSecondOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		per := map[string]int{}
		s := coord.New(coord.Options{Logger: quiet, FixedWindow: true, Window: time.Second, MaxClosed: 1,
			OnDecision: func(d coord.Decision) { mu.Lock(); per[d.Item]++; mu.Unlock() }})
		defer s.Close()
		rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
		p := mustSpawn(t, rt, "p", persona.Coordinated[string](&thinker{name: "p", conf: 0.5, log: newResponses()}),
			persona.Options{Coordination: s})
		rt.Start()
		// x is never engaged (too low) and expires after its decision was
		// made without p and forgotten (MaxClosed 1).
		x := item("x", 0.01)
		x.Deadline = time.Now().Add(5 * time.Second)
		persona.Broadcast([]*persona.Persona[string]{p}, s, x)
		time.Sleep(1500 * time.Millisecond)
		persona.Broadcast([]*persona.Persona[string]{p}, s, item("y", 0.9))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		shutdown(t, rt)
		mu.Lock()
		defer mu.Unlock()
		for id, n := range per {
			if n != 1 {
				t.Fatalf("item %s got %d decisions, want exactly one (all: %v)", id, n, per)
			}
		}
	})
}

func TestNoRhythmDoesNotSpinOnWorkItWillNotTake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var steps atomic.Int64
		rt := persona.NewRuntime(persona.RuntimeOptions{Governor: persona.GovernorFunc(func() persona.Adjustment {
			steps.Add(1)
			return persona.Adjustment{CadenceMultiplier: 1, CatchUp: true}
		})})
		neg := -time.Second
		p := mustSpawn(t, rt, "p", newRecorder(0), persona.Options{State: state.Config{
			CadenceIdle: neg, CadenceActive: neg, CadenceTired: neg, CadenceOverwhelmed: neg}})
		rt.Start()
		p.Deliver(item("low", 0.05)) // below the idle threshold: not taken until aging lifts it
		time.Sleep(time.Second)
		synctest.Wait()
		// A spinning loop never blocks, so virtual time would not even pass;
		// a persona that rescans every 100 ms steps about ten times.
		if n := steps.Load(); n > 20 {
			t.Fatalf("%d scheduler steps in one second for one item it will not take", n)
		}
		shutdown(t, rt)
	})
}

func TestMergedItemsAreRetriedNotSettledWhenTheAnswerFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var seen [][]string
		failures := 1
		h := persona.HandlerFunc[string](func(ctx context.Context, it persona.Item[string]) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			ids := []string{it.ID}
			for _, c := range it.Context {
				ids = append(ids, c.ID)
			}
			seen = append(seen, ids)
			if failures > 0 {
				failures--
				return nil, errors.New("model unavailable")
			}
			return nil, nil
		})
		rt := persona.NewRuntime(persona.RuntimeOptions{})
		p := mustSpawn(t, rt, "p", h, persona.Options{Coalesce: true, Backoff: time.Second})
		for i := range 3 {
			it := item(fmt.Sprint("m", i), 0.5)
			it.Created = time.Now().Add(time.Duration(i) * time.Second)
			p.Deliver(it)
		}
		rt.Start()
		time.Sleep(time.Minute)
		synctest.Wait()
		c := p.Snapshot().Counts
		if c.Handled != 3 || c.Failed != 0 || !c.Balanced() {
			t.Fatalf("counts %+v", c)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 2 || len(seen[1]) != 3 {
			t.Fatalf("the retry should carry all three merged items again: %v", seen)
		}
		shutdown(t, rt)
	})
}

// TestNoLostWakeUps drives deliveries at random times into a pipeline and a
// plain persona, with every linger setting, and checks every item is
// handled: a wake-up lost between a producer and a parking loop would
// leave one waiting forever.
func TestNoLostWakeUps(t *testing.T) {
	for _, linger := range []time.Duration{-1, time.Millisecond, time.Second} {
		for seed := range uint64(3) {
			t.Run(fmt.Sprint("linger ", linger, " seed ", seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					rt := persona.NewRuntime(persona.RuntimeOptions{Linger: linger})
					rng := rand.New(rand.NewPCG(seed, 1))
					var mu sync.Mutex
					h := persona.HandlerFunc[string](func(ctx context.Context, it persona.Item[string]) (any, error) {
						mu.Lock()
						d := time.Duration(rng.IntN(3)) * time.Millisecond
						mu.Unlock()
						time.Sleep(d)
						return nil, nil
					})
					a := mustSpawn(t, rt, "a", h, persona.Options{Notifies: []string{"b"}})
					b := mustSpawn(t, rt, "b", h, persona.Options{})
					c := mustSpawn(t, rt, "c", h, persona.Options{})
					if err := rt.Start(); err != nil {
						t.Fatal(err)
					}
					var wg sync.WaitGroup
					for g := range 4 {
						wg.Go(func() {
							for i := range 30 {
								mu.Lock()
								pr := []float64{0.5, 0.9, 0.3}[rng.IntN(3)]
								d := time.Duration(rng.IntN(3000)) * time.Millisecond
								mu.Unlock()
								time.Sleep(d)
								id := fmt.Sprint(g, "-", i)
								a.Deliver(item(id, pr))
								c.Deliver(item(id, pr))
							}
						})
					}
					wg.Wait()
					time.Sleep(2 * time.Minute)
					for _, p := range []*persona.Persona[string]{a, b, c} {
						if s := p.Snapshot().Counts; s.Handled != 120 || !s.Balanced() {
							t.Errorf("%s: %+v", p.Name(), s)
						}
					}
					shutdown(t, rt)
				})
			})
		}
	}
}
