package persona

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/inbox"
	"github.com/personaos/persona/state"
)

// Cycle is one persona's life cycle as a deterministic state machine: the
// policy that decides when a persona looks at its inbox, what it takes, how
// long it rests and what every item's final account is. It holds no clock,
// no goroutine and no lock; every input carries its own now, and every
// output says what the driver must do next. Two drivers run it: Persona
// (goroutines, timers and channels in real time) and the simulator's
// persona policy (discrete events in virtual time), so that what the
// simulator measures is what the runtime does.
//
// The inputs are the events of a persona's life: an item arrived (Arrived),
// a timer fired (Timer), someone woke it (Poke), a scheduler step may begin
// (Step), the work handed out finished (Done, Evaluated, Decided). Each
// returns a Wake (whether to run a step now, or when to arm the scan timer)
// or an Action (the next thing to do inside a step). The side effects the
// driver must carry out in order (final accounts to report, deferrals,
// withdrawals from a decision) accumulate as Notes, which the driver takes
// with TakeNotes after each input.
//
// A Cycle is not safe for concurrent use: its driver serializes the inputs
// (Persona holds a mutex; the simulator is single-threaded). The inbox it
// reads is safe for producers pushing concurrently. Most callers want
// Persona, which drives a Cycle for them.
type Cycle[T any] struct {
	name   string
	opts   Options
	q      *inbox.Inbox[Item[T]]
	stream Decisions // nil: the persona does not coordinate

	st       state.State
	phase    Phase
	dormant  bool // before Start: items wait, nothing wakes
	depend   bool // every arrival is a release (the dependency trigger)
	poked    bool // a release or a Poke arrived during the step
	mark     time.Time
	cadence  time.Duration
	lastRest time.Time
	wakeAt   time.Time // the armed scan timer; zero: none
	sweepAt  time.Time
	failRun  int
	meanTook float64 // running mean of work time, ns

	// The bandwidth server: tokens is the budget of work left, in seconds
	// (negative: owed), refilled at share per second up to share x
	// BandwidthPeriod, as of tokAt. limited is false while the machine is
	// cool (share 1): no budget then.
	tokens  float64
	tokAt   time.Time
	share   float64
	limited bool

	// w is the state of a step: allocated when the persona steps and
	// dropped when it falls idle, so that an idle persona costs only its
	// inbox and this struct. engageFn (c.engage with the budget) is made
	// once.
	w        *work[T]
	engageFn func(inbox.Entry[Item[T]]) bool
	pool     *sync.Pool // of *work[T], shared by the cycles of one payload type

	notes   []Note[T]
	retired []inbox.Retired[Item[T]]
	// later holds items whose work said Result.Later: in flight, until
	// their time comes.
	later []held[T]
	// lane holds the urgent works out in the urgent lane (Options.Lane),
	// each until its LaneDone; laneSeq numbers them.
	lane    []*laneWork[T]
	laneSeq uint64
	stats   CycleStats
	// draining: the runtime shuts down and lets queued urgent work finish
	// first (Drain): only urgent items are taken, nothing else wakes it.
	draining bool
}

// laneWork is one urgent work out in the lane: its item, when it began,
// and for a coordinated persona the decision that granted it.
type laneWork[T any] struct {
	id      uint64
	it      Item[T]
	start   time.Time
	dec     coord.Decision
	granted bool // a coordinated Respond: its success is a grant
}

// work is a cycle's state between a Step and the rest that ends it.
type work[T any] struct {
	// The slice in progress.
	sliceStart time.Time
	sliceN     int
	shift      float64
	adjMul     float64
	worked     bool
	halting    bool
	batch      []inbox.Entry[Item[T]] // taken, not yet started
	now        time.Time              // for the engage test

	// The item in progress.
	cur      Item[T]
	curStart time.Time
	busy     bool
	coordSt  coordStage
	thought  coord.Thought
	decision coord.Decision
	cool     bool // the step's adjustment left the machine's headroom
	capped   bool // the slice ended at SliceItems or SliceDuration
	// preempting: an urgent arrival asked the driver to preempt the work.
	preempting bool
}

// held is an item put aside until at (Result.Later).
type held[T any] struct {
	at time.Time
	it Item[T]
}

// releaseLater puts back in the inbox the held items whose time has come.
func (c *Cycle[T]) releaseLater(now time.Time) {
	kept := c.later[:0]
	for _, h := range c.later {
		if h.at.After(now) {
			kept = append(kept, h)
			continue
		}
		c.requeue(&h.it, now)
	}
	clear(c.later[len(kept):])
	c.later = kept
}

// Decisions is what a coordinated persona's cycle reads of its
// coordination stream. *coord.Stream implements it.
type Decisions interface {
	// Decision returns the decision on item if it is closed.
	Decision(item string) (coord.Decision, bool)
	// MaxWindow is the longest window an item can be given: a thinker
	// waits at most this plus a second for its decision.
	MaxWindow() time.Duration
}

// Phase is where a persona is in its life cycle.
type Phase uint8

const (
	PhaseIdle    Phase = iota // nothing to do: no timer, and in Persona no goroutine
	PhaseResting              // the scan timer is armed
	PhaseRunning              // a step runs, or is about to
	PhaseStopped              // shut down: nothing wakes it again
)

// Wake is what an input asks of the driver outside a step: run a step now
// (Step, with the trigger that woke it), or arm the scan timer for At
// (replacing any armed one), or, with both zero, nothing. Preempt asks the
// driver to cut the non-urgent work in progress short (Options.Preempt)
// and report it with Result.Preempted.
type Wake struct {
	Step    bool
	Trigger Trigger
	At      time.Time
	Preempt bool
}

// Do is the kind of an Action.
type Do uint8

