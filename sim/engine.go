package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/deps"
	"github.com/personaos/persona/govern"
	"github.com/personaos/persona/inbox"
	"github.com/personaos/persona/slots"
	"github.com/personaos/persona/state"
	"golang.org/x/time/rate"
)

// Model constants; doc.go explains each.
const (
	evalCost   = 50 * time.Millisecond // a local evaluation: score, state, confidence
	seedPollHz = 10                    // the seed's 100 ms polling
	seedPeek   = 10                    // the seed's peek(): top 10
	dutyWindow = 60                    // seconds: the window of duty_cycle.max
	second     = int64(time.Second)
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
	acSkipped // not taken in: the intake guard kept it out of the inbox (persona)
	numAccts
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
	fRemoved                         // seed: left the sorted queue (dropped or popped)
	fProcessed                       // seed, direct: its evaluation finished
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
	status       uint8 // the deps.Status its barrier released it with (Done if none); read with depStatus
}

// depStatus is the status d's barrier released it with: Done unless a
// prerequisite declined (Skipped) or failed, expired or stalled (Incomplete).
// It is stored in a byte so that a delivery stays 40 bytes.
func (d *delivery) depStatus() deps.Status { return deps.Status(d.status) }

// message is one chat message.
type message struct {
	at                        int64
	room, author, mention     int32 // author, mention: -1 for a human, none
	depth                     int32
	topics                    uint64
	lastHuman                 int64 // the room's last human message when it was posted; -1 never
	first, n                  int32 // its deliveries: dels[first : first+n]
	answered, mentionAnswered int64 // first reply covering it; -1: none
	// slotAt is when the mentioned persona's reply covering it started on a
	// model slot; -1: not yet.
	slotAt int64

	id string // its item ID in the coordination stream (itemID)
	// src is its index in Traffic.Script (-1: not scripted); replyTo is
	// the message a persona's reply answers (-1: not a reply). They name
	// it in Options.OnReply (label).
	src, replyTo int32
	// granted records who the published decisions on it granted, late
	// grants included: the stream forgets old decisions, the report does not.
	granted []int32
}

// call is one model call.
type call struct {
	persona       int32
	kind          uint8
	ref           int32 // eval: the delivery; reply: the message answered
	issued, start int64
	end           int64   // when it left its slot (done or cancelled); 0 while it holds one or waits
	urgent        bool    // for urgent work: ahead of every other call for a slot
	cancelled     bool    // preempted: its slot (or its place in line) is given up
	covers        []int32 // a reply's messages besides ref (merged context)
	lane          uint64  // a reply out in its persona's urgent lane: the lane work's ID
	class         slots.Class
	slot          slots.ID // its place in the persona policy's slot scheduler
}

const (
	callEval  uint8 = iota
	callReply       // a chat persona's reply
	callWork        // a pipeline stage's work on an item: a core, not a model call
)

