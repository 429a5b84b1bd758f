package persona

import (
	"context"
	"errors"
	"time"

	"github.com/personaos/persona/deps"
	"github.com/personaos/persona/govern"
	"github.com/personaos/persona/inbox"
	"github.com/personaos/persona/state"
)

// Item is one unit of work delivered to a persona: a chat message, a camera
// frame, a game state. Only Payload's type changes between domains.
type Item[T any] struct {
	ID         string    // unique per persona; a duplicate delivery is refused
	Key        string    // what it belongs to: room, camera, game session
	Priority   float64   // 0..1; set by the persona's Scorer when it has one
	Created    time.Time // when it was produced; zero means at delivery
	Delivered  time.Time // when it entered the inbox; set by Deliver
	Deadline   time.Time // optional: past it the item expires unhandled
	Complexity float64   // energy cost weight of handling it; 0 means 1
	// Addressees names the personas the item is addressed to (an
	// @mention); coordination always grants them.
	Addressees []string
	// Context holds older items of the same Key merged into this one when
	// the persona coalesces (Options.Coalesce), oldest first: the newest
	// item is the trigger, the older ones are context.
	Context []Item[T]
	// Attempt counts earlier failed attempts at handling this item.
	Attempt int
	// Upstream holds, for an item a pipeline released to this persona (see
	// Options.WaitsFor), the outputs of its direct prerequisites in the
	// order of their declaration; a prerequisite that timed out has no
	// entry. Nil for items delivered directly.
	Upstream []deps.Output
	// Status is how complete the item is when a pipeline releases it: Done
	// when every prerequisite handled it, Skipped when one declined it,
	// Incomplete when one failed, expired or stalled past the dependency
	// timeout. It is the zero value, Done, for items delivered directly.
	Status  deps.Status
	Payload T
}

// Handler does a persona's work on one item. It returns an output (passed
// to dependent personas; may be nil) or an error. Returning ErrDecline
// closes the item as declined rather than failed. A Handler is called from
// one goroutine per persona at a time; ctx is cancelled at shutdown.
type Handler[T any] interface {
	Handle(ctx context.Context, it Item[T]) (any, error)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc[T any] func(ctx context.Context, it Item[T]) (any, error)

// Handle calls f.
func (f HandlerFunc[T]) Handle(ctx context.Context, it Item[T]) (any, error) { return f(ctx, it) }

// ErrDecline is returned by a Handler that, having looked at an item,
// chooses not to act on it. The item is accounted as declined.
var ErrDecline = errors.New("persona: declined by handler")

// Scorer computes an item's priority for a given persona at delivery. The
// chat domain's scorer weighs mentions, expertise, recency and the sender.
type Scorer[T any] interface {
	Score(persona string, it Item[T], now time.Time) float64
}

// ScorerFunc adapts a function to a Scorer.
type ScorerFunc[T any] func(persona string, it Item[T], now time.Time) float64

// Score calls f.
func (f ScorerFunc[T]) Score(persona string, it Item[T], now time.Time) float64 {
	return f(persona, it, now)
}

// Adjustment is what the system governor asks of every persona: a longer
// cadence, a higher bar for non-urgent work, and whether deferred work may
// be caught up now. It is govern's type, so a *govern.Governor is a
// Governor as it is.
type Adjustment = govern.Adjustment

var _ Governor = (*govern.Governor)(nil)

// Governor is the system-wide thermal policy as a persona sees it. Adjust is
// called on every scheduler step, so it must be cheap and safe for
// concurrent use.
type Governor interface {
	Adjust() Adjustment
}

// GovernorFunc adapts a function to a Governor.
type GovernorFunc func() Adjustment

// Adjust calls f.
func (f GovernorFunc) Adjust() Adjustment { return f() }

// Trigger is why a persona woke up (seed: "Three Processing Triggers").
type Trigger int

const (
	TriggerDemand     Trigger = iota // an urgent item arrived
	TriggerDependency                // a prerequisite finished, or a peer woke it
	TriggerScan                      // its own cadence elapsed
	numTriggers
)

var triggerNames = [...]string{"demand", "dependency", "scan"}

func (t Trigger) String() string {
	if t >= 0 && t < numTriggers {
		return triggerNames[t]
	}
	return "unknown"
}

// EventKind says what happened to a persona or an item.
type EventKind int

const (
	EventDelivered  EventKind = iota // accepted into the inbox
	EventDeferred                    // moved to the deferred store under overload
	EventHandled                     // handled
	EventDeclined                    // not engaged before its time-to-live, or declined by the handler
	EventExpired                     // deadline or deferred time-to-live passed
	EventFailed                      // handler failed on every attempt
	EventError                       // one handler error (the item may be retried)
	EventPanic                       // one handler panic (recovered)
	EventWake                        // the persona woke; Trigger says why
	EventRest                        // the persona went to rest for Cadence
	EventGranted                     // a coordinated persona was granted the item and responded
	EventNotGranted                  // a coordinated persona evaluated the item but was not granted it
	EventPreempted                   // work on the item was cut short for an urgent one; it went back to the inbox
)

var eventNames = [...]string{"delivered", "deferred", "handled", "declined", "expired", "failed", "error", "panic", "wake", "rest", "granted", "not_granted", "preempted"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one observation for metrics and dashboards.
type Event struct {
	Kind     EventKind
	Persona  string
	At       time.Time
	ItemID   string
	Key      string
	Priority float64
	Urgent   bool
	Wait     time.Duration // delivery to start of handling (handled, declined, failed)
	Took     time.Duration // handling time
	Trigger  Trigger       // for EventWake
	Cadence  time.Duration // for EventRest
	Mood     state.Mood
	Err      error
}

// Observer receives events. It is called synchronously from persona loops
// and producers, so it must be fast and safe for concurrent use.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(Event)

// Observe calls f.
func (f ObserverFunc) Observe(e Event) { f(e) }

// Account re-exports the inbox's final accounts.
type Account = inbox.Account

// Counts re-exports the inbox's account snapshot.
type Counts = inbox.Counts
