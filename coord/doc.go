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
// # Core and Stream
//
// Every rule above is decided by Core, a plain value with no clock,
// goroutine, lock or channel. Each of its methods takes now explicitly and
// returns the decisions that call closed (or amended), for the caller to
// publish; NextDeadline is the earliest moment an open item's window or
// patience ends, and Expire(now) closes every item due by now, earliest
// deadline first and, on equal deadlines, the deadline set first (as one timer
// per item would fire). The same
// calls at the same times give the same decisions, grants and reasons:
// nothing depends on map order or on a clock. A Core never closes an item on
// its own, so a driver must call Expire at (or after) NextDeadline; it
// re-reads NextDeadline after every call, since any call may move it.
// Opening.Unbounded opens an item with no window, which only its expected
// thinkers (or eviction) can close; Stream never uses it.
//
// Stream is the real-time driver: it calls the Core under a mutex with
// time.Now, arms one timer at NextDeadline (not one per item), wakes
// Awaiters and calls OnDecision. A simulator drives the same Core in virtual
// time, which is how its figures are the runtime's.
//
// # Ordering and concurrency
//
// All Stream methods are safe for concurrent use; the order in which Open,
// Think and Withdraw arrive for an item does not matter (Think and Withdraw
// open unknown items). Options.OnDecision is called once per decision outside
// the lock, on the goroutine that closed it; hooks for different items are not
// ordered. The only goroutine is the window timer's callback; Close stops it
// and waits for it if it is running. Core is not safe for concurrent use, and
// the decisions it returns share memory with it (Stream hands out copies).
//
// # Testing code that uses coord
//
// The stream reads the real clock (time.Now, time.AfterFunc), so run tests
// inside testing/synctest: create the Stream in the bubble, advance time with
// time.Sleep, and use synctest.Wait to let Awaiters settle. Close the Stream
// before the bubble ends. Inspect outcomes with Stream.Decision, Stream.Recent
// or Options.OnDecision. Core, Grant and AdaptWindow are pure: test them with
// tables of fixed times (see core_test.go), or drive them from a simulator,
// without a Stream.
package coord
