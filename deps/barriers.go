package deps

import (
	"container/heap"
	"container/list"
	"context"
	"log/slog"
	"time"
)

// phase is where one node stands for one key.
type phase uint8

const (
	waiting  phase = iota // a dependent not yet handed the key
	working               // responsible for the key; its deadline is armed
	finished              // its output is recorded
	timedOut              // its deadline passed first; a late Finish still counts while the key is open
)

// nodeState is one node's barrier for one key.
type nodeState struct {
	phase    phase
	inStatus Status    // the status the node was released with (Done for sources)
	deadline time.Time // while working
	out      Output    // once finished
}

// keyState is the set of barriers of one key, indexed by node.
type keyState struct {
	key     string
	seq     uint64 // opening order: breaks ties between equal deadlines
	age     *list.Element
	nodes   []nodeState
	waiting int       // dependents not yet released (nor finished as author); the key closes at zero
	next    time.Time // the earliest deadline of a working node
	due     int       // index in Barriers.due; -1 when not there
}

// Barriers is the dependency tracker's state machine: for each item key, one
// barrier per dependent persona, the per-stage deadlines, the bound on open
// keys and the memory of closed ones. It decides everything a Tracker does
// and does nothing else: it has no clock (every method takes now), no timer,
// no goroutine and no lock, and it returns the releases it produced instead
// of calling anyone. The same calls with the same times give the same
// releases in the same order, so a simulator in virtual time and a Tracker
// in real time make the same decisions.
//
// The caller is the clock. It passes a now that never goes backwards, and
// calls Expire(now) when now reaches NextDeadline (calling it earlier, or
// more often, is harmless). NextDeadline changes only through the calls
// below, so it need be read only after one of them.
//
// Make a Barriers with NewBarriers. It is not safe for concurrent use.
type Barriers struct {
	g     *Graph
	opts  Options
	log   *slog.Logger
	inert bool // no node has a prerequisite: there is nothing to track

	keys  map[string]*keyState
	age   list.List // *keyState, oldest first
	seq   uint64
	due   dueHeap // open keys, by earliest deadline
	tombs tombstones
}

// NewBarriers returns the barriers of g with opts (zero fields take their
// defaults). It panics if g is nil.
func NewBarriers(g *Graph, opts Options) *Barriers {
	if g == nil {
		panic("deps: NewBarriers needs a graph")
	}
	opts = opts.withDefaults()
	return &Barriers{
		g:     g,
		opts:  opts,
		log:   opts.Logger,
		inert: len(g.sources) == len(g.names),
		keys:  make(map[string]*keyState),
		tombs: tombstones{max: opts.MaxKeys},
	}
}

// Begin records that key entered the pipeline at now and starts the sources'
// clocks for it. Calling Begin is optional (the first Finish of a source
// opens the key too) but without it a key whose every source stalls is never
// released. Begin on an open key does nothing; on a recently closed key it is
// ignored, because keys identify items and must not be reused. It returns the
// releases it made: only the oldest key's, when opening key evicts it.
func (b *Barriers) Begin(now time.Time, key string) []Release {
	return b.BeginBy(now, key, "")
}

// BeginBy is Begin for an item that persona author produced itself, as a
// chat message is its author's: author counts as having finished key, Done
// with no value, from the start, wherever it stands in the graph. It is
// never released with key and has no deadline for it, and each of its
// dependents whose other prerequisites are finished is released at once. An
// author that is empty or not a node of the graph makes BeginBy a Begin.
// Like Begin, BeginBy does nothing to a key that is open or recently closed.
func (b *Barriers) BeginBy(now time.Time, key, author string) []Release {
	if b.inert {
		return nil
	}
	if _, open := b.keys[key]; open {
		return nil
	}
	if b.tombs.has(key) {
		if b.logs(slog.LevelDebug) {
			b.log.Debug("deps: begin of a closed key ignored", "key", key)
		}
		return nil
	}
	ks, rel := b.open(now, key)
	if a, ok := b.g.index[author]; ok {
		n := &ks.nodes[a]
		if n.phase == waiting {
			ks.waiting--
		}
		n.phase = finished
		n.out = Output{From: author, Status: Done}
		rel = b.handReady(now, ks, a, rel)
	}
	b.settle(ks)
	return rel
}

