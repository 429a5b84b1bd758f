package sim_test

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/sim"
)

// The parity tests feed one script to the real runtime (persona.Persona in
// real time, inside a synctest bubble) and to the simulator's driver
// (sim.Driver in virtual time), and require the same trace: for every item
// its persona, start, final account and wait, and every failed attempt.
// Both drivers run persona.Cycle; a change to either driver alone that
// changes what a persona does shows here as the first differing event.

// outcome is what one attempt at an item does.
type outcome uint8

const (
	succeed outcome = iota
	fail
	panics
	decline
)

// attempt is one scripted handler call: how long it works and how it ends.
type attempt struct {
	took time.Duration
	out  outcome
}

// arrival is one scripted delivery.
type arrival struct {
	at       time.Duration // since the script's start
	persona  string
	id, key  string
	priority float64
	deadline time.Duration // since the script's start; 0: none
}

// script is a world of independent personas and their arrivals.
type script struct {
	personas []scriptPersona
	arrivals []arrival
	// work is each item's attempts, by persona and item ID; an attempt
	// past the list succeeds at once.
	work    map[string][]attempt
	horizon time.Duration
}

type scriptPersona struct {
	name string
	opts persona.Options
}

func workKey(persona, id string) string { return persona + "/" + id }

func (s *script) attempt(persona, id string, n int) attempt {
	w := s.work[workKey(persona, id)]
	if n < len(w) {
		return w[n]
	}
	return attempt{}
}

var errScripted = errors.New("scripted failure")

// rec is one line of a trace.
type rec struct {
	persona, item string
	what          string        // an account, or "error"/"panic" for a failed attempt
	at            time.Duration // since the script's start: the start of work, or when the account was given
	wait          time.Duration
}

func (r rec) String() string {
	return fmt.Sprintf("%s %s %s at %v wait %v", r.persona, r.item, r.what, r.at, r.wait)
}

func sortTrace(tr []rec) {
	slices.SortStableFunc(tr, func(a, b rec) int {
		if c := strings.Compare(a.persona, b.persona); c != 0 {
			return c
		}
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return strings.Compare(a.item+a.what, b.item+b.what)
	})
}

// runReal plays s on the real runtime inside a synctest bubble.
func runReal(t *testing.T, s *script) []rec {
	var trace []rec
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		obs := persona.ObserverFunc(func(e persona.Event) {
			var what string
			switch e.Kind {
			case persona.EventHandled, persona.EventDeclined, persona.EventExpired, persona.EventFailed:
				what = e.Kind.String()
			case persona.EventError, persona.EventPanic:
				what = e.Kind.String()
			default:
				return
			}
			mu.Lock()
			trace = append(trace, rec{persona: e.Persona, item: e.ItemID, what: what, at: e.At.Sub(start), wait: e.Wait})
			mu.Unlock()
		})
		rt := persona.NewRuntime(persona.RuntimeOptions{Logger: slog.New(slog.DiscardHandler), Observer: obs})
		ps := map[string]*persona.Persona[string]{}
		for _, sp := range s.personas {
			name := sp.name
			h := persona.HandlerFunc[string](func(ctx context.Context, it persona.Item[string]) (any, error) {
				a := s.attempt(name, it.ID, it.Attempt)
				time.Sleep(a.took) // the scripted work, in the bubble's virtual time
				switch a.out {
				case fail:
					return nil, errScripted
				case panics:
					panic("scripted panic")
				case decline:
					return nil, persona.ErrDecline
				}
				return nil, nil
			})
			p, err := persona.Spawn(rt, name, h, sp.opts)
			if err != nil {
				t.Fatal(err)
			}
			ps[name] = p
		}
		if err := rt.Start(); err != nil {
			t.Fatal(err)
		}
		for _, a := range s.arrivals {
			time.Sleep(a.at - time.Since(start))
			it := persona.Item[string]{ID: a.id, Key: a.key, Priority: a.priority}
			if a.deadline > 0 {
				it.Deadline = start.Add(a.deadline)
			}
			if err := ps[a.persona].Deliver(it); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(s.horizon - time.Since(start))
		if _, err := rt.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	return trace
}

// world is a minimal discrete-event loop for the simulator's driver.
type world struct {
	now int64
	seq uint64
	q   evq
}

type ev struct {
	at  int64
	seq uint64
	f   func()
}

type evq []ev

func (q evq) Len() int { return len(q) }
func (q evq) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q evq) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *evq) Push(x any)   { *q = append(*q, x.(ev)) }
func (q *evq) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (w *world) at(t int64, f func()) {
	w.seq++
	heap.Push(&w.q, ev{at: t, seq: w.seq, f: f})
}

