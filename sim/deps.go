package sim

import (
	"slices"

	"github.com/personaos/persona/deps"
)

// Dependency barriers: a dependent persona is handed a message only after its
// prerequisites finished it. The decisions are deps.Barriers', the core of
// the runtime's deps.Tracker, driven here in virtual time: one per connected
// pipeline, as the runtime builds one tracker per connected part of the
// graph, keyed by the message ("m" and its index).

// depPipe is one connected pipeline and the event that wakes its barriers.
type depPipe struct {
	b     *deps.Barriers
	armed int64 // when the pending evDepTimeout fires; -1: none
	gen   int32 // the pending evDepTimeout's generation; older ones are stale
}

// initDeps builds a barrier core for each connected part of g that has an
// edge; personas outside every pipeline are in none.
func (r *run) initDeps(g *deps.Graph) error {
	r.pipeOf = make([]int32, len(r.actors))
	r.byName = make(map[string]int32, len(r.actors))
	for _, a := range r.actors {
		r.pipeOf[a.idx] = -1
		r.byName[a.name] = a.idx
	}
	for _, a := range r.actors {
		if r.pipeOf[a.idx] >= 0 || len(r.prereqs[a.idx])+len(r.dependents[a.idx]) == 0 {
			continue
		}
		pi := int32(len(r.pipes))
		var part []int32
		for stack := []int32{a.idx}; len(stack) > 0; {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if r.pipeOf[p] >= 0 {
				continue
			}
			r.pipeOf[p] = pi
			part = append(part, p)
			stack = append(stack, r.prereqs[p]...)
			stack = append(stack, r.dependents[p]...)
		}
		slices.Sort(part) // declaration order, as the runtime's parts
		nodes := make([]deps.Node, 0, len(part))
		for _, p := range part {
			name := r.actors[p].name
			nodes = append(nodes, deps.Node{Name: name, WaitsFor: g.Prereqs(name)})
		}
		sub, err := deps.NewGraph(nodes)
		if err != nil {
			return err // cannot happen: a part of a valid graph is valid
		}
		r.pipes = append(r.pipes, depPipe{b: deps.NewBarriers(sub, deps.Options{Timeout: r.sc.DepsTimeout}), armed: -1})
	}
	return nil
}

// oursPost hands a new message to the personas, as Persona.Deliver to every
// recipient: sources (and personas outside the pipelines) get it in their
// inbox now, dependents are held at the barrier of their prerequisites. Its
// author has finished its own message (it is never delivered to it), so a
// dependent that waits only for the author is released at once; it takes its
// place among the recipients, which keeps same-instant events in persona
// order.
func (r *run) oursPost(mi int32) {
	m := &r.msgs[mi]
	var freed []deps.Release
	var skipped []int32
	if len(r.pipes) > 0 {
		// The message's item ID is its key, as the runtime keys an item.
		key, author := m.id, ""
		if m.author >= 0 {
			author = r.actors[m.author].name
		}
		for i := m.first; i < m.first+m.n; i++ {
			if len(r.prereqs[r.dels[i].persona]) > 0 {
				r.dels[i].flags |= fHeld
			}
		}
		for pi := range r.pipes {
			freed = append(freed, r.pipes[pi].b.BeginBy(r.t(r.now), key, author)...)
		}
		// Opening the key may have evicted the oldest one: those go first.
		k := 0
		for _, x := range freed {
			if x.Key == key {
				freed[k] = x
				k++
				continue
			}
			r.depRelease([]deps.Release{x})
		}
		freed = freed[:k]
	}
	for i := m.first; i < m.first+m.n; i++ {
		if r.dels[i].flags&fHeld == 0 {
			if r.intake(i) { // the daemon's intake guard
				r.oursPush(i)
			} else if len(r.pipes) > 0 {
				skipped = append(skipped, i)
			}
			continue
		}
		name := r.actors[r.dels[i].persona].name
		if j := slices.IndexFunc(freed, func(x deps.Release) bool { return x.Persona == name }); j >= 0 {
			r.depRelease(freed[j : j+1])
		}
	}
	// A source that did not take the message in does not hold its
	// dependents: its part of the barrier is finished as skipped, after
	// the loop, so that a delivery it releases is not pushed twice.
	for _, i := range skipped {
		r.depFinish(i, acDeclined)
	}
	for pi := range r.pipes {
		r.depArm(int32(pi))
	}
}

// depFinish reports a delivery's final account to the barriers of its
// persona's dependents: handled is done, declined skipped, expired
// incomplete (pipeline.go's finish). A message whose barriers have closed
// is past them: like pipeline.go, the late finish is dropped rather than
// reopening the key.
func (r *run) depFinish(di int32, ac acct) {
	d := &r.dels[di]
	pi := r.pipeOf[d.persona]
	if pi < 0 {
		return
	}
	key := r.msgs[d.msg].id
	pp := &r.pipes[pi]
	if !pp.b.Open(key) {
		return
	}
	st := deps.Done
	switch ac {
	case acDeclined:
		st = deps.Skipped
	case acExpired:
		st = deps.Incomplete
	}
	r.depRelease(pp.b.Finish(r.t(r.now), r.actors[d.persona].name, key, st, nil))
	r.depArm(pi)
}

// depTimeout is the barriers' next deadline: the stages past theirs time
// out and their dependents are released without them.
func (r *run) depTimeout(pi, gen int32) {
	pp := &r.pipes[pi]
	if gen != pp.gen {
		return // superseded by an earlier deadline, which re-armed
	}
	pp.armed = -1
	r.depRelease(pp.b.Expire(r.t(r.now)))
	r.depArm(pi)
}

// depArm schedules pipeline pi's next deadline, unless an event at or
// before it is pending already (it re-arms when it fires).
func (r *run) depArm(pi int32) {
	pp := &r.pipes[pi]
	next, ok := pp.b.NextDeadline()
	if !ok {
		return
	}
	at := int64(next.Sub(r.epoch))
	if pp.armed >= 0 && pp.armed <= at {
		return
	}
	pp.gen++
	pp.armed = at
	r.at(at, evDepTimeout, pi, pp.gen)
}

// depRelease hands each released delivery to its persona, whatever its
// status (as the runtime's pipeline does: the status travels with the item,
// and the dependent's wait starts at the release).
func (r *run) depRelease(rel []deps.Release) {
	for _, x := range rel {
		di := r.delOf(msgOf(x.Key), r.byName[x.Persona])
		if di < 0 || r.dels[di].flags&fHeld == 0 {
			panic("sim: release of a delivery the barrier does not hold: " + x.Persona + " " + x.Key)
		}
		d := &r.dels[di]
		d.flags &^= fHeld
		d.status = uint8(x.Status)
		r.m.releases++
		switch x.Status {
		case deps.Incomplete:
			r.m.incomplete++
		case deps.Skipped:
			r.m.skipped++
		}
		r.oursPush(di)
	}
}

// checkBarrier counts a dependent started on a message its barrier still
// holds: never, since only a release pushes a held delivery; the report
// shows it so a regression cannot hide.
func (r *run) checkBarrier(di int32) {
	if r.dels[di].flags&fHeld != 0 {
		r.m.depViolations++
	}
}
