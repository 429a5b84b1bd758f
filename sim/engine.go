package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/govern"
	"github.com/personaos/persona/inbox"
	"github.com/personaos/persona/state"
)

// Model constants; doc.go explains each.
const (
	evalCost     = 50 * time.Millisecond // a local evaluation: score, state, confidence
	quietAfter   = 10 * time.Minute      // a room without a human this long is quiet
	budgetWindow = time.Minute           // the reply budget's window
	budgetMax    = 6                     // persona messages per room per budgetWindow
	seedPollHz   = 10                    // the seed's 100 ms polling
	seedPeek     = 10                    // the seed's peek(): top 10
	govWindow    = 10                    // seconds of duty the governor sees
	dutyWindow   = 60                    // seconds: the window of duty_cycle.max
	second       = int64(time.Second)
)

// acct is a delivery's account.
type acct uint8

const (
	acPending acct = iota // queued, held, deferred or in flight (settled at the end)
	acHandled
	acDeclined
	acDeferred
	acExpired
	acLost
)

// class is a delivery's priority class under the reference scorer.
type class uint8

const (
	classUrgent class = iota
	classNormal
	classLow
	numClasses
)

// delivery flags.
const (
	fHeld         uint16 = 1 << iota // waiting at a dependency barrier
	fSpoke                           // thought or withdrew on its message's decision
	fDepDone                         // reported to the barriers of its dependents
	fRemoved                         // seed: left the sorted queue (dropped or popped)
	fProcessed                       // seed, direct: its evaluation finished
	fSkipped                         // released with a prerequisite's decline
	fIncomplete                      // released without every prerequisite
	fInInbox                         // persona: pushed into its inbox
	fThought                         // made a thought (not a withdrawal) on the decision
	fDropped                         // seed: dropped because its queue was full
	fEnd                             // scratch for the final accounting
	fGranted                         // persona: granted on the item this delivery was handled in
	fSuppressed                      // persona: granted, but a room guard stopped the reply
	fAwaitTimeout                    // persona: gave up waiting for the decision
	fLate                            // thought after its message's decision closed
)

// delivery is one message delivered to one persona.
type delivery struct {
	msg, persona int32
	prio         float64 // the policy's static priority at delivery
	at           int64   // when it entered the persona's queue
	start        int64   // when the persona started on it; -1: not yet
	flags        uint16
	acct         acct
	class        class
	waitLeft     int16 // prerequisites still to finish it
}

// decision states.
const (
	decNone uint8 = iota
	decOpen
	decClosed
)

// message is one chat message.
type message struct {
	at                        int64
	room, author, mention     int32 // author, mention: -1 for a human, none
	depth                     int32
	topics                    uint64
	first, n                  int32 // its deliveries: dels[first : first+n]
	answered, mentionAnswered int64 // first reply covering it; -1: none

	dstate   uint8
	explicit bool  // opened by its producer (coord.Stream.Open), not by a thought
	openAt   int64 // when the decision opened
	started  int64 // the window's start: openAt, or the first thought (Coordination.FromFirstThought)
	deadline int64 // when the window (or the patience) ends; a rearm moves it
	window   int64 // the window the item was opened with
	expected int32
	spoken   int32
	// addressee is the mentioned persona if it is an expected thinker
	// (persona.Broadcast leaves out the others), else -1.
	addressee int32
	thoughts  []coord.Thought
	thinkers  []int32
	granted   []int32
}

// call is one model call.
type call struct {
	persona       int32
	kind          uint8
	ref           int32 // eval: the delivery; reply: the message answered
	issued, start int64
}

const (
	callEval uint8 = iota
	callReply
)

// actor is one persona instance under any policy.
type actor struct {
	idx       int32
	name      string
	expertise []string
	mu, sigma float64 // lognormal model call time, in log-seconds
	rng       *rand.Rand
	capacity  int
	expert    map[uint64]bool
	recent    []int64 // per room: last activity; -1 never
	busy      int64   // time spent working, ns (fairness)
	wakes     [numTriggers]int64

	ours *oursState
	seed *seedActor
}

// Wake-up triggers (seed: "Three Processing Triggers"), plus the seed's poll.
const (
	trDemand = iota
	trDependency
	trScan
	numTriggers
)

