package govern

import "time"

// DefaultWindow is the span over which a Feed averages the rates (duty and
// CPU). Ten seconds is the seed's longest cadence: the governor sees at
// least one whole rhythm of every persona, and a model call that lasts
// seconds is not all-or-nothing as it is in a one-second window.
const DefaultWindow = 10 * time.Second

// Sample is one reading of the raw measurements at one moment. Counters are
// cumulative totals since some fixed start (only their differences between
// two samples mean anything, so a total that wraps around is harmless);
// levels are what holds at the moment of the reading. The zero value reads
// as an idle machine with no compute budget and no CPU measurement.
type Sample struct {
	// Busy is the handler time accrued so far, as Meter.Read returns it:
	// the counter behind Duty.
	Busy time.Duration
	// CPU is the CPU time of what is governed so far, read only when HasCPU
	// is set: the counter behind Inputs.CPU.
	CPU time.Duration
	// HasCPU says CPU was read. A failed read leaves it false: CPU is then
	// zero for this sample, and later ones measure it from the oldest
	// sample in their window that has it.
	HasCPU bool
	// InFlight is the number of handlers running now.
	InFlight int
	// Cores is the number of cores the system may use now. Zero means
	// unknown: Duty and CPU are then zero and InFlight is ignored.
	Cores int
	// Load is the total inbox depth over the total inbox capacity now, 0..1.
	Load float64
	// BudgetSpent is 1 minus the compute budget's level now (tokens over
	// burst, clamped to 0..1); zero for a full bucket or no budget.
	BudgetSpent float64
}

// FeedOptions configures a Feed. The zero value is valid: a DefaultWindow.
type FeedOptions struct {
	// Window is the span the rates are averaged over. Zero or negative
	// means DefaultWindow.
	Window time.Duration
}

// Feed turns samples into the Inputs a Governor observes, with one rule for
// every driver: counters become rates averaged over the last Window (exact,
// from the totals at the window's two ends, however irregular the samples
// in between), divided by the cores of the latest sample; levels (InFlight,
// Load, BudgetSpent) are the latest reading, because they are already
// states and the policy's hysteresis is what steadies them. Until a whole
// Window has passed since the first sample the rates are over what there
// is; the first sample itself gives rates of zero, since a rate needs a
// window.
//
// The real-time Sampler and the simulator's tick both run a Feed, so the
// governor sees the same quantities, smoothed the same way, in production
// and in virtual time. Feed is pure: it reads no clock; now is an argument.
//
// A further measurement of heat (model-slot time, say) is one more counter
// in Sample and one more rate in Observe: the window and the rule stay.
//
// The zero value is ready to use with a DefaultWindow. Not safe for
// concurrent use: one driver owns a Feed. Its memory is bounded by the
// samples that fit in one Window.
type Feed struct {
	window time.Duration
	marks  []mark // oldest first; marks[0] is the window's start
}

// mark is a sample and when it was taken.
type mark struct {
	at time.Time
	Sample
}

// NewFeed returns a Feed with the given options.
func NewFeed(opts FeedOptions) *Feed {
	return &Feed{window: opts.Window}
}

// Window returns the span the rates are averaged over.
func (f *Feed) Window() time.Duration {
	if f.window <= 0 {
		return DefaultWindow
	}
	return f.window
}

// Observe records the sample s taken at now and returns the Inputs for the
// governor. A sample at or before the previous one (a clock stepped back,
// or two readings at one instant) restarts the window at it, so a rate is
// never taken over an empty or negative span.
func (f *Feed) Observe(now time.Time, s Sample) Inputs {
	m := mark{at: now, Sample: s}
	if n := len(f.marks); n > 0 && !now.After(f.marks[n-1].at) {
		f.marks = f.marks[:0]
	}
	f.marks = append(f.marks, m)
	// Keep as the start the latest mark at or before now - Window: the
	// rates then cover the whole window (and a little more when samples
	// are sparse), never less once a window has passed.
	from := now.Add(-f.Window())
	drop := 0
	for drop+1 < len(f.marks) && !f.marks[drop+1].at.After(from) {
		drop++
	}
	if drop > 0 {
		f.marks = append(f.marks[:0], f.marks[drop:]...)
	}

	in := Inputs{Load: s.Load, InFlight: s.InFlight, Cores: max(s.Cores, 0), BudgetSpent: s.BudgetSpent}
	start := f.marks[0]
	elapsed := now.Sub(start.at)
	if elapsed <= 0 || in.Cores == 0 {
		return in
	}
	capacity := float64(in.Cores) * float64(elapsed) // core-nanoseconds in the window
	in.Duty = nonNeg(float64(s.Busy-start.Busy) / capacity)
	if !s.HasCPU {
		return in
	}
	for _, c := range f.marks[:len(f.marks)-1] {
		if c.HasCPU {
			in.CPU = nonNeg(float64(s.CPU-c.CPU) / (float64(in.Cores) * float64(now.Sub(c.at))))
			break
		}
	}
	return in
}
