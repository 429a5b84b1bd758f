package persona

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/personaos/persona/deps"
	"github.com/personaos/persona/inbox"
)

// ErrNotSource is returned by Deliver to a persona that waits for others:
// items enter a pipeline at its sources, and a dependent is handed each one
// by the pipeline when its prerequisites are done with it. Runtime.Start
// returns it, too, when items were delivered before Start to a persona that
// the graph makes a dependent.
var ErrNotSource = errors.New("persona: not a pipeline source: deliver to the personas it waits for")

// pipe is what the runtime needs of a pipeline of any payload type.
type pipe interface {
	attach()
	close()
}

// pipeline connects the personas of one connected dependency graph, all of
// payload T: it holds each item that entered at a source until every
// dependent has been released with it, and turns the tracker's releases
// into deliveries.
type pipeline[T any] struct {
	log     *slog.Logger
	g       *deps.Graph
	tr      *deps.Tracker
	members map[string]*Persona[T]
	source  map[string]bool
	order   []*Persona[T] // declaration order
	perKey  int           // releases per key: one per dependent
	maxHeld int

	mu    sync.Mutex
	items map[string]*heldItem[T]
	fifo  list.List // of *heldItem[T], oldest first
}

type heldItem[T any] struct {
	it       Item[T]
	released int
	elem     *list.Element
}

func (p *Persona[T]) payloadType() reflect.Type { return reflect.TypeFor[T]() }

// newPipeline builds the pipeline of graph g over ms, which must all carry
// p's payload type. It starts nothing: attach does.
func (p *Persona[T]) newPipeline(rt *Runtime, g *deps.Graph, ms []member) (pipe, error) {
	pp := &pipeline[T]{
		log:     rt.log,
		g:       g,
		members: make(map[string]*Persona[T], len(ms)),
		source:  make(map[string]bool, len(ms)),
		perKey:  g.Len() - len(g.Sources()),
		items:   make(map[string]*heldItem[T]),
	}
	for _, m := range ms {
		q, ok := m.(*Persona[T])
		if !ok {
			return nil, fmt.Errorf("pipeline %v: %q carries %v but %q carries %v: a pipeline has one payload type",
				g.Order(), p.name, p.payloadType(), m.Name(), m.payloadType())
		}
		if len(g.Prereqs(q.name)) > 0 {
			if n := q.q.Counts().Delivered; n > 0 {
				return nil, fmt.Errorf("persona %s waits for %v, yet items were delivered to it before Start (%d): %w",
					q.name, g.Prereqs(q.name), n, ErrNotSource)
			}
		}
		pp.members[q.name] = q
		pp.source[q.name] = len(g.Prereqs(q.name)) == 0
		pp.order = append(pp.order, q)
	}
	o := rt.depOpts
	pp.maxHeld = 2 * o.MaxKeys
	o.Logger = rt.log
	pp.tr = deps.NewTracker(g, o, pp.release)
	return pp, nil
}

// attach makes the members part of the pipeline, then enters the items
// delivered to its sources before Start. Every member is attached before any
// item is begun, so that an early release already finds a dependent.
func (pp *pipeline[T]) attach() {
	early := make([][]Item[T], len(pp.order))
	for i, p := range pp.order {
		p.mu.Lock()
		p.pipe.Store(pp)
		p.dependent.Store(!pp.source[p.name])
		early[i], p.early, p.attached = p.early, nil, true
		p.mu.Unlock()
	}
	for i := range pp.order {
		for _, it := range early[i] {
			pp.hold(it)
			pp.tr.Begin(it.ID)
		}
	}
}

// close stops the tracker (its timers, and releases in flight) and forgets
// the held items. Keys still open are dropped without releasing anyone.
func (pp *pipeline[T]) close() {
	if n := pp.tr.Pending(); n > 0 {
		pp.log.Info("pipeline: items in flight dropped at shutdown", "pipeline", pp.g.Order(), "items", n)
	}
	pp.tr.Close()
	pp.mu.Lock()
	clear(pp.items)
	pp.fifo.Init()
	pp.mu.Unlock()
}

// hold remembers an item that enters at a source, unless it is held
// already (several sources, or a duplicate delivery). It reports whether it
// added the item. Held items are bounded at twice MaxPipelineKeys: the
// tracker keeps at most MaxPipelineKeys keys open, so an item older than
// that has been released to everyone (or its key was reused, which keys
// must not be).
func (pp *pipeline[T]) hold(it Item[T]) bool {
	if pp.perKey == 0 {
		return false
	}
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if _, ok := pp.items[it.ID]; ok {
		return false
	}
	for len(pp.items) >= pp.maxHeld {
		old := pp.fifo.Front().Value.(*heldItem[T])
		pp.log.Warn("pipeline: too many items held, oldest forgotten", "item", old.it.ID, "max", pp.maxHeld)
		pp.forgetLocked(old)
	}
	h := &heldItem[T]{it: it}
	h.elem = pp.fifo.PushBack(h)
	pp.items[it.ID] = h
	return true
}

