package persona

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/deps"
	"github.com/personaos/persona/inbox"
	"github.com/personaos/persona/state"
)

// Options configures one persona. The zero value is valid: every zero field
// takes the default documented on it.
type Options struct {
	// Capacity of the inbox (default 1000), Aging of waiting items per
	// second (default 0.005), DeferredTTL (default 10m) and LowWater
	// (default 0.5): see package inbox.
	Capacity    int
	Aging       float64
	DeferredTTL time.Duration
	LowWater    float64
	// State holds the policy numbers: energy, moods, thresholds, cadences
	// and the urgent line (default 0.8). See package state.
	State state.Config
	// SliceItems and SliceDuration bound one time slice (defaults 10, the
	// seed's peek of ten, and 30s). The slice ends early when the next item
	// is not worth engaging.
	SliceItems    int
	SliceDuration time.Duration
	// DeclinedTTL retires a non-urgent item that waited this long without
	// being engaged into the declined account (default 5m).
	DeclinedTTL time.Duration
	// MaxAttempts is how often an item whose handler errs or panics is
	// tried before it is accounted as failed (default 3).
	MaxAttempts int
	// Backoff is added to the cadence after a handler error, doubling with
	// each consecutive one up to MaxBackoff (defaults 1s and 1m).
	Backoff, MaxBackoff time.Duration
	// Scan keeps the cadence timer running with an empty inbox. By default
	// an idle persona with nothing to do holds no goroutine and no timer.
	Scan bool
	// Coalesce merges the queued items of one Key into the item taken: the
	// newest is handled, the older ones ride along in Item.Context and are
	// accounted as handled with it.
	Coalesce bool
	// Scorer, if set, sets each item's priority at delivery.
	Scorer any // Scorer[T]; typed as any so Options is shared by all payloads
	// WaitsFor names the personas whose output this one needs first: it
	// is handed an item only when they all finished it (see "Pipelines" in
	// the package documentation). Names are checked by Runtime.Start.
	WaitsFor []string
	// Notifies names personas that wait for this one (sugar for their
	// WaitsFor).
	Notifies []string
	// Coordination, if set, makes the persona coordinate before it acts:
	// its handler must implement Evaluator[T] (Spawn fails otherwise), and
	// instead of Handle the persona calls Evaluate, broadcasts the thought
	// on the stream, waits for the decision and calls Respond only if
	// granted. The stream belongs to the caller, who closes it after
	// Runtime.Shutdown. Deliver coordinated items with Broadcast.
	Coordination *coord.Stream
	// CoordinationTimeout bounds the wait for a decision (default: the
	// stream's longest window plus one second). The stream's window
	// closes every decision before; this is the safety net should the
	// stream misbehave or be closed.
	CoordinationTimeout time.Duration
}

