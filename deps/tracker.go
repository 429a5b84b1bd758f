package deps

import (
	"container/list"
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

// Options tunes a Tracker. The zero value is valid: every zero field takes
// its default.
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

// phase is where one node stands for one key.
type phase uint8

const (
	waiting  phase = iota // a dependent not yet handed the key
	working               // responsible for the key; its deadline is armed
	finished              // its output is recorded
	timedOut              // its deadline passed first; a late Finish still counts while the key is open
)

// keyState is the set of barriers of one key, indexed by node.
type keyState struct {
	key      string
	age      *list.Element
	phase    []phase
	deadline []time.Time
	inStatus []Status // the status each node was released with (Done for sources)
	out      []Output
	waiting  int // dependents not yet released; the key closes at zero
	timer    *time.Timer
	closed   bool // lets a timer that fired during closing do nothing
}

// Tracker holds the per-key barriers of a Graph and releases each dependent
// persona when its prerequisites have finished a key: the dependency trigger.
//
// The runtime calls Begin when an item enters the pipeline and Finish every
// time a persona is done with a key (including when it declines it, with
// Skipped). Most callers need only those two and Close.
//
// A Tracker must be made with NewTracker; the zero value is not usable. All
// methods are safe for concurrent use.
type Tracker struct {
	g       *Graph
	opts    Options
	log     *slog.Logger
	release func(Release)
	inert   bool // no node has a prerequisite: there is nothing to track

	mu     sync.Mutex
	closed bool
	keys   map[string]*keyState
	age    list.List // *keyState, oldest first
	tombs  tombstones
	calls  sync.WaitGroup // release callbacks (and timer work) in flight
}

// NewTracker returns a tracker for g that calls release whenever a dependent
// persona may start on a key.
//
// release is called exactly once per dependent per key, never while the
// tracker's lock is held, from the goroutine that called Begin or Finish or
// from a timer goroutine; releases produced by one call are made in order,
// but different calls may release concurrently. release may call Begin and
// Finish (a persona that is released with Skipped or Incomplete and then
// finishes propagates downstream as usual) but must not call Close. A panic
// in release is recovered and logged so the other releases still happen.
//
// NewTracker panics if g or release is nil.
func NewTracker(g *Graph, opts Options, release func(Release)) *Tracker {
	if g == nil || release == nil {
		panic("deps: NewTracker needs a graph and a release func")
	}
	opts = opts.withDefaults()
	return &Tracker{
		g:       g,
		opts:    opts,
		log:     opts.Logger,
		release: release,
		inert:   len(g.sources) == len(g.names),
		keys:    make(map[string]*keyState),
		tombs:   tombstones{max: opts.MaxKeys},
	}
}

// Begin records that key entered the pipeline and starts the sources' clock
// for it. Calling Begin is optional (the first Finish of a source opens the
// key too) but without it a key whose every source stalls is never released.
// Begin on an open key does nothing; on a recently closed key it is ignored,
// because keys identify items and must not be reused.
func (t *Tracker) Begin(key string) {
	if t.inert {
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	var rel []Release
	if _, open := t.keys[key]; !open {
		if t.tombs.has(key) {
			t.log.Debug("deps: begin of a closed key ignored", "key", key)
		} else {
			_, rel = t.open(key, time.Now())
		}
	}
	t.deliver(rel)
}

// Finish records that persona is done with key, with status (Done, or Skipped
// if it declined the item) and value, and releases every dependent whose
// prerequisites have now all finished.
//
// Ignored (and logged): an unknown persona; a dependent that was not yet
// released for key (its output only counts once it was handed the item); a
// second Finish of the same persona and key; a key that closed already; any
// call after Close. A persona that finishes after its timeout still counts
// for dependents whose barriers are open.
func (t *Tracker) Finish(persona, key string, status Status, value any) {
	if t.inert {
		return
	}
	i, ok := t.g.index[persona]
	if !ok {
		t.log.Warn("deps: finish by unknown persona ignored", "persona", persona, "key", key)
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	now := time.Now()
	var rel []Release
	ks := t.keys[key]
	if ks == nil {
		if len(t.g.prereqs[i]) > 0 || t.tombs.has(key) {
			t.log.Debug("deps: finish of a closed key ignored", "persona", persona, "key", key)
			t.mu.Unlock()
			return
		}
		ks, rel = t.open(key, now)
	}
	switch ks.phase[i] {
	case waiting:
		t.log.Warn("deps: finish before release ignored", "persona", persona, "key", key)
	case finished:
		t.log.Debug("deps: duplicate finish ignored", "persona", persona, "key", key)
	case timedOut:
		t.log.Info("deps: late finish", "persona", persona, "key", key)
		fallthrough
	case working:
		ks.phase[i] = finished
		ks.out[i] = Output{From: persona, Status: max(status, ks.inStatus[i]), Value: value}
		rel = t.handReady(ks, i, now, rel)
		t.settle(ks, now)
	}
	t.deliver(rel)
}

// Pending returns the number of keys with open barriers (at most MaxKeys).
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}

// Close stops every timer, drops all open barriers without releasing them,
// and blocks until release callbacks in flight have returned. Later calls to
// Begin and Finish do nothing. Close is idempotent.
func (t *Tracker) Close() {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		for _, ks := range t.keys {
			ks.closed = true
			if ks.timer != nil {
				ks.timer.Stop()
			}
		}
		clear(t.keys)
		t.age.Init()
	}
	t.mu.Unlock()
	// Every Add happened under mu while !closed, so before this Wait.
	t.calls.Wait()
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

// open creates the barriers of key, evicting the oldest key first if the
// tracker is full. Called with t.mu held.
func (t *Tracker) open(key string, now time.Time) (*keyState, []Release) {
	var rel []Release
	for len(t.keys) >= t.opts.MaxKeys {
		old := t.age.Front().Value.(*keyState)
		t.log.Warn("deps: too many open keys, oldest released incomplete", "key", old.key, "max_keys", t.opts.MaxKeys)
		rel = t.forceClose(old, now, rel)
	}
	n := len(t.g.names)
	ks := &keyState{
		key:      key,
		phase:    make([]phase, n),
		deadline: make([]time.Time, n),
		inStatus: make([]Status, n),
		out:      make([]Output, n),
		waiting:  n - len(t.g.sources),
	}
	for _, s := range t.g.sources {
		ks.phase[s] = working
		ks.deadline[s] = now.Add(t.opts.Timeout)
	}
	ks.age = t.age.PushBack(ks)
	t.keys[key] = ks
	t.arm(ks, now)
	return ks, rel
}

// handReady releases the dependents of node p that became ready. Called with
// t.mu held.
func (t *Tracker) handReady(ks *keyState, p int, now time.Time, rel []Release) []Release {
	for _, d := range t.g.dependents[p] {
		if ks.phase[d] == waiting && t.ready(ks, d) {
			rel = append(rel, t.hand(ks, d, now))
		}
	}
	return rel
}

func (t *Tracker) ready(ks *keyState, d int) bool {
	for _, p := range t.g.prereqs[d] {
		if ph := ks.phase[p]; ph != finished && ph != timedOut {
			return false
		}
	}
	return true
}

// hand releases dependent d with whatever inputs have arrived and starts its
// own clock. Called with t.mu held.
func (t *Tracker) hand(ks *keyState, d int, now time.Time) Release {
	r := Release{Persona: t.g.names[d], Key: ks.key, Status: Done}
	for _, p := range t.g.prereqs[d] {
		if ks.phase[p] != finished {
			r.Status = Incomplete
			continue
		}
		r.Inputs = append(r.Inputs, ks.out[p])
		r.Status = max(r.Status, ks.out[p].Status)
	}
	ks.phase[d] = working
	ks.deadline[d] = now.Add(t.opts.Timeout)
	ks.inStatus[d] = r.Status
	ks.waiting--
	return r
}

// settle closes ks if no dependent is left waiting, and otherwise points its
// timer at the earliest deadline. While a dependent waits some node is
// working (the first waiting node in topological order has no waiting
// prerequisite, and if none were working it would have been released), so
// the timer always has a deadline to aim at. Called with t.mu held.
func (t *Tracker) settle(ks *keyState, now time.Time) {
	if ks.waiting == 0 {
		t.closeKey(ks)
		return
	}
	t.arm(ks, now)
}

func (t *Tracker) arm(ks *keyState, now time.Time) {
	var next time.Time
	for n, ph := range ks.phase {
		if ph == working && (next.IsZero() || ks.deadline[n].Before(next)) {
			next = ks.deadline[n]
		}
	}
	if next.IsZero() {
		return
	}
	if ks.timer == nil {
		ks.timer = time.AfterFunc(next.Sub(now), func() { t.expire(ks) })
		return
	}
	// If the timer already fired, Reset schedules it again; expire tolerates
	// early or repeated calls because it compares deadlines with the clock.
	ks.timer.Reset(next.Sub(now))
}

func (t *Tracker) closeKey(ks *keyState) {
	ks.closed = true
	if ks.timer != nil {
		ks.timer.Stop()
	}
	delete(t.keys, ks.key)
	t.age.Remove(ks.age)
	t.tombs.add(ks.key)
}

// forceClose releases every remaining dependent of ks at once, in
// topological order, and closes it. Called with t.mu held.
func (t *Tracker) forceClose(ks *keyState, now time.Time, rel []Release) []Release {
	for _, d := range t.g.order {
		if ks.phase[d] == waiting {
			rel = append(rel, t.hand(ks, d, now))
		}
	}
	t.closeKey(ks)
	return rel
}

// expire runs on ks's timer: stages past their deadline time out and their
// dependents are released if nothing else holds them.
func (t *Tracker) expire(ks *keyState) {
	t.mu.Lock()
	if t.closed || ks.closed {
		t.mu.Unlock()
		return
	}
	now := time.Now()
	var late []int
	for _, n := range t.g.order {
		if ks.phase[n] == working && !now.Before(ks.deadline[n]) {
			ks.phase[n] = timedOut
			late = append(late, n)
			t.log.Info("deps: stage timed out", "persona", t.g.names[n], "key", ks.key, "timeout", t.opts.Timeout)
		}
	}
	var rel []Release
	for _, n := range late {
		rel = t.handReady(ks, n, now, rel)
	}
	t.settle(ks, now)
	t.deliver(rel)
}

// tombstones remembers the last max closed keys, so that a late Finish
// cannot reopen a key and release its dependents a second time.
type tombstones struct {
	max  int
	ring []string
	next int
	set  map[string]struct{}
}

func (ts *tombstones) add(key string) {
	if ts.set == nil {
		ts.set = make(map[string]struct{})
	}
	if len(ts.ring) < ts.max {
		ts.ring = append(ts.ring, key)
	} else {
		delete(ts.set, ts.ring[ts.next])
		ts.ring[ts.next] = key
		ts.next = (ts.next + 1) % ts.max
	}
	ts.set[key] = struct{}{}
}

func (ts *tombstones) has(key string) bool {
	_, ok := ts.set[key]
	return ok
}
