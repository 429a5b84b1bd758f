package server

import (
	"context"
	"errors"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
)

// Event is one entry of a room's live stream (the API's SSE).
type Event struct {
	Type     string          `json:"type"` // "message" (a human's or a persona's reply), "thought", "decision", "draft" (a reply being written)
	Room     string          `json:"room"`
	Message  *chat.Message   `json:"message,omitempty"`
	Thought  *coord.Thought  `json:"thought,omitempty"`
	Decision *coord.Decision `json:"decision,omitempty"`
	Draft    *Draft          `json:"draft,omitempty"`
}

// PersonaInfo is what the API and the dashboard show of a persona.
type PersonaInfo struct {
	Name        string           `json:"name"` // the name @mentions use
	Display     string           `json:"display_name"`
	Expertise   []string         `json:"expertise"`
	Model       string           `json:"model"`
	Snapshot    persona.Snapshot `json:"snapshot"`
	LastThought *coord.Thought   `json:"last_thought,omitempty"`
	// Backlog is what the persona's durable consumer still holds, when it
	// has one (a persona that waits for others has none). Zero pending and
	// unacked means every stored message has a final account.
	Backlog *Backlog `json:"backlog,omitempty"`
	// LastModelFailure is the persona's latest failed model call, with the
	// server's own message; Snapshot.Counts.Failed counts the messages it
	// could not answer.
	LastModelFailure *ModelFailure `json:"last_model_failure,omitempty"`
	// Outcomes says what became of the messages the persona took in, in
	// words a reader does not mistake: Snapshot.Counts.Handled counts a
	// message left to a peer as handled too.
	Outcomes Outcomes `json:"outcomes"`
	// History is the persona's recent samples, oldest first, when asked
	// for (GET /api/personas?history=true; Backend.Samples).
	History []Sample `json:"history,omitzero"`
	// Here is true when the persona runs in this daemon: it holds the
	// persona's lease. Runs says which daemon of the cluster runs it, and
	// since when (nil while nobody holds the lease). A persona running
	// elsewhere has only its name, display name, expertise and model
	// filled: its counts are that daemon's (its Runs.Addr).
	Here bool       `json:"here"`
	Runs *LeaseInfo `json:"runs,omitempty"`
}

// Outcomes counts what became of a persona's messages since the daemon
// started, each message once, when it is accounted. A message is in at
// most one of them; one still queued or in flight is in none.
type Outcomes struct {
	// Answered counts the replies the persona posted.
	Answered uint64 `json:"answered"`
	// LeftToPeer counts messages another persona answered: the room's
	// decision granted someone else (Snapshot.NotGranted), or another
	// daemon's persona claimed the responder slot first.
	LeftToPeer uint64 `json:"left_to_peer"`
	// HeldBack counts messages the persona was chosen for but did not
	// answer because the room's reply budget was spent.
	HeldBack uint64 `json:"held_back"`
	// Declined counts messages not for it: under its reply line and not
	// addressed to it (Snapshot.Counts.Declined).
	Declined uint64 `json:"declined"`
	// Deferred counts the times a message was set aside under load, to be
	// caught up later (Snapshot.Counts.Deferrals).
	Deferred uint64 `json:"deferred"`
	// Expired counts messages that waited past their time to live
	// (Snapshot.Counts.Expired).
	Expired uint64 `json:"expired"`
	// Failed counts messages the model failed on at every attempt
	// (Snapshot.Counts.Failed).
	Failed uint64 `json:"failed"`
}

// Sample is a persona's state at one moment, as the dashboard's chart
// plots it.
type Sample struct {
	At        time.Time `json:"at"`
	Energy    float64   `json:"energy"`
	Attention float64   `json:"attention"`
	Queued    int       `json:"queued"` // inbox depth
	InFlight  int       `json:"in_flight"`
}

// Backlog counts a persona's messages not yet accounted: stored but not
// yet delivered to it (Pending), and delivered but without a final account
// yet (Unacked: queued, deferred or being handled), of which Redelivered
// came again after a restart or an ack timeout.
type Backlog struct {
	Pending     uint64 `json:"pending"`
	Unacked     int    `json:"unacked"`
	Redelivered int    `json:"redelivered"`
}

// Status is the daemon's overall state.
type Status struct {
	Thermal  string    `json:"thermal"`
	Pressure float64   `json:"pressure"`
	Started  time.Time `json:"started"`
	Rooms    []string  `json:"rooms"`
}

// KeyedPoster is what a Backend may also implement to remember POSTs'
// Idempotency-Keys beyond the HTTP layer's memory, which is one process's
// for ten minutes: PostOnce stores a message under a client's key, or
// returns the message stored first under it (replayed), or an error
// wrapping ErrKeyReused when the key was used for another message. The
// Daemon keeps them in the stream, so a retry after a crash, or to another
// daemon of the cluster, is stored once.
type KeyedPoster interface {
	PostOnce(ctx context.Context, room, author, content, key string) (msg chat.Message, replayed bool, _ error)
}

// Backend is what the HTTP layer needs of the daemon. The daemon implements
// it over NATS JetStream; tests use fakes. Implementations are safe for
// concurrent use.
type Backend interface {
	// Post persists a human's message and returns it with its id and time.
	// It returns only after the message is durably stored.
	Post(ctx context.Context, room, author, content string) (chat.Message, error)
	// Messages lists a room's messages after the given id (empty: from the
	// start), oldest first, at most limit.
	Messages(ctx context.Context, room, after string, limit int) ([]chat.Message, error)
	// MessagesBefore lists the at most limit messages of a room stored
	// right before the given id (empty: the room's newest), oldest first:
	// the page that ends where a reader's view begins. An unknown id is an
	// error wrapping ErrNotFound.
	MessagesBefore(ctx context.Context, room, before string, limit int) ([]chat.Message, error)
	// Message returns one message of the room by id, or an error wrapping
	// ErrNotFound.
	Message(ctx context.Context, room, id string) (chat.Message, error)
	// Subscribe streams a room's events until cancel is called or ctx ends.
	Subscribe(ctx context.Context, room string) (events <-chan Event, cancel func())
	Personas() []PersonaInfo
	Persona(name string) (PersonaInfo, bool)
	Status() Status
	// Trail returns the room's recent thoughts and decisions ("thought"
	// and "decision" events), oldest first, so that a page opened late
	// shows why recent messages were answered as they were.
	Trail(room string) []Event
	// Samples returns the persona's recent samples, oldest first (nil for
	// an unknown persona).
	Samples(persona string) []Sample
	// Health is what /healthz says: ok, or why not (the store refuses
	// writes).
	Health(ctx context.Context) (ok bool, reason string)
}

// Errors a Backend returns that the HTTP layer maps to client errors.
var (
	ErrNotFound    = errors.New("not found")
	ErrInvalid     = errors.New("invalid input")
	ErrUnavailable = errors.New("unavailable")
)