func (o Options) withDefaults() Options {
	o.State = o.State.Defaults()
	if o.SliceItems <= 0 {
		o.SliceItems = 10
	}
	if o.SliceDuration <= 0 {
		o.SliceDuration = 30 * time.Second
	}
	if o.DeclinedTTL <= 0 {
		o.DeclinedTTL = 5 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	return o
}

// run states of a persona's loop.
const (
	runDormant int32 = iota // runtime not started: items wait
	runIdle                 // no goroutine, no timer
	runResting              // no goroutine, a scan timer armed
	runParked               // the loop goroutine waits on its wake-up channel, maybe with a timer
	runRunning              // the loop goroutine is working
	runStopped              // shut down
)

// Persona is an autonomous worker with an inbox and its own rhythm. Work is
// delivered to it (Deliver) and it decides for itself what to engage with
// and when. Create one with Spawn. All methods are safe for concurrent use;
// most callers want Deliver and Snapshot.
//
// An idle persona with an empty inbox holds neither a goroutine nor a
// timer: its loop runs only while there is something to do, and a timer
// stands in for it while it rests with work pending.
type Persona[T any] struct {
	name   string
	h      Handler[T]
	scorer Scorer[T]
	opts   Options
	rt     *Runtime
	q      *inbox.Inbox[Item[T]]

	// mu guards the run-state transitions and the timer. The fast path of
	// a delivery reads run atomically and takes no lock.
	mu       sync.Mutex
	run      atomic.Int32
	timer    *time.Timer
	gen      uint64
	wakeCh   chan Trigger // the parked goroutine's wake-up channel
	parkedAt time.Time

	// Owned by the loop goroutine (one at a time); stMu publishes st.
	stMu     sync.Mutex
	st       state.State
	mark     time.Time // time up to which st has been accounted
	cadence  time.Duration
	lastRest time.Time
	sweepAt  time.Time
	failRun  int
	meanTook float64                // running mean of handler time, ns
	taken    []inbox.Entry[Item[T]] // the batch being worked
	retired  []inbox.Retired[Item[T]]
	pokes    atomic.Uint64 // dependency releases and Wakes received: a running loop looks again

	busy       atomic.Int64 // total handler time, ns
	slices     atomic.Uint64
	errs       atomic.Uint64
	panics     atomic.Uint64
	granted    atomic.Uint64
	notGranted atomic.Uint64
	wakes      [numTriggers]atomic.Uint64

	// Coordination: eval is h as an Evaluator when opts.Coordination is set.
	eval Evaluator[T]
	cs   *coord.Stream

	// Pipelines: pipe is set by Runtime.Start for members of a dependency
	// graph; dependent marks a persona with prerequisites, whose every
	// arrival is a release and so a dependency trigger.
	pipe      atomic.Pointer[pipeline[T]]
	dependent atomic.Bool
	// attached (guarded by mu) is set when Start has looked at the
	// persona; until then early remembers what was delivered, so that a
	// pipeline source can enter it into the pipeline at Start.
	attached bool
	early    []Item[T]
}

// Spawn creates a persona running handler h in rt. Its loop starts when the
// runtime starts (or at once if it already has); items delivered before
// that wait in the inbox.
func Spawn[T any](rt *Runtime, name string, h Handler[T], opts Options) (*Persona[T], error) {
	if name == "" {
		return nil, errors.New("persona: spawn: empty name")
	}
	if h == nil {
		return nil, fmt.Errorf("persona: spawn %q: nil handler", name)
	}
	opts = opts.withDefaults()
	p := &Persona[T]{name: name, h: h, opts: opts, rt: rt, st: state.New(opts.State)}
	if opts.Scorer != nil {
		s, ok := opts.Scorer.(Scorer[T])
		if !ok {
			return nil, fmt.Errorf("persona: spawn %q: Scorer is %T, not a Scorer for this payload", name, opts.Scorer)
		}
		p.scorer = s
	}
	if opts.Coordination != nil {
		e, ok := h.(Evaluator[T])
		if !ok {
			return nil, fmt.Errorf("persona: spawn %q: Coordination is set but the handler %T is not an Evaluator for this payload", name, h)
		}
		p.eval, p.cs = e, opts.Coordination
	}
	p.cadence = p.st.Cadence(1)
	p.q = inbox.New[Item[T]](inbox.Options{
		Capacity:    opts.Capacity,
		Urgent:      opts.State.Urgent,
		Aging:       opts.Aging,
		DeferredTTL: opts.DeferredTTL,
		LowWater:    opts.LowWater,
		Notify:      p.notify,
		// The loop reports every deferral and every expiry by name.
		Report: true,
	})
	if err := rt.add(p); err != nil {
		return nil, err
	}
	return p, nil
}

// Name returns the persona's name.
func (p *Persona[T]) Name() string { return p.name }

// Deliver puts an item in the persona's inbox. It never runs the handler:
// the persona takes the item on its own schedule, at once if the item is
// urgent. When the inbox is full the lowest item is deferred, not lost.
//
// A persona with prerequisites (Options.WaitsFor, or named in another's
// Notifies) receives items only from its pipeline: Deliver refuses them with
// ErrNotSource. Delivering to a pipeline source enters the item into the
// pipeline, keyed by its ID.
func (p *Persona[T]) Deliver(it Item[T]) error {
	if p.dependent.Load() || len(p.opts.WaitsFor) > 0 {
		return fmt.Errorf("persona %s: deliver %s: %w", p.name, it.ID, ErrNotSource)
	}
	return p.deliver(it, false)
}

// deliver is Deliver for both producers and pipeline releases. A release
// is accepted even after stop, until the inbox closes, so that an item in
// flight through a pipeline at shutdown is reported as a leftover.
func (p *Persona[T]) deliver(it Item[T], released bool) error {
	now := time.Now()
	if it.Delivered.IsZero() {
		it.Delivered = now
	}
	if it.Created.IsZero() {
		it.Created = it.Delivered
	}
	if p.scorer != nil {
		it.Priority = p.scorer.Score(p.name, it, now)
	}
	if !released && p.run.Load() == runStopped {
		return fmt.Errorf("persona %s: deliver: %w", p.name, ErrClosed)
	}
	out, err := p.admit(it, released)
	if err != nil {
		if errors.Is(err, inbox.ErrClosed) {
			err = ErrClosed
		}
		return fmt.Errorf("persona %s: deliver %s: %w", p.name, it.ID, err)
	}
	if o := p.rt.obs; o != nil {
		o.Observe(Event{Kind: EventDelivered, Persona: p.name, At: now, ItemID: it.ID, Key: it.Key,
			Priority: it.Priority, Urgent: p.q.Urgent(it.Priority)})
		if out != inbox.Accepted {
			p.reportDeferred(now)
		}
	}
	return nil
}

// admit pushes it into the inbox and, for a pipeline source, into the
// pipeline: held before the push, so that a release can never miss it, and
// begun after.
func (p *Persona[T]) admit(it Item[T], released bool) (inbox.Outcome, error) {
	if !released && p.run.Load() == runDormant {
		p.mu.Lock()
		if !p.attached && p.run.Load() == runDormant {
			// Before Start nobody knows yet whether this persona is a
			// source: remember the item for Start. Holding mu across the
			// push is safe because notify takes no lock while dormant.
			out, err := p.push(it)
			if err == nil {
				p.early = append(p.early, it)
			}
			p.mu.Unlock()
			return out, err
		}
		p.mu.Unlock()
	}
	pp := p.pipe.Load()
	if pp == nil || released {
		return p.push(it)
	}
	held := pp.hold(it)
	out, err := p.push(it)
	if err != nil {
		if held {
			pp.unhold(it.ID)
		}
		return out, err
	}
	pp.tr.Begin(it.ID)
	return out, nil
}

func (p *Persona[T]) push(it Item[T]) (inbox.Outcome, error) {
	return p.q.Push(entryOf(it))
}

// entryOf is it as its inbox holds it.
func entryOf[T any](it Item[T]) inbox.Entry[Item[T]] {
	return inbox.Entry[Item[T]]{ID: it.ID, Priority: it.Priority, Enqueued: it.Delivered, Deadline: it.Deadline, Value: it}
}

// Wake wakes the persona at once, as a dependency trigger does: a persona
// that is already awake looks at its inbox again before it rests. Unknown
// triggers are ignored.
func (p *Persona[T]) Wake(t Trigger) {
	if t < 0 || t >= numTriggers {
		return
	}
	p.pokes.Add(1) // a loop that is running looks again before it parks
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wakeLocked(t)
}

// notify is the inbox's wake-up hook, called after every accepted push.
func (p *Persona[T]) notify(urgent bool) {
	if p.dependent.Load() {
		// Everything a dependent receives is a release: the dependency
		// trigger wakes it now, urgent or not.
		p.pokes.Add(1)
		switch p.run.Load() {
		case runRunning, runStopped, runDormant:
		default:
			p.Wake(TriggerDependency)
		}
		return
	}
	switch p.run.Load() {
	case runRunning, runStopped, runDormant:
		// A running loop re-checks the inbox after publishing that it
		// parks, so the item cannot be missed.
		return
	case runResting:
		if !urgent {
			return // the scan timer will pick it up: batching
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if urgent {
		p.wakeLocked(TriggerDemand)
		return
	}
	switch p.run.Load() {
	case runIdle:
		p.armLocked(p.untilNextScan(time.Now()))
	case runParked:
		if p.timer == nil {
			p.armLocked(p.untilNextScan(time.Now()))
		}
	}
}

// untilNextScan is the wait for the next tick of the persona's rhythm after
// its last activity: a long-idle persona looks at once.
func (p *Persona[T]) untilNextScan(now time.Time) time.Duration {
	p.stMu.Lock()
	last, cad := p.lastRest, p.cadence
	p.stMu.Unlock()
	if last.IsZero() {
		return 0
	}
	return max(0, last.Add(cad).Sub(now))
}

// wakeLocked runs the loop now: it resumes a parked loop goroutine or
// starts one. p.mu is held.
func (p *Persona[T]) wakeLocked(t Trigger) {
	switch p.run.Load() {
	case runIdle, runResting:
		p.stopTimerLocked()
		p.startLocked(t)
	case runParked:
		p.stopTimerLocked()
		p.resumeLocked(t)
	}
}

func (p *Persona[T]) stopTimerLocked() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.gen++ // a timer that already fired finds a newer generation and does nothing
}

// armLocked sets the scan timer; when it fires the loop runs. p.mu is held.
func (p *Persona[T]) armLocked(d time.Duration) {
	if d <= 0 {
		p.wakeLocked(TriggerScan)
		return
	}
	p.stopTimerLocked()
	gen := p.gen
	if p.run.Load() == runIdle {
		p.run.Store(runResting)
	}
	p.timer = time.AfterFunc(d, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.gen != gen {
			return
		}
		p.timer = nil
		switch p.run.Load() {
		case runResting:
			p.startLocked(TriggerScan)
		case runParked:
			p.resumeLocked(TriggerScan)
		}
	})
}

// startLocked launches a loop goroutine, owned by the runtime. p.mu is
// held; the runtime never starts goroutines after it began to shut down.
func (p *Persona[T]) startLocked(t Trigger) {
	p.run.Store(runRunning)
	if !p.rt.goLocked(func() { p.loop(t) }) {
		p.run.Store(runStopped)
	}
}

// resumeLocked hands a trigger to the parked loop goroutine. p.mu is held.
// The goroutine's channel has room: it parked with it empty and only one
// transition out of runParked can happen.
func (p *Persona[T]) resumeLocked(t Trigger) {
	p.run.Store(runRunning)
	ch := p.wakeCh
	p.wakeCh = nil
	p.rt.parkedAdd(-1)
	ch <- t
}

// retireLocked ends the parked loop goroutine: the persona keeps its timer
// if it has one, and a later trigger starts a fresh goroutine. p.mu is held.
func (p *Persona[T]) retireLocked(next int32) {
	p.run.Store(next)
	ch := p.wakeCh
	p.wakeCh = nil
	p.rt.parkedAdd(-1)
	ch <- triggerRetire
}

// retireIfParkedBefore retires the loop goroutine if it has been parked
// since before cutoff: an idle persona gives its goroutine back.
func (p *Persona[T]) retireIfParkedBefore(cutoff time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run.Load() != runParked || !p.parkedAt.Before(cutoff) {
		return
	}
	if p.timer != nil {
		p.retireLocked(runResting)
	} else {
		p.retireLocked(runIdle)
	}
}

// loop is the persona's life cycle: observe, choose, work a time slice,
// rest, and yield until the next trigger. Between triggers the goroutine
// parks on its own wake-up channel; after the runtime's linger with
// nothing to do it is retired, so an idle persona holds no goroutine.
func (p *Persona[T]) loop(t Trigger) {
	wake := make(chan Trigger, 1)
	for {
		p.wakes[t].Add(1)
		if o := p.rt.obs; o != nil {
			o.Observe(Event{Kind: EventWake, Persona: p.name, At: time.Now(), Trigger: t})
		}
		var again bool
		t, again = p.live(wake)
		if !again {
			return
		}
	}
}

// live runs scheduler steps until the persona parks, then waits on wake.
// It reports the trigger that woke it, or false when the goroutine ends.
func (p *Persona[T]) live(wake chan Trigger) (Trigger, bool) {
	for {
		if p.rt.stopping.Load() {
			p.halt()
			return 0, false
		}
		now := time.Now()
		adj := p.rt.adjust()
		pokes := p.pokes.Load()
		worked := p.step(now, adj)
		if p.rt.stopping.Load() {
			p.halt()
			return 0, false
		}
		if p.q.HasUrgent() {
			runtime.Gosched() // urgent work never waits for the cadence
			continue
		}
		p.stMu.Lock()
		cad := p.st.Cadence(adj.CadenceMultiplier)
		if p.failRun > 0 {
			cad += min(p.opts.MaxBackoff, p.opts.Backoff<<min(p.failRun-1, 16))
		}
		p.cadence = cad
		p.lastRest = time.Now()
		mood := p.st.Mood
		p.stMu.Unlock()
		if cad <= 0 && worked && p.q.Len() > 0 {
			// No rhythm: keep going while there is work it takes.
			runtime.Gosched()
			continue
		}
		if o := p.rt.obs; o != nil {
			o.Observe(Event{Kind: EventRest, Persona: p.name, At: time.Now(), Cadence: cad, Mood: mood})
		}
		switch p.park(cad, wake, pokes, worked) {
		case parkAgain:
			continue
		case parkExit:
			return 0, false
		}
		t := <-wake
		if t == triggerRetire {
			return 0, false
		}
		return t, true
	}
}

// idleRescan is how soon a persona with no rhythm (a negative cadence)
// looks again when it found nothing worth taking; a new arrival wakes it
// before.
const idleRescan = 100 * time.Millisecond

type parkResult int

const (
	parkWait  parkResult = iota // parked: wait on the wake-up channel
	parkAgain                   // work arrived meanwhile: step again
	parkExit                    // the goroutine ends: shutting down, or no linger
)

// triggerRetire on a wake-up channel ends the loop goroutine.
const triggerRetire Trigger = -1

// park publishes that the loop rests, unless urgent work arrived meanwhile.
// With work pending it arms the scan timer for cad; with nothing queued,
// deferred or scanned, no timer at all.
func (p *Persona[T]) park(cad time.Duration, wake chan Trigger, pokes uint64, worked bool) parkResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run.Load() == runStopped || p.rt.stopping.Load() {
		p.run.Store(runStopped)
		return parkExit
	}
	// Publish first, then look: a producer that saw us running has pushed
	// before we look, and one that pushes later sees us parked and wakes
	// us itself.
	p.run.Store(runParked)
	// Urgent work, or a dependency release that arrived while we worked
	// (its trigger found us running), is looked at now.
	if p.q.HasUrgent() || p.pokes.Load() != pokes {
		p.run.Store(runRunning)
		return parkAgain
	}
	if p.q.Len() > 0 || p.q.DeferredLen() > 0 || p.opts.Scan {
		if cad <= 0 {
			if worked {
				p.run.Store(runRunning)
				return parkAgain
			}
			// No rhythm, and nothing here worth taking now: look again
			// soon (aging lifts what waits) rather than spin.
			cad = idleRescan
		}
		p.armLocked(cad)
	}
	if p.rt.linger < 0 {
		// No linger: give the goroutine back at once.
		if p.timer != nil {
			p.run.Store(runResting)
		} else {
			p.run.Store(runIdle)
		}
		return parkExit
	}
	p.wakeCh = wake
	p.parkedAt = time.Now()
	p.rt.parkedAdd(1)
	return parkWait
}

