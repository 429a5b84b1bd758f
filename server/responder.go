package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/deps"
	"github.com/personaos/persona/llm"
)

// Notes the ledger records with a final account.
const (
	noteReplied     = "replied"
	noteNotGranted  = "not granted"
	noteNotRelevant = string(chat.ReasonNotRelevant)
	noteMerged      = "merged into a newer message"
	noteElsewhere   = "addressed to a persona of another daemon"
	noteBudget      = string(chat.ReasonBudget)
	noteQuiet       = string(chat.ReasonQuiet)
	noteSelf        = string(chat.ReasonOwn)
	noteTooDeep     = string(chat.ReasonTooDeep)
	noteAnswered    = "answered before"
	noteTaken       = "K responders already claimed across the cluster"
	noteUndecodable = "undecodable"
)

// responder is a chat persona's handler: cheap evaluation for coordination,
// and one model call per granted reply. It implements
// persona.Evaluator[chat.Message]; a persona that waits for others in a
// pipeline uses it through persona.Coordinated, without a stream.
type responder struct {
	d         *Daemon
	name      string
	system    string
	model     string
	dependent bool

	mu          sync.Mutex
	lastThought *coord.Thought
}

var _ persona.Evaluator[chat.Message] = (*responder)(nil)

// Evaluate says how much the persona wants to answer. It makes no model
// call: the confidence is the item's priority for this persona (mention,
// expertise, recency, sender and reply depth, from the chat scorer), 1 when
// the persona is addressed. Below Config.RespondAbove a persona that is not
// addressed declines at once: it could only observe, which is never
// granted, and peers need not wait for it. The thought is shown live on the
// room's events.
func (r *responder) Evaluate(ctx context.Context, it persona.Item[chat.Message]) (persona.Thought, error) {
	r.d.metrics.Evaluation(r.name)
	if r.dependent && it.Status == deps.Skipped {
		return persona.Thought{}, persona.ErrDecline // a prerequisite chose not to engage
	}
	for _, c := range it.Context {
		r.d.ledger.note(r.name, c.ID, noteMerged)
	}
	if !r.dependent {
		r.d.open(it.Payload, it.Addressees, time.Now())
	}
	// A merged batch is judged by its best score (chat.Settings.Think).
	score := it.Priority
	for _, c := range it.Context {
		score = max(score, c.Priority)
	}
	conf, intent := r.d.chat.Think(score, r.addressedBy(it))
	th := coord.Thought{Persona: r.name, Item: it.ID, Key: it.Key, Confidence: conf, Intent: intent, At: time.Now()}
	r.mu.Lock()
	r.lastThought = &th
	r.mu.Unlock()
	r.d.rooms.emit(Event{Type: "thought", Room: it.Key, Thought: &th})
	if intent != coord.IntentRespond {
		r.d.ledger.note(r.name, it.ID, noteNotRelevant)
		return persona.Thought{}, persona.ErrDecline
	}
	if !r.dependent {
		r.d.metrics.Thought(r.name)
	}
	return persona.Thought{Confidence: conf, Intent: intent}, nil
}

func (r *responder) thought() *coord.Thought {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastThought == nil {
		return nil
	}
	t := *r.lastThought
	return &t
}

// Respond writes and publishes the persona's reply to the item's newest
// message, merged older ones riding along as context. In order: a message
// answered before (a redelivery after a crash) is not answered again; the
// room's reply budget must have room; then one model call; then the reply
// is claimed in the replies bucket (create-only: exactly one claim per
// persona and message ever succeeds) and published.
func (r *responder) Respond(ctx context.Context, it persona.Item[chat.Message], dec coord.Decision) (any, error) {
	m := it.Payload
	d := r.d
	if ok, err := r.answeredBefore(ctx, m.ID); err != nil {
		return nil, err
	} else if ok {
		d.ledger.note(r.name, it.ID, noteAnswered)
		d.count(r.name, noteAnswered)
		return nil, nil
	}
	if dec.IsGranted(r.name) && !r.addressedBy(it) {
		// The stream granted this persona among this daemon's personas;
		// across daemons sharing the cluster, the first K to claim a slot
		// answer. An addressee always answers and claims nothing, and so
		// does a persona that answers after its prerequisites (waits_for),
		// which no stream coordinates.
		if ok, err := d.claimSlot(ctx, r.name, m.ID); err != nil {
			return nil, err
		} else if !ok {
			d.ledger.note(r.name, it.ID, noteTaken)
			d.count(r.name, noteTaken)
			return nil, nil
		}
	}
	now := time.Now()
	release, ok := d.rooms.reserveReply(m.Room, now, r.addressedBy(it))
	if !ok {
		d.ledger.note(r.name, it.ID, noteBudget)
		d.count(r.name, noteBudget)
		d.log.Info("reply budget spent: not replying", "persona", r.name, "room", m.Room, "message", m.ID)
		return nil, nil
	}
	ctxMsgs := make([]chat.Message, len(it.Context))
	for i, c := range it.Context {
		ctxMsgs[i] = c.Payload
	}
	req := llm.Request{
		Persona: r.name,
		System:  r.system,
		History: llm.BuildHistory(r.name, d.rooms.history(m, ctxMsgs), 0, 0),
	}
	start := time.Now()
	d.meter.Begin(start)
	reply, err := d.modelFor(r.model).Complete(ctx, req)
	end := time.Now()
	d.meter.End(end)
	d.metrics.ModelCall(r.name, outcome(err), end.Sub(start))
	if err != nil {
		release()
		return nil, fmt.Errorf("persona %s: model: %w", r.name, err)
	}
	// The reply answers every message merged into it, and addresses each
	// person who wrote one (chat.Covers).
	cover := chat.Covers(m, ctxMsgs)
	out := chat.Message{
		ID: newMessageID(end), Room: m.Room, Author: r.name, Kind: chat.Persona,
		Content: chat.Address(strings.TrimSpace(reply.Content), cover.Askers), At: end.UTC(), ReplyTo: m.ID, Depth: m.Depth + 1,
	}
	if err := d.sendReply(ctx, r.name, m.ID, cover.Merged, out); err != nil {
		release()
		if errors.Is(err, errAnswered) {
			d.ledger.note(r.name, it.ID, noteAnswered)
			d.count(r.name, noteAnswered)
			return nil, nil
		}
		return nil, err
	}
	d.ledger.note(r.name, it.ID, noteReplied)
	d.metrics.Response(r.name, m.Room)
	d.scorer.Touch(r.name, m.Room, end)
	return out, nil
}

