package govern

import "math"

// Inputs is one observation of the whole system over a sample window, as a
// Feed makes it from Samples. The
// zero value describes an idle machine with no compute budget configured:
// every field is chosen so that "unknown" reads as zero pressure.
type Inputs struct {
	// Load is the total inbox depth over the total inbox capacity, 0..1.
	// It is reported, not heat: a deep inbox tells a persona what to shed
	// (defer, decline, merge), never how hot the machine is. Feeding it
	// into the pressure made overloaded personas slow down on an idle
	// machine, a feedback loop that starved it.
	Load float64
	// InFlight is the number of handlers running at the end of the window.
	InFlight int
	// Cores is the number of cores the system may use. Zero means unknown:
	// InFlight is then ignored.
	Cores int
	// Duty is handler time over cores*window: the busy fraction of the
	// machine. It exceeds 1 when handlers outnumber cores. A Feed computes
	// it from Sample.Busy, in the Sampler and in the simulator alike.
	Duty float64
	// CPU is the process's CPU time over cores*window, 0..1, computed by a
	// Feed from Sample.CPU. Zero when not measured (the simulator does not).
	CPU float64
	// BudgetSpent is how much of the compute budget for model calls is used
	// up: 1 - tokens/burst of the token bucket, 0..1. Zero means a full
	// bucket or no budget at all, so an unset field never throttles.
	BudgetSpent float64
}

// Pressure lines on the single pressure score (see Policy.Pressure). A
// pressure of 1 means some input is exactly at its limit.
//
//   - serious at 1.0: the duty cycle has reached the ceiling; doubling the
//     cadence there is what pulls it back under.
//   - fair at 0.75: a quarter of the headroom left; easing off early makes
//     the duty cycle approach the ceiling instead of overshooting it, the
//     way a phone dims before it throttles.
//   - critical at 1.3: with the default ceiling 0.7 that is a duty cycle of
//     0.91, a machine nearly saturated, where contention starts to delay
//     urgent work itself.
const (
	fairLine     = 0.75
	seriousLine  = 1.0
	criticalLine = 1.3
)

var entryLines = [...]float64{Nominal: math.Inf(-1), Fair: fairLine, Serious: seriousLine, Critical: criticalLine}

// Policy defaults.
const (
	// DefaultCeiling is the duty-cycle ceiling as a fraction of the machine
	// (issue 4: "default 0.7 of the machine").
	DefaultCeiling = 0.7
	// DefaultHysteresis is how far below a state's entry line the pressure
	// must fall before the state is left. 0.05 is a fifth of the gap
	// between lines: wide enough that jitter around a line does not flap,
	// narrow enough that a state is left soon after its cause is gone.
	DefaultHysteresis = 0.05
	// DefaultIdleBelow is the pressure under which the system counts as
	// idle: every input uses less than half of its limit, so catching up
	// deferred work cannot by itself push the system past fair.
	DefaultIdleBelow = 0.5
	// oversubscription: handlers per core at which InFlight alone reaches
	// the serious line. InFlight is a snapshot, not a window, so it is
	// judged leniently: a full core is normal; two handlers per core is
	// contention.
	oversubscription = 2
)

// Policy turns observations into thermal states. It is pure: no clock, no
// goroutines, so the real-time Sampler and the simulator run the same code.
// The zero value is the default policy; every field's zero means its
// default. A Policy is a value and safe for concurrent use.
type Policy struct {
	// Ceiling is the duty-cycle ceiling, a fraction of the machine in
	// (0, 1]. Zero, negative or NaN means DefaultCeiling; above 1 means 1.
	Ceiling float64
	// Hysteresis: a state is left only when the pressure falls this far
	// below its entry line. Zero means DefaultHysteresis; negative means
	// none.
	Hysteresis float64
	// IdleBelow is the pressure under which the system is idle and deferred
	// work may be caught up. Zero means DefaultIdleBelow; negative means
	// never idle.
	IdleBelow float64
}

// withDefaults fills in the defaults, in one place.
func (p Policy) withDefaults() Policy {
	switch {
	case !(p.Ceiling > 0):
		p.Ceiling = DefaultCeiling
	case p.Ceiling > 1:
		p.Ceiling = 1
	}
	switch {
	case p.Hysteresis == 0 || math.IsNaN(p.Hysteresis):
		p.Hysteresis = DefaultHysteresis
	case p.Hysteresis < 0:
		p.Hysteresis = 0
	}
	switch {
	case p.IdleBelow == 0 || math.IsNaN(p.IdleBelow):
		p.IdleBelow = DefaultIdleBelow
	case p.IdleBelow < 0:
		p.IdleBelow = math.Inf(-1)
	}
	return p
}

// Pressure scores an observation by its heat, measured work: the largest
// of
//
//	Duty / Ceiling                  the duty cycle against its ceiling
//	CPU / Ceiling                   process CPU against the same ceiling
//	InFlight / (2 * Cores)          oversubscription of the cores right now
//	BudgetSpent                     compute budget used up, at most 1
//
// The largest, not a weighted sum, because any one resource at its limit is
// enough reason to slow down, as a phone throttles on its hottest sensor.
// The budget is capped at 1 so that an empty bucket can make the system
// serious but never critical: critical is reserved for heat (duty, CPU,
// oversubscription), where the machine itself is at risk. Inbox Load is
// not heat and does not count. Unknown inputs (NaN, negative) count as
// zero.
func (p Policy) Pressure(in Inputs) float64 {
	p = p.withDefaults()
	pr := max(
		nonNeg(in.Duty)/p.Ceiling,
		nonNeg(in.CPU)/p.Ceiling,
		min(nonNeg(in.BudgetSpent), 1),
	)
	if in.Cores > 0 && in.InFlight > 0 {
		pr = max(pr, float64(in.InFlight)/float64(oversubscription*in.Cores))
	}
	return pr
}

func nonNeg(x float64) float64 {
	if x > 0 { // false for NaN
		return x
	}
	return 0
}

// Next returns the state after observing in while in state cur. It rises
// at once, as many steps as the pressure calls for, because heat must be
// answered before it builds; it falls as soon as the pressure is
// Hysteresis below the current state's entry line, to the state that the
// pressure plus Hysteresis calls for, so a pressure hovering around a line
// does not flap, and a machine that has cooled is treated as cool at once
// (stepping down one state per sample kept a persona shedding work for
// seconds after the heat was gone).
func (p Policy) Next(cur Thermal, in Inputs) Thermal {
	return p.next(cur, p.Pressure(in))
}

func (p Policy) next(cur Thermal, pressure float64) Thermal {
	p = p.withDefaults()
	cur = min(max(cur, Nominal), Critical)
	lvl := level(pressure)
	switch {
	case lvl > cur:
		return lvl
	case lvl < cur && pressure < entryLines[cur]-p.Hysteresis:
		return min(cur-1, level(pressure+p.Hysteresis))
	}
	return cur
}

// level is the state a pressure calls for, with no history.
func level(pressure float64) Thermal {
	for t := Critical; t > Nominal; t-- {
		if pressure >= entryLines[t] {
			return t
		}
	}
	return Nominal
}

// Idle reports whether in leaves enough headroom to catch up deferred work.
// Governor.Idle further requires the state to be Nominal.
func (p Policy) Idle(in Inputs) bool {
	return p.idle(p.Pressure(in))
}

func (p Policy) idle(pressure float64) bool {
	return pressure < p.withDefaults().IdleBelow
}
