package persona

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
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
	// SliceItems and SliceDuration bound one scheduler step (defaults 10,
	// the seed's peek of ten, and 30s): after that many items or that long
	// the persona steps again (it rests, sweeps and observes its load) and
	// goes on if engageable work waits. They are not a cap on how much it
	// does: its bandwidth is (see BandwidthPeriod).
	SliceItems    int
	SliceDuration time.Duration
	// BandwidthPeriod is the period of the persona's bandwidth server: when
	// the governor sets a share below 1 (the machine runs hot), the persona
	// may work Share x BandwidthPeriod on non-urgent items, replenished
	// continuously at Share; work past it is owed, and non-urgent work
	// waits until the budget is positive again (default 30s). Urgent work
	// is served at once, inside or beyond the budget, and is charged too.
	BandwidthPeriod time.Duration
	// Preempt lets an urgent arrival preempt the non-urgent work in
	// progress: its handler's context is cancelled, the item goes back to
	// the inbox (not failed, no attempt counted) and the urgent item is
	// taken at once. For handlers that spend seconds, a model call; a
	// handler that ignores its context finishes first and keeps its result.
	Preempt bool
	// Lane is how many urgent works may run beside the persona's own work,
	// in its urgent lane (default 0: none). With a lane, the last step of
	// an urgent item (its Handle, or a coordinated persona's Respond) goes
	// out on its own while the persona goes on with its slice, so that an
	// urgent item never waits for its own persona's previous urgent reply.
	// Preempt covers non-urgent work; the lane covers urgent work, which is
	// never preempted.
	Lane int
	// LaneOpen, if set, is asked before each urgent work takes the lane:
	// false keeps it on the persona's own path. The daemon and the
	// simulator open the lane only while no urgent model call waits for a
	// slot: with the slots full, a second call of one persona only delays
	// the others' and merges less (persona sim scenarios/urgent-overload.yaml
	// measures it). It is called with the cycle's driver holding its lock,
	// so it must not call back into the persona.
	LaneOpen func() bool
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
	if o.BandwidthPeriod <= 0 {
		o.BandwidthPeriod = 30 * time.Second
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

// Persona is an autonomous worker with an inbox and its own rhythm. Work is
// delivered to it (Deliver) and it decides for itself what to engage with
// and when. Create one with Spawn. All methods are safe for concurrent use;
// most callers want Deliver and Snapshot.
//
// A Persona is the real-time driver of a Cycle, the life cycle's pure core:
// it turns the cycle's wakes into goroutines and timers, runs the handler
// the cycle hands it, and reports the cycle's notes. An idle persona with
// an empty inbox holds neither a goroutine nor a timer: its loop runs only
// while there is something to do, and a timer stands in for it while it
// rests with work pending.
type Persona[T any] struct {
	name   string
	h      Handler[T]
	scorer Scorer[T]
	rt     *Runtime
	q      *inbox.Inbox[Item[T]]

	// mu guards the cycle and the driver's goroutine and timer.
	mu     sync.Mutex
	c      *Cycle[T]
	timer  *time.Timer
	gen    uint64
	loopOn bool // a loop goroutine exists (running or parked)
	// cancelCur cancels the work in progress of a persona with
	// Options.Preempt; preempted says an urgent arrival did.
	cancelCur context.CancelFunc
	preempted bool
	wakeCh    chan Trigger // the parked goroutine's wake-up channel; nil: not parked
	parkedAt  time.Time
	stopped   atomic.Bool

	wakes [numTriggers]atomic.Uint64

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
	started  atomic.Bool // attached, read without the lock by every delivery
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
	p := &Persona[T]{name: name, h: h, rt: rt}
	if opts.Scorer != nil {
		s, ok := opts.Scorer.(Scorer[T])
		if !ok {
			return nil, fmt.Errorf("persona: spawn %q: Scorer is %T, not a Scorer for this payload", name, opts.Scorer)
		}
		p.scorer = s
	}
	var stream Decisions
	if opts.Coordination != nil {
		e, ok := h.(Evaluator[T])
		if !ok {
			return nil, fmt.Errorf("persona: spawn %q: Coordination is set but the handler %T is not an Evaluator for this payload", name, h)
		}
		p.eval, p.cs = e, opts.Coordination
		stream = opts.Coordination
	}
	p.q = NewInbox[T](opts)
	p.c = NewCycle(name, opts, p.q, stream)
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
	if p.dependent.Load() || len(p.c.opts.WaitsFor) > 0 {
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
	if !released && p.stopped.Load() {
		return fmt.Errorf("persona %s: deliver: %w", p.name, ErrClosed)
	}
	out, err := p.admit(it, released)
	if err != nil {
		if errors.Is(err, inbox.ErrClosed) {
			err = ErrClosed
		}
		return fmt.Errorf("persona %s: deliver %s: %w", p.name, it.ID, err)
	}
	urgent := p.q.Urgent(it.Priority)
	if o := p.rt.obs; o != nil {
		o.Observe(Event{Kind: EventDelivered, Persona: p.name, At: now, ItemID: it.ID, Key: it.Key,
			Priority: it.Priority, Urgent: urgent})
	}
	var notes []Note[T]
	p.mu.Lock()
	if out != inbox.DeferredOnArrival {
		p.wakeLocked(p.c.Arrived(now, urgent, it.Deadline))
	}
	if out != inbox.Accepted {
		p.c.DrainDeferred(now) // the lowest entry, not always the newcomer
		notes = p.c.TakeNotes(nil)
	}
	p.mu.Unlock()
	p.carryOut(notes)
	return nil
}

// admit pushes it into the inbox and, for a pipeline source, into the
// pipeline: held before the push, so that a release can never miss it, and
// begun after.
func (p *Persona[T]) admit(it Item[T], released bool) (inbox.Outcome, error) {
	if !released && !p.started.Load() {
		p.mu.Lock()
		if !p.attached && p.c.Dormant() {
			// Before Start nobody knows yet whether this persona is a
			// source: remember the item for Start.
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

func (p *Persona[T]) push(it Item[T]) (inbox.Outcome, error) { return p.c.Push(it) }

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
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wakeLocked(p.c.Poke(time.Now(), t))
}

// wakeLocked carries out a wake of the cycle: run a step now (resume the
// parked loop goroutine or start one), or arm the scan timer. p.mu is held.
func (p *Persona[T]) wakeLocked(w Wake) {
	switch {
	case w.Preempt:
		if p.cancelCur != nil {
			p.preempted = true
			p.cancelCur()
		}
	case w.Step:
		p.stopTimerLocked()
		if p.wakeCh != nil {
			ch := p.wakeCh
			p.wakeCh = nil
			p.rt.parkedAdd(-1)
			ch <- w.Trigger // room: it parked with the channel empty
			return
		}
		if p.loopOn {
			return // the loop is between its rest and its park: it looks again
		}
		p.loopOn = true
		t := w.Trigger
		if !p.rt.goLocked(func() { p.loop(t) }) {
			p.loopOn = false
			p.c.Stop()
		}
	case !w.At.IsZero():
		p.armLocked(w.At)
	}
}

func (p *Persona[T]) stopTimerLocked() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.gen++ // a timer that already fired finds a newer generation and does nothing
}

// armLocked sets the scan timer for at; when it fires the cycle decides.
func (p *Persona[T]) armLocked(at time.Time) {
	p.stopTimerLocked()
	gen := p.gen
	p.timer = time.AfterFunc(time.Until(at), func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.gen != gen {
			return
		}
		p.timer = nil
		p.wakeLocked(p.c.Timer(time.Now()))
	})
}

// retireIfParkedBefore retires the loop goroutine if it has been parked
// since before cutoff: an idle persona gives its goroutine back. The cycle
// keeps its timer if it has one, and a later wake starts a fresh goroutine.
func (p *Persona[T]) retireIfParkedBefore(cutoff time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wakeCh == nil || !p.parkedAt.Before(cutoff) {
		return
	}
	p.retireLocked()
}

func (p *Persona[T]) retireLocked() {
	ch := p.wakeCh
	p.wakeCh, p.loopOn = nil, false
	p.rt.parkedAdd(-1)
	ch <- triggerRetire
}

// triggerRetire on a wake-up channel ends the loop goroutine.
const triggerRetire Trigger = -1

// loop runs the cycle's steps and the work they hand out, one trigger at a
// time. Between triggers the goroutine parks on its own wake-up channel;
// after the runtime's linger with nothing to do it is retired, so an idle
// persona holds no goroutine.
func (p *Persona[T]) loop(t Trigger) {
	wake := make(chan Trigger, 1)
	for {
		p.wakes[t].Add(1)
		if o := p.rt.obs; o != nil {
			o.Observe(Event{Kind: EventWake, Persona: p.name, At: time.Now(), Trigger: t})
		}
		if !p.live(wake) {
			return
		}
		if t = <-wake; t == triggerRetire {
			return
		}
	}
}

// live runs scheduler steps until the cycle rests. It reports whether the
// goroutine parked on wake (false: it ends).
func (p *Persona[T]) live(wake chan Trigger) bool {
	var notes []Note[T]
	for {
		now := time.Now()
		adj := p.rt.adjust()
		bud := p.rt.budget(now)
		p.mu.Lock()
		if p.rt.stopping.Load() {
			return p.haltLocked(now)
		}
		a := p.c.Step(now, adj, bud)
		for {
			notes = p.c.TakeNotes(notes[:0])
			if a.Do == DoRest {
				parked := p.parkLocked(a, wake)
				draining := p.c.Draining()
				p.mu.Unlock()
				p.carryOut(notes)
				if draining {
					p.rt.drainTick()
				}
				if parked && a.Do == DoRest {
					if o := p.rt.obs; o != nil {
						o.Observe(Event{Kind: EventRest, Persona: p.name, At: time.Now(), Cadence: a.Cadence, Mood: a.Mood})
					}
				}
				return parked
			}
			p.mu.Unlock()
			p.carryOut(notes)
			if a.Do == DoStep {
				runtime.Gosched() // urgent work, or no rhythm: step again at once
				break
			}
			a = p.work(&a)
		}
	}
}

// work carries out one action that calls the handler or the stream, and
// returns the cycle's next action. p.mu is not held on entry and is held
// on return.
func (p *Persona[T]) work(a *Action[T]) Action[T] {
	switch a.Do {
	case DoHandle, DoRespond:
		if a.Lane != 0 {
			p.lane(a)
			p.mu.Lock()
			return p.c.Launched(time.Now())
		}
		_, r := p.call(a)
		return p.done(r)
	case DoEvaluate:
		th, r := p.call(a)
		p.mu.Lock()
		if r.Preempted {
			return p.c.Evaluated(time.Now(), th, r)
		}
		r.Cancelled = r.Err != nil && p.rt.stopping.Load()
		if r.Cancelled {
			p.c.Halt(time.Now())
		}
		return p.c.Evaluated(time.Now(), th, r)
	case DoThink:
		return p.think(p.rt.ctx, a)
	}
	panic("persona: unknown action")
}

// done hands the end of the work to the cycle. p.mu is held on return.
func (p *Persona[T]) done(r Result) Action[T] {
	p.mu.Lock()
	if p.rt.stopping.Load() {
		// Shutting down: take nothing more, and an error is not the
		// handler's failure (its context may have been cancelled by it).
		r.Cancelled = r.Err != nil
		p.c.Halt(time.Now())
	}
	return p.c.Done(time.Now(), r)
}

// think broadcasts the thought and awaits the decision, bounded by the
// action's deadline. p.mu is held on return.
func (p *Persona[T]) think(ctx context.Context, a *Action[T]) Action[T] {
	s := p.cs
	err := s.Think(*a.Thought)
	if err != nil && !errors.Is(err, coord.ErrClosedDecision) {
		p.mu.Lock()
		return p.c.Abandon(time.Now(), Result{Err: fmt.Errorf("persona %s: %w", p.name, err)})
	}
	if a.NoWait {
		p.mu.Lock()
		return p.c.Spoke(time.Now())
	}
	// A thought too late to count still reaches Await, which returns the
	// decision made without it.
	wctx, finish := p.workCtx(ctx)
	actx, cancel := context.WithDeadline(wctx, a.Until)
	d, err := s.Await(actx, a.Item.ID)
	cancel()
	preempted := finish()
	p.mu.Lock()
	if preempted {
		// An urgent arrival came before the wait ended, whatever ended it:
		// as in the simulator, the preemption wins.
		return p.c.Done(time.Now(), Result{Err: context.Canceled, Preempted: true})
	}
	if err != nil {
		if ctx.Err() != nil || p.rt.stopping.Load() {
			p.c.Halt(time.Now())
			return p.c.Done(time.Now(), Result{Err: err, Cancelled: true})
		}
		p.rt.log.Warn("coordination: no decision", "persona", p.name, "item", a.Item.ID, "err", err)
		return p.c.Decided(time.Now(), coord.Decision{}, false)
	}
	return p.c.Decided(time.Now(), d, true)
}

// lane starts the lane work of a (Action.Lane) on a goroutine of its own,
// which reports its end with LaneDone. Urgent work is never preempted, so
// it runs under the runtime's context. If the runtime no longer starts
// goroutines (shutting down), the work runs here.
func (p *Persona[T]) lane(a *Action[T]) {
	act := *a // Item and Decision stay valid until LaneDone
	run := func() {
		_, r := p.invoke(p.rt.ctx, &act)
		p.mu.Lock()
		if p.rt.stopping.Load() {
			r.Cancelled = r.Err != nil // not the handler's failure
		}
		w := p.c.LaneDone(time.Now(), act.Lane, r)
		notes := p.c.TakeNotes(nil)
		p.wakeLocked(w)
		draining := p.c.Draining()
		p.mu.Unlock()
		p.carryOut(notes)
		if draining {
			p.rt.drainTick()
		}
	}
	if !p.rt.goLocked(run) {
		run()
	}
}

// call runs the handler call that a asks for (Handle, Respond or
// Evaluate), recovering a panic into an error.
func (p *Persona[T]) call(a *Action[T]) (th Thought, r Result) {
	ctx, finish := p.workCtx(p.rt.ctx)
	defer func() {
		// An urgent arrival before the work's end preempts it, even if the
		// handler finished meanwhile: the item goes back, as in the
		// simulator, so that the outcome does not hang on a race.
		if finish() {
			r = Result{Err: context.Canceled, Preempted: true}
		}
	}()
	return p.invoke(ctx, a)
}

// invoke calls the handler as a asks, under ctx, recovering a panic into
// an error.
func (p *Persona[T]) invoke(ctx context.Context, a *Action[T]) (th Thought, r Result) {
	defer func() {
		if v := recover(); v != nil {
			r = Result{Err: fmt.Errorf("persona %s: handler panic on %s: %v", p.name, a.Item.ID, v), Panicked: true}
		}
	}()
	switch a.Do {
	case DoHandle:
		r.Out, r.Err = p.h.Handle(ctx, *a.Item)
	case DoRespond:
		r.Out, r.Err = p.eval.Respond(ctx, *a.Item, *a.Decision)
	case DoEvaluate:
		th, r.Err = p.eval.Evaluate(ctx, *a.Item)
	}
	return th, r
}

// workCtx returns the context for one piece of work under parent. For a
// persona with Options.Preempt it can be cancelled by an urgent arrival;
// finish ends it and reports whether it was.
func (p *Persona[T]) workCtx(parent context.Context) (ctx context.Context, finish func() bool) {
	if !p.c.opts.Preempt {
		return parent, func() bool { return false }
	}
	ctx, cancel := context.WithCancel(parent)
	p.mu.Lock()
	p.cancelCur = cancel
	p.mu.Unlock()
	return ctx, func() bool {
		p.mu.Lock()
		pre := p.preempted
		p.preempted, p.cancelCur = false, nil
		p.mu.Unlock()
		cancel()
		return pre
	}
}

// parkLocked publishes that the loop rests after action a: with the cycle
// resting it has armed its timer (or not, with nothing to wait for). It
// reports whether the goroutine parked on wake; false ends it (shutting
// down, or no linger). p.mu is held.
func (p *Persona[T]) parkLocked(a Action[T], wake chan Trigger) bool {
	if p.rt.stopping.Load() || p.c.Phase() == PhaseStopped {
		p.c.Stop()
		p.stopTimerLocked()
		p.loopOn = false
		return false
	}
	if !a.Wake.IsZero() {
		p.armLocked(a.Wake)
	}
	if p.rt.linger < 0 {
		p.loopOn = false // no linger: give the goroutine back at once
		return false
	}
	p.wakeCh = wake
	p.parkedAt = time.Now()
	p.rt.parkedAdd(1)
	return true
}

// haltLocked ends a loop because the runtime shuts down. p.mu is held and
// released.
func (p *Persona[T]) haltLocked(now time.Time) bool {
	p.c.Halt(now)
	p.c.Stop()
	p.loopOn = false
	notes := p.c.TakeNotes(nil)
	p.mu.Unlock()
	p.carryOut(notes)
	return false
}

var accountEvents = [...]EventKind{inbox.Handled: EventHandled, inbox.Declined: EventDeclined, inbox.Expired: EventExpired, inbox.Failed: EventFailed}

// carryOut reports the cycle's notes, in order: to the observer, the
// coordination stream and the pipeline. p.mu is not held: a final account
// may release a dependent, which takes that persona's lock.
func (p *Persona[T]) carryOut(notes []Note[T]) {
	o := p.rt.obs
	for i := range notes {
		n := &notes[i]
		it := n.Item
		switch n.Kind {
		case NoteFinal:
			if o != nil {
				o.Observe(Event{Kind: accountEvents[n.Account], Persona: p.name, At: n.At, ItemID: it.ID, Key: it.Key,
					Priority: it.Priority, Urgent: p.q.Urgent(it.Priority), Wait: n.Wait, Took: n.Took})
			}
			if p.cs != nil && n.Account != inbox.Handled {
				// Nobody should wait for a thinker that will never speak.
				// Leave, not Withdraw: an item no longer open is not opened
				// again.
				p.cs.Leave(it.ID, p.name)
			}
			if pp := p.pipe.Load(); pp != nil {
				pp.finish(p.name, it.ID, n.Account, n.Out)
			}
		case NoteDeferred:
			if o != nil {
				o.Observe(Event{Kind: EventDeferred, Persona: p.name, At: n.At, ItemID: it.ID, Key: it.Key, Priority: it.Priority})
			}
		case NoteLeave:
			p.cs.Leave(it.ID, p.name)
		case NoteObserve:
			_ = p.cs.Think(coord.Thought{Persona: p.name, Item: it.ID, Key: it.Key, Intent: coord.IntentObserve})
		case NoteGranted, NoteNotGranted:
			if o != nil {
				k := EventGranted
				if n.Kind == NoteNotGranted {
					k = EventNotGranted
				}
				o.Observe(Event{Kind: k, Persona: p.name, At: n.At, ItemID: it.ID, Key: it.Key, Priority: it.Priority})
			}
		case NotePreempted:
			if o != nil {
				o.Observe(Event{Kind: EventPreempted, Persona: p.name, At: n.At, ItemID: it.ID, Key: it.Key, Priority: it.Priority, Took: n.Took})
			}
		case NoteError:
			kind := EventError
			if n.Panicked {
				kind = EventPanic
			}
			p.rt.log.Warn("handler failed", "persona", p.name, "item", it.ID, "attempt", it.Attempt+1, "err", n.Err)
			if o != nil {
				o.Observe(Event{Kind: kind, Persona: p.name, At: n.At, ItemID: it.ID, Key: it.Key, Priority: it.Priority, Took: n.Took, Err: n.Err})
			}
		}
		notes[i] = Note[T]{} // drop references to payloads
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
	// Preempted counts non-urgent work cut short for an urgent item
	// (Options.Preempt).
	Preempted uint64 `json:"preempted"`
	// Lane counts urgent works sent out in the urgent lane (Options.Lane).
	Lane uint64 `json:"lane"`
}

// WakeCounts counts wake-ups by trigger.
type WakeCounts struct {
	Demand     uint64 `json:"demand"`
	Dependency uint64 `json:"dependency"`
	Scan       uint64 `json:"scan"`
}

// Snapshot returns the persona's current state.
func (p *Persona[T]) Snapshot() Snapshot {
	p.mu.Lock()
	st, cad, stats, awake := p.c.State(), p.c.Cadence(), p.c.Stats(), p.c.Phase() == PhaseRunning
	p.mu.Unlock()
	return Snapshot{
		Name: p.name, Energy: st.Energy, Attention: st.Attention, Mood: st.Mood, Load: st.Load,
		Budget: st.Budget, Cadence: cad, Awake: awake, Counts: p.q.Counts(),
		Errors: stats.Errors, Panics: stats.Panics, Slices: stats.Slices,
		Busy: stats.Busy, LastWork: st.LastActivity,
		Granted: stats.Granted, NotGranted: stats.NotGranted, Preempted: stats.Preempted, Lane: stats.Lane,
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
	drain()
	drained() bool
	stop()
	retire(cutoff time.Time)
	remaining() Leftover
	deps() (waitsFor, notifies []string)
	payloadType() reflect.Type
	newPipeline(rt *Runtime, g *deps.Graph, ms []member) (pipe, error)
}

func (p *Persona[T]) deps() ([]string, []string) { return p.c.opts.WaitsFor, p.c.opts.Notifies }

// start ends the persona's dormancy and wakes it if work waits.
func (p *Persona[T]) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attached, p.early = true, nil
	p.started.Store(true)
	p.c.SetDependent(p.dependent.Load())
	p.wakeLocked(p.c.Start(time.Now()))
}

// stop prevents new loops and timers; a parked loop ends now, a running
// one after its current item.
// drain lets the persona finish its queued urgent work before it stops
// (Cycle.Drain).
func (p *Persona[T]) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.c.Drain(time.Now())
	if !w.Step {
		p.stopTimerLocked() // nothing ordinary is taken any more
	}
	p.wakeLocked(w)
}

// drained reports whether the persona finished its urgent work
// (Cycle.Drained).
func (p *Persona[T]) drained() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.c.Drained()
}

func (p *Persona[T]) stop() {
	p.stopped.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopTimerLocked()
	p.c.PutBack(time.Now())
	p.c.Stop()
	if p.wakeCh != nil {
		p.retireLocked()
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
	p.mu.Lock()
	p.c.DrainInbox(time.Now())
	notes := p.c.TakeNotes(nil)
	p.mu.Unlock()
	p.carryOut(notes)
	l := Leftover{Persona: p.name, Counts: p.q.Counts()}
	for _, e := range q {
		l.Queued = append(l.Queued, e.ID)
	}
	for _, e := range d {
		l.Deferred = append(l.Deferred, e.ID)
	}
	return l
}