// Finish records that persona finished key at now, with status (Done, or
// Skipped if it declined the item) and value, and returns the release of
// every dependent whose prerequisites have now all finished (or timed out).
// The output the dependents see has the worse of status and the status
// persona was itself released with, so a gap upstream reaches every stage
// downstream even if the stages in between finish normally.
//
// Ignored (and logged): an unknown persona; a dependent that was not yet
// released for key (its output only counts once it was handed the item); a
// second Finish of the same persona and key; a key that closed already. A
// persona that finishes after its deadline still counts for dependents whose
// barriers are open. The Finish of a source for a key that is neither open
// nor remembered as closed opens it, as Begin would.
func (b *Barriers) Finish(now time.Time, persona, key string, status Status, value any) []Release {
	if b.inert {
		return nil
	}
	i, ok := b.g.index[persona]
	if !ok {
		if b.logs(slog.LevelWarn) {
			b.log.Warn("deps: finish by unknown persona ignored", "persona", persona, "key", key)
		}
		return nil
	}
	var rel []Release
	ks := b.keys[key]
	if ks == nil {
		if len(b.g.prereqs[i]) > 0 || b.tombs.has(key) {
			if b.logs(slog.LevelDebug) {
				b.log.Debug("deps: finish of a closed key ignored", "persona", persona, "key", key)
			}
			return nil
		}
		ks, rel = b.open(now, key)
	}
	n := &ks.nodes[i]
	switch n.phase {
	case waiting:
		if b.logs(slog.LevelWarn) {
			b.log.Warn("deps: finish before release ignored", "persona", persona, "key", key)
		}
		return rel
	case finished:
		if b.logs(slog.LevelDebug) {
			b.log.Debug("deps: duplicate finish ignored", "persona", persona, "key", key)
		}
		return rel
	case timedOut:
		if b.logs(slog.LevelInfo) {
			b.log.Info("deps: late finish", "persona", persona, "key", key)
		}
	}
	n.phase = finished
	n.out = Output{From: persona, Status: max(status, n.inStatus), Value: value}
	rel = b.handReady(now, ks, i, rel)
	b.settle(ks)
	return rel
}

// Expire times out every stage whose deadline is at or before now and
// returns the releases that follows: each dependent whose other
// prerequisites are finished or timed out is released, Incomplete, with the
// inputs that did arrive, and its own deadline starts at now. Keys are
// visited by deadline, then in the order they opened, and a key's stages in
// topological order.
func (b *Barriers) Expire(now time.Time) []Release {
	var rel []Release
	for len(b.due) > 0 && !now.Before(b.due[0].next) {
		ks := b.due[0]
		var buf [8]int
		late := buf[:0] // stages timing out now; on the stack for small graphs
		for _, n := range b.g.order {
			if ns := &ks.nodes[n]; ns.phase == working && !now.Before(ns.deadline) {
				ns.phase = timedOut
				late = append(late, n)
				if b.logs(slog.LevelInfo) {
					b.log.Info("deps: stage timed out", "persona", b.g.names[n], "key", ks.key, "timeout", b.opts.Timeout)
				}
			}
		}
		for _, n := range late {
			rel = b.handReady(now, ks, n, rel)
		}
		// Every deadline left is after now (released stages start theirs at
		// now, and Timeout is positive), so the loop moves on.
		b.settle(ks)
	}
	return rel
}

// NextDeadline returns the earliest deadline of a stage working on an open
// key: when Expire next has something to do. ok is false if no key is open.
func (b *Barriers) NextDeadline() (t time.Time, ok bool) {
	if len(b.due) == 0 {
		return time.Time{}, false
	}
	return b.due[0].next, true
}

// Pending returns the number of keys with open barriers (at most MaxKeys).
func (b *Barriers) Pending() int { return len(b.keys) }

// Open reports whether key has open barriers: it was begun (or a source
// finished it) and some dependent has not been released yet.
func (b *Barriers) Open(key string) bool {
	_, ok := b.keys[key]
	return ok
}

// logs reports whether the logger records level: the arguments of a log
// call are built only then, so a discarding logger (the simulator's) costs
// nothing on the paths every key takes.
func (b *Barriers) logs(level slog.Level) bool {
	return b.log.Enabled(context.Background(), level)
}

