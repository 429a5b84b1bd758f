// Package persona is an RTOS-inspired runtime for autonomous workers
// ("personas"): AI chat personas, vision stages, game players.
//
// Work is delivered to a persona's inbox (Persona.Deliver), never invoked on
// it. Each persona runs its own life cycle: it looks at its inbox when it
// has capacity, decides for itself what to engage with (priority against its
// energy, attention, mood and load; see package state), works a time slice
// of at most Options.SliceItems items or Options.SliceDuration, rests, picks
// its next cadence, and yields. It wakes for one of three triggers:
//
//   - demand: an item at or above the urgent line (0.8) arrives; a resting
//     persona starts on it at once, not after its cadence;
//   - dependency: Persona.Wake, or a prerequisite persona finishing the item
//     this one waits for;
//   - scan: its own cadence elapsed. Non-urgent items wait for it, so they
//     are batched into one slice: the persona's rhythm.
//
// An idle persona with an empty inbox holds neither a goroutine nor a timer,
// so ten thousand of them cost memory and nothing else.
//
// # Guarantees
//
// Nothing is lost silently: every delivered item ends in exactly one account
// (handled, declined, expired, failed) or is still queued, deferred or in
// flight, and Snapshot().Counts.Balanced() checks the sum. A full inbox
// defers its lowest item for later catch-up; urgent items are never
// deferred while a non-urgent one is queued. A handler that panics or errs
// is recovered, counted, retried up to Options.MaxAttempts and backed off;
// the persona lives on. Runtime.Shutdown stops every goroutine the runtime
// started and reports the items left behind.
//
// # Concurrency
//
// Deliver is safe from any number of goroutines. A persona's handler runs in
// one goroutine at a time. The policy itself (packages inbox and state) is
// pure and takes time as an argument, so the simulator (package sim) runs
// the very same decisions in virtual time.
//
// # Testing code that uses it
//
// The runtime uses the real clock through time.Now and time.AfterFunc, so
// tests run it inside testing/synctest bubbles: time advances only when
// every goroutine is blocked, and synctest.Wait settles the loops.
package persona