const (
	// DoRest: the step is over. Arm the scan timer for Action.Wake (zero:
	// no timer, nothing waits) and wait for the next input.
	DoRest Do = iota
	// DoStep: run another step at once (urgent work waits, or the persona
	// has no rhythm). A driver may yield first.
	DoStep
	// DoHandle: call the handler on Action.Item, then Done.
	DoHandle
	// DoEvaluate: call the Evaluator on Action.Item, then Evaluated.
	DoEvaluate
	// DoThink: broadcast Action.Thought on the stream and await the
	// decision on Action.Item until Action.Until, then Decided.
	DoThink
	// DoRespond: call Respond on Action.Item with Action.Decision, then
	// Done.
	DoRespond
)

// Action is the next thing a driver does inside a step.
type Action[T any] struct {
	Do Do
	// Item is the item in progress, Thought the thought to broadcast
	// (DoThink) and Decision the decision that granted it (DoRespond): all
	// three belong to the cycle and stay valid until its next input, so
	// that an Action is small enough to pass around by value.
	Item     *Item[T]
	Thought  *coord.Thought
	Until    time.Time
	Decision *coord.Decision
	// NoWait (DoThink): the persona is addressed and granted by rule: the
	// driver broadcasts the thought and calls Spoke, without awaiting the
	// decision.
	NoWait bool
	// Lane (DoHandle, DoRespond), if not zero, sends the work out in the
	// urgent lane (Options.Lane): the driver starts it on its own, calls
	// Launched for the slice's next action at once, and reports the work's
	// end with LaneDone(Lane, result), not Done. Item and Decision stay
	// valid until that LaneDone.
	Lane uint64
	// For DoRest: when to look again on its own, the cadence and the mood
	// it rests with.
	Wake    time.Time
	Cadence time.Duration
	Mood    state.Mood
}

// Result is what became of a call to the handler (Handle, Evaluate or
// Respond).
type Result struct {
	Out any
	Err error
	// Panicked: Err is a recovered panic.
	Panicked bool
	// Cancelled: the runtime is shutting down (the handler's context may
	// have been cancelled by it); the item is put back, not failed.
	Cancelled bool
	// Preempted: the work was cut short for an urgent item (Wake.Preempt);
	// the item is put back, not failed, and no attempt is counted.
	Preempted bool
	// Later, if set, says the work cannot be done before then (a reply
	// owed to a person, waiting for the room's reply budget): the item is
	// held and goes back to the inbox at Later, no attempt counted, and the
	// persona works on meanwhile. Handlers say it by returning Later(at).
	Later time.Time
}

// normal is r with a Later error (persona.Later) said as Result.Later.
func (r Result) normal() Result {
	if at, ok := laterOf(r.Err); ok && r.Later.IsZero() {
		r.Later, r.Err = at, nil
	}
	return r
}

// Later is the error a handler returns to say its item cannot be done
// before at: the persona puts it back in its inbox at at (merged again
// with whatever of its key arrived meanwhile), counts no attempt, and
// works on meanwhile. A chat responder waiting for a room's reply budget
// returns it, so that the persona's other rooms do not wait too.
func Later(at time.Time) error { return &laterError{at} }

type laterError struct{ at time.Time }

func (e *laterError) Error() string { return "persona: not before " + e.at.Format(time.RFC3339Nano) }

// laterOf is the time a Later error names, if err is one.
func laterOf(err error) (time.Time, bool) {
	var le *laterError
	if errors.As(err, &le) {
		return le.at, true
	}
	return time.Time{}, false
}

// NoteKind says what a Note asks of the driver.
type NoteKind uint8

const (
	// NoteFinal: Item reached its final Account (report it, release its
	// dependents, leave its decision if it was not handled).
	NoteFinal NoteKind = iota
	// NoteDeferred: Item was moved to the deferred store.
	NoteDeferred
	// NoteLeave: the persona will not think on Item (merged into another,
	// or failed before speaking): withdraw it from the decision.
	NoteLeave
	// NoteObserve: Item's decision closed before the persona reached it;
	// tell the stream with an observe thought so its window learns how late
	// it was. The persona is not granted.
	NoteObserve
	// NoteGranted and NoteNotGranted: the coordinated persona responded to
	// Item, or left it to others.
	NoteGranted
	NoteNotGranted
	// NoteError: one attempt at Item failed with Err (Panicked: a panic);
	// it may be retried.
	NoteError
	// NotePreempted: work on Item was cut short for an urgent item; it is
	// back in the inbox.
	NotePreempted
)

// Note is one side effect for the driver to carry out, in order.
type Note[T any] struct {
	Kind    NoteKind
	Item    Item[T]
	Account Account
	Out     any
	At      time.Time
	Wait    time.Duration // delivery to start of work (NoteFinal)
	Took    time.Duration
	Err     error
	// Panicked marks a NoteError from a panic.
	Panicked bool
}

// CycleStats are a cycle's running totals.
type CycleStats struct {
	Busy       time.Duration // total work time
	Slices     uint64        // steps that worked at least one item
	Errors     uint64
	Panics     uint64
	Granted    uint64
	NotGranted uint64
	Preempted  uint64 // works cut short for an urgent item
	Lane       uint64 // urgent works sent out in the urgent lane
}

type coordStage uint8

const (
	csNone coordStage = iota
	csEvaluate
	csAwait
	csRespond
)

// idleRescan is how soon a persona with no rhythm (a negative cadence)
// looks again when it found nothing worth taking; a new arrival wakes it
// before.
const idleRescan = 100 * time.Millisecond

// batchBudget is how much work time a batch taken at once may hold: an
// urgent arrival waits at most about this long for the next look at the
// inbox.
const batchBudget = 100 * time.Microsecond

// NewCycle returns the life cycle of persona name over inbox q, dormant
// until Start. opts takes its defaults (Options.withDefaults); stream is
// the coordination stream of a coordinated persona, nil otherwise. q must
// use opts' urgent line.
func NewCycle[T any](name string, opts Options, q *inbox.Inbox[Item[T]], stream Decisions) *Cycle[T] {
	opts = opts.withDefaults()
	c := &Cycle[T]{name: name, opts: opts, q: q, stream: stream, st: state.New(opts.State), dormant: true, pool: workPool[T]()}
	c.cadence = c.st.Cadence(1)
	return c
}

