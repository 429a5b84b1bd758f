package sim

import (
	"strconv"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/inbox"
	"github.com/personaos/persona/state"
)

// The persona policy: the root package's life cycle (persona.go: notify,
// loop, step, slice, park; coordinate.go: coordinate, think) replayed in
// virtual time over the same inbox, state, coord and govern code. The
// runtime's defaults (persona.Options) are repeated here because the
// simulator drives the pieces, not a Runtime.
const (
	sliceItems    = 10               // persona.Options.SliceItems default (the seed's peek of ten)
	sliceDuration = 30 * time.Second // persona.Options.SliceDuration default
	declinedTTL   = 5 * time.Minute  // persona.Options.DeclinedTTL default
)

// run states, as persona.go's (parked and idle are one here: no goroutine
// to keep).
const (
	runIdle    uint8 = iota // nothing to do: no timer
	runResting              // a scan timer armed
	runRunning              // stepping or working an item
)

// phases of the item in progress.
const (
	phNone  uint8 = iota
	phEval        // evaluating locally
	phAwait       // thought broadcast; waiting for the decision
	phDone        // decision made; resume will act on it
	phReply       // writing the reply (a model call)
)

// oursState is one persona's runtime state under the persona policy.
type oursState struct {
	q         *inbox.Inbox[int32]
	st        state.State
	dependent bool

	mark, lastRest, cadence int64
	hasMark, hasRest        bool
	sweepAt                 int64
	swept                   bool
	run                     uint8
	gen                     int32
	adjMul                  float64 // the governor's cadence multiplier at the step's start

	sliceStart int64
	sliceN     int
	shift      float64
	tnow       time.Time
	engage     func(inbox.Entry[int32]) bool

	item      int32   // trigger delivery of the item in progress; -1 none
	batch     []int32 // trigger and merged deliveries
	covers    []int32 // messages of the merged deliveries
	itemStart int64
	phase     uint8
	gaveUp    bool // the wait for the decision timed out: not granted
	retired   []inbox.Retired[int32]
	deferred  []inbox.Entry[int32]
}

func (r *run) initOurs() {
	for _, a := range r.actors {
		o := &oursState{
			q: inbox.New[int32](inbox.Options{
				Capacity: a.capacity,
				Urgent:   r.stateCfg.Urgent,
				Report:   true, // as the runtime: expiries inside the inbox by name
			}),
			st:        state.New(r.stateCfg),
			dependent: len(r.prereqs[a.idx]) > 0,
			item:      -1,
		}
		o.cadence = int64(o.st.Cadence(1))
		o.engage = func(e inbox.Entry[int32]) bool {
			return o.st.ShouldEngage(o.q.Effective(e, o.tnow), o.shift)
		}
		a.ours = o
	}
}

func delID(di int32) string { return strconv.FormatInt(int64(di), 36) }

// oursPost hands a new message to the personas: sources (and personas
// outside the pipeline) get it in their inbox now, dependents are held at
// the barrier of their prerequisites.
func (r *run) oursPost(mi int32) {
	first, n, author := r.msgs[mi].first, r.msgs[mi].n, r.msgs[mi].author
	for i := first; i < first+n; i++ {
		p := r.dels[i].persona
		if len(r.prereqs[p]) == 0 {
			r.stageStart(mi, p)
			r.oursPush(i)
			continue
		}
		left := 0
		for _, s := range r.prereqs[p] {
			if s != author { // the author has finished its own message
				left++
			}
		}
		if left == 0 {
			r.release(i)
			continue
		}
		r.dels[i].flags |= fHeld
		r.dels[i].waitLeft = int16(left)
	}
}

// oursPush is Persona.Deliver: score, push, and the inbox's notify hook.
func (r *run) oursPush(di int32) {
	d := &r.dels[di]
	a := r.actors[d.persona]
	o := a.ours
	d.at = r.now
	d.prio = r.priority(d)
	d.flags |= fInInbox
	out, err := o.q.Push(inbox.Entry[int32]{ID: delID(di), Priority: d.prio, Enqueued: r.t(r.now), Value: di})
	if err != nil {
		panic("sim: inbox push: " + err.Error()) // IDs are unique by construction
	}
	if out != inbox.DeferredOnArrival {
		r.oursNotify(a, o.q.Urgent(d.prio))
	}
}