// answeredBefore looks for this persona's claim on message id. A claim
// whose reply is in the stream means done; a claim without it is a crash
// between claiming and publishing, and the stored reply is published now
// (under its own id, so JetStream drops it if it was stored after all).
func (r *responder) answeredBefore(ctx context.Context, id string) (bool, error) {
	d := r.d
	e, err := d.bus.replies.Get(ctx, ledgerKey(r.name, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("persona %s: replies: %w", r.name, err)
	}
	prev, err := decodeWire(e.Value())
	if err != nil {
		return true, nil // claimed; nothing we can republish
	}
	// Looked up in the stream too: an old reply may have left the index,
	// and publishing it again outside the duplicate window would store it
	// twice.
	if _, ok, err := d.seqOf(ctx, prev.Room, prev.ID); err != nil {
		return false, fmt.Errorf("persona %s: find reply %s: %w", r.name, prev.ID, err)
	} else if ok {
		return true, nil
	}
	seq, err := d.bus.publish(ctx, prev)
	if err != nil {
		return false, fmt.Errorf("persona %s: republish %s: %w", r.name, prev.ID, err)
	}
	d.rooms.posted(seq, prev)
	d.log.Info("published a reply claimed before a restart", "persona", r.name, "message", id, "reply", prev.ID)
	return true, nil
}

// addressedBy reports whether it (or an item merged into it) names this
// persona.
func (r *responder) addressedBy(it persona.Item[chat.Message]) bool {
	return slices.ContainsFunc(it.Addressees, func(a string) bool { return strings.EqualFold(a, r.name) })
}

// claimSlot claims one of the K responder slots of message id in the
// replies bucket, cluster-wide: create-only keys slot.<id>.0 .. K-1, so at
// most K personas of all the daemons sharing the cluster answer a message
// that names nobody. A slot this persona already holds (a retry, or a
// redelivery after a crash) is still its own.
func (d *Daemon) claimSlot(ctx context.Context, name, id string) (bool, error) {
	for n := range max(1, d.cfg.K) {
		key := "slot." + id + "." + strconv.Itoa(n)
		_, err := d.bus.replies.Create(ctx, key, []byte(strings.ToLower(name)))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return false, fmt.Errorf("persona %s: claim a responder slot: %w", name, err)
		}
		if e, gerr := d.bus.replies.Get(ctx, key); gerr == nil && strings.EqualFold(string(e.Value()), name) {
			return true, nil
		}
	}
	return false, nil
}

// errAnswered means another attempt already claimed the reply.
var errAnswered = errors.New("already answered")

// sendReply claims (persona, trigger) in the replies bucket, then the merged
// messages it covers, and publishes the reply. The claim holds the reply
// itself, so a crash before the publish is repaired on redelivery.
func (d *Daemon) sendReply(ctx context.Context, name, trigger string, covered []string, out chat.Message) error {
	data, err := encodeWire(out)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	if _, err := d.bus.replies.Create(ctx, ledgerKey(name, trigger), data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return errAnswered
		}
		return fmt.Errorf("claim reply: %w", err)
	}
	for _, id := range covered {
		// Best effort: a merged message redelivered alone after a crash is
		// then known to be answered by this reply.
		_, _ = d.bus.replies.Create(ctx, ledgerKey(name, id), data)
	}
	seq, err := d.bus.publish(ctx, out)
	if err != nil {
		// The claim stays and holds the reply: the retry (or a redelivery
		// after a restart) publishes it through answeredBefore.
		return fmt.Errorf("publish reply: %w", err)
	}
	d.rooms.posted(seq, out)
	return nil
}

// outcome names a model call's result for metrics.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, llm.ErrRateLimited):
		return "rate_limited"
	default:
		return "error"
	}
}