// NewInbox returns an inbox for a persona with opts, as Spawn makes it.
func NewInbox[T any](opts Options) *inbox.Inbox[Item[T]] {
	opts = opts.withDefaults()
	return inbox.New[Item[T]](inbox.Options{
		Capacity:    opts.Capacity,
		Urgent:      opts.State.Urgent,
		Aging:       opts.Aging,
		DeferredTTL: opts.DeferredTTL,
		LowWater:    opts.LowWater,
		// The cycle reports every deferral and every expiry by name.
		Report: true,
	})
}

// Push delivers it into the inbox, as the inbox holds it; the driver then
// tells the cycle with Arrived unless the outcome is DeferredOnArrival.
// Push only touches the inbox, which is safe for concurrent producers, so
// unlike every other method it may be called while the driver works the
// cycle elsewhere.
func (c *Cycle[T]) Push(it Item[T]) (inbox.Outcome, error) { return c.q.Push(entryOf(it)) }

// Inbox returns the inbox the cycle reads.
func (c *Cycle[T]) Inbox() *inbox.Inbox[Item[T]] { return c.q }

// SetDependent marks a persona with prerequisites: everything it receives
// is a release, and wakes it at once (the dependency trigger).
func (c *Cycle[T]) SetDependent(dep bool) { c.depend = dep }

// Phase returns where the persona is in its life cycle.
func (c *Cycle[T]) Phase() Phase { return c.phase }

// Dormant reports whether Start has not been called yet.
func (c *Cycle[T]) Dormant() bool { return c.dormant }

// State returns the persona's energy, attention and mood.
func (c *Cycle[T]) State() state.State { return c.st }

// Cadence returns the cadence the persona last rested with.
func (c *Cycle[T]) Cadence() time.Duration { return c.cadence }

// Stats returns the running totals.
func (c *Cycle[T]) Stats() CycleStats { return c.stats }

// Coordinated reports whether the persona coordinates on a stream.
func (c *Cycle[T]) Coordinated() bool { return c.stream != nil }

// Working reports whether an item is out to the driver.
func (c *Cycle[T]) Working() bool { return c.w != nil && c.w.busy }

// TakeNotes appends the pending notes to dst, in order, and forgets them.
func (c *Cycle[T]) TakeNotes(dst []Note[T]) []Note[T] {
	dst = append(dst, c.notes...)
	clear(c.notes)
	c.notes = c.notes[:0]
	return dst
}

// Start ends dormancy: a persona with urgent work steps now; one with
// other work (or that scans) steps now too, as a long-idle persona looks at
// once.
func (c *Cycle[T]) Start(now time.Time) Wake {
	if !c.dormant || c.phase == PhaseStopped {
		return Wake{}
	}
	c.dormant = false
	switch {
	case c.q.HasUrgent():
		return c.wakeNow(TriggerDemand)
	case c.q.Len() > 0 || c.opts.Scan:
		return c.wakeNow(TriggerScan)
	}
	return Wake{}
}

// PutBack returns the items held for later (Result.Later) to the inbox at
// now, so that a shutdown reports them as left over.
func (c *Cycle[T]) PutBack(now time.Time) {
	for i := range c.later {
		c.requeue(&c.later[i].it, now)
	}
	clear(c.later)
	c.later = c.later[:0]
}

// Stop ends the life cycle: nothing wakes the persona again. An item in
// progress still reports Done.
func (c *Cycle[T]) Stop() {
	c.phase = PhaseStopped
	c.wakeAt = time.Time{}
}

// Drain begins the end of the persona's life at now: from now on it takes
// only urgent items, one at a time, until none is queued, and ordinary
// work neither wakes it nor is taken (it is left over at Stop). It wakes a
// resting or idle persona that has urgent work queued; a running one looks
// again before it rests.
func (c *Cycle[T]) Drain(now time.Time) Wake {
	if c.dormant || c.phase == PhaseStopped {
		return Wake{}
	}
	c.draining = true
	if c.phase == PhaseRunning {
		return Wake{}
	}
	if c.q.HasUrgent() {
		return c.wakeNow(TriggerDemand)
	}
	c.phase, c.wakeAt = PhaseIdle, time.Time{}
	return Wake{}
}

// Drained reports whether a draining persona has finished its urgent work:
// it is not running, no urgent item is queued and none is out in the
// lane. A dormant or stopped persona has nothing to finish.
func (c *Cycle[T]) Drained() bool {
	if c.dormant || c.phase == PhaseStopped {
		return true
	}
	return c.draining && c.phase != PhaseRunning && !c.q.HasUrgent() && len(c.lane) == 0
}

// Draining reports whether Drain was called.
func (c *Cycle[T]) Draining() bool { return c.draining }

// Arrived is an accepted push into the inbox (one that queued its entry,
// not one deferred on arrival), urgent or not, with its deadline (zero:
// none). A dependent wakes on every arrival; an urgent item wakes a
// resting or idle persona at once (the demand trigger), and so does an
// item whose deadline falls before the next tick of the persona's rhythm
// (it cannot wait to be batched), unless the persona merges its items
// (Options.Coalesce); other items wait for that tick, so they are batched. A running persona looks at its inbox again before it rests,
// so it needs no wake.
func (c *Cycle[T]) Arrived(now time.Time, urgent bool, deadline time.Time) Wake {
	if c.dormant || c.phase == PhaseStopped || (c.draining && !urgent && !c.depend) {
		return Wake{}
	}
	if c.depend {
		return c.Poke(now, TriggerDependency)
	}
	switch c.phase {
	case PhaseRunning:
		if urgent && c.opts.Preempt && c.w != nil && c.w.busy && !c.w.preempting && !c.q.Urgent(c.w.cur.Priority) {
			// Urgent work never waits behind its own persona's non-urgent
			// work: cut it short, and the slice takes the urgent item next.
			c.w.preempting = true
			return Wake{Preempt: true}
		}
		return Wake{}
	case PhaseResting:
		if !urgent && (!c.dueBefore(deadline, c.wakeAt)) {
			return Wake{} // the scan timer will pick it up: batching
		}
	}
	if urgent {
		return c.wakeNow(TriggerDemand)
	}
	// Look at the next tick of the rhythm after the last rest; a persona
	// that never rested, or rested long ago, looks at once.
	at := now
	if !c.lastRest.IsZero() {
		at = maxTime(now, c.lastRest.Add(c.cadence))
	}
	if c.dueBefore(deadline, at) {
		return c.wakeNow(TriggerDemand) // it would expire waiting for the tick
	}
	return c.arm(now, at)
}