// open creates the barriers of key, evicting the oldest keys first while the
// barriers are full.
func (b *Barriers) open(now time.Time, key string) (*keyState, []Release) {
	var rel []Release
	for len(b.keys) >= b.opts.MaxKeys {
		old := b.age.Front().Value.(*keyState)
		if b.logs(slog.LevelWarn) {
			b.log.Warn("deps: too many open keys, oldest released incomplete", "key", old.key, "max_keys", b.opts.MaxKeys)
		}
		rel = b.forceClose(now, old, rel)
	}
	b.seq++
	ks := &keyState{
		key:     key,
		seq:     b.seq,
		nodes:   make([]nodeState, len(b.g.names)),
		waiting: len(b.g.names) - len(b.g.sources),
		due:     -1,
	}
	deadline := now.Add(b.opts.Timeout)
	for _, s := range b.g.sources {
		ks.nodes[s].phase = working
		ks.nodes[s].deadline = deadline
	}
	ks.age = b.age.PushBack(ks)
	b.keys[key] = ks
	return ks, rel
}

// handReady releases the dependents of node p that became ready.
func (b *Barriers) handReady(now time.Time, ks *keyState, p int, rel []Release) []Release {
	for _, d := range b.g.dependents[p] {
		if ks.nodes[d].phase == waiting && b.ready(ks, d) {
			rel = append(rel, b.hand(now, ks, d))
		}
	}
	return rel
}

func (b *Barriers) ready(ks *keyState, d int) bool {
	for _, p := range b.g.prereqs[d] {
		if ph := ks.nodes[p].phase; ph != finished && ph != timedOut {
			return false
		}
	}
	return true
}

// hand releases dependent d with whatever inputs have arrived and starts its
// own clock.
func (b *Barriers) hand(now time.Time, ks *keyState, d int) Release {
	r := Release{Persona: b.g.names[d], Key: ks.key, Status: Done}
	for _, p := range b.g.prereqs[d] {
		if ks.nodes[p].phase != finished {
			r.Status = Incomplete
			continue
		}
		if r.Inputs == nil {
			r.Inputs = make([]Output, 0, len(b.g.prereqs[d]))
		}
		r.Inputs = append(r.Inputs, ks.nodes[p].out)
		r.Status = max(r.Status, ks.nodes[p].out.Status)
	}
	n := &ks.nodes[d]
	n.phase = working
	n.deadline = now.Add(b.opts.Timeout)
	n.inStatus = r.Status
	ks.waiting--
	return r
}

// settle closes ks if no dependent is left waiting, and otherwise files it
// under its earliest deadline. While a dependent waits some node is working
// (the first waiting node in topological order has no waiting prerequisite,
// and if none were working it would have been released), so an open key
// always has a deadline.
func (b *Barriers) settle(ks *keyState) {
	if ks.waiting == 0 {
		b.closeKey(ks)
		return
	}
	var next time.Time
	for _, n := range ks.nodes {
		if n.phase == working && (next.IsZero() || n.deadline.Before(next)) {
			next = n.deadline
		}
	}
	ks.next = next
	switch {
	case next.IsZero() && ks.due >= 0: // unreachable by the argument above; kept safe
		heap.Remove(&b.due, ks.due)
	case next.IsZero():
	case ks.due < 0:
		heap.Push(&b.due, ks)
	default:
		heap.Fix(&b.due, ks.due)
	}
}

func (b *Barriers) closeKey(ks *keyState) {
	if ks.due >= 0 {
		heap.Remove(&b.due, ks.due)
	}
	delete(b.keys, ks.key)
	b.age.Remove(ks.age)
	b.tombs.add(ks.key)
}

// forceClose releases every remaining dependent of ks at once, in
// topological order, and closes it.
func (b *Barriers) forceClose(now time.Time, ks *keyState, rel []Release) []Release {
	for _, d := range b.g.order {
		if ks.nodes[d].phase == waiting {
			rel = append(rel, b.hand(now, ks, d))
		}
	}
	b.closeKey(ks)
	return rel
}

// dueHeap orders open keys by their earliest deadline, then by opening order,
// so that Expire is deterministic.
type dueHeap []*keyState

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].next.Equal(h[j].next) {
		return h[i].next.Before(h[j].next)
	}
	return h[i].seq < h[j].seq
}
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].due, h[j].due = i, j
}
func (h *dueHeap) Push(x any) {
	ks := x.(*keyState)
	ks.due = len(*h)
	*h = append(*h, ks)
}
func (h *dueHeap) Pop() any {
	old := *h
	ks := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	ks.due = -1
	return ks
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