// oursNotify is persona.go's notify: a dependent wakes on every release
// (the dependency trigger); an urgent item wakes a resting or idle
// persona at once (the demand trigger); other items wait for the scan.
func (r *run) oursNotify(a *actor, urgent bool) {
	o := a.ours
	if o.dependent {
		r.oursWake(a, trDependency)
		return
	}
	switch o.run {
	case runRunning:
		return // it looks at the inbox again before it parks
	case runResting:
		if !urgent {
			return // the scan timer will pick it up: batching
		}
	}
	if urgent {
		r.oursWake(a, trDemand)
		return
	}
	r.oursArm(a, r.untilNextScan(a))
}

// untilNextScan: the next tick of the persona's rhythm after its last
// rest; a persona that never rested looks at once.
func (r *run) untilNextScan(a *actor) int64 {
	o := a.ours
	if !o.hasRest {
		return 0
	}
	return max(0, o.lastRest+o.cadence-r.now)
}

func (r *run) oursArm(a *actor, d int64) {
	if d <= 0 {
		r.oursWake(a, trScan)
		return
	}
	o := a.ours
	o.gen++
	o.run = runResting
	r.at(r.now+d, evScan, a.idx, o.gen)
}

// oursWake starts the loop now unless it runs. The step runs as an event
// at the same virtual time, as a goroutine would start.
func (r *run) oursWake(a *actor, trig int) {
	o := a.ours
	if o.run == runRunning {
		return
	}
	o.gen++ // a pending timer finds a newer generation and does nothing
	o.run = runRunning
	a.wakes[trig]++
	r.at(r.now, evStep, a.idx, 0)
}

func (r *run) oursTimer(a *actor, gen int32) {
	o := a.ours
	if gen != o.gen || o.run != runResting {
		return
	}
	o.run = runRunning
	a.wakes[trScan]++
	r.oursStep(a)
}

// oursStep is persona.go's step: account the rest since the last one,
// retire stale items, catch up deferred work when the governor allows,
// observe, and work one slice.
func (r *run) oursStep(a *actor) {
	o := a.ours
	now := r.now
	tnow := r.t(now)
	if o.hasMark {
		o.st.Rest(time.Duration(now - o.mark))
	}
	o.mark, o.hasMark = now, true
	if !o.swept || now-o.sweepAt >= second {
		o.sweepAt, o.swept = now, true
		o.retired = o.q.Sweep(tnow, declinedTTL, o.retired[:0])
		for _, rt := range o.retired {
			r.dels[rt.Entry.Value].acct = inboxAcct[rt.Account]
			r.oursFinal(rt.Entry.Value, inboxAcct[rt.Account])
		}
	}
	if r.adj.CatchUp && o.q.DeferredLen() > 0 {
		o.q.Readmit(tnow, 0)
	}
	// As persona.go's step: entries that expired inside the inbox are
	// reported like any final account; deferral notes are only for events.
	o.retired = o.q.DrainRetired(o.retired[:0])
	for _, rt := range o.retired {
		r.dels[rt.Entry.Value].acct = inboxAcct[rt.Account]
		r.oursFinal(rt.Entry.Value, inboxAcct[rt.Account])
	}
	o.deferred = o.q.DrainDeferred(o.deferred[:0])
	o.st.Observe(o.q.Load(), 1)
	o.adjMul = r.adj.CadenceMultiplier
	o.sliceStart, o.sliceN, o.shift = now, 0, r.adj.ThresholdShift
	r.oursSlice(a)
}

