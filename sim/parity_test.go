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
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/deps"
	"github.com/personaos/persona/inbox"
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
	later // not before laterBy from now: persona.Later
)

// laterBy is how long a scripted attempt that says "later" puts its item
// aside.
const laterBy = 4*time.Second + 3

// attempt is one scripted handler call: how long it works and how it ends.
type attempt struct {
	took time.Duration
	out  outcome
}

// arrival is one scripted delivery: to one persona, or broadcast on the
// stream to several (to), with addressees (an @mention).
type arrival struct {
	at         time.Duration // since the script's start
	persona    string
	to         []string
	addressees []string
	id, key    string
	priority   float64
	deadline   time.Duration // since the script's start; 0: none
}

// script is a world of independent personas and their arrivals.
type script struct {
	personas []scriptPersona
	arrivals []arrival
	// work is each item's attempts, by persona and item ID; an attempt
	// past the list succeeds at once.
	work    map[string][]attempt
	horizon time.Duration
	// stream holds the options of the coordination stream that the
	// personas with coord set share.
	stream coord.Options
	// thoughts are the coordinated personas' evaluations by persona and
	// item: how long they take, and what they conclude.
	thoughts map[string]scriptThought
	// depTimeout is how long each pipeline stage may hold an item.
	depTimeout time.Duration
}

type scriptPersona struct {
	name  string
	opts  persona.Options
	coord bool
}

// pipelined reports whether any persona of s waits for another.
func (s *script) pipelined() bool {
	for _, p := range s.personas {
		if len(p.opts.WaitsFor) > 0 {
			return true
		}
	}
	return false
}

type scriptThought struct {
	took time.Duration
	th   persona.Thought
	out  outcome
}

func (s *script) thought(who, id string) scriptThought {
	if th, ok := s.thoughts[workKey(who, id)]; ok {
		return th
	}
	return scriptThought{took: 50 * time.Millisecond, th: persona.Thought{Confidence: 0.5}}
}

func workKey(persona, id string) string { return persona + "/" + id }

// book remembers, for one run, which items a "later" attempt put aside
// already: it says so once, then succeeds (a Later counts no attempt).
type book struct {
	mu sync.Mutex
	m  map[string]bool
}

// putBack reports whether persona's item id was put aside already, and
// notes that it is now.
func (b *book) putBack(persona, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]bool{}
	}
	k := workKey(persona, id)
	done := b.m[k]
	b.m[k] = true
	return done
}

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
			case persona.EventError, persona.EventPanic, persona.EventGranted, persona.EventNotGranted, persona.EventPreempted:
				what = e.Kind.String()
			default:
				return
			}
			mu.Lock()
			trace = append(trace, rec{persona: e.Persona, item: e.ItemID, what: what, at: e.At.Sub(start), wait: e.Wait})
			mu.Unlock()
		})
		rt := persona.NewRuntime(persona.RuntimeOptions{Logger: slog.New(slog.DiscardHandler), Observer: obs, DependencyTimeout: s.depTimeout})
		stream := coord.New(s.stream)
		defer stream.Close()
		ps := map[string]*persona.Persona[string]{}
		aside := &book{}
		for _, sp := range s.personas {
			name := sp.name
			work := func(ctx context.Context, it persona.Item[string]) (any, error) {
				if s.pipelined() {
					mu.Lock()
					trace = append(trace, startRec(name, it, time.Since(start)))
					mu.Unlock()
				}
				a := s.attempt(name, it.ID, it.Attempt)
				if err := sleep(ctx, a.took); err != nil { // the scripted work, in the bubble's virtual time
					return nil, err
				}
				if a.out == later && !aside.putBack(name, it.ID) {
					return nil, persona.Later(time.Now().Add(laterBy))
				}
				return nil, a.out.err(true)
			}
			var h persona.Handler[string] = persona.HandlerFunc[string](work)
			opts := sp.opts
			if sp.coord {
				h = &scriptEvaluator{s: s, name: name, respond: work}
				opts.Coordination = stream
			}
			p, err := persona.Spawn(rt, name, h, opts)
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
			if a.to != nil {
				it.Addressees = a.addressees
				var to []*persona.Persona[string]
				for _, n := range a.to {
					to = append(to, ps[n])
				}
				if err := persona.Broadcast(to, stream, it); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := ps[a.persona].Deliver(it); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(s.horizon - time.Since(start))
		if _, err := rt.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		trace = append(trace, decisionTrace(stream.Recent(1<<20), start)...)
		mu.Unlock()
	})
	return trace
}

