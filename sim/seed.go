package sim

import (
	"time"

	"github.com/personaos/persona/state"
)

// The seed policy: autonomous-persona-architecture.md exactly as written,
// bugs included. Its state manager is transcribed here rather than taken
// from package state, which fixes the seed on purpose (see DESIGN.md,
// "Fixes to the seed").

// seedState is the seed's PersonaStateManager.
type seedState struct {
	energy, attention float64
	mood              state.Mood
	inboxLoad         int
	responseCount     int
	budget            float64
}

func newSeedState() seedState {
	return seedState{energy: 1, attention: 1, mood: state.Idle, budget: 1}
}

// recordActivity: energy -= (durationMs / 10000) * complexity; attention
// fatigues below 0.3; responseCount never resets.
func (s *seedState) recordActivity(d time.Duration, complexity float64) {
	s.energy -= float64(d.Milliseconds()) / 10000 * complexity
	s.energy = max(0, s.energy)
	if s.energy < 0.3 {
		s.attention *= 0.9
	}
	s.mood = s.calculateMood()
	s.responseCount++
}

// rest: energy += durationMs / 20000; attention twice as fast.
func (s *seedState) rest(d time.Duration) {
	recovery := float64(d.Milliseconds()) / 20000
	s.energy = min(1, s.energy+recovery)
	s.attention = min(1, s.attention+recovery*2)
	s.mood = s.calculateMood()
}

// calculateMood uses the absolute inbox size 50, as the seed does.
func (s *seedState) calculateMood() state.Mood {
	switch {
	case s.inboxLoad > 50:
		return state.Overwhelmed
	case s.energy < 0.3:
		return state.Tired
	case s.responseCount > 0 && s.energy > 0.5:
		return state.Active
	}
	return state.Idle
}

// shouldEngage: the seed's exclusive thresholds. The mood is the one last
// calculated: updateInboxLoad does not recalculate it.
func (s *seedState) shouldEngage(p float64) bool {
	if p > 0.8 {
		return true
	}
	switch s.mood {
	case state.Overwhelmed:
		return p > 0.9
	case state.Tired:
		return p > 0.5 && s.energy > 0.2
	case state.Active:
		return p > 0.3
	}
	return p > 0.1
}

// adjustCadence: 10 / 7 / 5 / 3 s by mood, doubled below half budget.
func (s *seedState) cadence() time.Duration {
	var c time.Duration
	switch s.mood {
	case state.Overwhelmed:
		c = 10 * time.Second
	case state.Tired:
		c = 7 * time.Second
	case state.Active:
		c = 5 * time.Second
	default:
		c = 3 * time.Second
	}
	if s.budget < 0.5 {
		c *= 2
	}
	return c
}

// seedActor is one PersonaUser of the seed.
type seedActor struct {
	st        seedState
	q         []int32 // the inbox: sorted by priority, highest first, stable
	clock     time.Duration
	proc      []int32 // toProcess of the current processMessages
	procI     int
	procStart int64
	cur       int32 // delivery being handled; -1 none
	phase     uint8
	cycles    int64
}

func (r *run) initSeed() {
	for _, a := range r.actors {
		a.seed = &seedActor{st: newSeedState(), clock: 5 * time.Second, cur: -1}
		// The constructor starts the autonomous life at once.
		r.at(0, evWork, a.idx, 0)
	}
}