// halt marks a loop that ends because the runtime shuts down.
func (p *Persona[T]) halt() {
	p.mu.Lock()
	p.run.Store(runStopped)
	p.mu.Unlock()
}

// step is one scheduler step: account the rest since the last one, retire
// stale items, catch up deferred work when allowed, and work one slice.
func (p *Persona[T]) step(now time.Time, adj Adjustment) (worked bool) {
	p.stMu.Lock()
	if !p.mark.IsZero() {
		p.st.Rest(now.Sub(p.mark))
	}
	p.mark = now
	p.stMu.Unlock()

	// Sweep once a second, or once a scan for a persona whose rhythm is
	// faster (a vision stage whose frames live for a tenth of a second).
	if now.Sub(p.sweepAt) >= min(time.Second, p.cadence) {
		p.sweepAt = now
		for _, r := range p.q.Sweep(now, p.opts.DeclinedTTL, nil) {
			p.final(r.Entry.Value, r.Account, nil, now, 0, 0)
		}
	}
	if adj.CatchUp && p.q.DeferredLen() > 0 {
		p.q.Readmit(now, 0)
	}
	// Deferred items that expired inside the inbox (past their time-to-live
	// when readmitted, or pushed out of a full deferred store) are reported
	// like every other final account.
	p.retired = p.q.DrainRetired(p.retired[:0])
	for _, r := range p.retired {
		p.final(r.Entry.Value, r.Account, nil, now, 0, 0)
	}
	clear(p.retired)
	p.reportDeferred(now) // deferrals by Requeue

	p.stMu.Lock()
	p.st.Observe(p.q.Load(), p.rt.budget(now))
	p.stMu.Unlock()

	return p.slice(now, adj.ThresholdShift)
}

