package govern

import (
	"sync"
	"sync/atomic"
)

// Governor holds the system's current thermal state. One driver (the
// Sampler in real time, the simulator in virtual time) calls Observe; every
// persona step reads Adjust, which is a lock-free atomic load.
//
// The zero value is a Governor with the default Policy in the Nominal
// state, not idle. A nil *Governor answers the read methods as a Nominal,
// never-idle governor, so code may run without one. Safe for concurrent
// use.
type Governor struct {
	policy Policy
	mu     sync.Mutex // serialises Observe's read-modify-write
	snap   atomic.Pointer[snapshot]
}

// snapshot is published whole so that readers see a state, its adjustment
// and the observation behind it consistently.
type snapshot struct {
	state    Thermal
	adjust   Adjustment
	in       Inputs
	pressure float64
}

var initial = &snapshot{state: Nominal, adjust: Nominal.Adjust()}

// New returns a Governor in the Nominal state that applies p.
func New(p Policy) *Governor {
	return &Governor{policy: p}
}

// Policy returns the policy the governor applies, defaults not filled in.
func (g *Governor) Policy() Policy {
	if g == nil {
		return Policy{}
	}
	return g.policy
}

// Observe records one observation and returns the new state.
func (g *Governor) Observe(in Inputs) Thermal {
	_, to, _ := g.observe(in)
	return to
}

// observe returns the state before and after and the pressure, atomically
// with respect to other observers, so a transition is reported exactly once.
func (g *Governor) observe(in Inputs) (from, to Thermal, pressure float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	from = g.load().state
	pr := g.policy.Pressure(in)
	to = g.policy.next(from, pr)
	adj := to.Adjust()
	adj.CatchUp = to == Nominal && g.policy.idle(pr)
	g.snap.Store(&snapshot{state: to, adjust: adj, in: in, pressure: pr})
	return from, to, pr
}

func (g *Governor) load() *snapshot {
	if g == nil {
		return initial
	}
	if s := g.snap.Load(); s != nil {
		return s
	}
	return initial
}

// State returns the current thermal state.
func (g *Governor) State() Thermal { return g.load().state }

// Adjust returns what the current state asks of a persona: multiply the
// cadence, shift non-urgent thresholds (state.State.ShouldEngage), and
// catch up deferred work when CatchUp is set. It does not allocate or lock;
// call it on every persona step.
func (g *Governor) Adjust() Adjustment { return g.load().adjust }

// Idle reports whether the last observation left the system Nominal and
// under the idle line: deferred work may be caught up now.
func (g *Governor) Idle() bool { return g.load().adjust.CatchUp }

// Last returns the last observation and its pressure (zero before the
// first), for metrics and the dashboard.
func (g *Governor) Last() (Inputs, float64) {
	s := g.load()
	return s.in, s.pressure
}
