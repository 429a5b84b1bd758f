package sim

import (
	"strings"
	"time"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/slots"
)

// The chat rules as the policies apply them: package chat's rules (the
// daemon's, with the scenario's Settings over chat.DefaultSettings) on the
// simulator's messages: priorities, relevance, the room guards and replies.

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
	return r.priorityFor(d, r.msgs[d.msg].mention == d.persona)
}

// priorityFor is d's priority at now with addressed as whether the item
// addresses its persona (a merged item addresses whom any of its messages
// does): the daemon's d.score(name, msg, addressed, now).
func (r *run) priorityFor(d *delivery, addressed bool) float64 {
	m := &r.msgs[d.msg]
	a := r.actors[d.persona]
	last := a.recent[m.room]
	return r.w.Score(chat.Facts{
		Mentioned:  addressed,
		RecentRoom: last >= 0 && r.now-last <= int64(r.w.RecentFor),
		Expertise:  r.expert(a, m.topics),
		Age:        time.Duration(r.now - m.at),
		Kind:       m.kind(),
		Depth:      int(m.depth),
	})
}

// kind is who wrote m.
func (m *message) kind() chat.Kind {
	if m.author >= 0 {
		return chat.Persona
	}
	return chat.Human
}

// intake is the daemon's intake guard (chat.Settings.Guard, as the
// daemon's guard applies it when a room message is delivered to a
// persona) on delivery di, when its message is posted: it reports whether
// the persona takes the message in. One it does not take in never reaches
// its inbox and costs no evaluation: it is accounted skipped, as the
// daemon's ledger accounts it, and a pipeline's dependents are not held
// for it (oursPost finishes its part of the barrier as skipped). The message is never delivered
// to its author, so "own message" never applies here.
func (r *run) intake(di int32) bool {
	d := &r.dels[di]
	if r.actors[d.persona].stage {
		return true // a pipeline stage is no chat persona: it engages every item
	}
	m := &r.msgs[d.msg]
	lastHuman := time.Time{}
	if m.lastHuman >= 0 {
		lastHuman = r.t(m.lastHuman)
	}
	reason := r.chat.Guard(chat.GuardFacts{
		Kind: m.kind(), Addressed: m.mention == d.persona, Depth: int(m.depth),
		At: r.t(m.at), LastHuman: lastHuman, Score: r.priority(d),
	})
	switch reason {
	case chat.Pass:
		return true
	case chat.ReasonTooDeep:
		r.m.suppressedDepth++
	case chat.ReasonQuiet:
		r.m.suppressedQuiet++
	}
	d.acct = acSkipped
	return false
}

// intent is what a baseline's evaluation (direct, seed: a model call)
// concludes about a message: the mentioned persona responds with full
// confidence; one for whom the message is relevant (its expertise, or a
// human wrote it) responds with confidence 0.8 (expertise) or 0.5;
// otherwise it observes. The baselines model other designs, which ask a
// model whether to answer and have no chat rules, so this is not
// chat.Settings.Think (the persona policy's: oursIntent).
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
	r.reportReply(p, mi, covers)
	if r.sc.Traffic.RepliesFeedBack {
		r.replying = mi
		r.post(room, p, -1, m.depth+1, m.topics)
		r.replying = -1
	}
}

// oursIntent is the local evaluation (the daemon's responder.Evaluate):
// it opens the decision on the item's message (openOn), then
// chat.Settings.Think on the batch's best priority at delivery (the score
// the daemon's intake gives the item), addressed if the batch addresses
// the persona: confidence 1 when addressed, else that score; intent
// respond when addressed or the score reaches RespondAbove.
func (r *run) oursIntent(a *actor) (float64, coord.Intent) {
	if len(r.prereqs[a.idx]) == 0 {
		r.openOn(a)
	}
	best := 0.0
	for i, x := range a.ours.batch {
		if p := r.dels[x].prio; i == 0 || p > best {
			best = p
		}
	}
	return r.chat.Think(best, r.addressedBy(a))
}

