package slots

import (
	"time"
)

// Class is how much a model call matters to a person; lower is served
// first.
type Class uint8

const (
	// Addressed: a person named the persona (an @mention) and waits for it.
	Addressed Class = iota
	// Human: a reply in a person's conversation nobody addressed.
	Human
	// Persona: a reply to another persona.
	Persona
	// Background: work no one waits for.
	Background
	// NumClasses is the number of classes.
	NumClasses
)

var classNames = [NumClasses]string{"addressed", "human", "persona", "background"}

func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "class?"
}

// Call is one model call asking for a slot.
type Call struct {
	Persona string
	Class   Class
	// Key is the conversation the call answers (a room): Waiting finds a
	// persona's waiting calls for it, to cancel one a newer message
	// superseded.
	Key string
}

// ID names a call in a Core; zero is no call.
type ID uint64

type entry struct {
	id    ID
	call  Call
	since time.Time // enqueued, or started
	seq   uint64
}

// Core is the slot scheduler of one backend as a pure value: K slots and
// the calls waiting for them, in classes, fair across personas within a
// class (see the package documentation). Every method takes its now; none
// reads a clock. The zero value has no slots; use New. A Core is not safe
// for concurrent use: Scheduler locks one for goroutines.
type Core struct {
	k       int
	running map[ID]*entry
	waiting [NumClasses][]*entry // in arrival order
	vt      map[string]float64   // persona -> slot seconds received
	active  map[string]int       // persona -> calls waiting or running
	seq     uint64
	stats   Stats
}

// Stats are a Core's running totals.
type Stats struct {
	Started   [NumClasses]uint64
	Cancelled [NumClasses]uint64 // gave up their place before a slot
	// Wait is the total time started calls waited, per class.
	Wait [NumClasses]time.Duration
	// Busy is the total slot time of ended calls.
	Busy time.Duration
}

// New returns a Core of k slots (at least 1).
func New(k int) *Core {
	return &Core{k: max(k, 1), running: map[ID]*entry{}, vt: map[string]float64{}, active: map[string]int{}}
}

// Slots is the number of slots.
func (c *Core) Slots() int { return c.k }

// InUse is how many slots are held.
func (c *Core) InUse() int { return len(c.running) }

// Queued is how many calls of class wait for a slot.
func (c *Core) Queued(class Class) int { return len(c.waiting[class]) }

// Stats returns the running totals.
func (c *Core) Stats() Stats { return c.stats }

// Open reports whether a call of class made now would start now: a slot
// is free and no call of its class or a higher one waits.
func (c *Core) Open(class Class) bool {
	if len(c.running) >= c.k {
		return false
	}
	for cl := Class(0); cl <= class && cl < NumClasses; cl++ {
		if len(c.waiting[cl]) > 0 {
			return false
		}
	}
	return true
}

// Enqueue asks for a slot for call at now. It returns the call's ID and
// whether it holds a slot already; if not, it waits until a Release or
// Cancel starts it (their result names it).
func (c *Core) Enqueue(now time.Time, call Call) (ID, bool) {
	if call.Class >= NumClasses {
		call.Class = Background
	}
	c.seq++
	e := &entry{id: ID(c.seq), call: call, since: now, seq: c.seq}
	if c.active[call.Persona] == 0 {
		// Back from idle: no credit banked while it was away.
		if floor, ok := c.floor(); ok && c.vt[call.Persona] < floor {
			c.vt[call.Persona] = floor
		}
	}
	c.active[call.Persona]++
	c.waiting[call.Class] = append(c.waiting[call.Class], e)
	started := c.fill(now)
	for _, id := range started {
		if id == e.id {
			return e.id, true
		}
	}
	if len(started) > 0 {
		panic("slots: a call other than the new one started on Enqueue")
	}
	return e.id, false
}

// floor is the least virtual time among the personas with calls waiting or
// running.
func (c *Core) floor() (float64, bool) {
	ok := false
	f := 0.0
	for p, n := range c.active {
		if n > 0 && (!ok || c.vt[p] < f) {
			f, ok = c.vt[p], true
		}
	}
	return f, ok
}

