// Package inbox is a persona's bounded priority inbox, generic over the
// payload.
//
// # Ordering
//
// Urgent entries (priority at or above the urgent line) come out first, so
// a fresh @mention never waits behind a backlog; within each class entries
// come out by effective priority, highest first: the static
// priority raised by aging, priority + Aging*(now - Enqueued). With one aging
// rate for all entries that order equals the order of the static key
// priority - Aging*Enqueued, so the heap never needs re-sorting as time
// passes, and a low-priority entry that keeps waiting rises above newer
// ones: it cannot starve. Equal effective priorities leave first in, first
// out.
//
// # When full
//
// Capacity bounds the queued entries (default 1000, the seed's maxSize).
// Push on a full inbox defers the entry with the lowest effective priority,
// which may be the newcomer: deferred means moved to a bounded deferred
// store, kept for catch-up, never dropped. Urgent entries (priority at or
// above the inclusive urgent line, default 0.8) are deferred only when every
// queued entry is urgent. Readmit brings deferred entries back, oldest first,
// while the load is below the low-water mark; those past their time-to-live
// expire instead.
//
// # Accounting
//
// Every delivered entry is at every moment in exactly one place: queued,
// deferred, in flight, or closed in one account (handled, declined,
// expired, failed). Counts.Balanced checks the sum, and tests assert it.
//
// # Cost and concurrency
//
// Push, TakeTop, Take (remove by ID), Requeue and the eviction of the lowest
// entry are O(log n); Peek(k) is O(k log k); Sweep is O(n) and meant to run
// once per scan. An Inbox is safe for many producers and one consumer (in
// fact for any number of each: one mutex guards it). The Notify hook is the
// wake-up: a consumer sleeps until it is called instead of polling.
//
// # Testing code that uses it
//
// An Inbox holds no clock: Push takes Entry.Enqueued if set, and Sweep and
// Readmit take now, so tests drive time with fixed values.
package inbox
