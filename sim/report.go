package sim

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/personaos/persona/deps"
	"github.com/personaos/persona/govern"
	pmetrics "github.com/personaos/persona/metrics"
)

// Report is one policy's result on one scenario. Field names in JSON are
// snake_case; the delivery accounts add up:
//
//	delivered = handled + declined + deferred + expired + lost + pending_at_end
//
// (Run returns ErrUnbalanced otherwise). A Report is a plain value that
// nothing writes to once Run has returned it.
type Report struct {
	Policy          Policy  `json:"policy"`
	Scenario        string  `json:"scenario"`
	Seed            uint64  `json:"seed"`
	DurationSeconds float64 `json:"duration_seconds"`
	Personas        int     `json:"personas"`
	Cores           int     `json:"cores"`

	Messages      int `json:"messages"`
	HumanMessages int `json:"human_messages"`
	Delivered     int `json:"delivered"`
	Handled       int `json:"handled"`
	Declined      int `json:"declined"`
	Deferred      int `json:"deferred"`
	Expired       int `json:"expired"`
	Lost          int `json:"lost"`
	// Skipped were not taken in (persona policy): the daemon's intake
	// guard (chat.Settings.Guard: not relevant, too deep, quiet room)
	// kept them out of the inbox, so they cost no evaluation.
	Skipped      int `json:"skipped"`
	PendingAtEnd int `json:"pending_at_end"`

	WaitSeconds         Waits   `json:"wait_seconds"`
	UrgentSLASeconds    float64 `json:"urgent_sla_seconds"`
	UrgentSLAViolations int     `json:"urgent_sla_violations"`
	// MentionSlotWaitSeconds is, for every @mention a person is owed, the
	// time from its arrival to the start of the mentioned persona's reply
	// on a model slot (to the end of the run if none started), and
	// MentionSlotViolations how many of those exceeded the urgent SLA: the
	// measure the lower bound (policy bound) is the best possible for.
	MentionSlotWaitSeconds Quantiles `json:"mention_slot_wait_seconds"`
	MentionSlotViolations  int       `json:"mention_slot_violations"`
	// SlotShareMin is the least, over personas, of the slot time a persona
	// received against its fair share: the max-min fair division of the
	// slot time all received, given what each asked for (the durations of
	// its calls that got a slot, and for those still waiting at the end
	// its mean). 1 when every persona got what it asked for; 0 with no
	// calls.
	SlotShareMin float64 `json:"slot_share_min"`

	Evaluations           int     `json:"evaluations"`
	Replies               int     `json:"replies"`
	EvaluationsPerMessage float64 `json:"evaluations_per_message"`
	ResponsesPerMessage   float64 `json:"responses_per_message"`
	ModelCalls            int     `json:"model_calls"`
	ModelCallsCompleted   int     `json:"model_calls_completed"`
	// ModelCallsCancelled were preempted for urgent work of the same
	// persona before they completed.
	ModelCallsCancelled int `json:"model_calls_cancelled"`
	// SlotPreemptions are ordinary replies cut short for an @mention
	// waiting for a model slot, and ModelCallsSuperseded replies that gave
	// up their place in line to a newer message of their room (the
	// daemon's slot scheduler, package slots); both are among the
	// cancelled.
	SlotPreemptions      int `json:"slot_preemptions"`
	ModelCallsSuperseded int `json:"model_calls_superseded"`

	FairnessJain float64 `json:"fairness_jain"`
	DutyCycle    Duty    `json:"duty_cycle"`
	// DutyOrdinary is the duty cycle of ordinary (non-urgent) work: the
	// ceiling binds it, while urgent work is served at once, beyond it.
	DutyOrdinary              Duty    `json:"duty_cycle_ordinary"`
	Energy                    *Energy `json:"energy"` // null for direct, which has no state
	ResponseLatencyP95Seconds float64 `json:"response_latency_p95_seconds"`
	HumanAnswerP95Seconds     float64 `json:"human_answer_p95_seconds"`
	HumanAnswered             int     `json:"human_answered"`
	// QuestionsUnanswered counts human messages that no reply answered,
	// directly or as merged context addressed to its author, among those
	// older than a minute at the end of the run (younger ones may still be
	// answered). The chat personas' own messages are not questions, nor
	// are items of pipeline stages.
	QuestionsUnanswered     int     `json:"questions_unanswered"`
	Mentions                int     `json:"mentions"` // human messages that @mention a persona
	MentionsAnswered        int     `json:"mentions_answered"`
	MentionAnswerP95Seconds float64 `json:"mention_answer_p95_seconds"`
	// MentionsMissed says why the mentioned persona did not answer a
	// human's @mention: "pending" (not reached by the end),
	// "reply_pending" (granted, reply not written by the end),
	// "suppressed" (granted, but a room guard stopped the reply),
	// "await_timeout" (the persona gave up waiting for the decision),
	// "merged" (it rode along as context of a newer item that was not
	// granted to it), "late" (the persona thought after the decision
	// closed and was not granted), "not_granted".
	MentionsMissed               map[string]int `json:"mentions_missed,omitempty"`
	PersonaMessagesPerRoomMinute MeanMax        `json:"persona_messages_per_room_minute"`

	Wakeups           int64              `json:"wakeups"`
	WakeupsByTrigger  map[string]int64   `json:"wakeups_by_trigger"`
	ThermalTime       map[string]float64 `json:"thermal_time,omitempty"`
	Ceiling           float64            `json:"duty_ceiling,omitempty"`   // the governor's (persona only)
	ComputeBudget     *BudgetStats       `json:"compute_budget,omitempty"` // persona only; null when unlimited
	SuppressedReplies int                `json:"suppressed_replies"`
	// Preemptions counts non-urgent work (an evaluation, a wait for a
	// decision, a reply's model call) cut short for an urgent item of the
	// same persona; the preempted item went back to its inbox.
	Preemptions      int `json:"preemptions"`
	SuppressedBudget int `json:"suppressed_budget"`
	// OwedOverBudget counts replies owed to a person written over the
	// room's reply budget (chat.Budget.Over), after one pacing interval.
	OwedOverBudget int `json:"owed_replies_over_budget"`
	// SuppressedQuiet and SuppressedDepth count deliveries of persona
	// messages the intake guard did not take in (quiet room, chain too
	// deep): under the persona policy they are among Skipped.
	SuppressedQuiet int        `json:"suppressed_quiet"`
	SuppressedDepth int        `json:"suppressed_depth"`
	Coordination    CoordStats `json:"coordination"`
	// Pipeline is what became of the pipeline stages' items (nil without
	// stages).
	Pipeline          *PipelineStats `json:"pipeline,omitempty"`
	Deferrals         int            `json:"deferrals"`
	Dropped           int            `json:"dropped"`
	PoppedUnprocessed int            `json:"popped_unprocessed"`
	DuplicateEvals    int            `json:"duplicate_evaluations"`
	Dependencies      *DepStats      `json:"dependencies,omitempty"`

	WallSeconds         float64 `json:"wall_seconds"`
	DeliveriesPerSecond float64 `json:"deliveries_per_wall_second"`

	// Series holds per-second time series and the wait samples, when
	// Options.Series is set; the plots read it.
	Series *Series `json:"-"`
}