// fill starts waiting calls while slots are free, and returns them.
func (c *Core) fill(now time.Time) []ID {
	var started []ID
	for len(c.running) < c.k {
		e := c.pick()
		if e == nil {
			break
		}
		c.stats.Started[e.call.Class]++
		c.stats.Wait[e.call.Class] += now.Sub(e.since)
		e.since = now
		c.running[e.id] = e
		started = append(started, e.id)
	}
	return started
}

// pick removes and returns the next call to start: the highest class, and
// within it the persona with the least virtual time, earliest first.
func (c *Core) pick() *entry {
	for cl := range c.waiting {
		q := c.waiting[cl]
		if len(q) == 0 {
			continue
		}
		best := 0
		for i, e := range q[1:] {
			if c.vt[e.call.Persona] < c.vt[q[best].call.Persona] {
				best = i + 1
			}
		}
		e := q[best]
		c.waiting[cl] = append(q[:best], q[best+1:]...)
		return e
	}
	return nil
}

// Release ends call id at now: its slot time is charged to its persona and
// the slot goes to the next waiting call. It returns the calls that
// started. Releasing a waiting call cancels it; an unknown ID is ignored.
func (c *Core) Release(now time.Time, id ID) []ID {
	e, ok := c.running[id]
	if !ok {
		c.Cancel(id)
		return nil
	}
	delete(c.running, id)
	held := now.Sub(e.since)
	c.stats.Busy += held
	c.vt[e.call.Persona] += held.Seconds()
	c.leave(e.call.Persona)
	return c.fill(now)
}

// Cancel removes waiting call id before it costs a slot, and reports
// whether it was waiting. A running call is ended with Release.
func (c *Core) Cancel(id ID) bool {
	for cl := range c.waiting {
		for i, e := range c.waiting[cl] {
			if e.id == id {
				c.waiting[cl] = append(c.waiting[cl][:i], c.waiting[cl][i+1:]...)
				c.stats.Cancelled[cl]++
				c.leave(e.call.Persona)
				return true
			}
		}
	}
	return false
}

func (c *Core) leave(p string) {
	if c.active[p]--; c.active[p] <= 0 {
		delete(c.active, p)
	}
}

// Waiting returns the IDs of persona's calls for key that wait for a slot.
func (c *Core) Waiting(persona, key string) []ID {
	var ids []ID
	for cl := range c.waiting {
		for _, e := range c.waiting[cl] {
			if e.call.Persona == persona && e.call.Key == key {
				ids = append(ids, e.id)
			}
		}
	}
	return ids
}

// Victim names the running call a driver may cut short for a waiting
// Addressed call, when every slot is held: the lowest-class running call
// below Addressed, the one that started last among those (the least work
// lost). ok is false when no Addressed call waits, a slot is free, or every
// running call is Addressed.
func (c *Core) Victim() (ID, bool) {
	if len(c.waiting[Addressed]) == 0 || len(c.running) < c.k {
		return 0, false
	}
	var v *entry
	for _, e := range c.running {
		if e.call.Class == Addressed {
			continue
		}
		if v == nil || e.call.Class > v.call.Class || (e.call.Class == v.call.Class && e.since.After(v.since)) ||
			(e.call.Class == v.call.Class && e.since.Equal(v.since) && e.seq > v.seq) {
			v = e
		}
	}
	if v == nil {
		return 0, false
	}
	return v.id, true
}

// Class returns the class of a waiting or running call.
func (c *Core) Class(id ID) (Class, bool) {
	if e, ok := c.running[id]; ok {
		return e.call.Class, true
	}
	for cl := range c.waiting {
		for _, e := range c.waiting[cl] {
			if e.id == id {
				return e.call.Class, true
			}
		}
	}
	return 0, false
}

// Received is the slot time persona has been charged, in seconds.
func (c *Core) Received(persona string) float64 { return c.vt[persona] }