// dueBefore reports whether an item with deadline must be looked at before
// the persona's next tick at: it would expire waiting. A persona that
// merges a key's items (Options.Coalesce) takes the newest of them anyway,
// so an older one's deadline does not call it.
func (c *Cycle[T]) dueBefore(deadline, at time.Time) bool {
	return !c.opts.Coalesce && !deadline.IsZero() && deadline.Before(at)
}

// Poke wakes the persona at once with trigger t, as a dependency release
// does; a persona already running looks at its inbox again before it
// rests.
func (c *Cycle[T]) Poke(now time.Time, t Trigger) Wake {
	if c.dormant || c.phase == PhaseStopped {
		return Wake{}
	}
	if c.phase == PhaseRunning {
		c.poked = true
		return Wake{}
	}
	return c.wakeNow(t)
}

// Timer is the scan timer firing at now. A timer that is not the armed one
// (re-armed or cancelled since) must not reach the cycle: the driver keeps
// a generation.
func (c *Cycle[T]) Timer(now time.Time) Wake {
	if c.phase != PhaseResting || c.dormant {
		return Wake{}
	}
	return c.wakeNow(TriggerScan)
}

// WakeAt is when the armed scan timer fires; zero: none.
func (c *Cycle[T]) WakeAt() time.Time { return c.wakeAt }

func (c *Cycle[T]) wakeNow(t Trigger) Wake {
	c.phase = PhaseRunning
	c.wakeAt = time.Time{}
	return Wake{Step: true, Trigger: t}
}

func (c *Cycle[T]) arm(now, at time.Time) Wake {
	if !at.After(now) {
		return c.wakeNow(TriggerScan)
	}
	c.phase = PhaseResting
	c.wakeAt = at
	return Wake{At: at}
}

// Step is one scheduler step at now, under the governor's adjustment and
// the compute budget's level (0..1): account the rest since the last step,
// retire stale items, catch up deferred work when the governor allows,
// observe the load, and begin a time slice. It returns the first action of
// the slice.
func (c *Cycle[T]) Step(now time.Time, adj Adjustment, budget float64) Action[T] {
	if c.w == nil {
		c.w = c.pool.Get().(*work[T])
		if c.engageFn == nil {
			c.engageFn = func(e inbox.Entry[Item[T]]) bool { return c.engage(e, true) }
		}
	}
	c.refill(now, adj.Share)
	c.w.cool = adj.Cool()
	c.phase = PhaseRunning
	c.poked = false
	if !c.mark.IsZero() {
		c.st.Rest(now.Sub(c.mark))
	}
	c.mark = now
	// Sweep once a second, or once a scan for a persona whose rhythm is
	// faster (a vision stage whose frames live for a tenth of a second).
	if c.sweepAt.IsZero() || now.Sub(c.sweepAt) >= min(time.Second, c.cadence) {
		c.sweepAt = now
		c.retired = c.q.Sweep(now, c.opts.DeclinedTTL, c.retired[:0])
		for i := range c.retired {
			c.final(&c.retired[i].Entry.Value, c.retired[i].Account, nil, now, 0, 0)
		}
	}
	if adj.CatchUp && c.q.DeferredLen() > 0 {
		c.q.Readmit(now, 0)
	}
	if len(c.later) > 0 {
		c.releaseLater(now)
	}
	// Deferred items that expired inside the inbox (past their time-to-live
	// when readmitted, or pushed out of a full deferred store) are reported
	// like every other final account.
	c.DrainInbox(now)
	c.st.Observe(c.q.Load(), budget)
	c.w.adjMul = adj.CadenceMultiplier
	c.w.sliceStart, c.w.sliceN, c.w.shift, c.w.worked, c.w.capped = now, 0, adj.ThresholdShift, false, false
	return c.next(now)
}

// refill brings the bandwidth budget up to now under share: a
// constant-bandwidth server's budget, replenished continuously at share
// (seconds of work per second) up to share x BandwidthPeriod. A share of 1
// (or zero) is no limit.
func (c *Cycle[T]) refill(now time.Time, share float64) {
	limited := share > 0 && share < 1
	capacity := share * c.opts.BandwidthPeriod.Seconds()
	switch {
	case !limited:
		c.tokens = 0
	case !c.limited:
		c.tokens = capacity // the machine just ran hot: a full budget
	default:
		c.tokens = min(capacity, c.tokens+share*now.Sub(c.tokAt).Seconds())
	}
	c.tokAt, c.share, c.limited = now, share, limited
}

// engage decides whether to take entry e now: urgent work always; other
// work while the bandwidth budget lasts (withBudget), by the persona's
// mood, judged as if unloaded while the machine is cool.
func (c *Cycle[T]) engage(e inbox.Entry[Item[T]], withBudget bool) bool {
	eff := c.q.Effective(e, c.w.now)
	if c.q.Urgent(eff) {
		return true
	}
	if withBudget && c.limited && c.tokens <= 0 {
		return false
	}
	if c.w.cool {
		return c.st.ShouldEngageCool(eff, c.w.shift)
	}
	return c.st.ShouldEngage(eff, c.w.shift)
}

