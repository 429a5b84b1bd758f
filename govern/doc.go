// Package govern is the system governor: it watches the whole machine and
// tells every persona how hard to work, the way a phone's thermal manager
// dims and throttles before it burns the user's hand (seed: "Adaptive Load
// Balancing").
//
// # Pieces
//
//   - Policy (pure): Inputs -> a pressure score -> a Thermal state
//     (Nominal, Fair, Serious, Critical) with hysteresis. No clock, no
//     goroutines: the real-time Sampler and the simulator run the same
//     code, so what the simulator measures is what production does.
//   - Feed (pure): raw Samples (cumulative handler time and CPU time,
//     handlers in flight, cores, inbox load, compute budget spent) taken
//     at an explicit now -> Inputs, with one smoothing rule: counters
//     become rates over the last Window (default 10 s), levels are the
//     latest reading. The Sampler and the simulator's tick both feed the
//     governor through a Feed, so both see the same quantities smoothed
//     the same way.
//   - Governor: holds the current state. One driver calls Observe; every
//     persona step calls Adjust, a lock-free atomic read.
//   - Meter: counts handlers in flight and accrues handler time, the
//     counter behind the duty cycle. Its methods take now, so the
//     simulator drives one in virtual time.
//   - Sampler: the real-time driver. Every second it reads process CPU
//     (getrusage), the Meter, and a Source for what only the runtime
//     knows (inbox load, compute budget spent), runs the Feed and calls
//     Observe.
//
// The compute budget itself (a token bucket for model calls) is
// golang.org/x/time/rate's Limiter, held by whoever makes the calls (the
// daemon; the simulator drives one in virtual time through AllowN,
// ReserveN and TokensAt); the governor only sees how much of it is spent.
//
// # Guarantees
//
// Pressure is heat, measured work: the largest of Duty/Ceiling,
// CPU/Ceiling, InFlight/(2*Cores) and BudgetSpent, so any one input at its
// limit is enough. Inbox depth (Inputs.Load) is reported but is not heat:
// it tells a persona what to shed, not how hot the machine is. States
// are entered at pressure 0.75 (fair), 1.0 (serious: the duty cycle is at
// its ceiling, default 0.7 of the machine) and 1.3 (critical). The state
// rises at once, as many steps as needed; it falls once the pressure is
// Hysteresis (default 0.05) below the current state's entry line, to the
// state the pressure plus Hysteresis calls for, so a pressure hovering at
// a line does not flap and a cooled machine is cool at once. An empty budget alone reaches serious at most; only heat
// reaches critical.
//
// Each state multiplies every persona's cadence, shifts the engagement
// threshold of non-urgent work and sets each persona's bandwidth share:
// nominal 1x/+0/no limit, fair 1.5x/+0/no limit (fair is below the
// ceiling, where nothing engageable may be shed), serious 2x/+0.15/0.25,
// critical 4x/+0.3/0.1. Urgent work is never slowed: an urgent
// arrival wakes its persona at once whatever the cadence, and
// state.State.ShouldEngage, which applies the shift in every driver,
// engages any item at or above the urgent line whatever the shift.
// Adjustment is declared here once; the root package's persona.Adjustment
// is the same type, so a *Governor is a persona.Governor. When the last
// observation was Nominal and under the idle line (default pressure 0.5),
// Adjust().CatchUp is set and personas may re-admit deferred work.
//
// A Feed's memory is bounded by the samples of one Window. A sample taken
// at or before the previous one restarts the window rather than producing
// a rate over an empty or negative span.
//
// # Concurrency
//
// Policy and Thermal are values. Governor and Meter are safe for
// concurrent use and their zero values work (a nil *Governor too, for the
// read methods: nominal). A Feed belongs to one driver and is not safe for
// concurrent use; its zero value works. The Sampler starts no goroutine of
// its own: Run blocks on the caller's goroutine until ctx is done, so
// whoever calls Run owns it, e.g.
//
//	var wg sync.WaitGroup
//	wg.Go(func() { sampler.Run(ctx) })
//	...
//	cancel()
//	wg.Wait()
//
// # Testing code that uses it
//
// Test policy with tables of Inputs (or drive a Governor with Observe
// directly); the Feed and the Meter take explicit times, so tables of
// Samples at fixed times test the smoothing. Run a Sampler inside
// testing/synctest with a fake Source and SamplerOptions.CPUTime: the
// ticker then runs on the bubble's fake clock, and synctest.Wait after
// advancing the clock lets the sample complete before asserting.
package govern