func (w *world) run(until int64) {
	for w.q.Len() > 0 && w.q[0].at <= until {
		e := heap.Pop(&w.q).(ev)
		w.now = e.at
		e.f()
	}
}

// scriptHost is the scripted world of one persona under sim.Driver.
type scriptHost struct {
	w     *world
	s     *script
	name  string
	d     *sim.Driver[string]
	trace *[]rec
}

func (h *scriptHost) StepAt(at int64) { h.w.at(at, func() { h.d.Step(at) }) }
func (h *scriptHost) TimerAt(at int64, gen int32) {
	h.w.at(at, func() { h.d.Timer(at, gen) })
}
func (h *scriptHost) Woke(persona.Trigger) {}
func (h *scriptHost) Adjust(int64) (persona.Adjustment, float64) {
	return persona.Adjustment{CadenceMultiplier: 1, CatchUp: true}, 1
}

func (h *scriptHost) Work(a persona.Action[string]) {
	if a.Do != persona.DoHandle {
		panic("scriptHost: only handlers")
	}
	at := h.s.attempt(h.name, a.Item.ID, a.Item.Attempt)
	end := h.w.now + int64(at.took)
	h.w.at(end, func() {
		var r persona.Result
		switch at.out {
		case fail:
			r.Err = errScripted
		case panics:
			r.Err, r.Panicked = errors.New("scripted panic"), true
		case decline:
			r.Err = persona.ErrDecline
		}
		h.d.Done(end, r)
	})
}

func (h *scriptHost) Note(n persona.Note[string]) {
	switch n.Kind {
	case persona.NoteFinal:
		*h.trace = append(*h.trace, rec{persona: h.name, item: n.Item.ID, what: n.Account.String(), at: time.Duration(h.d.V(n.At)), wait: n.Wait})
	case persona.NoteError:
		what := "error"
		if n.Panicked {
			what = "panic"
		}
		*h.trace = append(*h.trace, rec{persona: h.name, item: n.Item.ID, what: what, at: time.Duration(h.d.V(n.At))})
	}
}

// runSim plays s on the simulator's driver.
func runSim(t *testing.T, s *script) []rec {
	epoch := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &world{}
	var trace []rec
	ds := map[string]*sim.Driver[string]{}
	for _, sp := range s.personas {
		h := &scriptHost{w: w, s: s, name: sp.name, trace: &trace}
		c := persona.NewCycle(sp.name, sp.opts, persona.NewInbox[string](sp.opts), nil)
		h.d = sim.NewDriver(c, sim.Host[string](h), epoch)
		h.d.Start(0)
		ds[sp.name] = h.d
	}
	for _, a := range s.arrivals {
		w.at(int64(a.at), func() {
			it := persona.Item[string]{ID: a.id, Key: a.key, Priority: a.priority}
			if a.deadline > 0 {
				it.Deadline = epoch.Add(a.deadline)
			}
			if err := ds[a.persona].Deliver(int64(a.at), it); err != nil {
				t.Fatal(err)
			}
		})
	}
	w.run(int64(s.horizon))
	return trace
}

// checkParity runs s on both drivers and compares their traces.
func checkParity(t *testing.T, s *script) {
	t.Helper()
	real, simulated := runReal(t, s), runSim(t, s)
	sortTrace(real)
	sortTrace(simulated)
	for i := range max(len(real), len(simulated)) {
		var a, b string
		if i < len(real) {
			a = real[i].String()
		}
		if i < len(simulated) {
			b = simulated[i].String()
		}
		if a != b {
			t.Fatalf("traces differ at event %d of %d (runtime) / %d (simulator):\n  runtime:   %s\n  simulator: %s", i, len(real), len(simulated), a, b)
		}
	}
	if len(real) == 0 {
		t.Fatal("empty trace: the script did nothing")
	}
}

