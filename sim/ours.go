package sim

import (
	"slices"
	"strconv"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/slots"
)

// The persona policy: the runtime's own life cycle (persona.Cycle, the pure
// core that persona.Persona drives in real time) driven here in virtual
// time. The simulator decides nothing about a persona's rhythm itself: it
// turns the cycle's wakes into events, carries out its actions (an
// evaluation takes evalCost, a reply is a model call) and its notes (final
// accounts, withdrawals, observe thoughts), and the cycle decides the rest
// with the runtime's defaults.

// oursState is one persona's driver state under the persona policy.
type oursState struct {
	*Driver[int32]
	c *persona.Cycle[int32]

	item   int32   // trigger delivery of the item in progress; -1 none
	batch  []int32 // trigger and merged deliveries
	covers []int32 // messages of the merged deliveries
	phase  uint8
	// gen numbers the action in progress: an evaluation's or an await's
	// event carries it, so that one left behind by a preemption is ignored.
	gen  int32
	call int32 // the reply's model call; -1 none

	// lane holds the replies out in the urgent lane (persona.Options.Lane),
	// each with its own batch and call.
	lane []*laneReply
}

// laneReply is a reply written in the urgent lane: the lane work's ID,
// its deliveries, the messages it covers and its model call.
type laneReply struct {
	id     uint64
	batch  []int32 // its trigger delivery and those merged into it
	covers []int32
	call   int32
}

// chatHost is the world of one persona under the persona policy: the
// run's events, an evaluation that costs evalCost, a reply that is a model
// call behind the room's guards, and the stream of the run.
type chatHost struct {
	r *run
	a *actor
}

var _ Host[int32] = chatHost{}

func (h chatHost) StepAt(at int64)              { h.r.at(at, evStep, h.a.idx, 0) }
func (h chatHost) TimerAt(at int64, gen int32)  { h.r.at(at, evScan, h.a.idx, gen) }
func (h chatHost) Woke(t persona.Trigger)       { h.a.wakes[int(t)]++ }
func (h chatHost) Note(n persona.Note[int32])   { h.r.oursNote(h.a, n) }
func (h chatHost) Work(a persona.Action[int32]) { h.r.oursWork(h.a, a) }
func (h chatHost) Preempt()                     { h.r.oursPreempt(h.a) }

// Adjust is the governor's adjustment and the compute budget's level, as
// the daemon's runtime reads them at every step.
func (h chatHost) Adjust(int64) (persona.Adjustment, float64) { return h.r.adj, h.r.budgetLevel() }

// phases of the item in progress.
const (
	phNone  uint8 = iota
	phEval        // evaluating locally
	phAwait       // thought broadcast; waiting for the decision
	phDone        // decision made; resume will act on it
	phReply       // writing the reply (a model call)
)

func (r *run) initOurs() {
	// Model calls take the daemon's slot scheduler's slots.
	r.slotCore, r.slotCall = slots.New(r.sc.Cores), map[slots.ID]int32{}
	for _, a := range r.actors {
		opts := persona.Options{
			Capacity: a.capacity,
			State:    a.stateCfg,
			// A chat persona merges a room's pending messages: the newest is
			// the trigger, the older ride along as context.
			Coalesce: true,
			// An urgent item never waits behind its own persona's reply or
			// wait for a decision (as the daemon's personas).
			Preempt: true,
			// Nor behind its own persona's urgent reply, while a second
			// call would start at once (as the daemon's personas).
			Lane:     1,
			LaneOpen: r.laneOpen,
		}
		var dec persona.Decisions = r.co
		if r.opts.Lane > 0 {
			opts.Lane = r.opts.Lane
		}
		if r.opts.LaneAlways {
			opts.LaneOpen = nil
		}
		if r.opts.NoLane {
			opts.Lane, opts.LaneOpen = 0, nil
		}
		if a.stage {
			// A pipeline stage works every item it engages: no merging, no
			// coordination, no preemption (its work is short).
			opts.Coalesce, opts.Preempt, opts.Lane, opts.LaneOpen, dec = false, false, 0, nil, nil
		}
		q := persona.NewInbox[int32](opts)
		c := persona.NewCycle(a.name, opts, q, dec)
		c.SetDependent(len(r.prereqs[a.idx]) > 0)
		a.ours = &oursState{Driver: NewDriver(c, Host[int32](chatHost{r, a}), r.epoch), c: c, item: -1, call: -1}
		a.ours.Start(0)
	}
}

