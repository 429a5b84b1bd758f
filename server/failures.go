package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/llm"
)

// Model failures a user can see. A persona whose model call fails leaves a
// trace a person finds without reading the logs: once the message's last
// attempt has failed, a system note in its room names the persona and the
// model server's own message ("Teacher could not answer: model "llama3.2"
// not found, try pulling it first (HTTP 404) — model llama3.2 on
// http://127.0.0.1:11434/v1"); the persona's card and /api/personas show
// the failed count and the last error; persona_model_failures_total counts
// them. Personas never answer a system note (chat.ReasonSystem).

// failureBook is what the daemon keeps of its personas' model failures.
type failureBook struct {
	mu    sync.Mutex
	last  map[string]ModelFailure // persona (lower-case) -> its latest
	item  map[string]ModelFailure // persona/message -> the failure of its latest attempt
	noted map[string]bool         // persona/message with a note in its room
}

// ModelFailure is a persona's model call that failed: when, what the
// server said, and on which model and server.
type ModelFailure struct {
	At      time.Time `json:"at"`
	Reason  string    `json:"reason"`
	Model   string    `json:"model,omitempty"`
	Backend string    `json:"backend,omitempty"`
	Room    string    `json:"-"`
}

func (f ModelFailure) String() string {
	where := ""
	switch {
	case f.Model != "" && f.Backend != "":
		where = " — model " + f.Model + " on " + f.Backend
	case f.Model != "":
		where = " — model " + f.Model
	}
	return f.Reason + where
}

// modelFailed records that persona's model call for message id in room
// failed with err (responder.respondOnce). The message's account is the
// runtime's: it may be retried; if its last attempt fails, observe posts
// the note.
func (d *Daemon) modelFailed(persona, id, room, backend string, err error) {
	f := ModelFailure{At: time.Now().UTC(), Reason: llm.Reason(err), Room: room}
	f.Model, f.Backend = d.backendOf(backend)
	b := &d.failures
	b.mu.Lock()
	if b.last == nil {
		b.last, b.item = map[string]ModelFailure{}, map[string]ModelFailure{}
	}
	b.last[strings.ToLower(persona)] = f
	b.item[failureKey(persona, id)] = f
	b.mu.Unlock()
	if d.modelFailures != nil {
		d.modelFailures.WithLabelValues(persona, failureClass(err)).Inc()
	}
}

// failureClass is the label of a failure in persona_model_failures_total.
func failureClass(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{{llm.ErrRejected, "rejected"}, {llm.ErrRateLimited, "rate_limited"}, {llm.ErrUnavailable, "unavailable"}, {llm.ErrEmptyReply, "empty_reply"}, {context.DeadlineExceeded, "timeout"}} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "other"
}

// backendOf is the model name and server URL of backend key (backendKey).
func (d *Daemon) backendOf(key string) (string, string) {
	if o, ok := d.modelFor(key).(*llm.OpenAI); ok {
		return o.Model(), o.BaseURL()
	}
	return d.modelName(PersonaSpec{}), ""
}

// lastFailure is persona's latest model failure, if any.
func (d *Daemon) lastFailure(persona string) (ModelFailure, bool) {
	b := &d.failures
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.last[strings.ToLower(persona)]
	return f, ok
}

// settleFailure is a message's final account by persona: a failed one
// whose last attempt was a model failure gets its note in the room.
func (d *Daemon) settleFailure(e persona.Event) {
	b := &d.failures
	k := failureKey(e.Persona, e.ItemID)
	b.mu.Lock()
	f, ok := b.item[k]
	delete(b.item, k)
	// One note per persona and message: a message delivered twice (its
	// express and its durable delivery, when the first failed before the
	// ledger had its account) fails twice but is noted once.
	if ok && e.Kind == persona.EventFailed {
		if b.noted == nil {
			b.noted = map[string]bool{}
		}
		if b.noted[k] {
			ok = false
		}
		if len(b.noted) > 10_000 {
			clear(b.noted)
		}
		b.noted[k] = true
	}
	b.mu.Unlock()
	if !ok || e.Kind != persona.EventFailed {
		return
	}
	name := e.Persona
	if m := d.byName[strings.ToLower(e.Persona)]; m != nil {
		name = m.spec.DisplayName()
	}
	note := chat.Message{
		ID: newMessageID(time.Now()), Room: f.Room, Author: "system", Kind: chat.System,
		Content: fmt.Sprintf("%s could not answer: %s", name, f), At: time.Now().UTC(), ReplyTo: e.ItemID,
	}
	if d.bus == nil {
		return // the chat bench: no room stream
	}
	// Posted from the persona's goroutine (observe), bounded: a bus that
	// is down costs the note, never the persona.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := d.bus.publish(ctx, note); err != nil {
		d.log.Warn("could not post the model failure note", "persona", e.Persona, "message", e.ItemID, "err", err)
	}
}

func failureKey(persona, id string) string { return strings.ToLower(persona) + "/" + id }

// promptReuse records how much of a persona's prompt its previous prompt
// shares as a prefix: what a model server's prompt cache could reuse
// (persona_prompt_prefix_reused_ratio).
func (d *Daemon) promptReuse(persona string, share float64) {
	if d.promptPrefix != nil {
		d.promptPrefix.WithLabelValues(persona).Observe(share)
	}
}