// seedDeliver is PersonaInbox.enqueue: when full, drop the lowest (gone);
// then insert in order. Binary insertion after equal priorities gives the
// same order as the seed's stable re-sort on every enqueue.
func (r *run) seedDeliver(di int32) {
	d := &r.dels[di]
	d.prio = r.priority(d)
	a := r.actors[d.persona]
	s := a.seed
	if len(s.q) >= a.capacity {
		last := s.q[len(s.q)-1]
		s.q = s.q[:len(s.q)-1]
		r.dels[last].flags |= fRemoved | fDropped
		r.m.dropped++
	}
	lo, hi := 0, len(s.q)
	for lo < hi {
		mid := (lo + hi) / 2
		if r.dels[s.q[mid]].prio >= d.prio {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	s.q = append(s.q, 0)
	copy(s.q[lo+1:], s.q[lo:])
	s.q[lo] = di
}

// seedCycle is one turn of startAutonomousLife's while loop.
func (r *run) seedCycle(a *actor) {
	s := a.seed
	s.cycles++
	a.wakes[trScan]++
	s.st.inboxLoad = len(s.q)
	if len(s.q) > 0 {
		s.proc = s.proc[:0]
		for _, di := range s.q[:min(seedPeek, len(s.q))] {
			if s.st.shouldEngage(r.dels[di].prio) {
				s.proc = append(s.proc, di)
			}
		}
		if len(s.proc) > 0 {
			s.procI, s.procStart = 0, r.now
			r.seedNext(a)
			return
		}
		s.st.rest(s.clock)
	} else {
		s.st.rest(2 * s.clock)
	}
	r.seedSleep(a)
}

// seedSleep: adjustCadence, then sleep(internalClock).
func (r *run) seedSleep(a *actor) {
	s := a.seed
	s.clock = s.st.cadence()
	r.at(r.now+int64(s.clock), evWork, a.idx, 0)
}

// seedNext is processMessages' for loop: it pops the inbox's top (the
// seed's bug: not the message it chose), then handles the chosen one.
func (r *run) seedNext(a *actor) {
	s := a.seed
	if s.procI == len(s.proc) {
		took := r.now - s.procStart
		a.busy += took
		s.st.recordActivity(time.Duration(took), float64(len(s.proc)))
		s.proc, s.procI = s.proc[:0], 0
		r.seedSleep(a)
		return
	}
	chosen := s.proc[s.procI]
	s.procI++
	if len(s.q) > 0 {
		top := s.q[0]
		copy(s.q, s.q[1:])
		s.q = s.q[:len(s.q)-1]
		r.dels[top].flags |= fRemoved
	}
	d := &r.dels[chosen]
	if d.start < 0 {
		d.start = r.now
	}
	// handleChatMessage: evaluate with the model.
	s.cur, s.phase = chosen, phEval
	r.m.evaluations++
	r.callModel(a.idx, callEval, chosen)
}

func (r *run) seedCallDone(c call) {
	a := r.actors[c.persona]
	s := a.seed
	switch c.kind {
	case callEval:
		d := &r.dels[c.ref]
		if d.flags&fProcessed != 0 {
			r.m.duplicates++ // processed again: it stayed in the inbox
		}
		d.flags |= fProcessed
		mi := d.msg
		conf, intent := r.intent(a, &r.msgs[mi], r.msgs[mi].mention == a.idx)
		s.phase = phAwait
		if !r.think(mi, c.ref, conf, intent, false) {
			r.seedDecided(a.idx, mi)
		}
	case callReply:
		r.postReply(a.idx, c.ref, nil)
		s.cur, s.phase = -1, phNone
		r.seedNext(a)
	}
}

// seedDecided: waitForDecision returns.
func (r *run) seedDecided(p, mi int32) {
	s := r.actors[p].seed
	if s.phase != phAwait || s.cur < 0 || r.dels[s.cur].msg != mi {
		return
	}
	s.phase = phDone
	r.at(r.now, evResume, p, 0)
}

func (r *run) seedResume(a *actor) {
	s := a.seed
	if s.phase != phDone {
		return
	}
	mi := r.dels[s.cur].msg
	if r.isGranted(mi, a.idx) {
		// respondToMessage: one more model call; no guards in the seed.
		s.phase = phReply
		r.callModel(a.idx, callReply, mi)
		return
	}
	s.cur, s.phase = -1, phNone
	r.seedNext(a)
}
