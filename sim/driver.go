package sim

import (
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/inbox"
)

// Driver runs one persona's life cycle (persona.Cycle, the pure core that
// persona.Persona runs in real time) in virtual time. It turns the cycle's
// wakes into events and timers, carries out its rests and steps, and hands
// the host its notes and the work that takes time; the host calls back
// Done, Evaluated or Decided when that work ends. The persona policy of
// the simulator is a Driver per persona with a chat host; the parity tests
// drive the same Driver with a scripted host against the real runtime.
//
// Virtual time is nanoseconds since Epoch. A Driver is not safe for
// concurrent use: a simulation is single-threaded.
type Driver[T any] struct {
	c     *persona.Cycle[T]
	host  Host[T]
	epoch time.Time
	gen   int32 // the armed scan timer's generation
	notes []persona.Note[T]
}

// Host is the world a Driver's persona lives in: its event queue, its work
// and what its notes mean. Methods are called at the driver's current
// virtual time.
type Host[T any] interface {
	// StepAt schedules a call to Driver.Step at virtual time at.
	StepAt(at int64)
	// TimerAt schedules a call to Driver.Timer(at, gen) at virtual time
	// at.
	TimerAt(at int64, gen int32)
	// Work begins a DoHandle, DoEvaluate, DoThink or DoRespond action; when
	// it ends the host calls Done, Evaluated or Decided, or LaneDone for an
	// action out in the urgent lane (Action.Lane), which may end within
	// Work.
	Work(a persona.Action[T])
	// Preempt cuts the work in progress short for an urgent arrival
	// (persona.Options.Preempt): the host cancels it and calls Done (or
	// Evaluated, for an evaluation) with Result.Preempted, now or when the
	// work notices.
	Preempt()
	// Note carries out one of the cycle's notes.
	Note(n persona.Note[T])
	// Woke counts a wake-up by its trigger.
	Woke(t persona.Trigger)
	// Adjust is the governor's adjustment and the compute budget's level
	// for a step at now.
	Adjust(now int64) (persona.Adjustment, float64)
}

// NewDriver returns a driver of c in host, with virtual time 0 at epoch.
func NewDriver[T any](c *persona.Cycle[T], host Host[T], epoch time.Time) *Driver[T] {
	return &Driver[T]{c: c, host: host, epoch: epoch}
}

// Cycle returns the driven cycle.
func (d *Driver[T]) Cycle() *persona.Cycle[T] { return d.c }

// T is virtual time v as the cycle's time.
func (d *Driver[T]) T(v int64) time.Time { return d.epoch.Add(time.Duration(v)) }

// V is the cycle's time t as virtual time.
func (d *Driver[T]) V(t time.Time) int64 { return int64(t.Sub(d.epoch)) }

// Start ends the cycle's dormancy at now.
func (d *Driver[T]) Start(now int64) { d.wake(now, d.c.Start(d.T(now))) }

// Deliver pushes it into the persona's inbox at now and tells the cycle.
// It reports the inbox's outcome.
func (d *Driver[T]) Deliver(now int64, it persona.Item[T]) error {
	if it.Delivered.IsZero() {
		it.Delivered = d.T(now)
	}
	if it.Created.IsZero() {
		it.Created = it.Delivered
	}
	out, err := d.c.Push(it)
	if err != nil {
		return err
	}
	if out != inbox.DeferredOnArrival {
		d.wake(now, d.c.Arrived(d.T(now), d.c.Inbox().Urgent(it.Priority), it.Deadline))
	}
	if out != inbox.Accepted {
		d.c.DrainDeferred(d.T(now))
		d.flush()
	}
	return nil
}

// Poke wakes the persona at now as Persona.Wake does.
func (d *Driver[T]) Poke(now int64, t persona.Trigger) { d.wake(now, d.c.Poke(d.T(now), t)) }

func (d *Driver[T]) wake(now int64, w persona.Wake) {
	switch {
	case w.Preempt:
		d.host.Preempt()
	case w.Step:
		d.gen++ // a pending timer finds a newer generation and does nothing
		d.host.Woke(w.Trigger)
		d.host.StepAt(now)
	case !w.At.IsZero():
		d.gen++
		d.host.TimerAt(d.V(w.At), d.gen)
	}
}

// Timer is the scan timer of generation gen firing at now.
func (d *Driver[T]) Timer(now int64, gen int32) {
	if gen != d.gen {
		return
	}
	d.wake(now, d.c.Timer(d.T(now)))
}

// Step runs a scheduler step at now.
func (d *Driver[T]) Step(now int64) {
	adj, budget := d.host.Adjust(now)
	d.do(now, d.c.Step(d.T(now), adj, budget))
}

// Done is the end at now of a DoHandle or DoRespond action.
func (d *Driver[T]) Done(now int64, r persona.Result) { d.do(now, d.c.Done(d.T(now), r)) }

// Evaluated is the end at now of a DoEvaluate action.
func (d *Driver[T]) Evaluated(now int64, th persona.Thought, r persona.Result) {
	d.do(now, d.c.Evaluated(d.T(now), th, r))
}

// Decided is the end at now of a DoThink action: the decision, or ok false
// when none came by the action's Until.
func (d *Driver[T]) Decided(now int64, dec coord.Decision, ok bool) {
	d.do(now, d.c.Decided(d.T(now), dec, ok))
}

// Spoke is the end at now of a DoThink that said NoWait.
func (d *Driver[T]) Spoke(now int64) { d.do(now, d.c.Spoke(d.T(now))) }

// Abandon is the end at now of a DoThink whose thought the stream refused.
func (d *Driver[T]) Abandon(now int64, r persona.Result) { d.do(now, d.c.Abandon(d.T(now), r)) }

func (d *Driver[T]) flush() {
	d.notes = d.c.TakeNotes(d.notes[:0])
	for i := range d.notes {
		d.host.Note(d.notes[i])
		d.notes[i] = persona.Note[T]{}
	}
}

// do carries out the cycle's notes, then its action.
func (d *Driver[T]) do(now int64, a persona.Action[T]) {
	d.flush()
	switch a.Do {
	case persona.DoRest:
		if !a.Wake.IsZero() {
			d.gen++
			d.host.TimerAt(d.V(a.Wake), d.gen)
		}
	case persona.DoStep:
		d.host.StepAt(now)
	default:
		d.host.Work(a)
		if a.Lane != 0 {
			// Out in the urgent lane: the slice goes on at once.
			d.do(now, d.c.Launched(d.T(now)))
		}
	}
}

// LaneDone is the end at now of the lane work id (Action.Lane).
func (d *Driver[T]) LaneDone(now int64, id uint64, r persona.Result) {
	w := d.c.LaneDone(d.T(now), id, r)
	d.wake(now, w)
	d.flush()
}