// metrics accumulates what the report needs.
type metrics struct {
	messages, humanMessages, mentions int
	evaluations, replies              int
	modelCalls, modelCallsDone        int
	suppressedBudget, suppressedQuiet int
	duplicates, poppedUnprocessed     int
	dropped, deferrals                int
	decisions, timedOut               int
	granted, notGranted, lateThoughts int
	lateGrants, awaitTimeouts         int
	releases, incomplete, skipped     int
	depViolations                     int
	respLatency, humanAnswer          []float64
	mentionAnswer                     []float64
	dutySec                           []float64
	energySum                         float64
	energyN                           int64
	energyMin                         float64
	thermal                           [4]float64
	deliveries                        int64
}

// run is one policy's simulation of one scenario. Not safe for concurrent
// use; RunAll gives each run its own goroutine.
type run struct {
	ctx   context.Context
	sc    Scenario
	pol   Policy
	opts  Options
	epoch time.Time
	now   int64
	end   int64
	h     eventHeap

	actors     []*actor
	prereqs    [][]int32
	dependents [][]int32
	topicWords []string

	msgs  []message
	dels  []delivery
	calls []call
	queue fifo
	busyN int   // model slots busy
	busyI int64 // integral of busy slots over time, slot-ns
	busyT int64 // time busyI was last brought up to date
	tickI int64 // busyI at the last tick

	rngArr, rngMsg *rand.Rand

	lastGranted map[string]time.Time
	stamp       time.Time // the latest grant stamp (coord.Stream's)
	samples     []time.Duration
	sampleNext  int
	winDirty    bool
	winCached   int64

	roomHuman  []int64   // last human message per room; -1 never
	roomRecent [][]int64 // persona messages per room within the last budgetWindow
	roomFlight []int     // replies being written per room: they count against the budget
	roomMinute [][]int32 // persona replies per room per minute

	w        chat.Weights // the policy's weights
	ref      chat.Weights // the reference scorer for classes
	stateCfg state.Config
	gov      *govern.Governor
	adj      govern.Adjustment
	govDuty  [govWindow]float64
	thermal  govern.Thermal

	m        metrics
	series   *Series
	wall     time.Time
	lastProg time.Time
}

func newRun(ctx context.Context, in *Scenario, pol Policy, opts Options) (*run, error) {
	sc := in.withDefaults()
	if opts.Duration > 0 {
		sc.Duration = opts.Duration
	}
	r := &run{
		ctx:         ctx,
		sc:          sc,
		pol:         pol,
		opts:        opts,
		epoch:       time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		end:         int64(sc.Duration),
		lastGranted: map[string]time.Time{},
		ref:         chat.DefaultWeights(),
		stateCfg:    state.Config{}.Defaults(),
		adj:         govern.Nominal.Adjust(),
	}
	// Separate streams per purpose: adding a persona changes neither the
	// arrival times nor the content drawn for them.
	r.rngArr = rand.New(rand.NewPCG(sc.Seed, 0x61727269766c)) // "arrivl"
	r.rngMsg = rand.New(rand.NewPCG(sc.Seed, 0x636f6e74656e)) // "conten"
	for _, t := range sc.Traffic.Topics {
		r.topicWords = append(r.topicWords, t.Word)
	}
	switch pol {
	case Persona:
		r.w = chat.DefaultWeights()
		r.adj.CatchUp = true
		r.gov = govern.New(govern.Policy{Ceiling: sc.Ceiling})
	default:
		r.w = chat.SeedWeights()
	}
	idx := map[string]int32{}
	for _, ps := range sc.Personas {
		sigma := 0.0
		if ps.Handle.P95 > ps.Handle.Median {
			// p95 = median * exp(1.645 sigma) for a lognormal.
			sigma = math.Log(float64(ps.Handle.P95)/float64(ps.Handle.Median)) / 1.6448536269514722
		}
		for _, name := range ps.instances() {
			h := fnv.New64a()
			h.Write([]byte(name))
			a := &actor{
				idx:       int32(len(r.actors)),
				name:      name,
				expertise: ps.Expertise,
				mu:        math.Log(ps.Handle.Median.Seconds()),
				sigma:     sigma,
				rng:       rand.New(rand.NewPCG(sc.Seed, h.Sum64())),
				capacity:  ps.Capacity,
				expert:    map[uint64]bool{},
				recent:    filled(sc.Traffic.Rooms, -1),
			}
			idx[name] = a.idx
			r.actors = append(r.actors, a)
		}
	}
	g, err := sc.graph()
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	r.prereqs = make([][]int32, len(r.actors))
	r.dependents = make([][]int32, len(r.actors))
	for _, a := range r.actors {
		for _, n := range g.Prereqs(a.name) {
			r.prereqs[a.idx] = append(r.prereqs[a.idx], idx[n])
		}
		for _, n := range g.Dependents(a.name) {
			r.dependents[a.idx] = append(r.dependents[a.idx], idx[n])
		}
	}
	r.roomHuman = filled(sc.Traffic.Rooms, -1)
	r.roomRecent = make([][]int64, sc.Traffic.Rooms)
	r.roomFlight = make([]int, sc.Traffic.Rooms)
	minutes := int(sc.Duration/time.Minute) + 1
	r.roomMinute = make([][]int32, sc.Traffic.Rooms)
	for i := range r.roomMinute {
		r.roomMinute[i] = make([]int32, minutes)
	}
	r.m.energyMin = 1
	if opts.Series {
		r.series = &Series{}
	}
	switch pol {
	case Persona:
		r.initOurs()
	case Seed:
		r.initSeed()
	}
	return r, nil
}