// reportDeferred tells the observer which entries the inbox deferred: the
// lowest ones, not always the newcomer.
func (p *Persona[T]) reportDeferred(now time.Time) {
	o := p.rt.obs
	for _, e := range p.q.DrainDeferred(nil) {
		if o != nil {
			o.Observe(Event{Kind: EventDeferred, Persona: p.name, At: now, ItemID: e.ID, Key: e.Value.Key, Priority: e.Priority})
		}
	}
}

// slice works items while they are worth engaging, at most SliceItems of
// them or SliceDuration of time.
func (p *Persona[T]) slice(start time.Time, shift float64) (worked bool) {
	now := start
	engage := func(e inbox.Entry[Item[T]]) bool {
		eff := p.q.Effective(e, now)
		p.stMu.Lock()
		ok := p.st.ShouldEngage(eff, shift)
		p.stMu.Unlock()
		return ok
	}
	n := 0
	for n < p.opts.SliceItems {
		if n > 0 && now.Sub(start) >= p.opts.SliceDuration {
			break
		}
		if p.rt.stopping.Load() {
			break
		}
		p.taken = p.q.TakeTopN(min(p.batchSize(), p.opts.SliceItems-n), engage, p.taken[:0])
		if len(p.taken) == 0 {
			break
		}
		for i, e := range p.taken {
			if i > 0 && p.rt.stopping.Load() {
				for _, rest := range p.taken[i:] {
					p.q.Requeue(rest, now) // reported as left over, not lost
				}
				break
			}
			n++
			it := e.Value
			if !it.Deadline.IsZero() && !now.Before(it.Deadline) {
				p.q.Finish(it.ID, inbox.Expired)
				p.final(it, inbox.Expired, nil, now, now.Sub(it.Delivered), 0)
				continue
			}
			if p.opts.Coalesce && it.Key != "" {
				it = p.coalesce(it)
			}
			worked = true
			out, err, panicked := p.call(it)
			end := time.Now()
			took := end.Sub(now)
			p.busy.Add(int64(took))
			p.meanTook += (float64(took) - p.meanTook) / 8
			p.stMu.Lock()
			p.st.RecordActivity(end, took, it.Complexity)
			p.mark = end
			p.stMu.Unlock()
			p.settle(it, out, err, panicked, now, took)
			now = end
		}
	}
	clear(p.taken) // drop references to payloads
	if worked {
		p.slices.Add(1)
	}
	return worked
}