// Quantiles summarises a sample: nearest-rank percentiles, in seconds.
type Quantiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Waits are wait times by class.
type Waits struct {
	Urgent Quantiles `json:"urgent"`
	Normal Quantiles `json:"normal"`
	Low    Quantiles `json:"low"`
}

// Duty is the model slots' busy fraction: Mean over the run, Max over
// windows of MaxWindowSeconds.
type Duty struct {
	Mean             float64 `json:"mean"`
	Max              float64 `json:"max"`
	MaxWindowSeconds int     `json:"max_window_seconds"`
}

// Energy is the personas' energy over all per-second samples.
type Energy struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
}

// MeanMax is a mean and a maximum.
type MeanMax struct {
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

// CoordStats counts coordination decisions and outcomes per thinker.
type CoordStats struct {
	Decisions    int `json:"decisions"`
	TimedOut     int `json:"timed_out"`
	Granted      int `json:"granted"`
	NotGranted   int `json:"not_granted"`
	LateThoughts int `json:"late_thoughts"`
	// LateGrants counts late thoughts of addressees (or addressed
	// thinkers) that amended a closed decision to grant them.
	LateGrants int `json:"late_grants"`
	// AwaitTimeouts counts thinkers that gave up waiting for a decision
	// (persona: the coordination timeout), which means not granted.
	AwaitTimeouts int `json:"await_timeouts"`
}

// DepStats counts dependency barrier releases (persona policy only).
// PipelineStats is what became of the items of a scenario's pipeline
// stages (personas with reply: false).
type PipelineStats struct {
	// Items entered the pipeline; Complete passed every stage, each stage
	// handling it with complete inputs.
	Items    int `json:"items"`
	Complete int `json:"complete"`
	// Expired counts stage deliveries that expired (past their deadline,
	// or deferred past their time-to-live); ExpiredCool those that expired
	// while the machine's duty over the last 10 s was under the ceiling.
	Expired     int `json:"expired"`
	ExpiredCool int `json:"expired_below_ceiling"`
}

type DepStats struct {
	Releases   int `json:"releases"`
	Incomplete int `json:"incomplete"`
	Skipped    int `json:"skipped"`
	Violations int `json:"violations"` // a dependent started before its prerequisites: must be 0
}

// Series is what the plots draw, one point per virtual second.
type Series struct {
	Minutes   []float64
	Depth     []float64 // total queued work
	Duty      []float64 // busy model slots / cores over each second
	Energy    []float64 // mean energy (not for direct)
	EnergyMin []float64
	Moods     [4][]float64 // personas per mood (state.Mood order)
	Thermal   []float64    // governor state (persona only)
	Waits     [3][]float64 // sorted wait samples by class, seconds
}

var classNames = [numClasses]string{"urgent", "normal", "low"}

// settle closes every delivery's account at the end of the run and checks
// the policy's own books against it.
func (r *run) settle() error {
	switch r.pol {
	case Bound:
		return nil // every delivery's account was set as it went
	case Persona:
		for _, a := range r.actors {
			o := a.ours
			o.c.PutBack(r.t(r.end)) // items held for later are still queued
			queued, deferred := o.c.Inbox().Close()
			for _, e := range queued {
				r.dels[e.Value.Payload].flags |= fEnd
			}
			for _, e := range deferred {
				r.dels[e.Value.Payload].acct = acDeferred
			}
			for _, x := range o.batch {
				r.dels[x].flags |= fEnd // the item in progress, if any
			}
			for _, lr := range o.lane {
				for _, x := range lr.batch {
					r.dels[x].flags |= fEnd // replies out in the urgent lane
				}
			}
		}
		var per = make([][numAccts]int, len(r.actors))
		for i := range r.dels {
			d := &r.dels[i]
			if d.flags&fInInbox != 0 && d.acct == acPending && d.flags&fEnd == 0 {
				// Expired inside the inbox without naming the entry:
				// deferred past its TTL found by Readmit, or pushed out
				// of a full deferred store.
				d.acct = acExpired
			}
			if d.flags&fInInbox != 0 {
				per[d.persona][d.acct]++
			}
		}
		for _, a := range r.actors {
			c := a.ours.c.Inbox().Counts()
			got := per[a.idx]
			if !c.Balanced() || int(c.Handled) != got[acHandled] || int(c.Declined) != got[acDeclined] ||
				int(c.Expired) != got[acExpired] || c.Deferred != got[acDeferred] ||
				c.Queued+c.InFlight != got[acPending] || c.Failed != 0 {
				return fmt.Errorf("%w: persona %s: inbox counts %+v, simulator %v", ErrUnbalanced, a.name, c, got)
			}
			r.m.deferrals += int(c.Deferrals)
		}
	case Seed:
		for _, a := range r.actors {
			s := a.seed
			if s.cur >= 0 {
				r.dels[s.cur].flags |= fEnd
			}
			for _, x := range s.proc[s.procI:] {
				r.dels[x].flags |= fEnd
			}
			for _, x := range s.q {
				r.dels[x].flags |= fEnd
			}
		}
		for i := range r.dels {
			d := &r.dels[i]
			switch {
			case d.flags&fProcessed != 0:
				d.acct = acHandled
			case d.flags&fEnd != 0:
				d.acct = acPending
			case d.flags&fRemoved != 0:
				d.acct = acLost
				if d.flags&fDropped == 0 {
					r.m.poppedUnprocessed++
				}
			default:
				return fmt.Errorf("%w: seed delivery %d is nowhere", ErrUnbalanced, i)
			}
		}
	case Direct:
		for i := range r.dels {
			if r.dels[i].flags&fProcessed != 0 {
				r.dels[i].acct = acHandled
			} else {
				r.dels[i].acct = acPending
			}
		}
	}
	return nil
}

func (r *run) report() (*Report, error) {
	if err := r.settle(); err != nil {
		return nil, err
	}
	wall := time.Since(r.wall).Seconds()
	sc := &r.sc
	rep := &Report{
		Policy: r.pol, Scenario: sc.Name, Seed: sc.Seed, DurationSeconds: sc.Duration.Seconds(),
		Personas: len(r.actors), Cores: sc.Cores,
		Messages: r.m.messages, HumanMessages: r.m.humanMessages, Delivered: len(r.dels),
		UrgentSLASeconds: sc.SLA.Urgent.Seconds(),
		Evaluations:      r.m.evaluations, Replies: r.m.replies,
		ModelCalls: r.m.modelCalls, ModelCallsCompleted: r.m.modelCallsDone, ModelCallsCancelled: r.m.modelCallsCancelled,
		SlotPreemptions: r.m.slotPreemptions, ModelCallsSuperseded: r.m.superseded,
		SuppressedBudget: r.m.suppressedBudget, OwedOverBudget: r.budget.Over(), SuppressedQuiet: r.m.suppressedQuiet, SuppressedDepth: r.m.suppressedDepth,
		SuppressedReplies: r.m.suppressedBudget + r.m.suppressedQuiet + r.m.suppressedDepth,
		Preemptions:       r.m.preemptions,
		Coordination: CoordStats{Decisions: r.m.decisions, TimedOut: r.m.timedOut, Granted: r.m.granted,
			NotGranted: r.m.notGranted, LateThoughts: r.m.lateThoughts, LateGrants: r.m.lateGrants,
			AwaitTimeouts: r.m.awaitTimeouts},
		Deferrals: r.m.deferrals, Dropped: r.m.dropped, PoppedUnprocessed: r.m.poppedUnprocessed,
		DuplicateEvals: r.m.duplicates,
		WallSeconds:    wall,
		Mentions:       r.m.mentions, MentionsAnswered: len(r.m.mentionAnswer), HumanAnswered: len(r.m.humanAnswer),
	}
	if wall > 0 {
		rep.DeliveriesPerSecond = float64(len(r.dels)) / wall
	}
	var waits [numClasses][]float64
	sla := int64(sc.SLA.Urgent)
	for i := range r.dels {
		d := &r.dels[i]
		var w int64 = -1
		switch d.acct {
		case acHandled:
			rep.Handled++
			w = d.start - d.at
		case acDeclined:
			rep.Declined++
		case acDeferred:
			rep.Deferred++
			w = r.end - d.at // still waiting: a lower bound
		case acExpired:
			rep.Expired++
		case acLost:
			rep.Lost++
		case acSkipped:
			rep.Skipped++
		case acPending:
			rep.PendingAtEnd++
			if d.start >= 0 {
				w = d.start - d.at
			} else {
				w = r.end - d.at
			}
		}
		if w >= 0 {
			waits[d.class] = append(waits[d.class], float64(w)/float64(second))
		}
		if d.class == classUrgent && (w > sla || d.acct == acDeclined || d.acct == acExpired || d.acct == acLost) {
			rep.UrgentSLAViolations++
		}
	}
	if sum := rep.Handled + rep.Declined + rep.Deferred + rep.Expired + rep.Lost + rep.Skipped + rep.PendingAtEnd; sum != rep.Delivered {
		return nil, fmt.Errorf("%w: %d delivered, %d accounted", ErrUnbalanced, rep.Delivered, sum)
	}
	for c := range waits {
		slices.Sort(waits[c])
	}
	rep.WaitSeconds = Waits{Urgent: quantiles(waits[classUrgent]), Normal: quantiles(waits[classNormal]), Low: quantiles(waits[classLow])}
	if r.m.messages > 0 {
		rep.EvaluationsPerMessage = float64(r.m.evaluations) / float64(r.m.messages)
		rep.ResponsesPerMessage = float64(r.m.replies) / float64(r.m.messages)
	}
	rep.ResponseLatencyP95Seconds = p95(r.m.respLatency)
	rep.HumanAnswerP95Seconds = p95(r.m.humanAnswer)
	rep.MentionAnswerP95Seconds = p95(r.m.mentionAnswer)

	busy := make([]float64, len(r.actors))
	for i, a := range r.actors {
		busy[i] = float64(a.busy)
	}
	rep.FairnessJain = pmetrics.Jain(busy)

	rep.DutyCycle = Duty{MaxWindowSeconds: dutyWindow}
	if r.end > 0 {
		rep.DutyCycle.Mean = float64(r.busyI) / float64(r.end) / float64(sc.Cores)
	}
	rep.DutyCycle.Max = maxWindowMean(r.m.dutySec, dutyWindow)
	rep.DutyOrdinary = Duty{MaxWindowSeconds: dutyWindow, Max: maxWindowMean(r.m.dutyOrdinarySec, dutyWindow)}
	if r.end > 0 {
		rep.DutyOrdinary.Mean = float64(r.busyI-r.busyUI) / float64(r.end) / float64(sc.Cores)
	}
	if r.pol != Direct && r.m.energyN > 0 {
		rep.Energy = &Energy{Min: r.m.energyMin, Mean: r.m.energySum / float64(r.m.energyN)}
	}

	minutes := int((r.end + int64(time.Minute) - 1) / int64(time.Minute))
	var cells, total float64
	for _, row := range r.roomMinute {
		for i := 0; i < minutes && i < len(row); i++ {
			cells++
			total += float64(row[i])
			rep.PersonaMessagesPerRoomMinute.Max = max(rep.PersonaMessagesPerRoomMinute.Max, float64(row[i]))
		}
	}
	if cells > 0 {
		rep.PersonaMessagesPerRoomMinute.Mean = total / cells
	}

	rep.WakeupsByTrigger = map[string]int64{}
	for _, a := range r.actors {
		rep.WakeupsByTrigger["demand"] += a.wakes[trDemand]
		rep.WakeupsByTrigger["dependency"] += a.wakes[trDependency]
		rep.WakeupsByTrigger["scan"] += a.wakes[trScan]
	}
	if r.pol == Seed {
		// PersonaInbox.pop polls every 100 ms while it waits.
		rep.WakeupsByTrigger["poll"] = int64(seedPollHz * float64(len(r.actors)) * sc.Duration.Seconds())
	}
	for _, v := range rep.WakeupsByTrigger {
		rep.Wakeups += v
	}
	if r.gov != nil {
		rep.Ceiling = sc.Ceiling
		rep.ComputeBudget = r.budgetStats()
		rep.ThermalTime = map[string]float64{}
		for t := govern.Nominal; t <= govern.Critical; t++ {
			rep.ThermalTime[t.String()] = r.m.thermal[t]
		}
	}
	rep.QuestionsUnanswered = r.questionsUnanswered()
	rep.MentionSlotWaitSeconds, rep.MentionSlotViolations = r.mentionSlotWaits()
	rep.SlotShareMin = r.slotShareMin()
	if ps := r.pipelineStats(); ps != nil {
		rep.Pipeline = ps
	}
	if r.pol == Persona && r.hasDeps() {
		rep.Dependencies = &DepStats{Releases: r.m.releases, Incomplete: r.m.incomplete, Skipped: r.m.skipped,
			Violations: r.m.depViolations}
	}
	for mi := range r.msgs {
		m := &r.msgs[mi]
		if m.author >= 0 || m.mention < 0 || m.mentionAnswered >= 0 {
			continue
		}
		d := &r.dels[r.delOf(int32(mi), m.mention)]
		why := "not_granted"
		switch {
		case d.start < 0 || d.acct == acPending:
			why = "pending"
		case d.flags&fSuppressed != 0:
			why = "suppressed"
		case d.flags&fAwaitTimeout != 0:
			why = "await_timeout"
		case d.flags&fGranted != 0 || r.isGranted(int32(mi), d.persona):
			why = "reply_pending"
		case d.flags&fSpoke != 0 && d.flags&fThought == 0:
			why = "merged"
		case d.flags&fLate != 0:
			why = "late"
		}
		if rep.MentionsMissed == nil {
			rep.MentionsMissed = map[string]int{}
		}
		rep.MentionsMissed[why]++
	}
	if r.series != nil {
		r.series.Waits = waits
		rep.Series = r.series
	}
	return rep, nil
}

// slotShareMin is Report.SlotShareMin.
func (r *run) slotShareMin() float64 {
	n := len(r.actors)
	got, asked := make([]float64, n), make([]float64, n)
	waiting, took := make([]int, n), make([]int, n)
	for _, c := range r.calls {
		switch {
		case c.start < 0 && !c.cancelled:
			waiting[c.persona]++
		case c.start >= 0:
			end := c.end
			if end == 0 {
				end = r.end // still on its slot
			}
			got[c.persona] += float64(end - c.start)
			took[c.persona]++
		}
	}
	total := 0.0
	for i := range n {
		asked[i] = got[i]
		if waiting[i] > 0 && took[i] > 0 {
			asked[i] += float64(waiting[i]) * got[i] / float64(took[i])
		}
		total += got[i]
	}
	if total == 0 {
		return 0
	}
	fair := maxMinFair(asked, total)
	least := 1.0
	for i := range n {
		if fair[i] > 0 {
			least = min(least, got[i]/fair[i])
		}
	}
	return least
}

// maxMinFair divides capacity among demands: each gets its demand or the
// level that the unsatisfied ones share equally, whichever is less.
func maxMinFair(demands []float64, capacity float64) []float64 {
	idx := make([]int, len(demands))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(demands[a], demands[b]) })
	fair := make([]float64, len(demands))
	left := capacity
	for k, i := range idx {
		share := left / float64(len(idx)-k)
		fair[i] = min(demands[i], share)
		left -= fair[i]
	}
	return fair
}