// sleep is scripted work that a preemption (or shutdown) cuts short.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startRec is the start of work on an item of a pipeline, with how
// complete its inputs are.
func startRec(name string, it persona.Item[string], at time.Duration) rec {
	return rec{persona: name, item: it.ID, what: fmt.Sprintf("start %v attempt %d", it.Status, it.Attempt), at: at}
}

// decisionTrace is every decision with its grant.
func decisionTrace(ds []coord.Decision, start time.Time) []rec {
	var tr []rec
	for _, d := range ds {
		g := slices.Clone(d.Granted)
		slices.Sort(g)
		tr = append(tr, rec{persona: "~decision", item: d.Item, what: "granted " + strings.Join(g, ",")})
	}
	return tr
}

func (o outcome) err(real bool) error {
	switch o {
	case fail:
		return errScripted
	case panics:
		if real {
			panic("scripted panic")
		}
		return errors.New("scripted panic")
	case decline:
		return persona.ErrDecline
	}
	return nil
}

// scriptEvaluator is a coordinated persona's scripted handler.
type scriptEvaluator struct {
	s       *script
	name    string
	respond func(context.Context, persona.Item[string]) (any, error)
}

func (e *scriptEvaluator) Handle(ctx context.Context, it persona.Item[string]) (any, error) {
	panic("a coordinated persona is not handled")
}

func (e *scriptEvaluator) Evaluate(ctx context.Context, it persona.Item[string]) (persona.Thought, error) {
	th := e.s.thought(e.name, it.ID)
	if err := sleep(ctx, th.took); err != nil {
		return persona.Thought{}, err
	}
	return th.th, th.out.err(true)
}

func (e *scriptEvaluator) Respond(ctx context.Context, it persona.Item[string], d coord.Decision) (any, error) {
	return e.respond(ctx, it)
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
	st    *virtualStream
	await string // the item whose decision the persona awaits
	gen   int    // the work in progress's generation: a preempted one's events are ignored
	aside *book
	doing persona.Do
	pipe  *virtualPipeline
}

func (h *scriptHost) Preempt() {
	now := h.w.now
	h.gen++
	switch h.doing {
	case persona.DoEvaluate:
		h.doing = 0
		h.d.Evaluated(now, persona.Thought{}, persona.Result{Err: context.Canceled, Preempted: true})
	case persona.DoHandle, persona.DoRespond, persona.DoThink:
		h.doing, h.await = 0, ""
		h.d.Done(now, persona.Result{Err: context.Canceled, Preempted: true})
	}
}

// virtualPipeline runs deps.Barriers in the world's virtual time as the
// runtime's pipeline runs a deps.Tracker: an item entering at a source is
// held and begun; a stage's final account finishes it (handled is done,
// declined skipped, anything else incomplete); a release hands the held
// item to the dependent with its status; one timer at the next deadline.
type virtualPipeline struct {
	w      *world
	epoch  time.Time
	b      *deps.Barriers
	source map[string]bool
	drv    map[string]*sim.Driver[string]
	items  map[string]persona.Item[string]
	armGen int
	t      *testing.T
}

func (p *virtualPipeline) enter(now int64, it persona.Item[string]) {
	if _, ok := p.items[it.ID]; !ok {
		p.items[it.ID] = it
	}
}

func (p *virtualPipeline) begin(now int64, id string) {
	p.release(p.b.Begin(p.epoch.Add(time.Duration(now)), id))
}