// batchBudget is how much handler time a batch taken under one lock may
// hold: an urgent arrival waits at most about this long for the next look
// at the inbox.
const batchBudget = 100 * time.Microsecond

// batchSize is how many items to take at once: one while handlers are slow
// (so that every item is chosen with the freshest view of the inbox), more
// when the running mean of handler time shows they fit in batchBudget.
func (p *Persona[T]) batchSize() int {
	if p.opts.Coalesce || p.eval != nil || p.meanTook <= 0 {
		return 1
	}
	return max(1, min(p.opts.SliceItems, int(float64(batchBudget)/p.meanTook)))
}

// coalesce takes the other queued items of it's key: the newest becomes
// the item handled, the rest ride along as its context.
func (p *Persona[T]) coalesce(it Item[T]) Item[T] {
	others := p.q.TakeWhere(func(e inbox.Entry[Item[T]]) bool { return e.Value.Key == it.Key })
	if len(others) == 0 {
		return it
	}
	all := make([]Item[T], 0, len(others)+1)
	all = append(all, it)
	for _, e := range others {
		all = append(all, e.Value)
	}
	newest := 0
	for i, x := range all {
		if x.Created.After(all[newest].Created) {
			newest = i
		}
	}
	trigger := all[newest]
	for i, x := range all {
		if i != newest {
			// Whoever an older item addressed is addressed by the merged
			// one: a mention is not lost by being merged.
			for _, a := range x.Addressees {
				if !slices.Contains(trigger.Addressees, a) {
					trigger.Addressees = append(slices.Clip(trigger.Addressees), a)
				}
			}
			x.Context = nil
			trigger.Context = append(trigger.Context, x)
		}
	}
	sortByCreated(trigger.Context)
	return trigger
}