func filled(n int, v int64) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// t converts virtual time to the time.Time that policy code takes.
func (r *run) t(v int64) time.Time { return r.epoch.Add(time.Duration(v)) }

func (r *run) at(d int64, kind evKind, a, b int32) {
	r.h.push(event{at: d, kind: kind, a: a, b: b})
}

// simulate runs the event loop to the end and builds the report.
func (r *run) simulate() (*Report, error) {
	r.wall = time.Now()
	r.lastProg = r.wall
	r.scheduleArrival(0)
	r.at(second, evTick, 0, 0)
	if err := r.runUntil(r.end); err != nil {
		return nil, err
	}
	r.advance(r.end)
	r.progress(true)
	return r.report()
}

// runUntil runs every event due at or before end, in order.
func (r *run) runUntil(end int64) error {
	for r.h.len() > 0 && r.h.peek().at <= end {
		e := r.h.pop()
		r.advance(e.at)
		switch e.kind {
		case evArrival:
			r.arrive()
		case evTick:
			if err := r.tick(); err != nil {
				return err
			}
		case evCallDone:
			r.callDone(e.a)
		case evDecision:
			r.windowEnds(e.a)
		case evScan:
			r.scanTimer(e.a, e.b)
		case evWork:
			r.work(e.a)
		case evStep:
			r.oursStep(r.actors[e.a])
		case evResume:
			r.resume(e.a)
		case evDepTimeout:
			r.depTimeout(e.a, e.b)
		case evAwaitTimeout:
			r.oursAwaitTimeout(r.actors[e.a], e.b)
		}
	}
	return nil
}

// advance moves virtual time, keeping the busy-slot integral current.
func (r *run) advance(to int64) {
	r.busyI += int64(r.busyN) * (to - r.busyT)
	r.busyT = to
	r.now = to
}

// tick runs once per virtual second.
func (r *run) tick() error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	sec := len(r.m.dutySec)
	duty := float64(r.busyI-r.tickI) / float64(second) / float64(r.sc.Cores)
	r.tickI = r.busyI
	r.m.dutySec = append(r.m.dutySec, duty)

	depth, capTotal := r.depth()
	if r.gov != nil {
		// The thermal state held during the second that just ended.
		r.m.thermal[r.thermal] += 1
		r.govDuty[sec%govWindow] = duty
		n := min(sec+1, govWindow)
		var sum float64
		for i := range n {
			sum += r.govDuty[i]
		}
		r.thermal = r.gov.Observe(govern.Inputs{
			Duty:     sum / float64(n),
			Load:     float64(depth) / float64(capTotal),
			InFlight: r.busyN + r.queue.len(),
			Cores:    r.sc.Cores,
		})
		r.adj = r.gov.Adjust()
	}
	emin, esum, moods := r.energy()
	if !math.IsNaN(esum) {
		r.m.energySum += esum
		r.m.energyN += int64(len(r.actors))
		r.m.energyMin = min(r.m.energyMin, emin)
	}
	if s := r.series; s != nil {
		s.Minutes = append(s.Minutes, float64(r.now)/float64(time.Minute))
		s.Depth = append(s.Depth, float64(depth))
		s.Duty = append(s.Duty, duty)
		if !math.IsNaN(esum) {
			s.Energy = append(s.Energy, esum/float64(len(r.actors)))
			s.EnergyMin = append(s.EnergyMin, emin)
			for i := range s.Moods {
				s.Moods[i] = append(s.Moods[i], float64(moods[i]))
			}
		}
		if r.gov != nil {
			s.Thermal = append(s.Thermal, float64(r.thermal))
		}
	}
	r.progress(false)
	r.at(r.now+second, evTick, 0, 0)
	return nil
}