// oursSlice is persona.go's slice: take the top item while it is worth
// engaging, at most sliceItems of them or sliceDuration. It returns when
// an item waits for an event; the event resumes it.
func (r *run) oursSlice(a *actor) {
	o := a.ours
	for {
		if o.sliceN >= sliceItems || (o.sliceN > 0 && r.now-o.sliceStart >= int64(sliceDuration)) {
			r.oursEndSlice(a)
			return
		}
		o.tnow = r.t(r.now)
		e, ok := o.q.TakeTopIf(o.engage)
		if !ok {
			r.oursEndSlice(a)
			return
		}
		o.sliceN++
		if r.oursStartItem(a, e.Value) {
			return
		}
	}
}

// oursStartItem coalesces the item's room and starts coordinate. It
// reports whether the item continues asynchronously.
func (r *run) oursStartItem(a *actor, di int32) bool {
	o := a.ours
	o.itemStart = r.now
	o.batch = append(o.batch[:0], di)
	room := r.msgs[r.dels[di].msg].room
	for _, e := range o.q.TakeWhere(func(e inbox.Entry[int32]) bool { return r.msgs[r.dels[e.Value].msg].room == room }) {
		o.batch = append(o.batch, e.Value)
	}
	// The newest is the trigger; the older ride along as context
	// (persona.go coalesce: first of the newest on ties).
	t := 0
	for i, x := range o.batch {
		if r.msgs[r.dels[x].msg].at > r.msgs[r.dels[o.batch[t]].msg].at {
			t = i
		}
	}
	o.batch[0], o.batch[t] = o.batch[t], o.batch[0]
	o.item = o.batch[0]
	o.covers = o.covers[:0]
	for _, x := range o.batch {
		d := &r.dels[x]
		d.start = r.now
		r.checkBarrier(x)
		if x != o.item {
			o.covers = append(o.covers, d.msg)
			r.withdraw(x) // coordinate: merged items are answered by this one
		}
	}
	mi := r.dels[o.item].msg
	if r.decided(mi) && !r.thoughtOn(mi, a.idx) && !r.addressedBy(a) {
		// coordinate: decided before this persona reached it, so it
		// cannot be granted; no evaluation, but the stream learns how
		// late it was. An addressed persona goes on: its late thought is
		// granted.
		r.think(mi, o.item, 0, coord.IntentObserve, false)
		r.oursItemDone(a)
		return false
	}
	r.m.evaluations++
	o.phase = phEval
	r.at(r.now+int64(evalCost), evWork, a.idx, 0)
	return true
}

// oursEvalDone: the local evaluation is done; think and await.
func (r *run) oursEvalDone(a *actor) {
	o := a.ours
	mi := r.dels[o.item].msg
	conf, intent := r.oursIntent(a)
	o.phase = phAwait
	if !r.think(mi, o.item, conf, intent, r.addressedBy(a)) {
		// Too late to count: Await returns the decision made without it,
		// or amended to grant an addressed persona.
		r.oursDecided(a.idx, mi)
		return
	}
	// think's Await is bounded by Options.CoordinationTimeout, whose
	// default is the stream's longest window plus a second.
	r.at(r.now+r.maxWindow()+second, evAwaitTimeout, a.idx, o.item)
}

// oursAwaitTimeout: the wait for the decision on delivery di ran out
// (think: "coordination: no decision"), which means not granted.
func (r *run) oursAwaitTimeout(a *actor, di int32) {
	o := a.ours
	if o.phase != phAwait || o.item != di {
		return
	}
	r.m.awaitTimeouts++
	r.markBatch(a, fAwaitTimeout)
	o.gaveUp = true
	o.phase = phDone
	r.at(r.now, evResume, a.idx, 0)
}

// addressedBy is coordinate.go's addressedBy: the item or one merged into
// it (persona.go coalesce unions their addressees) mentions a.
func (r *run) addressedBy(a *actor) bool {
	for _, x := range a.ours.batch {
		if r.msgs[r.dels[x].msg].mention == a.idx {
			return true
		}
	}
	return false
}

// markBatch flags every delivery of a's item in progress, so that the
// report can tell why a merged mention went unanswered.
func (r *run) markBatch(a *actor, f uint16) {
	for _, x := range a.ours.batch {
		r.dels[x].flags |= f
	}
}

