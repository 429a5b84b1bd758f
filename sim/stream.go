package sim

import (
	"time"

	"github.com/personaos/persona/coord"
)

// The coordination stream as each policy drives it: decisions, windows, thoughts and grants.

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