// mentionSlotWaits is every owed @mention's wait for its reply's slot.
func (r *run) mentionSlotWaits() (Quantiles, int) {
	var ws []float64
	bad := 0
	sla := int64(r.sc.SLA.Urgent)
	for mi := range r.msgs {
		m := &r.msgs[mi]
		if m.author >= 0 || m.mention < 0 {
			continue
		}
		w := r.end - m.at
		if m.slotAt >= 0 {
			w = m.slotAt - m.at
		}
		if w > sla {
			bad++
		}
		ws = append(ws, float64(w)/float64(second))
	}
	slices.Sort(ws)
	return quantiles(ws), bad
}

// questionsUnanswered counts human messages older than a minute at the
// end that no reply answered.
func (r *run) questionsUnanswered() int {
	n := 0
	horizon := r.end - int64(time.Minute)
	for mi := range r.msgs {
		m := &r.msgs[mi]
		if m.author >= 0 || m.answered >= 0 || m.at > horizon || !r.toChat(int32(mi)) {
			continue
		}
		n++
	}
	return n
}

// toChat reports whether message mi reached a chat persona (not only
// pipeline stages).
func (r *run) toChat(mi int32) bool {
	m := &r.msgs[mi]
	for i := m.first; i < m.first+m.n; i++ {
		if !r.actors[r.dels[i].persona].stage {
			return true
		}
	}
	return false
}