func (r *run) progress(done bool) {
	if r.opts.Progress == nil {
		return
	}
	now := time.Now()
	if !done && now.Sub(r.lastProg) < 100*time.Millisecond {
		return
	}
	r.lastProg = now
	r.opts.Progress(Progress{Policy: r.pol, Virtual: time.Duration(r.now), Total: r.sc.Duration,
		Deliveries: r.m.deliveries, Wall: now.Sub(r.wall), Done: done})
}

// depth is the work waiting in queues and their total capacity.
func (r *run) depth() (depth, capacity int) {
	for _, a := range r.actors {
		capacity += a.capacity
		switch r.pol {
		case Persona:
			depth += a.ours.q.Len()
		case Seed:
			depth += len(a.seed.q)
		}
	}
	if r.pol == Direct {
		depth = r.queue.len() // evaluations and replies waiting for a model slot
	}
	return depth, capacity
}

// energy returns the minimum and the sum of the personas' energy and how
// many are in each mood; NaN sum for direct, which has no state.
func (r *run) energy() (emin, esum float64, moods [4]int) {
	if r.pol == Direct {
		return 1, math.NaN(), moods
	}
	emin = 1
	for _, a := range r.actors {
		var e float64
		var m state.Mood
		if a.ours != nil {
			e, m = a.ours.st.Energy, a.ours.st.Mood
		} else {
			e, m = a.seed.st.energy, a.seed.st.mood
		}
		emin = min(emin, e)
		esum += e
		moods[m]++
	}
	return emin, esum, moods
}

// --- traffic ---

// rateAt is the arrival rate at t and the next time it may change.
func (r *run) rateAt(t int64) (Rate, int64) {
	next := int64(math.MaxInt64)
	rate := r.sc.Traffic.Rate
	for _, b := range r.sc.Traffic.Bursts {
		s, e := int64(b.At), int64(b.At+b.For)
		switch {
		case t >= s && t < e:
			rate = b.Rate
			next = min(next, e)
		case s > t:
			next = min(next, s)
		}
	}
	return rate, next
}

// scheduleArrival draws the next arrival after t. The rate is piecewise
// constant, so an exponential gap that crosses a change of rate is
// redrawn from the change: exact for a Poisson process, by
// memorylessness.
func (r *run) scheduleArrival(t int64) {
	for t <= r.end {
		rate, next := r.rateAt(t)
		if rate <= 0 {
			if next == math.MaxInt64 {
				return
			}
			t = next
			continue
		}
		gap := int64(r.rngArr.ExpFloat64() / float64(rate) * float64(second))
		if t+gap < next {
			r.at(t+gap, evArrival, 0, 0)
			return
		}
		t = next
	}
}

// arrive creates a message from outside. Every draw is made whatever the
// outcome, so the content stream stays aligned across scenarios.
func (r *run) arrive() {
	tr := &r.sc.Traffic
	n := len(r.actors)
	room := int32(r.rngMsg.IntN(tr.Rooms))
	human := r.rngMsg.Float64() < tr.Human
	author := int32(r.rngMsg.IntN(n))
	mentions := r.rngMsg.Float64() < tr.Mention
	target := int32(r.rngMsg.IntN(n))
	var topics uint64
	for i, t := range tr.Topics {
		if r.rngMsg.Float64() < t.P {
			topics |= 1 << i
		}
	}
	if human {
		author = -1
	}
	mention := int32(-1)
	if mentions && !(n == 1 && author == 0) {
		if target == author {
			target = (target + 1) % int32(n) // never yourself
		}
		mention = target
	}
	r.post(room, author, mention, 0, topics)
	r.scheduleArrival(r.now)
}

