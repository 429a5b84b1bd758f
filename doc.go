// Package persona is an RTOS-inspired runtime for autonomous workers
// ("personas"): AI chat personas, vision stages, game players.
//
// Work is delivered to a persona's inbox (Persona.Deliver), never invoked on
// it. Each persona runs its own life cycle: it looks at its inbox when it
// has capacity, decides for itself what to engage with (priority against its
// energy, attention, mood and load; see package state), works, rests, picks
// its next cadence, and yields. It wakes for one of three triggers:
//
//   - demand: an item at or above the urgent line (0.8) arrives, or one whose
//     deadline falls before the persona's next scan; a resting persona starts
//     on it at once, not after its cadence;
//   - dependency: Persona.Wake, or a prerequisite persona finishing the item
//     this one waits for;
//   - scan: its own cadence elapsed. Other items wait for it, so they are
//     batched into one step: the persona's rhythm.
//
// An idle persona with an empty inbox holds neither a goroutine nor a timer,
// so ten thousand of them cost memory and nothing else.
//
// # One policy, two clocks
//
// The life cycle is one deterministic state machine, Cycle (cycle.go): it
// takes a persona's events with an explicit now and says what to do next,
// and holds no clock, goroutine or lock. Persona is its real-time driver;
// the simulator (package sim) drives the same Cycle in virtual time, so what
// the simulator measures is what the runtime does, and parity tests hold the
// two drivers to the same trace.
//
// # Rhythm as a bandwidth
//
// The cadence is how often a persona looks when nothing calls it, not a cap
// on what it does once it looks: a step ends after Options.SliceItems items
// or SliceDuration, and engageable work then goes on at once. What bounds a
// persona is a constant-bandwidth server, the real-time scheduling idea of
// giving each task a budget of execution per period, replenished, so that
// its share of the processor is bounded whatever it is asked to do, while
// an idle share can go to others. Here the governor sets the share
// (Adjustment.Share): while the machine is cool (nominal, fair) there is no
// limit and a persona with engageable work keeps working (work-conserving);
// once the duty reaches the ceiling each persona may spend Share of its time
// on ordinary work, replenished continuously, with at most Share x
// Options.BandwidthPeriod of credit; past it, ordinary work waits for the
// budget (not a whole cadence). Guarantee: a persona's ordinary work over
// any interval of length d is at most Share x (d + BandwidthPeriod) plus the
// one item in progress; urgent work is served at once, inside or beyond the
// share, and charged to it. With Options.Preempt an urgent arrival also cuts
// short the ordinary work in progress (its context is cancelled and the item
// goes back to the inbox), so urgent work never waits behind its own
// persona's ordinary work; with Options.Lane an urgent item's last step
// (Handle, or Respond) goes out in the persona's urgent lane, beside its
// own work, so it never waits behind its persona's previous urgent reply
// either. Options.LaneOpen keeps the lane shut while a second call would
// only queue (the daemon and the simulator: no model slot free).
//
// # Guarantees
//
// Nothing is lost silently: every delivered item ends in exactly one account
// (handled, declined, expired, failed) or is still queued, deferred or in
// flight, and Snapshot().Counts.Balanced() checks the sum. A full inbox
// defers its lowest item for later catch-up; urgent items are never
// deferred while a non-urgent one is queued. A handler that panics or errs
// is recovered, counted, retried up to Options.MaxAttempts and backed off;
// the persona lives on. Runtime.Shutdown first drains: each persona
// finishes the urgent items queued in its inbox, taking no ordinary one,
// until the context's deadline (Cycle.Drain); then it stops every
// goroutine the runtime started and reports the items left behind.
//
// # Coordination (who answers)
//
// Several personas may engage the same item; usually only one should act on
// it. A persona spawned with Options.Coordination follows the seed's "New
// Flow": the item arrives in its inbox; the persona looks on its own
// schedule; it decides whether to engage; if it engages, its handler (an
// Evaluator) evaluates the item, and the persona broadcasts the Thought on
// the coord.Stream and waits for the decision; it responds only if granted.
// Handlers choose whether they need this: a chat responder does, a vision
// stage does not (it is a plain Handler).
//
// The producer opens each item with its recipients, so the decision closes
// as soon as all of them have spoken: Broadcast does both. The stream grants
// K responders (default 1): a mentioned persona (Item.Addressees) always,
// then by confidence, then whoever was granted least recently, so equal
// personas take turns. Waiting for the decision holds the persona's slice:
// it is the sync point, bounded by the stream's window and, as a safety net,
// Options.CoordinationTimeout. A persona that declines, fails, panics or
// lets the item expire withdraws at once; one that hangs or never engages
// delays the decision only until the window ends. An item the persona
// reaches after its decision closed is not evaluated at all, unless the
// item (or an older one merged into it) addresses the persona: an addressee
// thinks even late, says it is addressed, and the stream grants it, so an
// @mention is always answered. Evaluated and not granted is accounted as
// handled, and counted in Snapshot.NotGranted.
//
// Non-urgent items wait for each persona's next scan (seconds), so a window
// counted from the item's opening must cover that; a stream with
// coord.Options.WindowFromFirstThought counts it from the first thought
// instead, which suits personas with a rhythm. A persona waits for a
// decision at most the stream's longest window plus a second
// (Options.CoordinationTimeout). The stream belongs to the caller: close it
// after Runtime.Shutdown.
//
// # Pipelines (dependencies)
//
// Personas may declare Options.WaitsFor and Options.Notifies (seed:
// "Process Dependency Graph"). Runtime.Start checks the graph: an unknown
// name, a cycle (spelled out, "a -> b -> c -> a") or payload types mixed in
// one pipeline are errors, and nothing starts. Items enter a pipeline at its
// sources (personas that wait for nobody) through Deliver; a direct Deliver
// to a dependent is refused with ErrNotSource. Item.ID is the pipeline's key
// and must be unique.
//
// A dependent is handed an item (same ID, Key, Payload, Created and
// Deadline; its own Scorer sets the priority, else the source's priority
// stands) only when all its prerequisites finished it, with their outputs in
// Item.Upstream; that arrival is its dependency trigger and wakes it at
// once. Item.Status says how complete the inputs are. A prerequisite's final
// account decides what its dependents see:
//
//	handled           -> deps.Done, with the handler's output
//	declined          -> deps.Skipped
//	expired or failed -> deps.Incomplete
//
// A prerequisite that holds an item past RuntimeOptions.DependencyTimeout
// (default 5s, counted per stage from when it became responsible, so it
// includes the item's wait in the stage's inbox) releases its dependents
// with the item Incomplete and without its output; a late result still
// counts for a barrier that is open, and is otherwise ignored. At most RuntimeOptions.MaxPipelineKeys items are in flight per
// pipeline (oldest released Incomplete beyond it), and each item is held
// only until its last dependent has it. Runtime.Shutdown stops the
// pipelines' timers; items they had released are in the report.
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