// engageable reports whether the top of the inbox would be taken now, with
// or without the bandwidth budget.
func (c *Cycle[T]) engageable(now time.Time, withBudget bool) bool {
	top, ok := c.q.Top()
	if !ok {
		return false
	}
	c.w.now = now
	return c.engage(top, withBudget)
}

// DrainInbox turns what the inbox retired or deferred on its own (expiries
// inside the deferred store, deferrals by a full inbox) into notes. Step
// does it; a driver calls it after a delivery that deferred something and
// at shutdown.
func (c *Cycle[T]) DrainInbox(now time.Time) {
	c.retired = c.q.DrainRetired(c.retired[:0])
	for i := range c.retired {
		c.final(&c.retired[i].Entry.Value, c.retired[i].Account, nil, now, 0, 0)
	}
	clear(c.retired)
	c.DrainDeferred(now)
}

// DrainDeferred turns the inbox's deferrals into notes: a full inbox
// defers its lowest entry, not always the newcomer.
func (c *Cycle[T]) DrainDeferred(now time.Time) {
	for _, e := range c.q.DrainDeferred(nil) {
		c.notes = append(c.notes, Note[T]{Kind: NoteDeferred, Item: e.Value, At: now})
	}
}

// next is the slice's next action at now: the next item worth engaging,
// at most SliceItems of them or SliceDuration of time, then the rest.
func (c *Cycle[T]) next(now time.Time) Action[T] {
	for {
		if c.w.halting {
			return c.rest(now)
		}
		if len(c.w.batch) == 0 {
			if c.w.sliceN >= c.opts.SliceItems || (c.w.sliceN > 0 && now.Sub(c.w.sliceStart) >= c.opts.SliceDuration) {
				c.w.capped = true
				return c.rest(now)
			}
			c.refill(now, c.share)
			if len(c.later) > 0 {
				c.releaseLater(now)
			}
			n := min(c.batchSize(), c.opts.SliceItems-c.w.sliceN)
			if c.draining {
				if !c.q.HasUrgent() {
					return c.rest(now)
				}
				n = 1 // urgent ones come out first: take one at a time
			}
			c.w.now = now
			c.w.batch = c.q.TakeTopN(n, c.engageFn, c.w.batch[:0])
			if len(c.w.batch) == 0 {
				return c.rest(now)
			}
			slices.Reverse(c.w.batch) // taken from the end
		}
		// The item is worked in place, in c.w.cur: items are large, and a
		// loop goroutine's stack is small.
		e := &c.w.batch[len(c.w.batch)-1]
		c.w.cur = e.Value
		*e = inbox.Entry[Item[T]]{}
		c.w.batch = c.w.batch[:len(c.w.batch)-1]
		c.w.sliceN++
		it := &c.w.cur
		if !it.Deadline.IsZero() && !now.Before(it.Deadline) {
			c.q.Finish(it.ID, inbox.Expired)
			c.final(it, inbox.Expired, nil, now, now.Sub(it.Delivered), 0)
			*it = Item[T]{}
			continue
		}
		if c.opts.Coalesce && it.Key != "" {
			c.coalesce(it)
		}
		c.w.curStart, c.w.busy = now, true
		c.w.worked = true
		if c.stream == nil {
			if c.laneTakes(it) {
				return c.toLane(DoHandle, false)
			}
			return Action[T]{Do: DoHandle, Item: &c.w.cur}
		}
		if a, ok := c.coordinate(now); ok {
			return a
		}
	}
}

// batchSize is how many items to take at once: one while work is slow (so
// that every item is chosen with the freshest view of the inbox), more when
// the running mean of work time shows they fit in batchBudget.
func (c *Cycle[T]) batchSize() int {
	if c.opts.Coalesce || c.stream != nil || c.meanTook <= 0 {
		return 1
	}
	return max(1, min(c.opts.SliceItems, int(float64(batchBudget)/c.meanTook)))
}

// coalesce takes the other queued items of it's key, and those of its
// key held for later (Result.Later: a reply waiting for the room's
// budget): the newest becomes the item handled, the rest ride along as
// its context. A held item waits only for a time, and this item's answer
// answers it now; left held, each would come back for a reply of its own.
func (c *Cycle[T]) coalesce(it *Item[T]) {
	key := it.Key
	others := c.q.TakeWhere(func(e inbox.Entry[Item[T]]) bool { return e.Value.Key == key })
	var held []Item[T]
	if len(c.later) > 0 {
		kept := c.later[:0]
		for _, h := range c.later {
			if h.it.Key != key {
				kept = append(kept, h)
				continue
			}
			held = append(held, h.it)
			held = append(held, h.it.Context...)
		}
		clear(c.later[len(kept):])
		c.later = kept
	}
	if len(others) == 0 && len(held) == 0 {
		return
	}
	all := make([]Item[T], 0, len(others)+len(held)+1)
	all = append(all, *it)
	all = append(all, it.Context...)
	it.Context = nil
	for _, e := range others {
		all = append(all, e.Value)
	}
	all = append(all, held...)
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
	slices.SortStableFunc(trigger.Context, func(a, b Item[T]) int { return a.Created.Compare(b.Created) })
	// The merged item answers all of them: it is as urgent as the most
	// urgent, so that an urgent message merged into a newer ordinary one
	// is neither preempted nor queued behind ordinary work.
	for _, x := range trigger.Context {
		trigger.Priority = max(trigger.Priority, x.Priority)
	}
	*it = trigger
}