// post creates a message at now and delivers it to every persona but its
// author.
func (r *run) post(room, author, mention, depth int32, topics uint64) int32 {
	mi := int32(len(r.msgs))
	r.msgs = append(r.msgs, message{at: r.now, room: room, author: author, mention: mention, depth: depth,
		topics: topics, first: int32(len(r.dels)), answered: -1, mentionAnswered: -1, addressee: -1})
	r.m.messages++
	if author < 0 {
		r.m.humanMessages++
		r.roomHuman[room] = r.now
		if mention >= 0 {
			r.m.mentions++
		}
	} else {
		r.roomRecent[room] = append(r.roomRecent[room], r.now)
	}
	kind := chat.Human
	if author >= 0 {
		kind = chat.Persona
	}
	for _, a := range r.actors {
		if a.idx == author {
			continue
		}
		f := chat.Facts{Mentioned: mention == a.idx, Expertise: r.expert(a, topics), Kind: kind, Depth: int(depth)}
		c := classOf(r.ref.Score(f))
		r.dels = append(r.dels, delivery{msg: mi, persona: a.idx, at: r.now, start: -1, class: c})
	}
	m := &r.msgs[mi]
	m.n = int32(len(r.dels)) - m.first
	r.m.deliveries += int64(m.n)

	r.open(mi)
	switch r.pol {
	case Persona:
		r.oursPost(mi)
	case Seed:
		for i := m.first; i < m.first+m.n; i++ {
			r.seedDeliver(i)
		}
	case Direct:
		for i := m.first; i < m.first+m.n; i++ {
			r.directDeliver(i)
		}
	}
	return mi
}

// open opens message mi's decision as each policy's producer does. The
// persona policy broadcasts (persona.Broadcast): expected thinkers are the
// recipients handed the item now (not the pipeline's dependents), the
// mentioned one is the addressee if it is expected, and the window starts
// now, or at the first thought with Coordination.FromFirstThought (until
// then the item waits up to Patience). The old flow (direct) coordinates
// on every recipient's evaluation, with no window. The seed only enqueues:
// its first thought opens the item (see think).
func (r *run) open(mi int32) {
	if r.pol == Seed {
		return
	}
	m := &r.msgs[mi]
	m.dstate = decOpen
	m.explicit = true
	m.openAt, m.started = r.now, r.now
	r.m.decisions++
	for i := m.first; i < m.first+m.n; i++ {
		d := &r.dels[i]
		if r.pol == Persona && len(r.prereqs[d.persona]) > 0 {
			continue
		}
		m.expected++
		if d.persona == m.mention {
			m.addressee = m.mention
		}
	}
	if r.pol == Direct {
		if m.expected == 0 {
			r.closeDecision(mi, false)
		}
		return
	}
	m.window = r.window()
	if r.sc.Coordination.FromFirstThought {
		r.arm(mi, int64(r.sc.Coordination.Patience))
		return
	}
	r.arm(mi, m.window)
}

// windowEnds is message mi's window timer firing. A rearmed window leaves
// its earlier event behind: only the event at the current deadline closes.
func (r *run) windowEnds(mi int32) {
	if m := &r.msgs[mi]; m.dstate == decOpen && r.now >= m.deadline {
		r.closeDecision(mi, true)
	}
}

// arm (re)starts message mi's window timer: it closes the decision after
// d unless something closes it first.
func (r *run) arm(mi int32, d int64) {
	m := &r.msgs[mi]
	m.deadline = r.now + d
	r.at(m.deadline, evDecision, mi, 0)
}

// delOf returns the index of message mi's delivery to persona p, or -1
// for its author.
func (r *run) delOf(mi, p int32) int32 {
	m := &r.msgs[mi]
	switch {
	case p == m.author:
		return -1
	case m.author >= 0 && p > m.author:
		return m.first + p - 1
	}
	return m.first + p
}