func (p *virtualPipeline) finish(name, id string, a persona.Account) {
	if p.source[name] {
		if _, held := p.items[id]; !held {
			return
		}
	}
	st := deps.Done
	switch a {
	case inbox.Handled:
	case inbox.Declined:
		st = deps.Skipped
	default:
		st = deps.Incomplete
	}
	p.release(p.b.Finish(p.epoch.Add(time.Duration(p.w.now)), name, id, st, nil))
}

func (p *virtualPipeline) release(rs []deps.Release) {
	for _, r := range rs {
		it, ok := p.items[r.Key]
		if !ok {
			p.t.Fatalf("release of %s to %s: not held", r.Key, r.Persona)
		}
		it.Delivered, it.Context, it.Attempt = time.Time{}, nil, 0
		it.Upstream, it.Status = r.Inputs, r.Status
		if err := p.drv[r.Persona].Deliver(p.w.now, it); err != nil {
			p.t.Fatal(err)
		}
	}
	p.armGen++
	at, ok := p.b.NextDeadline()
	if !ok {
		return
	}
	gen := p.armGen
	p.w.at(int64(at.Sub(p.epoch)), func() {
		if gen == p.armGen {
			p.release(p.b.Expire(p.epoch.Add(time.Duration(p.w.now))))
		}
	})
}

// virtualStream runs coord.Core in the world's virtual time: one timer at
// the core's next deadline, and decisions handed to the personas awaiting
// them, as coord.Stream does in real time.
type virtualStream struct {
	w      *world
	epoch  time.Time
	core   *coord.Core
	hosts  []*scriptHost
	armed  int64
	armGen int
}

func (v *virtualStream) t(now int64) time.Time { return v.epoch.Add(time.Duration(now)) }

func (v *virtualStream) publish(ds []coord.Decision) {
	for _, d := range ds {
		for _, h := range v.hosts {
			if h.await == d.Item {
				h.await, h.doing = "", 0
				h.gen++
				h.d.Decided(v.w.now, d, true)
			}
		}
	}
	v.rearm()
}

func (v *virtualStream) rearm() {
	at, ok := v.core.NextDeadline()
	if !ok {
		v.armGen++
		return
	}
	vt := int64(at.Sub(v.epoch))
	if v.armed == vt && v.armGen > 0 {
		return
	}
	v.armGen++
	gen := v.armGen
	v.armed = vt
	v.w.at(vt, func() {
		if gen != v.armGen {
			return
		}
		v.armGen++
		v.publish(v.core.Expire(v.t(v.w.now)))
	})
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
	switch a.Do {
	case persona.DoHandle, persona.DoRespond:
		if h.s.pipelined() {
			*h.trace = append(*h.trace, startRec(h.name, *a.Item, time.Duration(h.w.now)))
		}
		at := h.s.attempt(h.name, a.Item.ID, a.Item.Attempt)
		end := h.w.now + int64(at.took)
		if id := a.Lane; id != 0 {
			// Out in the urgent lane: never preempted, and the persona
			// goes on meanwhile.
			itemID := a.Item.ID
			h.w.at(end, func() {
				r := result(at.out)
				if at.out == later {
					r = persona.Result{}
					if !h.aside.putBack(h.name, itemID) {
						r = persona.Result{Later: h.d.T(end).Add(laterBy)}
					}
				}
				h.d.LaneDone(end, id, r)
			})
			return
		}
		h.gen++
		gen := h.gen
		h.doing = a.Do
		itemID := a.Item.ID
		h.w.at(end, func() {
			if h.gen == gen {
				h.doing = 0
				r := result(at.out)
				if at.out == later {
					if !h.aside.putBack(h.name, itemID) {
						r = persona.Result{Later: h.d.T(end).Add(laterBy)}
					} else {
						r = persona.Result{}
					}
				}
				h.d.Done(end, r)
			}
		})
	case persona.DoEvaluate:
		th := h.s.thought(h.name, a.Item.ID)
		end := h.w.now + int64(th.took)
		h.gen++
		gen := h.gen
		h.doing = a.Do
		h.w.at(end, func() {
			if h.gen == gen {
				h.doing = 0
				h.d.Evaluated(end, th.th, result(th.out))
			}
		})
	case persona.DoThink:
		v := h.st
		now := h.w.now
		ds, err := v.core.Think(v.t(now), *a.Thought)
		if err != nil && !errors.Is(err, coord.ErrClosedDecision) {
			h.d.Abandon(now, persona.Result{Err: err})
			return
		}
		if a.NoWait {
			h.d.Spoke(now)
			v.publish(ds)
			return
		}
		if d, ok := v.core.Decision(a.Item.ID); ok {
			// Decided already (a late thought), or by this thought: Await
			// returns at once.
			h.doing = 0
			h.d.Decided(now, d, true)
			v.publish(ds)
			return
		}
		id := a.Item.ID // the action's item is the cycle's, valid until its next input
		h.await = id
		h.gen++
		h.doing = a.Do
		gen, until := h.gen, h.d.V(a.Until)
		h.w.at(until, func() {
			if h.await == id && h.gen == gen {
				h.await, h.doing = "", 0
				h.d.Decided(until, coord.Decision{}, false)
			}
		})
		v.publish(ds)
	}
}