// oursPush is Persona.Deliver: score, push, and tell the cycle.
func (r *run) oursPush(di int32) {
	d := &r.dels[di]
	a := r.actors[d.persona]
	m := &r.msgs[d.msg]
	d.at = r.now
	d.prio = r.priority(d)
	d.flags |= fInInbox
	it := persona.Item[int32]{ID: m.id, Key: strconv.Itoa(int(m.room)), Priority: d.prio,
		Created: r.t(m.at), Delivered: r.t(r.now), Payload: di}
	if m.mention == d.persona {
		it.Addressees = []string{a.name}
	}
	it.Status = d.depStatus() // how complete a pipeline release is
	it.Complexity = a.complexity
	if dl := r.sc.Traffic.Deadline; dl > 0 {
		it.Deadline = it.Created.Add(dl)
	}
	if err := a.ours.Deliver(r.now, it); err != nil {
		panic("sim: inbox push: " + err.Error()) // IDs are unique by construction
	}
	r.supersede(a, m.room)
}

// supersede is the daemon's Daemon.supersede: a's reply for room that
// still waits for a model slot (an owed one too: it comes back owed, and
// its turn is its persona's) gives up before it costs one, and the persona
// puts its item back, to answer the newer message with it merged in.
func (r *run) supersede(a *actor, room int32) {
	o := a.ours
	if o.phase != phReply || o.call < 0 {
		return
	}
	c := &r.calls[o.call]
	if c.start >= 0 || c.cancelled || c.kind != callReply || r.msgs[c.ref].room != room {
		return
	}
	if c.slot == 0 {
		// Still waiting for a compute-budget token, not yet in line for a
		// slot: the daemon takes its token on the slot, where nothing
		// supersedes it, and a token given up here is not given back.
		return
	}
	r.cancelCall(o.call)
	r.roomFlight[room]--
	r.budget.Release(room, r.actors[c.persona].name, r.t(c.issued)) // not sent: the budget gets it back
	r.m.superseded++
	o.call, o.phase = -1, phNone
	o.Done(r.now, persona.Result{Later: r.t(r.now)})
}

func (r *run) oursTimer(a *actor, gen int32) { a.ours.Timer(r.now, gen) }

func (r *run) oursStep(a *actor) { a.ours.Step(r.now) }

// oursWork begins the work of an action: an evaluation takes evalCost; a
// thought goes to the run's stream; a reply passes the room's guards and
// is one model call.
func (r *run) oursWork(a *actor, act persona.Action[int32]) {
	o := a.ours
	switch act.Do {
	case persona.DoEvaluate:
		r.oursBegin(a, act.Item)
		r.m.evaluations++
		o.phase = phEval
		o.gen++
		r.at(r.now+int64(evalCost), evWork, a.idx, o.gen)
	case persona.DoThink:
		o.phase = phAwait
		mi := r.dels[o.item].msg
		mustAwait := r.think(mi, o.item, act.Thought.Confidence, act.Thought.Intent, act.Thought.Addressed)
		if act.NoWait {
			o.phase = phNone
			o.Spoke(r.now)
			return
		}
		if !mustAwait {
			// Too late to count: Await returns the decision made without
			// it, or amended to grant an addressed persona.
			o.phase = phNone
			d, ok := r.decision(mi)
			o.Decided(r.now, d, ok)
			return
		}
		o.gen++
		r.at(o.V(act.Until), evAwaitTimeout, a.idx, o.gen)
	case persona.DoRespond:
		// The item as the cycle has it now: a retry, an item preempted or
		// put back after its grant goes straight to its reply, merged with
		// what arrived meanwhile.
		r.oursBegin(a, act.Item)
		r.markBatch(a, fGranted)
		r.oursReply(a, act.Lane)
	case persona.DoHandle:
		// A pipeline stage's work: its handle time on one of the cores.
		r.oursBegin(a, act.Item)
		o.phase = phReply
		urgent := r.dels[act.Item.Payload].class == classUrgent
		class := slots.Background
		if urgent {
			class = slots.Addressed
		}
		o.call = r.callModelFor(a.idx, callWork, act.Item.Payload, urgent, nil, class)
	}
}