// pipelineStats is nil without pipeline stages.
func (r *run) pipelineStats() *PipelineStats {
	var ps PipelineStats
	stages := false
	for _, a := range r.actors {
		stages = stages || a.stage
	}
	if !stages {
		return nil
	}
	ps.Expired, ps.ExpiredCool = r.m.stageExpired, r.m.stageExpiredCool
	for mi := range r.msgs {
		m := &r.msgs[mi]
		complete, any := true, false
		for i := m.first; i < m.first+m.n; i++ {
			d := &r.dels[i]
			if !r.actors[d.persona].stage {
				continue
			}
			any = true
			if d.acct != acHandled || d.depStatus() != deps.Done {
				complete = false
			}
		}
		if any {
			ps.Items++
			if complete {
				ps.Complete++
			}
		}
	}
	return &ps
}

func (r *run) hasDeps() bool {
	for _, p := range r.prereqs {
		if len(p) > 0 {
			return true
		}
	}
	return false
}

// quantiles of a sorted sample (nearest rank).
func quantiles(s []float64) Quantiles {
	if len(s) == 0 {
		return Quantiles{}
	}
	return Quantiles{Count: len(s), P50: rank(s, 0.50), P95: rank(s, 0.95), P99: rank(s, 0.99), Max: s[len(s)-1]}
}

func rank(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func p95(s []float64) float64 {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	return rank(c, 0.95)
}

// maxWindowMean is the largest mean over any w consecutive samples (the
// mean of all when there are fewer).
func maxWindowMean(s []float64, w int) float64 {
	if len(s) == 0 {
		return 0
	}
	if len(s) <= w {
		var sum float64
		for _, v := range s {
			sum += v
		}
		return sum / float64(len(s))
	}
	var sum, best float64
	for i, v := range s {
		sum += v
		if i >= w {
			sum -= s[i-w]
		}
		if i >= w-1 {
			best = max(best, sum/float64(w))
		}
	}
	return best
}
