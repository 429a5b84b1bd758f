package slots

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrSuperseded is Acquire's error for a call that a newer message of its
// persona's conversation superseded while it waited (Scheduler.Supersede).
var ErrSuperseded = errors.New("slots: superseded by a newer message before it started")

// ErrPreempted is the cause of a granted call's context when the slot was
// taken back for an Addressed call (Scheduler.Acquire with Preempt).
var ErrPreempted = errors.New("slots: preempted for an addressed call")

// Scheduler is a Core for goroutines: Acquire blocks until the call holds a
// slot. Most callers want Acquire and Grant.Release. It is safe for
// concurrent use. The zero value is not usable; use NewScheduler.
type Scheduler struct {
	mu      sync.Mutex
	core    *Core
	now     func() time.Time
	waiters map[ID]*waiter // calls waiting for a slot
	grants  map[ID]*Grant  // running calls
	preempt bool
}

// SchedulerOptions configures NewScheduler; the zero value is valid.
type SchedulerOptions struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Preempt lets a waiting Addressed call take the slot of the running
	// call Core.Victim names: that call's context is cancelled with
	// ErrPreempted as its cause, and its caller puts its work back.
	Preempt bool
}

// NewScheduler returns a scheduler of k slots (at least 1).
func NewScheduler(k int, o SchedulerOptions) *Scheduler {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Scheduler{core: New(k), now: o.Now, waiters: map[ID]*waiter{}, grants: map[ID]*Grant{}, preempt: o.Preempt}
}

// waiter is a blocked Acquire: ch is closed when its call starts, or when
// it is superseded.
type waiter struct {
	ch         chan struct{}
	superseded bool
}

// Grant is a held slot. Release it exactly once when the call ends; its
// Context is cancelled (cause ErrPreempted) if the slot is taken back.
type Grant struct {
	s      *Scheduler
	id     ID
	ctx    context.Context
	cancel context.CancelCauseFunc
	once   sync.Once
	// Waited is how long the call waited for its slot.
	Waited time.Duration
}

// Context is the call's context: its parent's, cancelled if the slot is
// taken back for an Addressed call.
func (g *Grant) Context() context.Context { return g.ctx }

// Release gives the slot back and starts the next waiting call.
func (g *Grant) Release() {
	g.once.Do(func() {
		g.cancel(nil)
		s := g.s
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.grants, g.id)
		s.startedLocked(s.core.Release(s.now(), g.id))
	})
}

// Acquire waits for a slot for call, at most until ctx ends (then it
// returns ctx's error and the call gives up its place). The Grant's
// Context derives from ctx.
func (s *Scheduler) Acquire(ctx context.Context, call Call) (*Grant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	start := s.now()
	id, started := s.core.Enqueue(start, call)
	g := s.newGrantLocked(ctx, id)
	if started {
		s.mu.Unlock()
		return g, nil
	}
	w := &waiter{ch: make(chan struct{})}
	s.waiters[id] = w
	s.preemptLocked()
	s.mu.Unlock()
	select {
	case <-w.ch:
		if w.superseded {
			g.cancel(nil)
			return nil, ErrSuperseded
		}
		g.Waited = s.now().Sub(start)
		return g, nil
	case <-ctx.Done():
		s.mu.Lock()
		if _, waiting := s.waiters[id]; waiting {
			delete(s.waiters, id)
			delete(s.grants, id)
			s.core.Cancel(id)
			s.mu.Unlock()
			g.cancel(nil)
			return nil, ctx.Err()
		}
		s.mu.Unlock()
		// Started just as ctx ended: give the slot back.
		g.Release()
		return nil, ctx.Err()
	}
}

func (s *Scheduler) newGrantLocked(ctx context.Context, id ID) *Grant {
	gctx, cancel := context.WithCancelCause(ctx)
	g := &Grant{s: s, id: id, ctx: gctx, cancel: cancel}
	s.grants[id] = g
	return g
}

// startedLocked wakes the callers of calls that just started. s.mu is held.
func (s *Scheduler) startedLocked(ids []ID) {
	for _, id := range ids {
		if w, ok := s.waiters[id]; ok {
			delete(s.waiters, id)
			close(w.ch)
		}
	}
	s.preemptLocked()
}

// preemptLocked takes a slot back for a waiting Addressed call, if the
// scheduler preempts. The victim's slot is freed when its caller releases
// it: one victim at a time, the next when that slot has gone to the
// Addressed call. s.mu is held.
func (s *Scheduler) preemptLocked() {
	if !s.preempt {
		return
	}
	id, ok := s.core.Victim()
	if !ok {
		return
	}
	if g := s.grants[id]; g != nil && g.ctx.Err() == nil {
		g.cancel(ErrPreempted) // its release is on the way
	}
}

// Supersede makes persona's calls for key that still wait for a slot give
// up before they cost one: their Acquire returns ErrSuperseded. It reports
// how many there were. The daemon calls it when a newer message in the
// room supersedes the one a waiting call answers: the persona puts its
// work back, and answers the newer message with the older one merged in.
// An Addressed call gives up its place too: the reply it comes back as is
// still Addressed, and a call's turn within its class is its persona's
// (the least slot time received), not its arrival, so the mention loses
// no turn, while the one reply answers both messages where two would
// each have cost a slot.
func (s *Scheduler) Supersede(persona, key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.core.Waiting(persona, key)
	for _, id := range ids {
		s.core.Cancel(id)
		w := s.waiters[id]
		delete(s.waiters, id)
		delete(s.grants, id)
		w.superseded = true
		close(w.ch)
	}
	return len(ids)
}

// Open reports whether a call of class made now would start now.
func (s *Scheduler) Open(class Class) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Open(class)
}

// Load is the slots in use, the slots, and the calls waiting per class.
func (s *Scheduler) Load() (inUse, slots int, waiting [NumClasses]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cl := range waiting {
		waiting[cl] = s.core.Queued(Class(cl))
	}
	return s.core.InUse(), s.core.Slots(), waiting
}

// Stats returns the core's running totals.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Stats()
}
