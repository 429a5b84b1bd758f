package deps

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Status says how complete an item is when it reaches a persona. Statuses are
// ordered from best to worst; a release carries the worst status among its
// inputs.
type Status int

const (
	// Done: every prerequisite finished the item.
	Done Status = iota
	// Skipped: a prerequisite declined the item (finished it with Skipped).
	Skipped
	// Incomplete: a prerequisite stalled past its timeout, or the key was
	// evicted to keep the tracker bounded; some inputs are missing.
	Incomplete
)

func (s Status) String() string {
	switch s {
	case Done:
		return "done"
	case Skipped:
		return "skipped"
	case Incomplete:
		return "incomplete"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Output is what one prerequisite produced for a key. Its Status is the worse
// of the status the producer finished with and the status it was itself
// released with, so a gap upstream stays visible all the way down.
type Output struct {
	From   string
	Status Status
	Value  any
}

// Release hands key to Persona: all its prerequisites have finished the key
// (or timed out). Inputs holds the outputs that arrived, in the order of
// Graph.Prereqs; a prerequisite that timed out has no entry. Status is the
// worst of the inputs' statuses, and Incomplete if any prerequisite is
// missing.
type Release struct {
	Persona string
	Key     string
	Inputs  []Output
	Status  Status
}

// Defaults for Options.
const (
	DefaultTimeout = 5 * time.Second
	DefaultMaxKeys = 10000
)

// Options tunes Barriers and a Tracker. The zero value is valid: every zero
// field takes its default.
type Options struct {
	// Timeout is how long each stage may hold a key before the stage counts
	// as stalled and its dependents are released without it. A stage's clock
	// starts when it becomes responsible for the key: for sources, when the
	// key opens (Begin, or the first Finish of the key); for dependents, when
	// they are released. So in a chain of n stages the last release happens
	// at most n*Timeout after the key opened. Zero or negative means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxKeys bounds the keys with open barriers. Opening one more key
	// first evicts the oldest open key: its remaining dependents are released
	// at once, Incomplete, in topological order. MaxKeys is also how many
	// closed keys are remembered so that late finishes for them are ignored.
	// Zero or negative means DefaultMaxKeys.
	MaxKeys int
	// Logger receives timeouts, evictions and ignored calls. Nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Tracker holds the per-key barriers of a Graph and releases each dependent
// persona when its prerequisites have finished a key: the dependency trigger.
// It is Barriers on the real clock: it takes the time from time.Now, keeps
// one timer on the barriers' next deadline, and calls a release func instead
// of returning releases.
//
// The runtime calls Begin when an item enters the pipeline and Finish every
// time a persona is done with a key (including when it declines it, with
// Skipped). Most callers need only those two and Close.
//
// A Tracker must be made with NewTracker; the zero value is not usable. All
// methods are safe for concurrent use.
type Tracker struct {
	log     *slog.Logger
	release func(Release)
	inert   bool // no node has a prerequisite: every call is a no-op

	mu    sync.Mutex
	b     *Barriers
	timer *time.Timer // on b's next deadline; nil until there is one

	// armed is the deadline timer is set for; zero when it is stopped.
	armed  time.Time
	closed bool
	calls  sync.WaitGroup // release callbacks (and timer work) in flight
}

// NewTracker returns a tracker for g that calls release whenever a dependent
// persona may start on a key.
//
// release is called exactly once per dependent per key, never while the
// tracker's lock is held, from the goroutine that called Begin or Finish or
// from the timer's goroutine; releases produced by one call are made in
// order, but different calls may release concurrently. release may call
// Begin and Finish (a persona that is released with Skipped or Incomplete and
// then finishes propagates downstream as usual) but must not call Close. A
// panic in release is recovered and logged so the other releases still
// happen.
//
// NewTracker panics if g or release is nil.
func NewTracker(g *Graph, opts Options, release func(Release)) *Tracker {
	if g == nil || release == nil {
		panic("deps: NewTracker needs a graph and a release func")
	}
	b := NewBarriers(g, opts)
	return &Tracker{log: b.log, release: release, inert: b.inert, b: b}
}

// Begin records that key entered the pipeline and starts the sources' clock
// for it (Barriers.Begin).
func (t *Tracker) Begin(key string) {
	if t.inert {
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	now := time.Now()
	rel := t.b.Begin(now, key)
	t.rearm(now)
	t.deliver(rel)
}

// Finish records that persona is done with key, with status (Done, or Skipped
// if it declined the item) and value, and releases every dependent whose
// prerequisites have now all finished (Barriers.Finish says what is
// ignored). Calls after Close are ignored too.
func (t *Tracker) Finish(persona, key string, status Status, value any) {
	if t.inert {
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	now := time.Now()
	rel := t.b.Finish(now, persona, key, status, value)
	t.rearm(now)
	t.deliver(rel)
}

// Pending returns the number of keys with open barriers (at most MaxKeys).
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.Pending()
}

// Close stops the timer, drops all open barriers without releasing them,
// and blocks until release callbacks in flight have returned. Later calls to
// Begin and Finish do nothing. Close is idempotent.
func (t *Tracker) Close() {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		if t.timer != nil {
			t.timer.Stop()
		}
		t.b = NewBarriers(t.b.g, t.b.opts) // forget every key and deadline
	}
	t.mu.Unlock()
	// Every Add happened under mu while !closed, so before this Wait.
	t.calls.Wait()
}

// expire runs on the timer: the stages past their deadline time out.
func (t *Tracker) expire() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	now := time.Now()
	rel := t.b.Expire(now)
	t.armed = time.Time{} // this firing is spent: set the timer afresh
	t.rearm(now)
	t.deliver(rel)
}

// rearm points the timer at the barriers' next deadline. A firing that comes
// early (a Reset raced with it) finds nothing due and re-arms. Called with
// t.mu held.
func (t *Tracker) rearm(now time.Time) {
	next, ok := t.b.NextDeadline()
	switch {
	case !ok:
		if !t.armed.IsZero() {
			t.timer.Stop()
			t.armed = time.Time{}
		}
	case next.Equal(t.armed):
	case t.timer == nil:
		t.timer = time.AfterFunc(next.Sub(now), t.expire)
		t.armed = next
	default:
		t.timer.Reset(next.Sub(now))
		t.armed = next
	}
}

// deliver unlocks t.mu and then makes the releases. Called with t.mu held.
func (t *Tracker) deliver(rel []Release) {
	if len(rel) == 0 {
		t.mu.Unlock()
		return
	}
	t.calls.Add(1)
	t.mu.Unlock()
	defer t.calls.Done()
	for _, r := range rel {
		t.call(r)
	}
}

func (t *Tracker) call(r Release) {
	defer func() {
		if p := recover(); p != nil {
			t.log.Error("deps: release callback panicked", "persona", r.Persona, "key", r.Key, "panic", p)
		}
	}()
	t.release(r)
}
