package state

import (
	"fmt"
	"time"
)

// Mood is a persona's disposition, derived from its state.
type Mood int

const (
	Idle        Mood = iota // eager: nothing recent, energy fine
	Active                  // has been working and has energy
	Tired                   // energy below the tired line
	Overwhelmed             // inbox load above the overwhelmed line
)

var moodNames = [...]string{"idle", "active", "tired", "overwhelmed"}

func (m Mood) String() string {
	if int(m) < len(moodNames) {
		return moodNames[m]
	}
	return fmt.Sprintf("mood(%d)", int(m))
}

// MarshalText renders the mood by name.
func (m Mood) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// Config holds every number of the policy. The zero value is valid: each
// zero field takes the seed's default, documented on it.
type Config struct {
	// DrainPer: energy falls by duration/DrainPer * complexity (seed: 10s).
	DrainPer time.Duration
	// RecoverPer: energy rises by rest/RecoverPer (seed: 20s); attention
	// recovers twice as fast.
	RecoverPer time.Duration
	// TiredEnergy: below it the persona is tired and attention fatigues by
	// AttentionFatigue per unit of work (seed: 0.3 and 0.9).
	TiredEnergy      float64
	AttentionFatigue float64
	// ActiveEnergy: a persona that responded recently and has more energy
	// than this is active (seed: 0.5).
	ActiveEnergy float64
	// ActiveWindow: responses older than this no longer make a persona
	// active; the seed's counter never reset, so one answer made it active
	// forever (default 60s of rest resets it).
	ActiveWindow time.Duration
	// OverwhelmedLoad: inbox depth / capacity above which the persona is
	// overwhelmed. The seed used an absolute 50 of a 1000 inbox; we keep the
	// ratio (default 0.05).
	OverwhelmedLoad float64
	// Urgent is the inclusive line at or above which an item is always
	// engaged (seed: 0.8, exclusive there).
	Urgent float64
	// Thresholds by mood: engage an item whose priority is above it (seed:
	// overwhelmed 0.9, tired 0.5, active 0.3, idle 0.1). A tired persona also
	// needs energy above TiredFloor (seed: 0.2).
	ThresholdIdle, ThresholdActive, ThresholdTired, ThresholdOverwhelmed float64
	TiredFloor                                                           float64
	// AttentionWeight raises thresholds by (1-attention)*weight: a fatigued
	// persona is pickier (default 0.1; the seed computed attention and never
	// used it).
	AttentionWeight float64
	// Cadence by mood (seed: idle 3s, active 5s, tired 7s, overwhelmed 10s),
	// multiplied by BudgetSlowdown when the compute budget is below BudgetLow
	// (seed: x2 below 0.5). A negative cadence means "scan again at once":
	// useful for pipelines and benchmarks that want no rhythm at all.
	CadenceIdle, CadenceActive, CadenceTired, CadenceOverwhelmed time.Duration
	BudgetLow                                                    float64
	BudgetSlowdown                                               float64
}

// Defaults returns c with every zero field set to its default.
func (c Config) Defaults() Config {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defd(&c.DrainPer, 10*time.Second)
	defd(&c.RecoverPer, 20*time.Second)
	def(&c.TiredEnergy, 0.3)
	def(&c.AttentionFatigue, 0.9)
	def(&c.ActiveEnergy, 0.5)
	defd(&c.ActiveWindow, time.Minute)
	def(&c.OverwhelmedLoad, 0.05)
	def(&c.Urgent, 0.8)
	def(&c.ThresholdIdle, 0.1)
	def(&c.ThresholdActive, 0.3)
	def(&c.ThresholdTired, 0.5)
	def(&c.ThresholdOverwhelmed, 0.9)
	def(&c.TiredFloor, 0.2)
	def(&c.AttentionWeight, 0.1)
	defd(&c.CadenceIdle, 3*time.Second)
	defd(&c.CadenceActive, 5*time.Second)
	defd(&c.CadenceTired, 7*time.Second)
	defd(&c.CadenceOverwhelmed, 10*time.Second)
	def(&c.BudgetLow, 0.5)
	def(&c.BudgetSlowdown, 2)
	return c
}

// State is a persona's internal state. Its methods are pure functions of
// the state, the Config and the arguments: no clock inside. The zero value
// is not useful; start from New. A State is a value owned by one persona
// loop; it is not safe for concurrent use.
type State struct {
	Energy       float64       // 0..1, falls with work, rises with rest
	Attention    float64       // 0..1, fatigues when energy is low
	Load         float64       // inbox depth / capacity
	Budget       float64       // compute budget 0..1 (1 = plenty)
	Responses    int           // work done in the active window
	LastActivity time.Time     // end of the last unit of work
	Rested       time.Duration // rest since the last work
	Mood         Mood

	cfg Config
}

// New returns a fresh state: full energy and attention, idle, full budget.
func New(cfg Config) State {
	return State{Energy: 1, Attention: 1, Budget: 1, Mood: Idle, cfg: cfg.Defaults()}
}