// oursBegin notes the item the cycle started: its trigger, the deliveries
// merged into it and the messages they cover.
func (r *run) oursBegin(a *actor, it *persona.Item[int32]) {
	o := a.ours
	o.item = it.Payload
	o.batch = append(o.batch[:0], it.Payload)
	o.covers = o.covers[:0]
	for _, x := range it.Context {
		o.batch = append(o.batch, x.Payload)
		o.covers = append(o.covers, r.dels[x.Payload].msg)
	}
	for _, x := range o.batch {
		// A delivery's wait ends when work on it first starts: a later
		// restart (preempted, put back for the reply budget) does not
		// move it.
		if r.dels[x].start < 0 {
			r.dels[x].start = r.now
		}
		r.checkBarrier(x)
	}
}

// oursNote carries out one of the cycle's notes.
func (r *run) oursNote(a *actor, n persona.Note[int32]) {
	o := a.ours
	di := n.Item.Payload
	switch n.Kind {
	case persona.NoteFinal:
		ac := inboxAcct[n.Account]
		if a.stage && ac == acExpired {
			r.m.stageExpired++
			if r.govIn.Duty < r.sc.Ceiling { // the duty the governor last measured
				r.m.stageExpiredCool++
			}
		}
		a.busy += int64(n.Took)
		if di == o.item {
			o.item = -1
		}
		r.dels[di].acct = ac
		r.oursFinal(di, ac)
	case persona.NoteLeave:
		r.withdraw(di)
	case persona.NoteObserve:
		// Decided before this persona reached it, so it cannot be granted;
		// no evaluation, but the stream learns how late it was.
		r.oursBegin(a, &n.Item)
		r.think(r.dels[di].msg, di, 0, coord.IntentObserve, false)
	}
}

// oursReply writes a's reply if the room's budget lets it: an ordinary
// reply is refused when the budget is spent; one owed to a person is put
// back until it is due (chat.Budget.Due), at most until chat.Budget.OwedBy
// after its message was written, and then goes regardless, as the
// daemon's responder does.
//
// A reply out in the urgent lane (lane not zero) leaves the persona free at
// once: its batch moves to a laneReply, and its end is the lane's.
func (r *run) oursReply(a *actor, lane uint64) {
	o := a.ours
	mi := r.dels[o.item].msg
	// An owed reply waits at most until chat.Budget.OwedBy, from the oldest message it
	// answers: merging newer ones into it does not push it further back.
	oldest := r.msgs[mi].at
	for _, x := range o.batch {
		oldest = min(oldest, r.msgs[r.dels[x].msg].at)
	}
	var res persona.Result
	switch r.respond(a, mi, r.now-oldest) {
	case replyStarted:
		if lane == 0 {
			o.phase = phReply // respond set o.call
			return
		}
		r.calls[o.call].lane = lane
		o.lane = append(o.lane, &laneReply{id: lane, batch: slices.Clone(o.batch), covers: slices.Clone(o.covers), call: o.call})
		o.item, o.call = -1, -1
		o.phase = phNone
		return
	case replyWaiting:
		// Not yet: the item goes back to the inbox when the reply is due,
		// and the persona works on meanwhile (persona.Later).
		res = persona.Result{Later: r.t(r.now + r.replyWait).Add(chat.Stagger(a.name))}
	default:
		r.markBatch(a, fSuppressed)
	}
	o.phase = phNone
	if lane != 0 {
		o.item = -1
		o.LaneDone(r.now, lane, res)
		return
	}
	o.Done(r.now, res)
}