// oursDecided is called when the decision on mi is made; the persona acts
// on it as an event (it may be inside another persona's step now).
func (r *run) oursDecided(p, mi int32) {
	o := r.actors[p].ours
	if o.phase != phAwait || o.item < 0 || r.dels[o.item].msg != mi {
		return
	}
	o.phase = phDone
	r.at(r.now, evResume, p, 0)
}

// oursResume responds if granted (coordinate), then goes on with the
// slice.
func (r *run) oursResume(a *actor) {
	o := a.ours
	if o.phase != phDone {
		return
	}
	mi := r.dels[o.item].msg
	if !o.gaveUp && r.isGranted(mi, a.idx) {
		r.markBatch(a, fGranted)
		if r.respond(a, mi) {
			o.phase = phReply
			return
		}
		r.markBatch(a, fSuppressed)
	}
	r.oursItemDone(a)
	r.oursSlice(a)
}

func (r *run) oursCallDone(c call) {
	a := r.actors[c.persona]
	o := a.ours
	r.roomFlight[r.msgs[c.ref].room]--
	r.postReply(a.idx, c.ref, o.covers)
	r.oursItemDone(a)
	r.oursSlice(a)
}

// oursItemDone settles the item: the time it took drains energy
// (state.RecordActivity), and the item and its merged context are handled.
func (r *run) oursItemDone(a *actor) {
	o := a.ours
	took := r.now - o.itemStart
	a.busy += took
	o.st.RecordActivity(r.t(r.now), time.Duration(took), 1)
	o.mark = r.now
	for _, x := range o.batch {
		if !o.q.Finish(delID(x), inbox.Handled) {
			panic("sim: finish of an item not in flight")
		}
		r.dels[x].acct = acHandled
		r.oursFinal(x, acHandled)
	}
	o.item, o.phase, o.gaveUp = -1, phNone, false
	o.batch = o.batch[:0]
}

// oursFinal is persona.go's final: a persona that will not think withdraws
// from the decision, and the pipeline learns the item's fate.
func (r *run) oursFinal(di int32, ac acct) {
	if ac != acHandled {
		r.withdraw(di)
	}
	r.depFinish(di, ac)
	if obs := r.opts.Observer; obs != nil {
		r.observeFinal(obs, di, ac)
	}
}

// observeFinal reports a final account as persona.go's final does.
func (r *run) observeFinal(obs persona.Observer, di int32, ac acct) {
	d := &r.dels[di]
	var kind persona.EventKind
	switch ac {
	case acHandled:
		kind = persona.EventHandled
	case acDeclined:
		kind = persona.EventDeclined
	case acExpired:
		kind = persona.EventExpired
	default:
		return
	}
	e := persona.Event{Kind: kind, Persona: r.actors[d.persona].name, At: r.epoch.Add(time.Duration(r.now)),
		ItemID: "m" + strconv.Itoa(int(d.msg)), Priority: d.prio, Urgent: d.class == classUrgent}
	if d.start >= 0 {
		e.Wait = time.Duration(d.start - d.at)
	}
	obs.Observe(e)
}

// oursEndSlice is the rest of persona.go's live loop after a step: urgent
// work never waits for the cadence; otherwise the cadence (state, times
// the governor's multiplier) and park.
func (r *run) oursEndSlice(a *actor) {
	o := a.ours
	if o.q.HasUrgent() {
		r.at(r.now, evStep, a.idx, 0)
		return
	}
	cad := int64(o.st.Cadence(o.adjMul))
	o.cadence = cad
	o.lastRest, o.hasRest = r.now, true
	if o.q.Len() > 0 || o.q.DeferredLen() > 0 {
		if cad <= 0 {
			r.at(r.now, evStep, a.idx, 0)
			return
		}
		o.run = runIdle // so that oursArm can arm
		r.oursArm(a, cad)
		return
	}
	o.run = runIdle
}