func result(o outcome) persona.Result {
	r := persona.Result{Err: o.err(false)}
	r.Panicked = o == panics
	return r
}

func (h *scriptHost) Note(n persona.Note[string]) {
	v, now := h.st, h.w.now
	switch n.Kind {
	case persona.NoteFinal:
		*h.trace = append(*h.trace, rec{persona: h.name, item: n.Item.ID, what: n.Account.String(), at: time.Duration(h.d.V(n.At)), wait: n.Wait})
		if h.d.Cycle().Coordinated() && n.Account != inbox.Handled {
			v.publish(v.core.Leave(v.t(now), n.Item.ID, h.name))
		}
		if h.pipe != nil {
			h.pipe.finish(h.name, n.Item.ID, n.Account)
		}
	case persona.NoteLeave:
		v.publish(v.core.Leave(v.t(now), n.Item.ID, h.name))
	case persona.NoteObserve:
		ds, _ := v.core.Think(v.t(now), coord.Thought{Persona: h.name, Item: n.Item.ID, Key: n.Item.Key, Intent: coord.IntentObserve})
		v.publish(ds)
	case persona.NotePreempted:
		*h.trace = append(*h.trace, rec{persona: h.name, item: n.Item.ID, what: "preempted", at: time.Duration(h.d.V(n.At))})
	case persona.NoteGranted, persona.NoteNotGranted:
		what := "granted"
		if n.Kind == persona.NoteNotGranted {
			what = "not_granted"
		}
		*h.trace = append(*h.trace, rec{persona: h.name, item: n.Item.ID, what: what, at: time.Duration(h.d.V(n.At))})
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
	v := &virtualStream{w: w, epoch: epoch, core: coord.NewCore(s.stream)}
	ds := map[string]*sim.Driver[string]{}
	coordinated := map[string]bool{}
	var pipe *virtualPipeline
	if s.pipelined() {
		var nodes []deps.Node
		for _, sp := range s.personas {
			nodes = append(nodes, deps.Node{Name: sp.name, WaitsFor: sp.opts.WaitsFor})
		}
		g, err := deps.NewGraph(nodes)
		if err != nil {
			t.Fatal(err)
		}
		pipe = &virtualPipeline{w: w, epoch: epoch, b: deps.NewBarriers(g, deps.Options{Timeout: s.depTimeout}),
			source: map[string]bool{}, drv: ds, items: map[string]persona.Item[string]{}, t: t}
		for _, n := range g.Sources() {
			pipe.source[n] = true
		}
	}
	aside := &book{}
	for _, sp := range s.personas {
		h := &scriptHost{w: w, s: s, name: sp.name, trace: &trace, st: v, pipe: pipe, aside: aside}
		var dec persona.Decisions
		if sp.coord {
			dec = v.core
			coordinated[sp.name] = true
			v.hosts = append(v.hosts, h)
		}
		c := persona.NewCycle(sp.name, sp.opts, persona.NewInbox[string](sp.opts), dec)
		c.SetDependent(len(sp.opts.WaitsFor) > 0)
		h.d = sim.NewDriver(c, sim.Host[string](h), epoch)
		h.d.Start(0)
		ds[sp.name] = h.d
	}
	for _, a := range s.arrivals {
		w.at(int64(a.at), func() {
			now := int64(a.at)
			it := persona.Item[string]{ID: a.id, Key: a.key, Priority: a.priority}
			if a.deadline > 0 {
				it.Deadline = epoch.Add(a.deadline)
			}
			if a.to == nil {
				if pipe != nil && pipe.source[a.persona] {
					// Held before the push, so that a release can never
					// miss it, and begun after (Persona.admit).
					pipe.enter(now, it)
					it.Delivered, it.Created = epoch.Add(time.Duration(now)), epoch.Add(time.Duration(now))
					pipe.items[it.ID] = it
				}
				if err := ds[a.persona].Deliver(now, it); err != nil {
					t.Fatal(err)
				}
				if pipe != nil && pipe.source[a.persona] {
					pipe.begin(now, it.ID)
				}
				return
			}
			// persona.Broadcast: open with the coordinated recipients as the
			// expected thinkers, then deliver to each.
			it.Addressees = a.addressees
			var expected, addr []string
			for _, n := range a.to {
				if coordinated[n] {
					expected = append(expected, n)
				}
			}
			for _, n := range a.addressees {
				if slices.Contains(expected, n) {
					addr = append(addr, n)
				}
			}
			v.publish(v.core.Open(v.t(now), coord.Opening{Item: a.id, Key: a.key, Expected: expected, Addressees: addr}))
			for _, n := range a.to {
				if err := ds[n].Deliver(now, it); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	w.run(int64(s.horizon))
	return append(trace, decisionTrace(v.core.Recent(1<<20), epoch)...)
}

// checkParity runs s on both drivers and compares their traces. It
// returns how many works the simulated personas had preempted.
func checkParity(t *testing.T, s *script) (preempted int) {
	t.Helper()
	real, simulated := runReal(t, s), runSim(t, s)
	for _, r := range simulated {
		if r.what == "preempted" {
			preempted++
		}
	}
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
	return preempted
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
			personas: []scriptPersona{{name: "ann", opts: base}},
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
			personas: []scriptPersona{{name: "bob", opts: base}},
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
			personas: []scriptPersona{{name: "cat", opts: coalesce}},
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
		name: "an urgent arrival preempts non-urgent work, which goes back and is done after",
		s: script{
			personas: []scriptPersona{{name: "eve", opts: persona.Options{Capacity: 8, Preempt: true}}},
			arrivals: []arrival{
				{at: 0, persona: "eve", id: "e1", priority: 0.5},
				{at: 1500 * ms, persona: "eve", id: "e2", priority: 0.9},
				{at: 1600 * ms, persona: "eve", id: "e3", priority: 0.95},
			},
			work:    map[string][]attempt{"eve/e1": {{took: 4 * time.Second}}, "eve/e2": {{took: 2 * time.Second}}},
			horizon: time.Minute,
		},
	}, {
		name: "urgent work goes out in the lane: the next urgent item does not wait for it, a failed one comes back",
		s: script{
			personas: []scriptPersona{{name: "gil", opts: persona.Options{Capacity: 8, Preempt: true, Lane: 1}}},
			arrivals: []arrival{
				{at: 0, persona: "gil", id: "g1", priority: 0.9},
				{at: time.Second, persona: "gil", id: "g2", priority: 0.85},
				{at: 1500 * ms, persona: "gil", id: "g3", priority: 0.95},
				{at: 1600 * ms, persona: "gil", id: "g4", priority: 0.4},
				{at: 9 * time.Second, persona: "gil", id: "g5", priority: 0.9},
			},
			work: map[string][]attempt{
				"gil/g1": {{took: 5 * time.Second}},
				"gil/g2": {{took: 2 * time.Second}},
				"gil/g3": {{took: 3 * time.Second, out: fail}, {took: time.Second}},
				"gil/g5": {{took: time.Second, out: later}},
			},
			horizon: time.Minute,
		},
	}, {
		name: "work that cannot be done yet is put aside and comes back, the persona working on meanwhile",
		s: script{
			personas: []scriptPersona{{name: "fay", opts: persona.Options{Capacity: 8, Coalesce: true}}},
			arrivals: []arrival{
				{at: 0, persona: "fay", id: "f1", key: "r1", priority: 0.9},
				{at: 100 * ms, persona: "fay", id: "f2", key: "r2", priority: 0.6},
				{at: 2 * time.Second, persona: "fay", id: "f3", key: "r1", priority: 0.5},
			},
			work:    map[string][]attempt{"fay/f1": {{took: 300 * ms, out: later}}, "fay/f2": {{took: time.Second}}},
			horizon: time.Minute,
		},
	}, {
		name: "a full inbox defers its lowest items and catches up later",
		s: script{
			personas: []scriptPersona{{name: "dan", opts: persona.Options{Capacity: 3}}},
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

func TestParityCoordination(t *testing.T) {
	ms := time.Millisecond
	three := []string{"ava", "ben", "cy"}
	ps := func(opts persona.Options) []scriptPersona {
		var out []scriptPersona
		for _, n := range three {
			out = append(out, scriptPersona{name: n, opts: opts, coord: true})
		}
		return out
	}
	opts := persona.Options{Capacity: 16, Coalesce: true}
	tests := []struct {
		name string
		s    script
	}{{
		name: "the most confident answers; the others are not granted",
		s: script{
			personas: ps(opts),
			stream:   coord.Options{Window: time.Second},
			arrivals: []arrival{
				{at: 100 * ms, to: three, id: "m1", key: "room", priority: 0.5},
				{at: 9100 * ms, to: three, id: "m2", key: "room", priority: 0.9},
				{at: 9200*ms + 3, to: three, id: "m3", key: "other", priority: 0.6},
			},
			thoughts: map[string]scriptThought{
				"ava/m1": {took: 40 * ms, th: persona.Thought{Confidence: 0.4}},
				"ben/m1": {took: 60 * ms, th: persona.Thought{Confidence: 0.9}},
				"cy/m1":  {took: 70 * ms, th: persona.Thought{Confidence: 0.6, Intent: coord.IntentObserve}},
				"cy/m2":  {took: 20 * ms, th: persona.Thought{Confidence: 0.7}, out: fail},
				"ava/m3": {took: 10 * ms, th: persona.Thought{Confidence: 0.8}, out: decline},
			},
			work:    map[string][]attempt{"ben/m1": {{took: 3 * time.Second}}, "ava/m2": {{took: 2*time.Second + 1}}},
			horizon: 2 * time.Minute,
		},
	}, {
		name: "a mention that reaches its persona after the decision is still answered by it",
		s: script{
			personas: ps(opts),
			stream:   coord.Options{Window: time.Second},
			arrivals: []arrival{
				{at: 0, to: three, id: "m1", key: "r1", priority: 0.95},
				{at: 300 * ms, to: three, addressees: []string{"ava"}, id: "m2", key: "r2", priority: 0.95},
				{at: 20 * time.Second, to: three, addressees: []string{"cy"}, id: "m3", key: "r1", priority: 0.5},
			},
			thoughts: map[string]scriptThought{
				"ava/m1": {took: 10 * ms, th: persona.Thought{Confidence: 1}},
				"ben/m1": {took: 30 * ms, th: persona.Thought{Confidence: 0.2}},
				"cy/m1":  {took: 50 * ms, th: persona.Thought{Confidence: 0.2}},
			},
			// ava is granted m1 and busy past m2's window.
			work:    map[string][]attempt{"ava/m1": {{took: 5 * time.Second}}},
			horizon: 2 * time.Minute,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkParity(t, &tt.s)
		})
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
		o := persona.Options{Capacity: 4 + rng.IntN(12), Coalesce: rng.IntN(2) == 0, Preempt: rng.IntN(2) == 0}
		o.Lane = int(seed % 3) // an urgent lane of 0, 1 or 2 (drawn apart, so the scripts stay as they were)
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
			switch r := rng.IntN(12); {
			case r == 0:
				x.out = fail
			case r == 1:
				x.out = panics
			case r == 2:
				x.out = decline
			case r == 3:
				x.out = later
			}
			w = append(w, x)
		}
		s.work[workKey(p, a.id)] = w
	}
	return s
}

func TestParityPipelines(t *testing.T) {
	ms := time.Millisecond
	stage := func(name string, waitsFor ...string) scriptPersona {
		return scriptPersona{name: name, opts: persona.Options{Capacity: 16, WaitsFor: waitsFor}}
	}
	tests := []struct {
		name string
		s    script
	}{{
		name: "a chain: each stage starts when its prerequisite finished, a stall releases the rest incomplete",
		s: script{
			personas:   []scriptPersona{stage("lines"), stage("planes", "lines"), stage("semantic", "planes")},
			depTimeout: 2 * time.Second,
			arrivals: []arrival{
				{at: 0, persona: "lines", id: "f1", priority: 0.9},
				{at: 500 * ms, persona: "lines", id: "f2", priority: 0.9},
				{at: 900 * ms, persona: "lines", id: "f3", priority: 0.5},
				{at: 9 * time.Second, persona: "lines", id: "f4", priority: 0.95},
			},
			work: map[string][]attempt{
				"lines/f1":  {{took: 80 * ms}},
				"planes/f1": {{took: 60 * ms}},
				"lines/f2":  {{took: 3 * time.Second}}, // stalls past the stage's timeout
				"planes/f3": {{took: 10 * ms, out: decline}},
				"lines/f4":  {{took: 10 * ms, out: fail}, {took: 20 * ms}},
			},
			horizon: 2 * time.Minute,
		},
	}, {
		name: "a diamond: the join waits for both branches",
		s: script{
			personas:   []scriptPersona{stage("src"), stage("left", "src"), stage("right", "src"), stage("join", "left", "right")},
			depTimeout: 3 * time.Second,
			arrivals: []arrival{
				{at: 0, persona: "src", id: "x1", priority: 0.9},
				{at: 100 * ms, persona: "src", id: "x2", priority: 0.4},
			},
			work: map[string][]attempt{
				"left/x1":  {{took: 1200 * ms}},
				"right/x1": {{took: 300 * ms, out: panics}, {took: 300 * ms}},
				"left/x2":  {{took: 5 * time.Second}},
			},
			horizon: 2 * time.Minute,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkParity(t, &tt.s) })
	}
}

// randomPipeline draws a chain or a diamond of stages with random frames,
// work times, failures and stalls.
func randomPipeline(seed uint64) *script {
	rng := rand.New(rand.NewPCG(seed, 0x70697065))
	s := &script{work: map[string][]attempt{}, horizon: 10 * time.Minute, depTimeout: time.Duration(1+rng.IntN(4)) * time.Second}
	mk := func(name string, waitsFor ...string) scriptPersona {
		return scriptPersona{name: name, opts: persona.Options{Capacity: 8 + rng.IntN(24), WaitsFor: waitsFor}}
	}
	if rng.IntN(2) == 0 {
		s.personas = []scriptPersona{mk("a"), mk("b", "a"), mk("c", "b")}
	} else {
		s.personas = []scriptPersona{mk("a"), mk("b", "a"), mk("c", "a"), mk("d", "b", "c")}
	}
	at := time.Duration(0)
	for i := range 10 + rng.IntN(30) {
		at += time.Duration(rng.ExpFloat64()*float64(700*time.Millisecond)) + time.Duration(rng.IntN(1000))
		a := arrival{at: at, persona: "a", id: fmt.Sprintf("f%d", i), priority: rng.Float64()}
		s.arrivals = append(s.arrivals, a)
		for _, p := range s.personas {
			var w []attempt
			for range 1 + rng.IntN(2) {
				x := attempt{took: time.Duration(rng.IntN(1500))*time.Millisecond + time.Duration(1+rng.IntN(1000))}
				switch r := rng.IntN(12); {
				case r == 0:
					x.out = fail
				case r == 1:
					x.out = decline
				case r == 2:
					x.took += 5 * time.Second // a stall
				}
				w = append(w, x)
			}
			s.work[workKey(p.name, a.id)] = w
		}
	}
	return s
}

func TestParityRandomPipelines(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { checkParity(t, randomPipeline(seed)) })
	}
}

func TestParityRandomScripts(t *testing.T) {
	preempted := 0
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { preempted += checkParity(t, randomScript(seed)) })
	}
	if preempted == 0 {
		t.Error("no random script preempted anything: the scripts do not exercise Options.Preempt")
	}
}

// randomCoordinated draws a world of coordinated personas on one stream:
// broadcasts, some with a mention, random confidences, evaluation and
// reply times, declines and failures.
func randomCoordinated(seed uint64) *script {
	rng := rand.New(rand.NewPCG(seed, 0x636f6f7264))
	s := &script{work: map[string][]attempt{}, thoughts: map[string]scriptThought{}, horizon: 20 * time.Minute}
	s.stream = coord.Options{Window: time.Duration(500+rng.IntN(2000)) * time.Millisecond, K: 1 + rng.IntN(2)}
	n := 2 + rng.IntN(3)
	var names []string
	for i := range n {
		// Preemption is left to the single-persona scripts: one urgent
		// broadcast preempting several coordinated personas at one instant
		// lets their goroutines race on the same decision (who leaves it
		// first), an order the real runtime does not fix.
		o := persona.Options{Capacity: 8 + rng.IntN(8), Coalesce: rng.IntN(2) == 0, Lane: int(seed % 2)}
		name := fmt.Sprintf("p%d", i)
		names = append(names, name)
		s.personas = append(s.personas, scriptPersona{name: name, opts: o, coord: true})
	}
	at := time.Duration(0)
	for i := range 15 + rng.IntN(25) {
		at += time.Duration(rng.ExpFloat64()*float64(2*time.Second)) + time.Duration(rng.IntN(1000))
		a := arrival{at: at, to: names, id: fmt.Sprintf("m%d", i), key: fmt.Sprintf("r%d", rng.IntN(2)), priority: rng.Float64()}
		if rng.IntN(4) == 0 {
			a.addressees = []string{names[rng.IntN(n)]}
			a.priority = 0.85 + rng.Float64()*0.15
		}
		s.arrivals = append(s.arrivals, a)
		for _, p := range names {
			th := scriptThought{
				took: time.Duration(10+rng.IntN(200))*time.Millisecond + time.Duration(rng.IntN(1000)),
				th:   persona.Thought{Confidence: rng.Float64()},
			}
			switch r := rng.IntN(12); {
			case r == 0:
				th.out = decline
			case r == 1:
				th.out = fail
			case r == 2:
				th.th.Intent = coord.IntentObserve
			}
			s.thoughts[workKey(p, a.id)] = th
			s.work[workKey(p, a.id)] = []attempt{{took: time.Duration(rng.IntN(4000))*time.Millisecond + time.Duration(1+rng.IntN(1000))}}
		}
	}
	return s
}

func TestParityRandomCoordination(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { checkParity(t, randomCoordinated(seed)) })
	}
}