// classOf maps a reference score to a class: urgent at or above 0.8 (the
// urgent line), normal at or above 0.3 (an active persona's threshold),
// low below.
func classOf(p float64) class {
	switch {
	case p >= 0.8:
		return classUrgent
	case p >= 0.3:
		return classNormal
	}
	return classLow
}

// expert reports whether a message with these topics names one of a's
// expertise words, through chat.MatchesExpertise on the topic words,
// remembered per topic set.
func (r *run) expert(a *actor, topics uint64) bool {
	if len(a.expertise) == 0 || topics == 0 {
		return false
	}
	v, ok := a.expert[topics]
	if !ok {
		var words []string
		for i, w := range r.topicWords {
			if topics&(1<<i) != 0 {
				words = append(words, w)
			}
		}
		v = chat.MatchesExpertise(strings.Join(words, " "), a.expertise)
		a.expert[topics] = v
	}
	return v
}

// priority is the policy's static priority of delivery d at now.
func (r *run) priority(d *delivery) float64 {
	m := &r.msgs[d.msg]
	a := r.actors[d.persona]
	kind := chat.Human
	if m.author >= 0 {
		kind = chat.Persona
	}
	last := a.recent[m.room]
	return r.w.Score(chat.Facts{
		Mentioned:  m.mention == d.persona,
		RecentRoom: last >= 0 && r.now-last <= int64(r.w.RecentFor),
		Expertise:  r.expert(a, m.topics),
		Age:        time.Duration(r.now - m.at),
		Kind:       kind,
		Depth:      int(m.depth),
	})
}

// --- rooms ---

// recentInRoom counts persona messages in the room within the budget
// window, replies in flight included.
func (r *run) recentInRoom(room int32) int {
	rec := r.roomRecent[room]
	cut := r.now - int64(budgetWindow)
	i := 0
	for i < len(rec) && rec[i] <= cut {
		i++
	}
	if i > 0 {
		rec = append(rec[:0], rec[i:]...)
		r.roomRecent[room] = rec
	}
	return len(rec)
}

// --- model server ---

// lognormal draws a model call's duration for a.
func (r *run) lognormal(a *actor) int64 {
	s := math.Exp(a.mu + a.sigma*a.rng.NormFloat64())
	return max(int64(s*float64(second)), 1)
}

// callModel issues a model call; it waits first in, first out for one of
// the Cores slots.
func (r *run) callModel(p int32, kind uint8, ref int32) {
	id := int32(len(r.calls))
	r.calls = append(r.calls, call{persona: p, kind: kind, ref: ref, issued: r.now, start: -1})
	r.m.modelCalls++
	if r.busyN < r.sc.Cores {
		r.startCall(id)
		return
	}
	r.queue.push(id)
}

func (r *run) startCall(id int32) {
	c := &r.calls[id]
	c.start = r.now
	r.busyN++
	a := r.actors[c.persona]
	r.at(r.now+r.lognormal(a), evCallDone, id, 0)
	if r.pol == Direct && c.kind == callEval {
		r.directStart(c.ref)
	}
}

func (r *run) callDone(id int32) {
	r.busyN--
	r.m.modelCallsDone++
	c := r.calls[id]
	if r.queue.len() > 0 {
		r.startCall(r.queue.pop())
	}
	switch r.pol {
	case Persona:
		r.oursCallDone(c)
	case Seed:
		r.seedCallDone(c)
	case Direct:
		r.directCallDone(c)
	}
}

// --- coordination (package coord's rules, in virtual time) ---

// window is the decision window for an item opened now: coord.AdaptWindow
// over the last samples of time-to-thought, or the fixed window.
// maxWindow is coord.Stream.MaxWindow: the longest window an item can get,
// which bounds a thinker's wait (persona.Options.CoordinationTimeout's
// default is this plus a second).
func (r *run) maxWindow() int64 {
	c := r.sc.Coordination
	if c.Fixed {
		return int64(c.Window)
	}
	return int64(max(c.MaxWindow, c.Window))
}

func (r *run) window() int64 {
	c := r.sc.Coordination
	if c.Fixed {
		return int64(c.Window)
	}
	if r.winDirty || r.winCached == 0 {
		r.winCached = int64(coord.AdaptWindow(r.samples, c.Window, c.MinWindow, c.MaxWindow))
		r.winDirty = false
	}
	return r.winCached
}