// coordinate begins a coordinated persona's work on the current item:
// evaluate, think, await the decision, respond if granted. It reports false
// when the item was settled at once (its decision closed without this
// persona), and the slice goes on.
func (c *Cycle[T]) coordinate(now time.Time) (Action[T], bool) {
	it := &c.w.cur
	// Merged older items are answered by this one: say so, or their
	// decisions would wait for this persona until their windows end.
	for _, x := range it.Context {
		c.notes = append(c.notes, Note[T]{Kind: NoteLeave, Item: x, At: now})
	}
	for i := range it.Context {
		// Granted an older message now merged into this one (it was
		// preempted, or failed, after its grant): it answers them all
		// through the grant it holds, and leaves the newer one's decision.
		if d, ok := c.stream.Decision(it.Context[i].ID); ok && d.IsGranted(c.name) {
			c.notes = append(c.notes, Note[T]{Kind: NoteLeave, Item: *it, At: now})
			c.w.coordSt = csAwait
			return c.decided(now, d, true)
		}
	}
	d, decided := c.stream.Decision(it.ID)
	addressed := c.addressedBy(it)
	switch {
	case decided && !thought(d, c.name) && !addressed:
		// Decided before this persona reached the item, so it cannot be
		// granted: spend no evaluation on it. The stream learns how late it
		// was.
		c.notes = append(c.notes, Note[T]{Kind: NoteObserve, Item: *it, At: now})
		c.notGranted(now)
		c.settle(now, Result{})
		return Action[T]{}, false
	case decided && thought(d, c.name):
		// A retry after Respond failed: the decision stands.
		return c.decided(now, d, true)
	}
	// Not decided yet, or decided without us while we are addressed: think,
	// and the stream grants an addressee even late.
	c.w.coordSt = csEvaluate
	return Action[T]{Do: DoEvaluate, Item: &c.w.cur}, true
}

// Evaluated is the end of DoEvaluate at now: th is the persona's thought,
// or r.Err the evaluator's error (ErrDecline declines the item).
func (c *Cycle[T]) Evaluated(now time.Time, th Thought, r Result) Action[T] {
	if c.w == nil || c.w.coordSt != csEvaluate {
		panic("persona: Evaluated without DoEvaluate")
	}
	if r.Err != nil || r.Preempted {
		// Declined, failed, panicked or preempted before speaking.
		return c.Abandon(now, r)
	}
	intent := th.Intent
	if intent == "" {
		intent = coord.IntentRespond
	}
	timeout := c.opts.CoordinationTimeout
	if timeout <= 0 {
		// Once we have spoken, the item closes within its own window, which
		// was fixed when it opened (or at its first thought) and may be
		// longer than the stream's current one: bound by the longest.
		timeout = c.stream.MaxWindow() + time.Second
	}
	c.w.coordSt = csAwait
	// An addressed persona says so: the stream grants it even if the item
	// it thinks on is a newer message merged with the one that named it, or
	// if it thinks after the window closed.
	addressed := c.addressedBy(&c.w.cur)
	c.w.thought = coord.Thought{Persona: c.name, Item: c.w.cur.ID, Key: c.w.cur.Key, Confidence: th.Confidence,
		Intent: intent, At: now, Addressed: addressed}
	// An addressee that means to respond is granted by rule, whatever the
	// others think: it need not hold its slice for the window.
	noWait := addressed && intent == coord.IntentRespond
	return Action[T]{Do: DoThink, Item: &c.w.cur, Until: now.Add(timeout), Thought: &c.w.thought, NoWait: noWait}
}

// Spoke is the end of a DoThink that said NoWait: the thought is on the
// stream, and the addressed persona responds at once. It responds with the
// decision if it is already made, else with one that grants it, as the
// stream will.
func (c *Cycle[T]) Spoke(now time.Time) Action[T] {
	if c.w == nil || c.w.coordSt != csAwait {
		panic("persona: Spoke without DoThink")
	}
	d, ok := c.stream.Decision(c.w.cur.ID)
	if !ok || !d.IsGranted(c.name) {
		d = coord.Decision{Item: c.w.cur.ID, Key: c.w.cur.Key, Granted: []string{c.name},
			Thoughts: []coord.Thought{c.w.thought}, Reasons: map[string]string{c.name: "addressee"}}
	}
	return c.Decided(now, d, true)
}

// Decided is the end of DoThink at now: the decision, or ok false when none
// could be had by Action.Until (which means not granted).
func (c *Cycle[T]) Decided(now time.Time, d coord.Decision, ok bool) Action[T] {
	if c.w == nil || c.w.coordSt != csAwait {
		panic("persona: Decided without DoThink")
	}
	a, more := c.decided(now, d, ok)
	if more {
		return a
	}
	return c.next(now)
}

func (c *Cycle[T]) decided(now time.Time, d coord.Decision, ok bool) (Action[T], bool) {
	if !ok || d.Item == "" || !d.IsGranted(c.name) {
		c.w.coordSt = csNone
		c.notGranted(now)
		c.settle(now, Result{})
		return Action[T]{}, false
	}
	c.w.coordSt, c.w.decision = csRespond, d
	if c.laneTakes(&c.w.cur) {
		return c.toLane(DoRespond, true), true
	}
	return Action[T]{Do: DoRespond, Item: &c.w.cur, Decision: &c.w.decision}, true
}

// laneTakes reports whether the work on it goes out in the urgent lane:
// it is urgent, the lane has room, and the driver's LaneOpen agrees.
func (c *Cycle[T]) laneTakes(it *Item[T]) bool {
	return c.opts.Lane > 0 && len(c.lane) < c.opts.Lane && c.q.Urgent(it.Priority) &&
		(c.opts.LaneOpen == nil || c.opts.LaneOpen())
}

// toLane moves the item in progress out into the urgent lane and returns
// the action that starts its work there.
func (c *Cycle[T]) toLane(do Do, granted bool) Action[T] {
	c.laneSeq++
	lw := &laneWork[T]{id: c.laneSeq, it: c.w.cur, start: c.w.curStart, granted: granted}
	if granted {
		lw.dec = c.w.decision
	}
	c.lane = append(c.lane, lw)
	c.stats.Lane++
	c.w.cur, c.w.busy, c.w.coordSt, c.w.decision = Item[T]{}, false, csNone, coord.Decision{}
	a := Action[T]{Do: do, Item: &lw.it, Lane: lw.id}
	if granted {
		a.Decision = &lw.dec
	}
	return a
}

