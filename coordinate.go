package persona

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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

// coordinate is a coordinated persona's work on one engaged item: evaluate,
// think, await the decision, respond if granted. It runs inside the
// persona's time slice, so waiting for the decision holds the slice: that is
// the sync point, and the window bounds it.
func (p *Persona[T]) coordinate(ctx context.Context, it Item[T]) (any, error) {
	s := p.cs
	// Merged older items are answered by this one: say so, or their
	// decisions would wait for this persona until their windows end.
	for _, c := range it.Context {
		s.Leave(c.ID, p.name)
	}
	d, decided := s.Decision(it.ID)
	if decided && !thought(d, p.name) && !p.addressedBy(it) {
		// The decision closed before this persona reached the item, so it
		// cannot be granted: spend no evaluation on it. Tell the stream
		// anyway, so that its adaptive window learns how late it was.
		_ = s.Think(coord.Thought{Persona: p.name, Item: it.ID, Key: it.Key, Intent: coord.IntentObserve})
		return p.notGrantedOn(it)
	}
	if !decided || !thought(d, p.name) {
		// Not decided yet, or decided without us while we are addressed:
		// think, and the stream grants an addressee even late.
		var err error
		if d, err = p.think(ctx, it); err != nil {
			return nil, err
		}
		if d.Item == "" {
			return p.notGrantedOn(it)
		}
	}
	if !d.IsGranted(p.name) {
		return p.notGrantedOn(it)
	}
	out, err := p.eval.Respond(ctx, it, d)
	if err == nil {
		p.granted.Add(1)
		if o := p.rt.obs; o != nil {
			o.Observe(Event{Kind: EventGranted, Persona: p.name, At: time.Now(), ItemID: it.ID, Key: it.Key, Priority: it.Priority})
		}
	}
	return out, err
}

// think evaluates it, broadcasts the thought and waits for the decision. It
// returns a zero Decision when none could be had (the wait timed out, the
// stream was closed or forgot the item), which means not granted.
func (p *Persona[T]) think(ctx context.Context, it Item[T]) (coord.Decision, error) {
	s := p.cs
	spoke := false
	defer func() {
		// Declined, failed or panicked before speaking: withdraw at once,
		// even while a panic unwinds, so that peers never wait for us.
		if !spoke {
			s.Leave(it.ID, p.name)
		}
	}()
	th, err := p.eval.Evaluate(ctx, it)
	if err != nil {
		return coord.Decision{}, err
	}
	intent := th.Intent
	if intent == "" {
		intent = coord.IntentRespond
	}
	// An addressed persona says so: the stream grants it even if the item
	// it thinks on is a newer message merged with the one that named it,
	// or if it thinks after the window closed.
	err = s.Think(coord.Thought{Persona: p.name, Item: it.ID, Key: it.Key,
		Confidence: th.Confidence, Intent: intent, At: time.Now(), Addressed: p.addressedBy(it)})
	if err != nil && !errors.Is(err, coord.ErrClosedDecision) {
		return coord.Decision{}, fmt.Errorf("persona %s: %w", p.name, err)
	}
	// A thought too late to count still reaches Await, which returns the
	// decision made without it.
	spoke = true

	timeout := p.opts.CoordinationTimeout
	if timeout <= 0 {
		// Once we have spoken, the item closes within its own window, which
		// was fixed when it opened (or at its first thought) and may be
		// longer than the stream's current one: bound by the longest.
		timeout = s.MaxWindow() + time.Second
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d, err := s.Await(actx, it.ID)
	if err != nil {
		if ctx.Err() != nil {
			return coord.Decision{}, err // shutting down: like any cancelled handler
		}
		p.rt.log.Warn("coordination: no decision", "persona", p.name, "item", it.ID, "err", err)
		return coord.Decision{}, nil
	}
	return d, nil
}

// notGrantedOn accounts an item the persona leaves to others: it is handled
// (the persona saw it), with no output.
func (p *Persona[T]) notGrantedOn(it Item[T]) (any, error) {
	p.notGranted.Add(1)
	if o := p.rt.obs; o != nil {
		o.Observe(Event{Kind: EventNotGranted, Persona: p.name, At: time.Now(), ItemID: it.ID, Key: it.Key, Priority: it.Priority})
	}
	return nil, nil
}

// addressedBy reports whether it (or an item merged into it) names the
// persona as an addressee.
func (p *Persona[T]) addressedBy(it Item[T]) bool {
	return slices.ContainsFunc(it.Addressees, func(a string) bool { return strings.EqualFold(a, p.name) })
}

func thought(d coord.Decision, name string) bool {
	return slices.ContainsFunc(d.Thoughts, func(t coord.Thought) bool { return t.Persona == name })
}
