// Package deps is the dependency graph between personas and the per-item
// barriers that hand an item to a persona only when the personas it waits
// for are done with it (seed: "Process Dependency Graph"; the "dependency"
// processing trigger). The mobile CV pipeline is the model: line finder ->
// plane segmenter -> semantic segmentation, keyed by frame ID; in chat the
// key is the message ID.
//
// # Graph
//
// Personas declare WaitsFor and Notifies (sugar for the reverse edge) in a
// Node. NewGraph checks the declaration once, at start: empty or duplicate
// names, edges to unknown names, self-dependencies and cycles are errors that
// name the nodes involved; a cycle is a *CycleError whose Path lists it and
// whose message spells it out ("deps: cycle: a -> b -> c -> a"). Every list a Graph returns is deterministic (declaration order, or
// topological order with declaration order breaking ties).
//
// # Barriers
//
// Barriers keeps, for each item key, one barrier per dependent persona, and
// decides every release; Tracker is Barriers on the real clock. The caller
// calls Begin(key) when an item enters the pipeline and Finish(persona, key,
// status, value) whenever a persona is done with it; declining an item is
// finishing it with Skipped. Barriers returns the releases each call
// produced, and the Tracker passes them to the release func given to
// NewTracker. Releases are made:
//
//   - exactly once per dependent per key (the Tracker never calls release
//     under its lock);
//   - only when every prerequisite has finished the key (or timed out), with
//     their outputs attached in the order of Graph.Prereqs;
//   - with Status the worst of Done < Skipped < Incomplete over the inputs,
//     Incomplete if a prerequisite is missing. An output's status is never
//     better than the release its producer got, so a gap upstream reaches
//     every stage downstream even if the stages in between finish normally.
//
// Only direct prerequisites' outputs are attached: a stage that wants to pass
// on what it received puts it into its own value.
//
// # Timeouts
//
// Timeouts are per stage, not per key. Each persona gets Options.Timeout
// (default 5s) from the moment it becomes responsible for a key: sources when
// the key opens (Begin or their first Finish), dependents when they are
// released. A persona that has not finished by its deadline counts as timed
// out: every dependent whose other prerequisites are finished or timed out is
// released at once, Incomplete, with the inputs that did arrive. Those
// dependents then have their own Timeout, and whatever they Finish flows on
// as usual. So in A -> B -> C with A stalled, B is released at Timeout and C
// at 2*Timeout if B stalls too, or as soon as B finishes; a chain of n stages
// is fully released within n*Timeout of the key opening. A stage that
// finishes after its deadline still counts for barriers that are open.
// Per-stage deadlines give every stage the same budget however slow the
// stages before it were, which suits pipelines whose stages differ.
//
// # Bounds and cleanup
//
// A key's barriers are deleted as soon as every dependent has been released
// (Finish of a sink, or of a stage whose dependents were all released, then
// has nothing to do and is ignored). At most Options.MaxKeys (default 10000)
// keys are open; opening one more releases the oldest key's remaining
// dependents at once, Incomplete, in topological order, and deletes it. The
// last MaxKeys closed keys are remembered, so a late Finish cannot reopen a
// key and release a persona twice; keys identify items and must not be
// reused. Memory is therefore O(MaxKeys * nodes).
//
// # One policy, two clocks
//
// Barriers has no clock, timer, goroutine or lock: every call takes now, and
// the caller calls Expire(now) when now reaches NextDeadline. It is
// deterministic: the same calls at the same times return the same releases
// in the same order (keys that expire together are visited by deadline, then
// in the order they opened). Tracker adds only what real time needs: a
// mutex, time.Now, one timer re-armed on NextDeadline after every call, and
// the release callback, called outside the lock. So a simulator that drives
// Barriers in virtual time (package sim does) makes the decisions the runtime
// makes.
//
// BeginBy is for items that a persona of the graph produced itself (a chat
// message is its author's, and never delivered back to it): the author counts
// as having finished the item, Done, wherever it stands in the graph.
//
// # Concurrency
//
// Graph is immutable and Tracker is safe for concurrent use; Barriers is not
// (its owner serialises calls). The Tracker's releases run in the goroutine
// that called Begin or Finish, or on its timer goroutine (time.AfterFunc);
// they may call Begin and Finish but not Close. Close stops the timer and
// waits for releases in flight.
//
// # Testing code that uses deps
//
// Test the decisions on Barriers with fixed times. The Tracker uses the real
// clock through time.AfterFunc, so run tests of code that uses it inside a
// testing/synctest bubble: create the Tracker in the bubble, advance time
// with time.Sleep, and call synctest.Wait before asserting that a timeout
// did (or did not) release anyone. Close the tracker before the bubble ends.
package deps