// Launched is the driver's word that the lane work of the last action has
// started on its own: the slice goes on, and Launched returns its next
// action.
func (c *Cycle[T]) Launched(now time.Time) Action[T] {
	if c.w == nil {
		panic("persona: Launched outside a step")
	}
	return c.next(now)
}

// LaneDone is the end at now of lane work id (Action.Lane) with result r:
// it settles the item as Done settles the persona's own work, and wakes a
// resting or idle persona if the item came back (a retry, or a time given
// by Result.Later).
func (c *Cycle[T]) LaneDone(now time.Time, id uint64, r Result) Wake {
	i := slices.IndexFunc(c.lane, func(lw *laneWork[T]) bool { return lw.id == id })
	if i < 0 {
		panic("persona: LaneDone of unknown lane work")
	}
	lw := c.lane[i]
	c.lane = slices.Delete(c.lane, i, i+1)
	r = r.normal()
	if lw.granted && r.Err == nil && !r.Preempted && r.Later.IsZero() {
		c.stats.Granted++
		c.notes = append(c.notes, Note[T]{Kind: NoteGranted, Item: lw.it, At: now})
	}
	c.settleItem(now, &lw.it, lw.start, r, true)
	if c.dormant || c.phase == PhaseStopped || c.phase == PhaseRunning {
		return Wake{} // a running step looks at its inbox again before it rests
	}
	if c.q.HasUrgent() {
		return c.wakeNow(TriggerDemand) // a retry of the urgent item
	}
	// A persona rests with its scan timer armed while lane work is out
	// (rest), so whether the work ended before or after the rest, it wakes
	// at the same time: its next tick, or sooner for an item held until
	// sooner.
	at := time.Time{}
	for _, h := range c.later {
		if at.IsZero() || h.at.Before(at) {
			at = h.at
		}
	}
	if at.IsZero() || (!c.wakeAt.IsZero() && !at.Before(c.wakeAt)) {
		return Wake{}
	}
	return c.arm(now, at)
}

func (c *Cycle[T]) notGranted(now time.Time) {
	c.stats.NotGranted++
	c.notes = append(c.notes, Note[T]{Kind: NoteNotGranted, Item: c.w.cur, At: now})
}

// Done is the end at now of the work handed out (DoHandle or DoRespond):
// it settles the item and returns the slice's next action.
func (c *Cycle[T]) Done(now time.Time, r Result) Action[T] {
	if c.w == nil || !c.w.busy {
		panic("persona: Done without work")
	}
	r = r.normal()
	if c.w.coordSt == csRespond && r.Err == nil && !r.Preempted && r.Later.IsZero() {
		c.stats.Granted++
		c.notes = append(c.notes, Note[T]{Kind: NoteGranted, Item: c.w.cur, At: now})
	}
	c.w.coordSt = csNone
	c.settle(now, r)
	return c.next(now)
}

// settle closes the account of the current item (and of its merged
// context), or puts it back for a retry after an error.
func (c *Cycle[T]) settle(now time.Time, r Result) {
	c.w.preempting = false
	c.settleItem(now, &c.w.cur, c.w.curStart, r, false)
	c.w.cur, c.w.busy = Item[T]{}, false
}

// settleItem closes the account of it, begun at start (and of its merged
// context), or puts it back for a retry, for later or after a preemption.
// Lane work (lane) leaves the run of failures alone: that run backs off the
// persona's own cadence, and a lane work may end at the very instant the
// persona rests, before or after, which must not change when it looks
// next. A failed lane item is urgent: its retry never waits for the
// cadence anyway.
func (c *Cycle[T]) settleItem(now time.Time, it *Item[T], start time.Time, r Result, lane bool) {
	took := now.Sub(start)
	if c.limited {
		c.tokens -= took.Seconds()
	}
	if !r.Later.IsZero() && r.Err == nil && !r.Preempted {
		// Not before r.Later: held aside, to go back to the inbox then.
		c.stats.Busy += took
		c.st.RecordActivity(now, took, it.Complexity)
		c.mark = now
		c.later = append(c.later, held[T]{at: r.Later, it: *it})
		return
	}
	if r.Preempted {
		// Cut short for an urgent item: back to the inbox, as it was.
		c.stats.Preempted++
		c.notes = append(c.notes, Note[T]{Kind: NotePreempted, Item: *it, At: start, Took: took})
		c.stats.Busy += took
		c.st.RecordActivity(now, took, it.Complexity)
		c.mark = now
		c.requeue(it, now)
		return
	}
	c.stats.Busy += took
	c.meanTook += (float64(took) - c.meanTook) / 8
	c.st.RecordActivity(now, took, it.Complexity)
	c.mark = now
	wait := start.Sub(it.Delivered)
	switch {
	case r.Err == nil:
		if !lane {
			c.failRun = 0
		}
		c.finishAll(it, inbox.Handled, r.Out, start, wait, took)
	case errors.Is(r.Err, ErrDecline):
		if !lane {
			c.failRun = 0
		}
		c.finishAll(it, inbox.Declined, nil, start, wait, took)
	default:
		if !lane {
			c.failRun++
		}
		if r.Panicked {
			c.stats.Panics++
		} else {
			c.stats.Errors++
		}
		c.notes = append(c.notes, Note[T]{Kind: NoteError, Item: *it, At: start, Took: took, Err: r.Err, Panicked: r.Panicked})
		if r.Cancelled {
			// Shutting down: the item is not the handler's failure. Put it
			// back, to be reported as left over.
			c.requeue(it, now)
			return
		}
		if it.Attempt+1 < c.opts.MaxAttempts {
			it.Attempt++
			c.requeue(it, now)
			return
		}
		c.finishAll(it, inbox.Failed, nil, start, wait, took)
	}
}

// requeue puts a taken item back in the inbox, and the older items merged
// into it back beside it: none of them was answered, so none is settled.
// Taken again, they merge again.
func (c *Cycle[T]) requeue(it *Item[T], now time.Time) {
	for _, x := range it.Context {
		c.q.Requeue(entryOf(x), now)
	}
	it.Context = nil
	c.q.Requeue(entryOf(*it), now)
}