func sortByCreated[T any](xs []Item[T]) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j].Created.Before(xs[j-1].Created); j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

// call runs the handler, recovering a panic into an error.
func (p *Persona[T]) call(it Item[T]) (out any, err error, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("persona %s: handler panic on %s: %v", p.name, it.ID, r)
			panicked = true
		}
	}()
	if p.eval != nil {
		out, err = p.coordinate(p.rt.ctx, it)
	} else {
		out, err = p.h.Handle(p.rt.ctx, it)
	}
	return out, err, false
}

// settle closes the account of a handled item (and of its merged context),
// or schedules a retry after an error.
func (p *Persona[T]) settle(it Item[T], out any, err error, panicked bool, start time.Time, took time.Duration) {
	wait := start.Sub(it.Delivered)
	switch {
	case err == nil:
		p.failRun = 0
		p.finishAll(it, inbox.Handled, out, start, wait, took)
	case errors.Is(err, ErrDecline):
		p.failRun = 0
		p.finishAll(it, inbox.Declined, nil, start, wait, took)
	default:
		p.failRun++
		kind := EventError
		if panicked {
			p.panics.Add(1)
			kind = EventPanic
		} else {
			p.errs.Add(1)
		}
		p.rt.log.Warn("handler failed", "persona", p.name, "item", it.ID, "attempt", it.Attempt+1, "err", err)
		if o := p.rt.obs; o != nil {
			o.Observe(Event{Kind: kind, Persona: p.name, At: start, ItemID: it.ID, Key: it.Key, Priority: it.Priority, Took: took, Err: err})
		}
		if p.rt.stopping.Load() {
			// Shutting down (the handler may have been cancelled by it):
			// the item is not the handler's failure. Put it back, to be
			// reported as left over and delivered again by its owner.
			p.requeue(it)
			return
		}
		if it.Attempt+1 < p.opts.MaxAttempts {
			it.Attempt++
			p.requeue(it)
			return
		}
		p.finishAll(it, inbox.Failed, nil, start, wait, took)
	}
}

