package sim

import (
	"strings"
	"time"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
)

// The chat rules the policies apply: priorities, relevance, the room guards and replies.

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

// oursIntent is the local evaluation (Evaluate): confidence from
// expertise, and intent respond only if the batch addresses the persona,
// or it is relevant (expertise, or a human wrote it) and its priority
// clears the active threshold, so that replies to replies damp out with
// the scorer's PerDepth even when aging has lifted them over the bar.
func (r *run) oursIntent(a *actor) (float64, coord.Intent) {
	o := a.ours
	addressed, relevant := r.addressedBy(a), false
	best := 0.0
	var bestMsg *message
	for _, x := range o.batch {
		d := &r.dels[x]
		m := &r.msgs[d.msg]
		if d.prio > best || bestMsg == nil {
			best, bestMsg = d.prio, m
		}
		if r.expert(a, m.topics) || m.author < 0 {
			relevant = true
		}
	}
	switch {
	case addressed:
		return r.intent(a, bestMsg, true)
	case relevant && best > r.stateCfg.ThresholdActive:
		conf, _ := r.intent(a, bestMsg, false)
		return max(conf, 0.5), coord.IntentRespond
	}
	return 0.3, coord.IntentObserve
}

// respond is the chat responder's Respond for a granted persona: the
// room's guards first, then one model call to write the reply. It
// reports whether the call was made.
func (r *run) respond(a *actor, mi int32) bool {
	m := &r.msgs[mi]
	room := m.room
	if m.author >= 0 && (r.roomHuman[room] < 0 || r.now-r.roomHuman[room] > int64(quietAfter)) {
		// A quiet room: no persona answers a persona until a human speaks.
		r.m.suppressedQuiet++
		return false
	}
	if !r.owed(a) && r.recentInRoom(room)+r.roomFlight[room] >= budgetMax {
		r.m.suppressedBudget++
		return false
	}
	r.roomFlight[room]++
	r.callModel(a.idx, callReply, mi)
	return true
}

// owed reports whether the batch holds a human's @mention of a: a person
// who names a persona is owed an answer, over the room's budget.
func (r *run) owed(a *actor) bool {
	for _, x := range a.ours.batch {
		m := &r.msgs[r.dels[x].msg]
		if m.author < 0 && m.mention == a.idx {
			return true
		}
	}
	return false
}