func (c *Cycle[T]) finishAll(it *Item[T], a Account, out any, start time.Time, wait, took time.Duration) {
	c.q.Finish(it.ID, a)
	c.final(it, a, out, start, wait, took)
	for i := range it.Context {
		x := &it.Context[i]
		c.q.Finish(x.ID, a)
		c.final(x, a, nil, start, start.Sub(x.Delivered), 0)
	}
}

func (c *Cycle[T]) final(it *Item[T], a Account, out any, at time.Time, wait, took time.Duration) {
	c.notes = append(c.notes, Note[T]{Kind: NoteFinal, Item: *it, Account: a, Out: out, At: at, Wait: wait, Took: took})
}

// Halt ends the slice early at now because the runtime shuts down: the
// items taken but not started go back to the inbox, to be reported as left
// over, not lost, and nothing more is taken. The item in progress still
// reports its end.
func (c *Cycle[T]) Halt(now time.Time) {
	if c.w == nil {
		return
	}
	for _, e := range c.w.batch {
		c.q.Requeue(e, now)
	}
	clear(c.w.batch)
	c.w.batch = c.w.batch[:0]
	c.w.halting = true
	c.PutBack(now) // left over, not lost
}

// Abandon is the end at now of a coordinated item that failed before its
// thought counted (the evaluator or the stream refused it): the persona
// withdraws from the decision at once, so that peers never wait for it, and
// the failure is settled as Done settles it.
func (c *Cycle[T]) Abandon(now time.Time, r Result) Action[T] {
	c.notes = append(c.notes, Note[T]{Kind: NoteLeave, Item: c.w.cur, At: now})
	c.w.coordSt = csNone
	return c.Done(now, r)
}

// rest ends the step at now: urgent work never waits for the cadence;
// otherwise the cadence (state, times the governor's multiplier, plus a
// backoff after handler errors) sets the next look, if anything waits.
func (c *Cycle[T]) rest(now time.Time) Action[T] {
	clear(c.w.batch)
	c.w.batch = c.w.batch[:0]
	if c.w.worked {
		c.stats.Slices++
	}
	if c.w.halting || c.phase == PhaseStopped {
		return Action[T]{Do: DoRest}
	}
	if c.q.HasUrgent() {
		return Action[T]{Do: DoStep}
	}
	if c.draining {
		// Shutting down, and no urgent work is queued: ordinary work is
		// left over, so nothing is armed.
		c.phase, c.wakeAt = PhaseIdle, time.Time{}
		return Action[T]{Do: DoRest}
	}
	cad := c.st.Cadence(c.w.adjMul)
	if c.failRun > 0 {
		cad += min(c.opts.MaxBackoff, c.opts.Backoff<<min(c.failRun-1, 16))
	}
	c.cadence, c.lastRest = cad, now
	if cad <= 0 && c.w.worked && c.q.Len() > 0 {
		return Action[T]{Do: DoStep} // no rhythm: keep going while there is work it takes
	}
	if c.poked {
		// A dependency release or a Poke that arrived during the step is
		// looked at now.
		return Action[T]{Do: DoStep}
	}
	if c.w.capped && c.engageable(now, true) {
		// SliceItems and SliceDuration end a step, not the work: engageable
		// work goes on at once (the cadence is how often a persona looks,
		// not a cap on what it does once it looks).
		return Action[T]{Do: DoStep}
	}
	a := Action[T]{Do: DoRest, Cadence: cad, Mood: c.st.Mood}
	if c.q.Len() > 0 || c.q.DeferredLen() > 0 || c.opts.Scan || len(c.later) > 0 || len(c.lane) > 0 {
		if cad <= 0 {
			if c.w.worked {
				return Action[T]{Do: DoStep}
			}
			// No rhythm, and nothing here worth taking now: look again soon
			// (aging lifts what waits) rather than spin.
			cad = idleRescan
		}
		a.Wake = now.Add(cad)
		if c.limited && c.tokens <= 0 && c.engageable(now, false) {
			// Work waits only for the budget: look again when it is
			// replenished, not a whole cadence later.
			a.Wake = now.Add(time.Duration(-c.tokens/c.share*float64(time.Second)) + time.Millisecond)
		}
		for _, h := range c.later {
			if h.at.Before(a.Wake) {
				a.Wake = maxTime(h.at, now.Add(time.Nanosecond)) // a held item's time comes
			}
		}
		c.phase, c.wakeAt = PhaseResting, a.Wake
		return a
	}
	c.phase, c.wakeAt = PhaseIdle, time.Time{}
	// Nothing waits: give the step's state back, to be reused by the next
	// persona of this payload type that wakes.
	batch := c.w.batch[:0]
	*c.w = work[T]{batch: batch}
	c.pool.Put(c.w)
	c.w = nil
	return a
}

// addressedBy reports whether it (or an item merged into it) names the
// persona as an addressee.
func (c *Cycle[T]) addressedBy(it *Item[T]) bool {
	return slices.ContainsFunc(it.Addressees, func(a string) bool { return strings.EqualFold(a, c.name) })
}

func thought(d coord.Decision, name string) bool {
	return slices.ContainsFunc(d.Thoughts, func(t coord.Thought) bool { return t.Persona == name })
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// workPools holds one pool of step states per payload type: a cycle takes
// one when its persona steps and gives it back when it falls idle, so that
// ten thousand idle personas hold none and a waking one allocates nothing.
var workPools sync.Map // reflect.Type -> *sync.Pool

func workPool[T any]() *sync.Pool {
	t := reflect.TypeFor[T]()
	if p, ok := workPools.Load(t); ok {
		return p.(*sync.Pool)
	}
	p, _ := workPools.LoadOrStore(t, &sync.Pool{New: func() any { return new(work[T]) }})
	return p.(*sync.Pool)
}