// requeue puts a taken item back in the inbox, and the older items merged
// into it back beside it: none of them was answered, so none is settled.
// Taken again, they merge again.
func (p *Persona[T]) requeue(it Item[T]) {
	now := time.Now()
	for _, c := range it.Context {
		p.q.Requeue(entryOf(c), now)
	}
	it.Context = nil
	p.q.Requeue(entryOf(it), now)
}

func (p *Persona[T]) finishAll(it Item[T], a Account, out any, start time.Time, wait, took time.Duration) {
	p.q.Finish(it.ID, a)
	p.final(it, a, out, start, wait, took)
	for _, c := range it.Context {
		p.q.Finish(c.ID, a)
		p.final(c, a, nil, start, start.Sub(c.Delivered), 0)
	}
}

var accountEvents = [...]EventKind{inbox.Handled: EventHandled, inbox.Declined: EventDeclined, inbox.Expired: EventExpired, inbox.Failed: EventFailed}

// final reports an item's final account to the observer, the coordination
// stream and the pipeline.
func (p *Persona[T]) final(it Item[T], a Account, out any, at time.Time, wait, took time.Duration) {
	if o := p.rt.obs; o != nil {
		o.Observe(Event{Kind: accountEvents[a], Persona: p.name, At: at, ItemID: it.ID, Key: it.Key,
			Priority: it.Priority, Urgent: p.q.Urgent(it.Priority), Wait: wait, Took: took})
	}
	if p.cs != nil && a != inbox.Handled {
		// Nobody should wait for a thinker that will never speak. Leave,
		// not Withdraw: an item no longer open is not opened again.
		p.cs.Leave(it.ID, p.name)
	}
	if pp := p.pipe.Load(); pp != nil {
		pp.finish(p.name, it.ID, a, out)
	}
}