// Config returns the policy numbers in force.
func (s *State) Config() Config { return s.cfg }

// Observe records the inbox load and the compute budget, and updates the
// mood.
func (s *State) Observe(load, budget float64) {
	s.Load = load
	s.Budget = budget
	s.Mood = s.mood()
}

// RecordActivity accounts one unit of work that ended at now and took d, of
// the given complexity (1 for an ordinary item). Energy falls by
// d/DrainPer*complexity; below the tired line attention fatigues.
//
// The seed charged a whole slice's duration times the number of messages in
// it, counting each message's time once per message; charging each item its
// own duration keeps the seed's rate without that square.
func (s *State) RecordActivity(now time.Time, d time.Duration, complexity float64) {
	if complexity <= 0 {
		complexity = 1
	}
	s.Energy = clamp01(s.Energy - d.Seconds()/s.cfg.DrainPer.Seconds()*complexity)
	if s.Energy < s.cfg.TiredEnergy {
		s.Attention *= s.cfg.AttentionFatigue
	}
	s.LastActivity = now
	s.Responses++
	s.Rested = 0
	s.Mood = s.mood()
}

// Rest accounts d of rest: energy rises by d/RecoverPer, attention twice as
// fast. Rest longer than the active window clears the response count.
func (s *State) Rest(d time.Duration) {
	if d <= 0 {
		return
	}
	r := d.Seconds() / s.cfg.RecoverPer.Seconds()
	s.Energy = clamp01(s.Energy + r)
	s.Attention = clamp01(s.Attention + 2*r)
	s.Rested += d
	if s.Rested >= s.cfg.ActiveWindow {
		s.Responses = 0
	}
	s.Mood = s.mood()
}

func (s *State) mood() Mood {
	if s.Load > s.cfg.OverwhelmedLoad {
		return Overwhelmed
	}
	return s.moodUnloaded()
}

// moodUnloaded is the mood the persona would have with an empty inbox.
func (s *State) moodUnloaded() Mood {
	switch {
	case s.Energy < s.cfg.TiredEnergy:
		return Tired
	case s.Responses > 0 && s.Energy > s.cfg.ActiveEnergy:
		return Active
	}
	return Idle
}

// Threshold returns the priority an item must exceed to be engaged now,
// raised by the governor's shift and by lost attention.
func (s *State) Threshold(shift float64) float64 { return s.threshold(s.Mood, shift) }

func (s *State) threshold(m Mood, shift float64) float64 {
	var t float64
	switch m {
	case Overwhelmed:
		t = s.cfg.ThresholdOverwhelmed
	case Tired:
		t = s.cfg.ThresholdTired
	case Active:
		t = s.cfg.ThresholdActive
	default:
		t = s.cfg.ThresholdIdle
	}
	return t + shift + (1-s.Attention)*s.cfg.AttentionWeight
}

// ShouldEngage decides whether to engage an item of the given effective
// priority. An item at or above the urgent line is always engaged, whatever
// the mood, energy or governor (no starvation); the governor's shift only
// raises the bar for the rest.
func (s *State) ShouldEngage(priority, shift float64) bool {
	return s.shouldEngage(s.Mood, priority, shift)
}

// ShouldEngageCool is ShouldEngage on a machine with headroom: an
// overwhelmed persona is judged by the mood it would have without its load
// (tired, active or idle), so that it catches up instead of raising its bar
// to the overwhelmed threshold and idling while its inbox overflows. What
// it cannot take is shed by the inbox (deferred, lowest first) and by
// merging; the overwhelmed threshold applies once the machine runs hot.
func (s *State) ShouldEngageCool(priority, shift float64) bool {
	m := s.Mood
	if m == Overwhelmed {
		m = s.moodUnloaded()
	}
	return s.shouldEngage(m, priority, shift)
}

func (s *State) shouldEngage(m Mood, priority, shift float64) bool {
	if priority >= s.cfg.Urgent {
		return true
	}
	if m == Tired && s.Energy <= s.cfg.TiredFloor {
		return false
	}
	return priority > s.threshold(m, shift)
}

// Cadence returns the time until the next scan: by mood, doubled when the
// compute budget is low, times the governor's multiplier (1 when <= 0).
func (s *State) Cadence(multiplier float64) time.Duration {
	var c time.Duration
	switch s.Mood {
	case Overwhelmed:
		c = s.cfg.CadenceOverwhelmed
	case Tired:
		c = s.cfg.CadenceTired
	case Active:
		c = s.cfg.CadenceActive
	default:
		c = s.cfg.CadenceIdle
	}
	if c < 0 {
		return 0
	}
	f := 1.0
	if s.Budget < s.cfg.BudgetLow {
		f = s.cfg.BudgetSlowdown
	}
	if multiplier > 0 {
		f *= multiplier
	}
	return time.Duration(float64(c) * f)
}

func clamp01(v float64) float64 {
	return min(1, max(0, v))
}
