package persona

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/personaos/persona/coord"
)

// Evaluator is a Handler that needs coordination (seed: "New Flow"): a chat
// responder is one, a vision stage is not. For a persona spawned with
// Options.Coordination, the runtime calls Evaluate on an item the persona
// chose to engage, broadcasts the thought on the stream, waits for the
// decision (the sync point, bounded by Options.CoordinationTimeout), and
// calls Respond only when granted. Handle is then never called.
//
// Evaluate returning ErrDecline withdraws the persona from the decision and
// accounts the item as declined; any other error or a panic withdraws it at
// once too (peers never wait for it) and counts as a handler failure, retried
// up to Options.MaxAttempts. A retry finds the decision already made: the
// persona responds if it was granted, and is otherwise not granted. Respond's
// output and errors are treated like Handle's. Both methods are called from
// one goroutine per persona at a time; ctx is cancelled at shutdown.
type Evaluator[T any] interface {
	Evaluate(ctx context.Context, it Item[T]) (Thought, error)
	Respond(ctx context.Context, it Item[T], d coord.Decision) (any, error)
}

// Thought is what Evaluate concludes about an item: how confident the
// persona is that it should act (0..1) and what it means to do. The zero
// Intent means coord.IntentRespond.
type Thought struct {
	Confidence float64
	Intent     coord.Intent
}

// Coordinated turns an Evaluator into a Handler for Spawn. The result is
// still an Evaluator, so with Options.Coordination set the persona
// coordinates; without a stream its Handle evaluates and then responds
// unless the evaluator declines or does not intend to respond, passing a
// decision that names only the item, its key and K = 1.
func Coordinated[T any](e Evaluator[T]) Handler[T] { return coordinated[T]{e} }

type coordinated[T any] struct{ Evaluator[T] }

func (c coordinated[T]) Handle(ctx context.Context, it Item[T]) (any, error) {
	th, err := c.Evaluate(ctx, it)
	if err != nil {
		return nil, err
	}
	if th.Intent != "" && th.Intent != coord.IntentRespond {
		return nil, nil
	}
	return c.Respond(ctx, it, coord.Decision{Item: it.ID, Key: it.Key, K: 1})
}

// Broadcast delivers it to every persona in ps after opening it on s, with
// the personas coordinated by s as the expected thinkers and it.Addressees
// as the addressees, so that the decision closes as soon as all of them have
// spoken and a mentioned persona is always granted. It is the producer's
// half of coordination: whoever fans an item out knows its recipients.
//
// Addressees that are not among the coordinated recipients are left out: a
// persona that never receives the item cannot think about it, and would only
// hold the decision open until its window ends. Personas in ps coordinated
// by another stream, or not at all, receive the item but are not expected on
// s. A persona whose delivery fails is withdrawn from the decision; the
// errors are joined. Broadcast is safe for concurrent use.
func Broadcast[T any](ps []*Persona[T], s *coord.Stream, it Item[T]) error {
	if s == nil {
		return errors.New("persona: broadcast: nil stream")
	}
	expected := make([]string, 0, len(ps))
	for _, p := range ps {
		if p.cs == s {
			expected = append(expected, p.name)
		}
	}
	var addr []string
	for _, a := range it.Addressees {
		if slices.Contains(expected, a) {
			addr = append(addr, a)
		}
	}
	s.Open(it.ID, it.Key, expected, addr)
	var errs []error
	for _, p := range ps {
		if err := p.Deliver(it); err != nil {
			errs = append(errs, err)
			if p.cs == s {
				s.Leave(it.ID, p.name)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("persona: broadcast %s: %w", it.ID, err)
	}
	return nil
}