func TestParityScripts(t *testing.T) {
	ms := time.Millisecond
	base := persona.Options{Capacity: 8}
	coalesce := base
	coalesce.Coalesce = true
	tests := []struct {
		name string
		s    script
	}{{
		name: "non-urgent items are batched into the next scan; urgent ones start at once",
		s: script{
			personas: []scriptPersona{{"ann", base}},
			arrivals: []arrival{
				{at: 100 * ms, persona: "ann", id: "a1", priority: 0.5},
				{at: 7300 * ms, persona: "ann", id: "a2", priority: 0.4},
				{at: 7400 * ms, persona: "ann", id: "a3", priority: 0.95},
				{at: 7500 * ms, persona: "ann", id: "a4", priority: 0.6},
			},
			work:    map[string][]attempt{"ann/a1": {{took: 2 * time.Second}}, "ann/a3": {{took: 1500 * ms}}},
			horizon: time.Minute,
		},
	}, {
		name: "errors and panics are retried with backoff, then failed",
		s: script{
			personas: []scriptPersona{{"bob", base}},
			arrivals: []arrival{
				{at: 0, persona: "bob", id: "b1", priority: 0.9},
				{at: 50 * ms, persona: "bob", id: "b2", priority: 0.5},
				{at: 3 * time.Second, persona: "bob", id: "b3", priority: 0.85},
			},
			work: map[string][]attempt{
				"bob/b1": {{took: 300 * ms, out: fail}, {took: 200 * ms, out: panics}, {took: 100 * ms, out: fail}},
				"bob/b2": {{took: 10 * ms, out: panics}, {took: 10 * ms}},
				"bob/b3": {{took: 700 * ms, out: decline}},
			},
			horizon: 2 * time.Minute,
		},
	}, {
		name: "a room's pending items merge into the newest; deadlines expire what waits",
		s: script{
			personas: []scriptPersona{{"cat", coalesce}},
			arrivals: []arrival{
				{at: 0, persona: "cat", id: "c1", key: "r1", priority: 0.95},
				{at: 100 * ms, persona: "cat", id: "c2", key: "r1", priority: 0.5},
				{at: 200 * ms, persona: "cat", id: "c3", key: "r2", priority: 0.5, deadline: 1500 * ms},
				{at: 300 * ms, persona: "cat", id: "c4", key: "r1", priority: 0.6},
				{at: 400 * ms, persona: "cat", id: "c5", key: "r2", priority: 0.3},
			},
			work:    map[string][]attempt{"cat/c1": {{took: 4 * time.Second}}},
			horizon: time.Minute,
		},
	}, {
		name: "a full inbox defers its lowest items and catches up later",
		s: script{
			personas: []scriptPersona{{"dan", persona.Options{Capacity: 3}}},
			arrivals: []arrival{
				{at: 0, persona: "dan", id: "d1", priority: 0.9},
				{at: 10 * ms, persona: "dan", id: "d2", priority: 0.2},
				{at: 20 * ms, persona: "dan", id: "d3", priority: 0.4},
				{at: 30 * ms, persona: "dan", id: "d4", priority: 0.6},
				{at: 40 * ms, persona: "dan", id: "d5", priority: 0.5},
				{at: 50 * ms, persona: "dan", id: "d6", priority: 0.3},
			},
			work:    map[string][]attempt{"dan/d1": {{took: 2 * time.Second}}},
			horizon: 5 * time.Minute,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkParity(t, &tt.s) })
	}
}

// randomScript draws a world of a few personas with random arrivals,
// priorities, keys, deadlines, work times and failures. Times carry
// nanoseconds so that no two events of the script coincide by accident:
// the real runtime orders simultaneous goroutines as it likes.
func randomScript(seed uint64) *script {
	rng := rand.New(rand.NewPCG(seed, 0x70617269747921))
	s := &script{work: map[string][]attempt{}, horizon: 20 * time.Minute}
	n := 1 + rng.IntN(3)
	for i := range n {
		o := persona.Options{Capacity: 4 + rng.IntN(12), Coalesce: rng.IntN(2) == 0}
		if rng.IntN(3) == 0 {
			o.State.CadenceActive = time.Duration(1+rng.IntN(4)) * time.Second
		}
		s.personas = append(s.personas, scriptPersona{name: fmt.Sprintf("p%d", i), opts: o})
	}
	at := time.Duration(0)
	for i := range 20 + rng.IntN(40) {
		at += time.Duration(rng.ExpFloat64() * float64(800*time.Millisecond))
		at += time.Duration(rng.IntN(1000)) // nanoseconds: no ties
		p := s.personas[rng.IntN(n)].name
		a := arrival{at: at, persona: p, id: fmt.Sprintf("i%d", i), key: fmt.Sprintf("k%d", rng.IntN(3)), priority: rng.Float64()}
		if rng.IntN(5) == 0 {
			a.priority = 0.8 + rng.Float64()*0.2 // urgent
		}
		if rng.IntN(6) == 0 {
			a.deadline = at + time.Duration(rng.IntN(10_000))*time.Millisecond + 7
		}
		s.arrivals = append(s.arrivals, a)
		var w []attempt
		for range 1 + rng.IntN(3) {
			x := attempt{took: time.Duration(rng.IntN(3000))*time.Millisecond + time.Duration(1+rng.IntN(1000))}
			switch r := rng.IntN(10); {
			case r == 0:
				x.out = fail
			case r == 1:
				x.out = panics
			case r == 2:
				x.out = decline
			}
			w = append(w, x)
		}
		s.work[workKey(p, a.id)] = w
	}
	return s
}

func TestParityRandomScripts(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { checkParity(t, randomScript(seed)) })
	}
}
