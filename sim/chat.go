package sim

import (
	"strings"
	"time"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
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
	if r.sc.Traffic.RepliesFeedBack {
		r.post(room, p, -1, m.depth+1, m.topics)
	}
}

// oursIntent is the local evaluation (the daemon's responder.Evaluate):
// chat.Settings.Think on the batch's best priority at delivery (the score
// the daemon's intake gives the item), addressed if the batch addresses
// the persona: confidence 1 when addressed, else that score; intent
// respond when addressed or the score reaches RespondAbove.
func (r *run) oursIntent(a *actor) (float64, coord.Intent) {
	best := 0.0
	for i, x := range a.ours.batch {
		if p := r.dels[x].prio; i == 0 || p > best {
			best = p
		}
	}
	return r.chat.Think(best, r.addressedBy(a))
}

// respond is the chat responder's Respond for a granted persona: the
// room's guards first, then one model call to write the reply. It
// reports whether the call was made. The loop guards judge each message
// of the batch as the daemon's intake does (loopGuard); the daemon would
// never have taken in a message they stop, so the reply answers the
// newest message of the batch that passes them (the daemon's trigger),
// and none passing means no reply. The reply budget (chat.Budget) counts
// the reply from now and never refuses one owed to a person (owed).
// Relevance was the evaluation's (oursIntent).
func (r *run) respond(a *actor, mi int32) bool {
	target, why := int32(-1), chat.Pass
	for _, x := range a.ours.batch {
		bi := r.dels[x].msg
		reason := r.loopGuard(bi)
		switch {
		case reason != chat.Pass:
			if bi == mi {
				why = reason
			}
		case target < 0 || r.msgs[bi].at > r.msgs[target].at:
			target = bi
		}
	}
	if target < 0 {
		if why == chat.ReasonTooDeep {
			r.m.suppressedDepth++
		} else {
			r.m.suppressedQuiet++
		}
		return false
	}
	room := r.msgs[target].room
	if !r.budget.Reserve(room, r.t(r.now), r.owed(a)) {
		r.m.suppressedBudget++
		return false
	}
	r.roomFlight[room]++
	// A reply to urgent work goes ahead of other calls for a model slot.
	var covers []int32
	urgent := false
	for _, x := range a.ours.batch {
		// A reply is urgent work when it answers anything urgent, merged
		// context included.
		urgent = urgent || r.dels[x].class == classUrgent
		if mi := r.dels[x].msg; mi != target {
			covers = append(covers, mi)
		}
	}
	r.callModelFor(a.idx, callReply, target, urgent, covers)
	return true
}

// loopGuard is the intake's loop guards (chat.Settings.Guard's first
// half) on message mi: a persona's message at the depth limit, or written
// QuietAfter after the room's last human message as known when it was
// posted, is not answered. A human's message always passes.
func (r *run) loopGuard(mi int32) chat.Reason {
	m := &r.msgs[mi]
	if m.author < 0 {
		return chat.Pass
	}
	lastHuman := time.Time{}
	if m.lastHuman >= 0 {
		lastHuman = r.t(m.lastHuman)
	}
	switch {
	case chat.TooDeep(int(m.depth), r.chat.MaxDepth):
		return chat.ReasonTooDeep
	case chat.Quiet(lastHuman, r.t(m.at), r.chat.QuietAfter):
		return chat.ReasonQuiet
	}
	return chat.Pass
}

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

// expected is who message mi's decision waits for under the chat rules
// (chat.Settings.Expected), as the daemon opens it at the first
// evaluation: the coordinated recipients (not pipeline dependents) to
// which the message is relevant now, and the mentioned one among them as
// addressee (-1 if none). The persona policy's stream (stream.go, open)
// still opens at delivery with every recipient; this is the rule for it
// to call when it opens at the first evaluation.
func (r *run) expected(mi int32) (expected []int32, addressee int32) {
	m := &r.msgs[mi]
	cands := make([]chat.Candidate, 0, m.n)
	who := make(map[string]int32, m.n)
	for i := m.first; i < m.first+m.n; i++ {
		d := &r.dels[i]
		if len(r.prereqs[d.persona]) > 0 {
			continue
		}
		a := r.actors[d.persona]
		who[a.name] = d.persona
		cands = append(cands, chat.Candidate{Name: a.name, Addressed: m.mention == d.persona, Score: r.priority(d)})
	}
	kind, author := chat.Human, ""
	if m.author >= 0 {
		kind, author = chat.Persona, r.actors[m.author].name
	}
	names, addr := r.chat.Expected(author, kind, cands)
	addressee = -1
	for _, n := range names {
		expected = append(expected, who[n])
	}
	if len(addr) > 0 {
		addressee = who[addr[0]]
	}
	return expected, addressee
}