// respond is the chat responder's Respond for a granted persona: the
// room's reply budget (chat.Budget: counted from now, never refusing a
// reply owed to a person, owed), then one model call to write the reply
// to mi, the item's trigger. It reports whether the call was made. The
// loop guards and relevance were the intake's (intake): every message of
// the item passed them.
func (r *run) respond(a *actor, mi int32, waited int64) replyStart {
	room := r.msgs[mi].room
	now := r.t(r.now)
	owed := r.owed(a)
	if by := r.budget.OwedBy(room, a.name, r.t(r.now-waited)); owed && !r.chat.OwedOverBudget && now.Before(by) {
		// The daemon's rooms.reserveReply: an owed reply waits until it is
		// due, at most until chat.Budget.OwedBy.
		if due := r.budget.Due(room, a.name, now); due.IsZero() || due.After(now) {
			wait := int64(by.Sub(now))
			if !due.IsZero() {
				wait = min(wait, int64(due.Sub(now)))
			}
			r.replyWait = max(wait, int64(time.Millisecond))
			return replyWaiting
		}
	}
	if !r.budget.Reserve(room, a.name, now, owed) {
		// A person's question waits for the budget (chat.Waits), merged
		// with what follows it, as the daemon's responder does; persona
		// chatter is refused.
		if next := r.budget.Next(room, now); r.asksHuman(a) && !r.chat.OwedOverBudget && !next.IsZero() {
			r.replyWait = max(int64(next.Sub(now)), int64(time.Millisecond))
			return replyWaiting
		}
		r.m.suppressedBudget++
		return replyNone
	}
	r.roomFlight[room]++
	// A reply to urgent work goes ahead of other calls for a model slot.
	urgent := false
	for _, x := range a.ours.batch {
		// A reply is urgent work when it answers anything urgent, merged
		// context included.
		urgent = urgent || r.dels[x].class == classUrgent
	}
	// Its slot class is the daemon's (responder.class): owed to a person
	// who named the persona, else a person's conversation, else chatter.
	class := slots.Persona
	switch {
	case owed:
		class = slots.Addressed
	case r.asksHuman(a):
		class = slots.Human
	}
	a.ours.call = r.callModelFor(a.idx, callReply, mi, urgent, a.ours.covers, class)
	return replyStarted
}

// asksHuman reports whether a's batch holds a person's message.
func (r *run) asksHuman(a *actor) bool {
	for _, x := range a.ours.batch {
		if r.msgs[r.dels[x].msg].author < 0 {
			return true
		}
	}
	return false
}

// replyStart is what respond did.
type replyStart uint8

const (
	replyNone    replyStart = iota // refused by a guard: no reply
	replyStarted                   // the model call is made
	replyWaiting                   // an owed reply waits r.replyWait for the budget
)

// owed reports whether the batch holds a human's @mention of a
// (chat.Owed): a person who names a persona is owed an answer, which the
// reply budget counts but never refuses.
func (r *run) owed(a *actor) bool {
	for _, x := range a.ours.batch {
		m := &r.msgs[r.dels[x].msg]
		kind := chat.Human
		if m.author >= 0 {
			kind = chat.Persona
		}
		if chat.Owed(kind, m.mention == a.idx) {
			return true
		}
	}
	return false
}

// openOn opens the decision on the message of a's item in progress, as
// the daemon's responder does when it evaluates (Daemon.open): with
// whom chat.Settings.Expected names now, and the message's own addressee,
// not those of the messages merged into a's item (a persona owed through
// one is granted by its thought, Thought.Addressed). An open decision
// merges them; a decided one is left alone (coord.Core.Open).
func (r *run) openOn(a *actor) {
	r.openMsg(r.dels[a.ours.item].msg)
}

// openMsg opens message mi's decision now, the persona it mentions as its
// addressee.
func (r *run) openMsg(mi int32) {
	m := &r.msgs[mi]
	if r.co.State(m.id) == coord.ItemUnknown {
		r.m.decisions++
	}
	exp, addr := r.expectedNames(mi)
	r.publish(r.co.Open(r.t(r.now), coord.Opening{Item: m.id, Key: r.roomKeys[m.room], Expected: exp, Addressees: addr}))
}

// expected is who message mi's decision waits for under the chat rules
// (chat.Settings.Expected), as the daemon opens it at the first
// evaluation: the coordinated recipients (not pipeline dependents or
// stages) to which the message is relevant now, and the mentioned one among them as
// addressee (-1 if none).
func (r *run) expected(mi int32) (expected []int32, addressee int32) {
	names, addr := r.expectedNames(mi)
	addressee = -1
	for _, n := range names {
		expected = append(expected, r.actorIdx[n])
	}
	if len(addr) > 0 {
		addressee = r.actorIdx[addr[0]]
	}
	return expected, addressee
}

// expectedNames is chat.Settings.Expected on message mi now, the persona
// it mentions counted as addressed.
func (r *run) expectedNames(mi int32) (expected, addressees []string) {
	m := &r.msgs[mi]
	cands := make([]chat.Candidate, 0, m.n)
	for i := m.first; i < m.first+m.n; i++ {
		d := &r.dels[i]
		if len(r.prereqs[d.persona]) > 0 || r.actors[d.persona].stage {
			continue // dependents are not handed it yet; stages do not coordinate
		}
		ad := m.mention == d.persona
		cands = append(cands, chat.Candidate{Name: r.actors[d.persona].name, Addressed: ad, Score: r.priorityFor(d, ad)})
	}
	author := ""
	if m.author >= 0 {
		author = r.actors[m.author].name
	}
	return r.chat.Expected(author, m.kind(), cands)
}
