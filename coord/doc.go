// Package coord is the coordination stream: after personas have each decided,
// on their own, to engage with an item, it decides which of them act on it.
// It is domain-agnostic (items, keys and personas are opaque strings; payloads
// never reach it) and imports only the standard library.
//
// # Flow
//
// When an item is delivered, the owner calls Stream.Open with the personas
// expected to think about it and the personas it addresses (an @mention). Each
// persona that engages broadcasts a Thought (confidence in [0, 1] and an
// Intent: respond, observe or defer) with Stream.Think; one that will not
// engage calls Stream.Withdraw. Every thinker then waits at the sync point,
// Stream.Await, and acts only if the Decision grants it.
//
// # Guarantees
//
//   - Exactly one Decision per item. It closes as soon as every expected
//     thinker (addressees included) has thought or withdrawn, or when the
//     item's window ends, whichever is first; a window-closed decision has
//     TimedOut set and names the silent personas in Missing. An item with no
//     expected thinkers closes only by its window.
//   - Grants follow Grant, a pure function: addressees that thought are always
//     granted (any intent) and count against K, even beyond K; remaining slots
//     go to intent-respond thinkers by confidence, then least recently granted,
//     then name. Default K is 1, per key via Options.KFor.
//   - Every persona the decision saw has a reason in Decision.Reasons
//     ("addressee", "top confidence 0.82", "lost tie on recency", "k=1
//     reached", "intent observe", "withdrew", "did not think").
//   - A dead or silent persona never blocks anyone for longer than the window,
//     and each Await is bounded by its own context; Close releases every
//     Await with ErrClosed.
//   - The window adapts: each item gets, when opened, clamp(p95 * 1.25,
//     MinWindow, MaxWindow) over the last Samples time-to-thought samples
//     (from Open to a persona's first thought on the item, late thoughts
//     included), or Options.Window until MinSamples samples exist or when
//     FixedWindow is set. Items opened implicitly by Think or Withdraw give no
//     samples: they have no delivery time to measure from.
//   - Memory is bounded: at most MaxClosed closed decisions are remembered
//     (oldest forgotten first) and at most MaxOpen items are open (opening one
//     more closes the oldest early, with Evicted set). A thought for a
//     forgotten item opens it anew, so MaxClosed should exceed the number of
//     items decided while a late thought can still be in flight. The grant
//     history keeps one timestamp per persona ever granted.
//
// # Ordering and concurrency
//
// All Stream methods are safe for concurrent use; the order in which Open,
// Think and Withdraw arrive for an item does not matter (Think and Withdraw
// open unknown items). Options.OnDecision is called once per decision outside
// the lock, on the goroutine that closed it; hooks for different items are not
// ordered. The only goroutines are the window timers' callbacks; Close stops
// them and waits for any that are running.
//
// # Testing code that uses coord
//
// The stream reads the real clock (time.Now, time.AfterFunc), so run tests
// inside testing/synctest: create the Stream in the bubble, advance time with
// time.Sleep, and use synctest.Wait to let Awaiters settle. Close the Stream
// before the bubble ends. Inspect outcomes with Stream.Decision, Stream.Recent
// or Options.OnDecision. Grant and AdaptWindow are pure and can be tested,
// or reused by a simulator, without a Stream.
package coord