// actor is one persona instance under any policy.
type actor struct {
	idx       int32
	name      string
	expertise []string
	mu, sigma float64 // lognormal model call time, in log-seconds
	median    int64   // the handle's median, ns: the call time when sigma is 0
	rng       *rand.Rand
	capacity  int
	expert    map[uint64]bool
	recent    []int64 // per room: last activity; -1 never
	busy      int64   // time spent working, ns (fairness)
	wakes     [numTriggers]int64
	// stage: a pipeline stage (reply: false), not a chat persona.
	stage      bool
	complexity float64
	stateCfg   state.Config // the runtime's state config with its persona's overrides

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
	suppressedDepth                   int
	duplicates, poppedUnprocessed     int
	dropped, deferrals                int
	decisions, timedOut               int
	granted, notGranted, lateThoughts int
	lateGrants, awaitTimeouts         int
	preemptions, modelCallsCancelled  int
	stageWork, stageExpired           int
	slotPreemptions, superseded       int
	dutyOrdinarySec                   []float64
	stageExpiredCool                  int
	releases, incomplete, skipped     int
	depViolations                     int
	respLatency, humanAnswer          []float64
	mentionAnswer                     []float64
	dutySec                           []float64
	energySum                         float64
	energyN                           int64
	energyMin                         float64
	thermal                           [4]float64
	budgetWaits                       []float64 // seconds, per call that waited for a token
	budgetMin                         float64   // the lowest level the governor saw
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
	byName     map[string]int32
	prereqs    [][]int32
	dependents [][]int32
	pipes      []depPipe // persona only: the barriers of each connected pipeline
	pipeOf     []int32   // by persona: its index in pipes; -1: in none
	topicWords []string

	msgs  []message
	dels  []delivery
	calls []call
	queue fifo
	// govIn is what the governor last observed (its feed's 10 s window).
	govIn govern.Inputs
	// replyWait is respond's answer when it returns replyWaiting.
	replyWait int64
	// urgentQueue holds urgent calls waiting for a slot: they go first.
	// The persona policy uses the daemon's slot scheduler instead
	// (slotCore, package slots); slotCall maps its IDs to calls.
	urgentQueue fifo
	slotCore    *slots.Core
	slotCall    map[slots.ID]int32
	busyN       int   // model slots busy
	busyI       int64 // integral of busy slots over time, slot-ns
	busyT       int64 // time busyI was last brought up to date
	tickI       int64 // busyI at the last tick
	// The same for the slots busy with urgent work, which the duty ceiling
	// exempts: the report shows the duty without it too.
	busyUN         int
	busyUI, tickUI int64

	rngArr, rngMsg *rand.Rand

	// script is Traffic.Script in order of time with its rooms, authors,
	// mentions and topics resolved (script.go); posting and replying are
	// the src and replyTo of the message post is creating.
	script            []scripted
	posting, replying int32

	co       *coord.Core // the coordination stream (stream.go)
	expireAt int64       // the earliest evDecision pending; MaxInt64 none
	actorIdx map[string]int32
	roomKeys []string // the stream's key per room
	expBuf   []string // scratch for open
	addrBuf  []string

	roomHuman  []int64             // last human message per room; -1 never
	roomFlight []int               // replies being written per room (the budget counts them from their reservation)
	roomMinute [][]int32           // persona replies per room per minute
	chat       chat.Settings       // the chat rules' numbers: the scenario's, over chat.DefaultSettings
	budget     *chat.Budget[int32] // the reply budget, per room

	w        chat.Weights // the policy's weights
	ref      chat.Weights // the reference scorer for classes
	stateCfg state.Config
	gov      *govern.Governor
	adj      govern.Adjustment
	feed     govern.Feed   // the governor's inputs, smoothed as the daemon's Sampler smooths them
	meter    govern.Meter  // model calls from issue to done, as the daemon's responder meters them
	limiter  *rate.Limiter // the compute budget (persona only; nil: unlimited)
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
		ctx:      ctx,
		sc:       sc,
		pol:      pol,
		opts:     opts,
		epoch:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		end:      int64(sc.Duration),
		co:       newCore(sc.Coordination),
		expireAt: math.MaxInt64,
		actorIdx: map[string]int32{},
		ref:      chat.DefaultWeights(),
		posting:  -1,
		replying: -1,
		stateCfg: state.Config{}.Defaults(),
		adj:      govern.Nominal.Adjust(),
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
		r.limiter = newLimiter(sc.Budget)
	default:
		r.w = chat.SeedWeights()
	}
	idx := map[string]int32{}
	for _, ps := range sc.Personas {
		spec := chat.PersonaSpec{Cadence: ps.Cadence, Thresholds: ps.Thresholds}
		sigma := 0.0
		if ps.Handle.P95 > ps.Handle.Median {
			// p95 = median * exp(1.645 sigma) for a lognormal.
			sigma = math.Log(float64(ps.Handle.P95)/float64(ps.Handle.Median)) / 1.6448536269514722
		}
		for _, name := range ps.instances() {
			h := fnv.New64a()
			h.Write([]byte(name))
			a := &actor{
				idx:        int32(len(r.actors)),
				name:       name,
				expertise:  ps.Expertise,
				mu:         math.Log(ps.Handle.Median.Seconds()),
				median:     int64(ps.Handle.Median),
				sigma:      sigma,
				rng:        rand.New(rand.NewPCG(sc.Seed, h.Sum64())),
				capacity:   ps.Capacity,
				expert:     map[uint64]bool{},
				recent:     filled(sc.Traffic.Rooms, -1),
				stage:      ps.NoReply,
				complexity: ps.Complexity,
				stateCfg:   spec.StateConfig(r.stateCfg),
			}
			idx[name] = a.idx
			r.actorIdx[name] = a.idx
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
	if pol == Persona {
		if err := r.initDeps(g); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
	}
	r.roomHuman = filled(sc.Traffic.Rooms, -1)
	r.chat = sc.settings()
	r.budget = chat.NewBudget[int32](r.chat.ReplyBudget, r.chat.ReplyWindow)
	for i := range sc.Traffic.Rooms {
		r.roomKeys = append(r.roomKeys, "room"+strconv.Itoa(i))
	}
	r.initScript() // after the actors and rooms: it names them
	r.roomFlight = make([]int, sc.Traffic.Rooms)
	minutes := int(sc.Duration/time.Minute) + 1
	r.roomMinute = make([][]int32, sc.Traffic.Rooms)
	for i := range r.roomMinute {
		r.roomMinute[i] = make([]int32, minutes)
	}
	r.m.energyMin = 1
	r.m.budgetMin = 1
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
	if len(r.script) > 0 {
		for i, m := range r.script {
			r.at(int64(m.At), evArrival, int32(i), 1)
		}
	} else {
		r.scheduleArrival(0)
	}
	if r.gov != nil {
		r.feed.Observe(r.t(0), r.governorSample()) // the window's start, as the Sampler's at Run
	}
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
			if e.b == 1 {
				r.arriveScripted(e.a)
				break
			}
			r.arrive()
		case evTick:
			if err := r.tick(); err != nil {
				return err
			}
		case evCallDone:
			r.callDone(e.a)
		case evBudget:
			r.admit(e.a)
		case evDecision:
			r.windowEnds()
		case evScan:
			r.scanTimer(e.a, e.b)
		case evWork:
			r.work(e.a, e.b)
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
	r.busyUI += int64(r.busyUN) * (to - r.busyT)
	r.busyT = to
	r.now = to
}

// tick runs once per virtual second.
func (r *run) tick() error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	duty := float64(r.busyI-r.tickI) / float64(second) / float64(r.sc.Cores)
	r.tickI = r.busyI
	r.m.dutyOrdinarySec = append(r.m.dutyOrdinarySec, duty-float64(r.busyUI-r.tickUI)/float64(second)/float64(r.sc.Cores))
	r.tickUI = r.busyUI
	r.m.dutySec = append(r.m.dutySec, duty)

	depth, _ := r.depth()
	if r.gov != nil {
		// The thermal state held during the second that just ended.
		r.m.thermal[r.thermal] += 1
		smp := r.governorSample()
		r.m.budgetMin = min(r.m.budgetMin, 1-smp.BudgetSpent)
		r.govIn = r.feed.Observe(r.t(r.now), smp)
		r.thermal = r.gov.Observe(r.govIn)
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
			depth += a.ours.c.Inbox().Len()
		case Seed:
			depth += len(a.seed.q)
		}
	}
	if r.pol == Direct || r.pol == Bound {
		depth = r.queue.len() + r.urgentQueue.len() // evaluations and replies waiting for a model slot
		if r.slotCore != nil {
			for cl := range slots.NumClasses {
				depth += r.slotCore.Queued(cl)
			}
		}
	}
	return depth, capacity
}

