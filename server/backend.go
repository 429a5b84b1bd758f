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
	// Message returns one message of the room by id, or an error wrapping
	// ErrNotFound.
	Message(ctx context.Context, room, id string) (chat.Message, error)
	// Subscribe streams a room's events until cancel is called or ctx ends.
	Subscribe(ctx context.Context, room string) (events <-chan Event, cancel func())
	Personas() []PersonaInfo
	Persona(name string) (PersonaInfo, bool)
	Status() Status
}

// Errors a Backend returns that the HTTP layer maps to client errors.
var (
	ErrNotFound    = errors.New("not found")
	ErrInvalid     = errors.New("invalid input")
	ErrUnavailable = errors.New("unavailable")
)