// laneOpen is persona.Options.LaneOpen: a persona's urgent lane is open
// while a call made now would start now: a model slot is free, no urgent
// call waits for one, and the compute budget has a token. With the slots
// full, a second call of one persona would only delay the others' and
// merge less.
func (r *run) laneOpen() bool {
	return r.slotCore.Open(slots.Addressed) && (r.limiter == nil || r.limiter.TokensAt(r.t(r.now)) >= 1)
}

// oursPreempt cuts a's work short for an urgent arrival: an evaluation or
// a wait for a decision ends now, a reply's model call is cancelled (its
// slot freed, or its place in the queue given up).
func (r *run) oursPreempt(a *actor) {
	o := a.ours
	ph := o.phase
	o.phase = phNone
	r.m.preemptions++
	switch ph {
	case phEval:
		o.Evaluated(r.now, persona.Thought{}, persona.Result{Preempted: true})
	case phAwait, phDone:
		o.Done(r.now, persona.Result{Preempted: true})
	case phReply:
		c := &r.calls[o.call]
		r.cancelCall(o.call)
		room := r.msgs[c.ref].room
		r.roomFlight[room]--
		r.budget.Release(room, r.actors[c.persona].name, r.t(c.issued)) // not sent: the budget gets it back
		o.call = -1
		o.Done(r.now, persona.Result{Preempted: true})
	default:
		o.phase = ph // nothing in progress that can be cut
		r.m.preemptions--
	}
}

// oursEvalDone: the local evaluation of generation gen is done; the cycle
// thinks.
func (r *run) oursEvalDone(a *actor, gen int32) {
	o := a.ours
	if o.phase != phEval || o.gen != gen {
		return // preempted
	}
	conf, intent := r.oursIntent(a)
	o.phase = phNone
	o.Evaluated(r.now, persona.Thought{Confidence: conf, Intent: intent}, persona.Result{})
}

// oursAwaitTimeout: the wait for the decision on delivery di ran out
// (Persona: "coordination: no decision"), which means not granted.
func (r *run) oursAwaitTimeout(a *actor, gen int32) {
	o := a.ours
	if o.phase != phAwait || o.gen != gen {
		return
	}
	r.m.awaitTimeouts++
	r.markBatch(a, fAwaitTimeout)
	o.phase = phNone
	o.Decided(r.now, coord.Decision{}, false)
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

// oursResume hands the made decision to the cycle.
func (r *run) oursResume(a *actor) {
	o := a.ours
	if o.phase != phDone {
		return
	}
	o.phase = phNone
	d, ok := r.decision(r.dels[o.item].msg)
	o.Decided(r.now, d, ok)
}

func (r *run) oursCallDone(c call) {
	a := r.actors[c.persona]
	o := a.ours
	if c.lane != 0 {
		r.roomFlight[r.msgs[c.ref].room]--
		i := slices.IndexFunc(o.lane, func(lr *laneReply) bool { return lr.id == c.lane })
		lr := o.lane[i]
		o.lane = slices.Delete(o.lane, i, i+1)
		r.postReply(a.idx, c.ref, lr.covers)
		o.LaneDone(r.now, lr.id, persona.Result{})
		return
	}
	o.call = -1
	if c.kind == callWork {
		o.phase = phNone
		o.Done(r.now, persona.Result{})
		return
	}
	r.roomFlight[r.msgs[c.ref].room]--
	r.postReply(a.idx, c.ref, o.covers)
	o.phase = phNone
	o.Done(r.now, persona.Result{})
}

// addressedBy: the item or one merged into it (the cycle's coalesce unions
// their addressees) mentions a.
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

// oursFinal is the runtime's report of a final account: a persona that
// will not think withdraws from the decision, and the pipeline learns the
// item's fate.
func (r *run) oursFinal(di int32, ac acct) {
	if ac != acHandled {
		r.withdraw(di)
	}
	r.depFinish(di, ac)
	if obs := r.opts.Observer; obs != nil {
		r.observeFinal(obs, di, ac)
	}
}

// observeFinal reports a final account as the runtime does.
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

// decision is the decision on message mi, if it is closed, as the stream
// reports it to a persona's cycle.
func (r *run) decision(mi int32) (coord.Decision, bool) { return r.co.Decision(r.msgs[mi].id) }