// Snapshot is a persona's state at a moment, for metrics and dashboards.
type Snapshot struct {
	Name      string        `json:"name"`
	Energy    float64       `json:"energy"`
	Attention float64       `json:"attention"`
	Mood      state.Mood    `json:"mood"`
	Load      float64       `json:"load"`
	Budget    float64       `json:"budget"`
	Cadence   time.Duration `json:"cadence_ns"`
	Awake     bool          `json:"awake"`
	Counts    Counts        `json:"counts"`
	Errors    uint64        `json:"errors"`
	Panics    uint64        `json:"panics"`
	Slices    uint64        `json:"slices"`
	Busy      time.Duration `json:"busy_ns"`
	Wakes     WakeCounts    `json:"wakes"`
	LastWork  time.Time     `json:"last_work"`
	// Granted and NotGranted split the handled items of a coordinated
	// persona: granted and responded to, or evaluated (or reached after the
	// decision) and left to others. Both stay zero without coordination.
	Granted    uint64 `json:"granted"`
	NotGranted uint64 `json:"not_granted"`
}

// WakeCounts counts wake-ups by trigger.
type WakeCounts struct {
	Demand     uint64 `json:"demand"`
	Dependency uint64 `json:"dependency"`
	Scan       uint64 `json:"scan"`
}

// Snapshot returns the persona's current state.
func (p *Persona[T]) Snapshot() Snapshot {
	p.stMu.Lock()
	st, cad := p.st, p.cadence
	p.stMu.Unlock()
	return Snapshot{
		Name: p.name, Energy: st.Energy, Attention: st.Attention, Mood: st.Mood, Load: st.Load,
		Budget: st.Budget, Cadence: cad, Awake: p.run.Load() == runRunning, Counts: p.q.Counts(),
		Errors: p.errs.Load(), Panics: p.panics.Load(), Slices: p.slices.Load(),
		Busy: time.Duration(p.busy.Load()), LastWork: st.LastActivity,
		Granted: p.granted.Load(), NotGranted: p.notGranted.Load(),
		Wakes: WakeCounts{Demand: p.wakes[TriggerDemand].Load(), Dependency: p.wakes[TriggerDependency].Load(), Scan: p.wakes[TriggerScan].Load()},
	}
}

// Inbox exposes the persona's inbox for inspection (Peek, Counts). Taking
// items from it behind the persona's back breaks its accounting of time
// slices; deliver with Deliver.
func (p *Persona[T]) Inbox() *inbox.Inbox[Item[T]] { return p.q }

// member is what the runtime needs of a persona of any payload type.
type member interface {
	Name() string
	Snapshot() Snapshot
	start()
	stop()
	retire(cutoff time.Time)
	remaining() Leftover
	deps() (waitsFor, notifies []string)
	payloadType() reflect.Type
	newPipeline(rt *Runtime, g *deps.Graph, ms []member) (pipe, error)
}

func (p *Persona[T]) deps() ([]string, []string) { return p.opts.WaitsFor, p.opts.Notifies }

// start moves a dormant persona to idle and wakes it if work waits.
func (p *Persona[T]) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run.Load() != runDormant {
		return
	}
	p.attached, p.early = true, nil
	p.run.Store(runIdle)
	switch {
	case p.q.HasUrgent():
		p.wakeLocked(TriggerDemand)
	case p.q.Len() > 0 || p.opts.Scan:
		p.armLocked(0)
	}
}

// stop prevents new loops and timers; a parked loop ends now, a running
// one after its current item.
func (p *Persona[T]) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopTimerLocked()
	switch p.run.Load() {
	case runParked:
		p.retireLocked(runStopped)
	case runRunning:
	default:
		p.run.Store(runStopped)
	}
}

// retire is the runtime's reaper hook.
func (p *Persona[T]) retire(cutoff time.Time) { p.retireIfParkedBefore(cutoff) }

// Leftover lists what a persona still held at shutdown: nothing is dropped
// silently.
type Leftover struct {
	Persona  string   `json:"persona"`
	Queued   []string `json:"queued"`
	Deferred []string `json:"deferred"`
	Counts   Counts   `json:"counts"`
}

func (p *Persona[T]) remaining() Leftover {
	q, d := p.q.Close()
	// Entries that expired inside the inbox since the loop last looked
	// (or that it never looked at) are reported like every final account.
	now := time.Now()
	for _, r := range p.q.DrainRetired(nil) {
		p.final(r.Entry.Value, r.Account, nil, now, 0, 0)
	}
	p.reportDeferred(now)
	l := Leftover{Persona: p.name, Counts: p.q.Counts()}
	for _, e := range q {
		l.Queued = append(l.Queued, e.ID)
	}
	for _, e := range d {
		l.Deferred = append(l.Deferred, e.ID)
	}
	return l
}