// sample records a time-to-thought (from the window's start to a
// persona's first thought, late thoughts included), in a ring of
// coord.DefaultSamples.
func (r *run) sample(d time.Duration) {
	if r.sc.Coordination.Fixed {
		return
	}
	if len(r.samples) < coord.DefaultSamples {
		r.samples = append(r.samples, d)
	} else {
		r.samples[r.sampleNext] = d
		r.sampleNext = (r.sampleNext + 1) % len(r.samples)
	}
	r.winDirty = true
}

// think broadcasts persona p's thought on message mi (delivery di), as
// coord.Stream.Think does; addressed is Thought.Addressed (the item, or an
// item merged into it, names the thinker). It reports whether the thinker
// must await the decision; when it need not, the decision is already made
// and isGranted says whether it is granted. A thought after the decision
// closed is late: it is granted at once if the thinker is an addressee or
// addressed (the decision is amended, as coord does), and otherwise the
// decision stands without it.
func (r *run) think(mi, di int32, conf float64, intent coord.Intent, addressed bool) bool {
	m := &r.msgs[mi]
	d := &r.dels[di]
	if m.dstate == decNone {
		// Think opens an unknown item (coord): no expected thinkers, no
		// addressees, the current window from now (the first thought is
		// now either way), and no samples.
		m.dstate, m.openAt, m.started, m.window = decOpen, r.now, r.now, r.window()
		r.m.decisions++
		r.arm(mi, m.window)
	}
	first := d.flags&fThought == 0
	if m.dstate != decOpen {
		if first && m.explicit {
			r.sample(time.Duration(r.now - m.started))
		}
		r.m.lateThoughts++
		d.flags |= fThought | fSpoke | fLate
		if first && (m.addressee == d.persona || addressed) && !r.isGranted(mi, d.persona) {
			// coord: an addressee is always granted, even one busy past the
			// window. The amended decision stamps no grant time.
			m.granted = append(m.granted, d.persona)
			r.m.lateGrants++
			r.m.granted++
			return false
		}
		r.m.notGranted++
		return false
	}
	if first {
		if len(m.thoughts) == 0 && r.sc.Coordination.FromFirstThought && r.pol != Direct {
			// The window starts now (direct's decisions have none).
			m.started = r.now
			r.arm(mi, m.window)
		}
		if m.explicit {
			r.sample(time.Duration(r.now - m.started))
		}
	}
	counts := d.flags&fSpoke == 0 && r.expectedOn(di)
	d.flags |= fThought | fSpoke
	m.thoughts = append(m.thoughts, coord.Thought{Persona: r.actors[d.persona].name, Confidence: conf, Intent: intent, Addressed: addressed})
	m.thinkers = append(m.thinkers, d.persona)
	if counts {
		r.spoke(mi)
	}
	return true
}

// expectedOn reports whether delivery di's persona is an expected thinker
// of its message's decision: every recipient for direct, none for seed,
// and for persona the recipients that are not pipeline dependents.
func (r *run) expectedOn(di int32) bool {
	switch r.pol {
	case Seed:
		return false
	case Persona:
		return len(r.prereqs[r.dels[di].persona]) == 0
	}
	return true
}

// withdraw tells the decision that persona's delivery di will not think.
func (r *run) withdraw(di int32) {
	d := &r.dels[di]
	if d.flags&fSpoke != 0 {
		return
	}
	d.flags |= fSpoke
	if r.msgs[d.msg].dstate == decOpen && r.expectedOn(di) {
		r.spoke(d.msg)
	}
}

func (r *run) spoke(mi int32) {
	m := &r.msgs[mi]
	m.spoken++
	if m.expected > 0 && m.spoken >= m.expected {
		r.closeDecision(mi, false)
	}
}

