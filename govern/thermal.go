package govern

import "fmt"

// Thermal is the system's thermal state, named after the states a phone
// reports (seed: "Like mobile AR thermal management"). The zero value is
// Nominal. States are ordered: a greater value is hotter.
type Thermal int

// The thermal states, coolest first.
const (
	Nominal  Thermal = iota // full speed; deferred work may be caught up when idle
	Fair                    // easing off early so the ceiling is approached, not overshot
	Serious                 // at the duty-cycle ceiling: halve the rhythm of non-urgent work
	Critical                // well past the ceiling: shed nearly all non-urgent work
)

var thermalNames = [...]string{"nominal", "fair", "serious", "critical"}

// String returns the lower-case name ("nominal", "fair", "serious", "critical").
func (t Thermal) String() string {
	if t.valid() {
		return thermalNames[t]
	}
	return fmt.Sprintf("Thermal(%d)", int(t))
}

func (t Thermal) valid() bool { return t >= Nominal && t <= Critical }

// MarshalText encodes the state by name, so JSON and logs read "serious"
// rather than 2.
func (t Thermal) MarshalText() ([]byte, error) {
	if !t.valid() {
		return nil, fmt.Errorf("govern: marshal thermal state %d: out of range", int(t))
	}
	return []byte(thermalNames[t]), nil
}

// UnmarshalText decodes a name written by MarshalText.
func (t *Thermal) UnmarshalText(b []byte) error {
	for i, n := range thermalNames {
		if string(b) == n {
			*t = Thermal(i)
			return nil
		}
	}
	return fmt.Errorf("govern: unknown thermal state %q", b)
}

// Adjustment is what a thermal state asks of every persona. The zero value
// is not neutral (a cadence multiplier of 0); use Nominal.Adjust() for the
// neutral adjustment.
type Adjustment struct {
	// CadenceMultiplier scales the persona's scan cadence: 2 means wait
	// twice as long between scans. It never delays urgent work, because an
	// urgent arrival wakes a persona at once whatever its cadence (the
	// demand trigger).
	CadenceMultiplier float64
	// ThresholdShift is added to the engagement threshold of non-urgent
	// items only: state.State.ShouldEngage applies it, and never to an
	// item at or above the urgent line.
	ThresholdShift float64
	// CatchUp is true when the system is idle: personas may re-admit
	// deferred work (seed: "If system idle ... catch up on deferred work").
	CatchUp bool
	// Share is each persona's bandwidth: the fraction of time it may spend
	// on non-urgent work, replenished continuously (a constant-bandwidth
	// server's budget; see persona.Options.BandwidthPeriod). 1, or zero,
	// means no limit: while the machine is cool a persona with engageable
	// work keeps working (work-conserving). Urgent work is served at once,
	// inside or beyond the share.
	Share float64
}

// Cool reports whether the adjustment leaves the machine's headroom to the
// personas: no bandwidth limit.
func (a Adjustment) Cool() bool { return a.Share <= 0 || a.Share >= 1 }

// adjustments: the cadence multipliers and threshold shifts per state.
// Serious doubles the cadence because at the ceiling halving the scan
// rate roughly halves the non-urgent work started, which brings the duty
// cycle back under the ceiling; fair eases off half as much to avoid
// overshoot; critical quarters it, leaving room for urgent work alone. The
// shifts grow faster than linearly so that serious and critical shed the
// low end of the priority range first (a tired persona's 0.5 threshold
// becomes 0.8 at critical: only near-urgent work passes).
//
// Fair is entered below the ceiling, where no engageable work may be left
// to wait or expire: it only slows how often personas look on their own.
// From serious on (the duty at the ceiling) the shares shrink, so that the
// system's duty falls back under it within a few seconds of feedback:
// serious lets each persona work a quarter of the time on ordinary work,
// critical a tenth, with urgent work exempt; nominal and fair are
// work-conserving (no limit).
var adjustments = [...]Adjustment{
	Nominal:  {CadenceMultiplier: 1, ThresholdShift: 0, Share: 1},
	Fair:     {CadenceMultiplier: 1.5, ThresholdShift: 0, Share: 1},
	Serious:  {CadenceMultiplier: 2, ThresholdShift: 0.15, Share: 0.25},
	Critical: {CadenceMultiplier: 4, ThresholdShift: 0.3, Share: 0.1},
}

// Adjust returns the state's cadence multiplier and threshold shift.
// CatchUp is always false here: whether to catch up depends on the
// pressure, not the state alone; Governor.Adjust sets it. An out-of-range
// state is treated as Critical, the safe side.
func (t Thermal) Adjust() Adjustment {
	switch {
	case t < Nominal:
		return adjustments[Nominal]
	case t > Critical:
		return adjustments[Critical]
	}
	return adjustments[t]
}