// energy returns the minimum and the sum of the personas' energy and how
// many are in each mood; NaN sum for direct, which has no state.
func (r *run) energy() (emin, esum float64, moods [4]int) {
	if r.pol == Direct || r.pol == Bound {
		return 1, math.NaN(), moods
	}
	emin = 1
	for _, a := range r.actors {
		var e float64
		var m state.Mood
		if a.ours != nil {
			st := a.ours.c.State()
			e, m = st.Energy, st.Mood
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
	} else {
		// Another runtime's persona wrote it: the room's reply budget
		// counts it (chat.Budget.Saw), as the daemon counts the persona
		// messages of other daemons it sees.
		r.budget.Saw(room, r.t(r.now))
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
		topics: topics, lastHuman: r.roomHuman[room], first: int32(len(r.dels)), answered: -1, mentionAnswered: -1, slotAt: -1, id: itemID(mi),
		src: r.posting, replyTo: r.replying})
	r.m.messages++
	if author < 0 {
		r.m.humanMessages++
		r.roomHuman[room] = r.now
		if mention >= 0 {
			r.m.mentions++
		}
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
	case Bound:
		r.boundPost(mi)
	}
	return mi
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

// --- model server ---

// lognormal draws a model call's duration for a. A handle whose p95 is
// its median takes exactly the median, to the nanosecond (exp(log(x))
// need not give x back), so that a script's call times are known.
func (r *run) lognormal(a *actor) int64 {
	if a.sigma == 0 {
		return max(a.median, 1)
	}
	s := math.Exp(a.mu + a.sigma*a.rng.NormFloat64())
	return max(int64(s*float64(second)), 1)
}

// callModel issues a model call. Under the persona policy it first takes a
// compute-budget token, waiting for one when the bucket is empty, as the
// daemon's model wrapper does; then it waits first in, first out for one
// of the Cores slots.
func (r *run) callModel(p int32, kind uint8, ref int32) {
	r.callModelFor(p, kind, ref, false, nil, slots.Background)
}

// callModelFor issues a model call and returns its id (the last call may
// be another's by the time it returns: an urgent call can preempt a slot,
// and the preempted persona issue its next call at once).

// An urgent one goes ahead of every other call waiting for a slot.
func (r *run) callModelFor(p int32, kind uint8, ref int32, urgent bool, covers []int32, class slots.Class) int32 {
	id := int32(len(r.calls))
	r.calls = append(r.calls, call{persona: p, kind: kind, ref: ref, issued: r.now, start: -1, urgent: urgent, covers: covers, class: class})
	if kind == callWork {
		r.m.stageWork++
		r.admit(id) // the compute budget is for model calls
		return id
	}
	r.m.modelCalls++
	if d := r.budgetWait(); d > 0 {
		r.at(r.now+d, evBudget, id, 0)
		return id
	}
	r.admit(id)
	return id
}

// admit puts a call that may proceed on a model slot, or in line for one.
func (r *run) admit(id int32) {
	if r.calls[id].cancelled {
		return
	}
	if r.slotCore != nil {
		// The daemon's slot scheduler: by class, fair across personas.
		c := &r.calls[id]
		mi := c.ref // a reply's message; a work's or an evaluation's delivery
		if c.kind != callReply && int(c.ref) < len(r.dels) {
			mi = r.dels[c.ref].msg
		}
		key := ""
		if int(mi) < len(r.msgs) { // a call made outside any message (tests)
			key = strconv.Itoa(int(r.msgs[mi].room))
		}
		sid, started := r.slotCore.Enqueue(r.t(r.now), slots.Call{Persona: r.actors[c.persona].name, Class: c.class, Key: key})
		c.slot = sid
		r.slotCall[sid] = id
		if started {
			r.startCall(id)
		} else if c.class == slots.Addressed {
			r.preemptSlot()
		}
		return
	}
	if r.busyN < r.sc.Cores {
		r.startCall(id)
		return
	}
	if r.calls[id].urgent {
		r.urgentQueue.push(id)
		return
	}
	r.queue.push(id)
}

// preemptSlot frees a slot for an @mention waiting for one (persona
// policy): the scheduler names the victim (slots.Core.Victim, the
// lowest-class call that started last), and if it is an ordinary reply on
// its persona's own path, the persona puts the item back, as it does for
// its own urgent work.
func (r *run) preemptSlot() {
	sid, ok := r.slotCore.Victim()
	if !ok {
		return
	}
	c := &r.calls[r.slotCall[sid]]
	if o := r.actors[c.persona].ours; c.kind == callReply && c.lane == 0 && o.phase == phReply && o.call == r.slotCall[sid] {
		r.m.slotPreemptions++
		r.oursPreempt(r.actors[c.persona])
	}
}

// nextCall starts the next call waiting for a slot: urgent ones first,
// then first come, first served; cancelled ones give up their place.
func (r *run) nextCall() {
	if r.slotCore != nil {
		return // slotDone starts what the scheduler says
	}
	for _, q := range [...]*fifo{&r.urgentQueue, &r.queue} {
		for q.len() > 0 {
			if id := q.pop(); !r.calls[id].cancelled {
				if r.pol == Bound {
					r.boundMerge(id, q)
				}
				r.startCall(id)
				return
			}
		}
	}
}

// boundMerge gives the lower bound what merging gives a persona: the
// mentions of the same persona in the same room waiting behind call id
// are answered by it, and give up their own calls.
func (r *run) boundMerge(id int32, q *fifo) {
	c := &r.calls[id]
	room := r.msgs[c.ref].room
	for _, o := range q.buf[q.head:] {
		oc := &r.calls[o]
		if o == id || oc.cancelled || oc.persona != c.persona || r.msgs[oc.ref].room != room {
			continue
		}
		oc.cancelled = true
		c.covers = append(c.covers, oc.ref)
		d := &r.dels[r.delOf(oc.ref, oc.persona)]
		d.acct, d.start = acHandled, r.now
	}
}

// cancelCall cancels call id: a running call frees its slot at once, a
// waiting one gives up its place.
func (r *run) cancelCall(id int32) {
	c := &r.calls[id]
	if c.cancelled {
		return
	}
	c.cancelled = true
	r.m.modelCallsCancelled++
	if c.start >= 0 {
		c.end = r.now
		r.busyN--
		if c.urgent {
			r.busyUN--
		}
		if r.gov != nil {
			r.meter.End(r.t(r.now))
		}
		r.slotDone(c)
		r.nextCall()
		return
	}
	if r.slotCore != nil {
		r.slotCore.Cancel(c.slot)
		delete(r.slotCall, c.slot)
	}
}

// slotDone gives the persona policy's slot back to the scheduler, which
// starts the next calls.
func (r *run) slotDone(c *call) {
	if r.slotCore == nil {
		return
	}
	started := r.slotCore.Release(r.t(r.now), c.slot)
	delete(r.slotCall, c.slot)
	for _, sid := range started {
		r.startCall(r.slotCall[sid])
	}
}

func (r *run) startCall(id int32) {
	c := &r.calls[id]
	c.start = r.now
	if r.gov != nil {
		// Heat is slot occupancy: a call counts from its slot, not its
		// issue (as the daemon's meter).
		r.meter.Begin(r.t(r.now))
	}
	r.busyN++
	if c.urgent {
		r.busyUN++
	}
	if c.kind == callReply {
		if r.pol == Bound {
			d := &r.dels[r.delOf(c.ref, c.persona)]
			d.acct, d.start = acHandled, r.now
		}
		// The @mentions this reply answers got their slot.
		r.slotted(c.persona, c.ref)
		for _, mi := range c.covers {
			r.slotted(c.persona, mi)
		}
	}
	a := r.actors[c.persona]
	r.at(r.now+r.lognormal(a), evCallDone, id, 0)
	if r.pol == Direct && c.kind == callEval {
		r.directStart(c.ref)
	}
}

// boundPost is the lower bound's whole policy: a person's @mention of a
// persona is one reply call for that persona, urgent, first come first
// served for a slot (earliest deadline first, since every mention has the
// same SLA); every other delivery is handled at once and costs nothing.
func (r *run) boundPost(mi int32) {
	m := &r.msgs[mi]
	for i := m.first; i < m.first+m.n; i++ {
		d := &r.dels[i]
		d.acct = acHandled
		d.start = r.now
		if m.author < 0 && m.mention == d.persona {
			d.acct, d.start = acPending, -1
			r.callModelFor(d.persona, callReply, mi, true, nil, slots.Addressed)
		}
	}
}

// slotted records that persona p's reply to message mi started on a slot.
func (r *run) slotted(p, mi int32) {
	if int(mi) >= len(r.msgs) {
		return // a call made outside any message (tests)
	}
	if m := &r.msgs[mi]; m.author < 0 && m.mention == p && m.slotAt < 0 {
		m.slotAt = r.now
	}
}

func (r *run) callDone(id int32) {
	c := r.calls[id]
	if c.cancelled {
		return // its slot was freed when it was cancelled
	}
	r.calls[id].end = r.now
	r.busyN--
	if c.urgent {
		r.busyUN--
	}
	if c.kind != callWork {
		r.m.modelCallsDone++
	}
	if r.gov != nil {
		r.meter.End(r.t(r.now))
	}
	r.slotDone(&c)
	r.nextCall()
	switch r.pol {
	case Persona:
		r.oursCallDone(c)
	case Seed:
		r.seedCallDone(c)
	case Direct:
		r.directCallDone(c)
	case Bound:
		// The bound answers the mentions the moment its call is done.
		for _, mi := range append([]int32{c.ref}, c.covers...) {
			if m := &r.msgs[mi]; m.mentionAnswered < 0 {
				m.mentionAnswered = r.now
				r.m.mentionAnswer = append(r.m.mentionAnswer, float64(r.now-m.at)/float64(second))
			}
		}
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
func (r *run) work(p, gen int32) {
	switch r.pol {
	case Persona:
		r.oursEvalDone(r.actors[p], gen)
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
