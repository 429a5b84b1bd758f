package sim

import (
	"math"
	"strconv"

	"github.com/personaos/persona/coord"
)

// The coordination stream: every run drives one coord.Core, the decision
// logic coord.Stream drives in real time, in virtual time. The simulator
// only chooses what each policy's producer opens, arms one event at the
// core's next deadline, and hands the decisions the core returns to the
// thinkers and to the report.

// newCore is the scenario's stream. Zero fields already hold coord's
// defaults (Scenario.withDefaults).
func newCore(c Coordination) *coord.Core {
	return coord.NewCore(coord.Options{
		Window:                 c.Window,
		MinWindow:              c.MinWindow,
		MaxWindow:              c.MaxWindow,
		FixedWindow:            c.Fixed,
		K:                      c.K,
		WindowFromFirstThought: c.FromFirstThought,
		Patience:               c.Patience,
	})
}

// itemID is message mi's item ID, as the observer's events name it.
func itemID(mi int32) string { return "m" + strconv.Itoa(int(mi)) }

// msgOf is the message an item ID names.
func msgOf(item string) int32 {
	mi, err := strconv.Atoi(item[1:])
	if err != nil {
		panic("sim: decision on a foreign item " + item)
	}
	return int32(mi)
}

// open opens message mi's decision at delivery as the baselines' producers
// do. The persona policy opens nothing here: as the daemon, it opens a
// decision when the first persona evaluates the message, with the thinkers
// chat.Settings.Expected names (openOn, chat.go). The old flow (direct)
// coordinates on every recipient's evaluation, with no window
// (coord.Opening.Unbounded). The seed only enqueues: its first thought
// opens the item (coord.Core.Think opens unknown items).
func (r *run) open(mi int32) {
	if r.pol != Direct {
		return
	}
	m := &r.msgs[mi]
	expected, addr := r.expBuf[:0], r.addrBuf[:0]
	for i := m.first; i < m.first+m.n; i++ {
		d := &r.dels[i]
		expected = append(expected, r.actors[d.persona].name)
		if d.persona == m.mention {
			addr = append(addr, r.actors[d.persona].name)
		}
	}
	r.expBuf, r.addrBuf = expected, addr // the core copies what it keeps
	r.m.decisions++
	r.publish(r.co.Open(r.t(r.now), coord.Opening{Item: m.id, Key: r.roomKeys[m.room],
		Expected: expected, Addressees: addr, Unbounded: true}))
}

// think broadcasts persona p's thought on message mi (delivery di), as
// coord.Stream.Think does; addressed is Thought.Addressed (the item, or an
// item merged into it, names the thinker). It reports whether the thinker
// must await the decision; when it need not, the decision is already made
// and isGranted says whether it is granted. A thought after the decision
// closed is late: the core grants it at once if the thinker is an
// addressee or addressed (it amends the decision), and otherwise the
// decision stands without it.
func (r *run) think(mi, di int32, conf float64, intent coord.Intent, addressed bool) bool {
	m := &r.msgs[mi]
	d := &r.dels[di]
	now := r.t(r.now)
	st := r.co.State(m.id)
	if st == coord.ItemUnknown {
		r.m.decisions++ // the thought opens the item
	}
	ds, err := r.co.Think(now, coord.Thought{Persona: r.actors[d.persona].name, Item: m.id, Key: r.roomKeys[m.room],
		Confidence: conf, Intent: intent, Addressed: addressed, At: now})
	d.flags |= fThought | fSpoke
	if st == coord.ItemDecided {
		r.m.lateThoughts++
		d.flags |= fLate
		if err == nil { // amended: granted late
			m.granted = append(m.granted, d.persona)
			r.m.lateGrants++
			r.m.granted++
			return false
		}
		r.m.notGranted++
		return false
	}
	if err != nil {
		panic("sim: " + err.Error()) // an invalid thought is a bug here
	}
	r.publish(ds)
	return true
}

// withdraw tells the decision that persona's delivery di will not think,
// or no longer stands by its thought (coord.Stream.Leave: a decided or
// forgotten item is left alone). As the runtime, it leaves every time the
// cycle says so, after a thought too: a persona preempted while it awaits
// the decision leaves it, and the decision does not grant it.
func (r *run) withdraw(di int32) {
	d := &r.dels[di]
	d.flags |= fSpoke
	r.publish(r.co.Leave(r.t(r.now), r.msgs[d.msg].id, r.actors[d.persona].name))
}

// windowEnds is the event at the core's earliest deadline: the items whose
// window (or patience) ended close. An event left behind by an earlier
// deadline finds nothing due.
func (r *run) windowEnds() {
	if r.now >= r.expireAt {
		r.expireAt = math.MaxInt64
	}
	r.publish(r.co.Expire(r.t(r.now)))
}

// publish hands the decisions the core closed to their thinkers and the
// report, and keeps an event at the core's next deadline: the one timer
// coord.Stream arms.
func (r *run) publish(ds []coord.Decision) {
	for i := range ds {
		d := &ds[i]
		mi := msgOf(d.Item)
		m := &r.msgs[mi]
		if d.TimedOut {
			r.m.timedOut++
		}
		for _, n := range d.Granted {
			m.granted = append(m.granted, r.actorIdx[n])
		}
		for _, t := range d.Thoughts {
			p := r.actorIdx[t.Persona]
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
	if next, ok := r.co.NextDeadline(); ok {
		if at := int64(next.Sub(r.epoch)); at < r.expireAt {
			r.expireAt = at
			r.at(max(at, r.now), evDecision, 0, 0)
		}
	}
}

// isGranted reports whether persona p was granted on message mi, by any
// decision published for it (late grants included).
func (r *run) isGranted(mi, p int32) bool {
	for _, g := range r.msgs[mi].granted {
		if g == p {
			return true
		}
	}
	return false
}

// decided reports whether the decision on mi is closed and the stream
// still remembers it (coord.Stream.Decision): a forgotten one is opened
// anew by a thought, as in the runtime.
func (r *run) decided(mi int32) bool { return r.co.State(r.msgs[mi].id) == coord.ItemDecided }