// closeDecision grants by coord.Grant and tells the thinkers. The
// addressees are the item's, plus every thinker whose thought says it is
// addressed (coord: Thought.Addressed).
func (r *run) closeDecision(mi int32, timedOut bool) {
	m := &r.msgs[mi]
	m.dstate = decClosed
	if timedOut {
		r.m.timedOut++
	}
	var addr []string
	if m.addressee >= 0 {
		addr = []string{r.actors[m.addressee].name}
	}
	for i, t := range m.thoughts {
		if t.Addressed && m.thinkers[i] != m.addressee {
			addr = append(addr, t.Persona)
		}
	}
	if len(m.thoughts) > 0 {
		names, _ := coord.Grant(m.thoughts, addr, r.sc.Coordination.K, r.lastGranted)
		for _, n := range names {
			// coord: grant stamps strictly increase, so that grants at one
			// instant still order by recency.
			if now := r.t(r.now); now.After(r.stamp) {
				r.stamp = now
			} else {
				r.stamp = r.stamp.Add(time.Nanosecond)
			}
			r.lastGranted[n] = r.stamp
			for _, p := range m.thinkers {
				if r.actors[p].name == n {
					m.granted = append(m.granted, p)
					break
				}
			}
		}
	}
	m.thoughts = nil // the decision is made; keep only who was granted
	thinkers := m.thinkers
	m.thinkers = nil
	for _, p := range thinkers {
		if r.isGranted(mi, p) {
			r.m.granted++
		} else {
			r.m.notGranted++
		}
		switch r.pol {
		case Persona:
			r.oursDecided(p, mi)
		case Seed:
			r.seedDecided(p, mi)
		case Direct:
			r.directDecided(p, mi)
		}
	}
}

func (r *run) isGranted(mi, p int32) bool {
	for _, g := range r.msgs[mi].granted {
		if g == p {
			return true
		}
	}
	return false
}

// intent is what a persona's evaluation concludes about a message: the
// mentioned persona responds with full confidence; one for whom the message
// is relevant (its expertise, or a human wrote it) responds with
// confidence 0.8 (expertise) or 0.5; otherwise it observes.
func (r *run) intent(a *actor, m *message, addressed bool) (float64, coord.Intent) {
	switch {
	case addressed:
		return 1, coord.IntentRespond
	case r.expert(a, m.topics):
		return 0.8, coord.IntentRespond
	case m.author < 0:
		return 0.5, coord.IntentRespond
	}
	return 0.3, coord.IntentObserve
}

// postReply posts persona p's reply to message mi, which answers every
// message in covers (mi and any merged context).
func (r *run) postReply(p, mi int32, covers []int32) {
	m := &r.msgs[mi]
	r.m.replies++
	r.m.respLatency = append(r.m.respLatency, float64(r.now-m.at)/float64(second))
	a := r.actors[p]
	a.recent[m.room] = r.now
	for _, ci := range append([]int32{mi}, covers...) {
		c := &r.msgs[ci]
		if c.author < 0 && c.answered < 0 {
			c.answered = r.now
			r.m.humanAnswer = append(r.m.humanAnswer, float64(r.now-c.at)/float64(second))
		}
		if c.author < 0 && c.mention == p && c.mentionAnswered < 0 {
			c.mentionAnswered = r.now
			r.m.mentionAnswer = append(r.m.mentionAnswer, float64(r.now-c.at)/float64(second))
		}
	}
	room := m.room
	r.roomMinute[room][min(int(r.now/int64(time.Minute)), len(r.roomMinute[room])-1)]++
	if r.sc.Traffic.RepliesFeedBack {
		r.post(room, p, -1, m.depth+1, m.topics)
	} else {
		// Still a persona message in the room, for the reply budget.
		r.roomRecent[room] = append(r.roomRecent[room], r.now)
	}
}

// resume dispatches a made decision to the policy.
func (r *run) resume(p int32) {
	switch r.pol {
	case Persona:
		r.oursResume(r.actors[p])
	case Seed:
		r.seedResume(r.actors[p])
	}
}

// work dispatches a local step's end to the policy.
func (r *run) work(p int32) {
	switch r.pol {
	case Persona:
		r.oursEvalDone(r.actors[p])
	case Seed:
		r.seedCycle(r.actors[p])
	}
}

func (r *run) scanTimer(p, gen int32) {
	if r.pol == Persona {
		r.oursTimer(r.actors[p], gen)
	}
}

// inbox accounts as the sim's accounts, for the balance check.
var inboxAcct = [...]acct{inbox.Handled: acHandled, inbox.Declined: acDeclined, inbox.Expired: acExpired}