func (pp *pipeline[T]) unhold(id string) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if h := pp.items[id]; h != nil {
		pp.forgetLocked(h)
	}
}

func (pp *pipeline[T]) forgetLocked(h *heldItem[T]) {
	pp.fifo.Remove(h.elem)
	delete(pp.items, h.it.ID)
}

// finish tells the tracker that persona is done with an item. The account
// maps onto the barrier status: handled is done, declined is skipped, and
// expired or failed leaves the dependents' inputs incomplete.
//
// A source's item that is no longer held has been released to every
// dependent already (its key closed, by timeout or to keep the pipeline
// bounded): its late finish is dropped here, because the tracker, which
// remembers only the last MaxPipelineKeys closed keys, would take it for a
// new key and release it again.
func (pp *pipeline[T]) finish(persona, id string, a Account, out any) {
	if pp.source[persona] {
		pp.mu.Lock()
		_, held := pp.items[id]
		pp.mu.Unlock()
		if !held {
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
	pp.tr.Finish(persona, id, st, out)
}

// release is the tracker's callback: it hands the held item to the
// dependent with its prerequisites' outputs, which wakes it (the dependency
// trigger). It runs on the goroutine that finished the last prerequisite or
// on a timer, and never blocks: a push only takes the inbox's and the
// persona's locks.
func (pp *pipeline[T]) release(r deps.Release) {
	p := pp.members[r.Persona]
	pp.mu.Lock()
	h := pp.items[r.Key]
	if h != nil {
		h.released++
		if h.released >= pp.perKey {
			pp.forgetLocked(h) // every dependent has it: the pipeline is done with the item
		}
	}
	pp.mu.Unlock()
	if h == nil || p == nil {
		pp.log.Warn("pipeline: release of an item no longer held", "persona", r.Persona, "item", r.Key)
		if p != nil {
			pp.tr.Finish(r.Persona, r.Key, deps.Incomplete, nil)
		}
		return
	}
	it := h.it
	it.Delivered, it.Context, it.Attempt = time.Time{}, nil, 0
	it.Upstream, it.Status = r.Inputs, r.Status
	if err := p.deliver(it, true); err != nil {
		// Do not hold the rest of the pipeline for a persona that cannot
		// take the item (shut down, or the ID is already in its inbox).
		pp.log.Warn("pipeline: release not delivered", "persona", r.Persona, "item", r.Key, "err", err)
		pp.tr.Finish(r.Persona, r.Key, deps.Incomplete, nil)
	}
}

// buildPipelines validates the dependency graph of ms and builds one
// pipeline per connected part of it. Nothing is started or attached: on
// error the runtime starts nothing.
func buildPipelines(rt *Runtime, ms []member) ([]pipe, error) {
	involved := make(map[string]bool)
	for _, m := range ms {
		w, n := m.deps()
		if len(w) == 0 && len(n) == 0 {
			continue
		}
		involved[m.Name()] = true
		for _, x := range w {
			involved[x] = true
		}
		for _, x := range n {
			involved[x] = true
		}
	}
	if len(involved) == 0 {
		return nil, nil
	}
	var nodes []deps.Node
	var gms []member
	for _, m := range ms {
		if involved[m.Name()] {
			w, n := m.deps()
			nodes = append(nodes, deps.Node{Name: m.Name(), WaitsFor: w, Notifies: n})
			gms = append(gms, m)
		}
	}
	// Names that are not personas of this runtime stay in the edges, so the
	// graph reports them as unknown, naming who declared them.
	g, err := deps.NewGraph(nodes)
	if err != nil {
		return nil, err
	}

	// One pipeline per connected part, so that pipelines of different
	// payload types can share a runtime.
	parent := make([]int, len(nodes))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if parent[i] != i {
			parent[i] = find(parent[i])
		}
		return parent[i]
	}
	idx := make(map[string]int, len(nodes))
	for i, n := range nodes {
		idx[n.Name] = i
	}
	for i, n := range nodes {
		for _, pre := range g.Prereqs(n.Name) {
			parent[find(idx[pre])] = find(i)
		}
	}
	var roots []int
	parts := make(map[int][]int)
	for i := range nodes {
		r := find(i)
		if _, seen := parts[r]; !seen {
			roots = append(roots, r)
		}
		parts[r] = append(parts[r], i)
	}
	var out []pipe
	for _, r := range roots {
		var sub []deps.Node
		var sms []member
		for _, i := range parts[r] {
			sub = append(sub, nodes[i])
			sms = append(sms, gms[i])
		}
		sg, err := deps.NewGraph(sub)
		if err != nil {
			return nil, err // cannot happen: a part of a valid graph is valid
		}
		pp, err := sms[0].newPipeline(rt, sg, sms)
		if err != nil {
			for _, done := range out {
				done.close()
			}
			return nil, err
		}
		out = append(out, pp)
	}
	return out, nil
}
