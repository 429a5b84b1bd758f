package server

import (
	"sync"
	"time"

	"github.com/personaos/persona/chat"
)

// Draft is a reply being written, as a room's live stream shows it: the
// text so far while the model streams it, then how it ended.
type Draft struct {
	ID      string `json:"id"`
	Persona string `json:"persona"`
	Room    string `json:"room"`
	ReplyTo string `json:"reply_to"`
	Text    string `json:"text"`
	// State is "writing" while the model streams; "sent" once the reply is
	// stored (Message is its ID); "superseded" when the persona put the
	// reply back to write it again with what came meanwhile (its model call
	// was preempted for an @mention, or a newer message took its place);
	// "failed" when the model failed (the room's system note says why).
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
}

// Draft states.
const (
	DraftWriting    = "writing"
	DraftSent       = "sent"
	DraftSuperseded = "superseded"
	DraftFailed     = "failed"
)

// draftEvery is the least time between two "writing" events of one draft:
// a model streams a token at a time, a reader needs a few updates a
// second.
const draftEvery = 100 * time.Millisecond

// drafting streams one reply's draft to its room: text (the llm.Request
// OnText hook) emits the text so far at most every draftEvery, end emits
// how it ended, with the last text. It is safe for concurrent use; after
// end, text emits nothing. A nil *drafting does nothing.
type drafting struct {
	emit func(Event)

	mu    sync.Mutex
	d     Draft
	last  time.Time
	ended bool
}

func newDrafting(emit func(Event), persona, room, replyTo string, now time.Time) *drafting {
	return &drafting{emit: emit, d: Draft{ID: "draft-" + newMessageID(now), Persona: persona, Room: room, ReplyTo: replyTo, State: DraftWriting}}
}

func (g *drafting) text(s string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended {
		return
	}
	g.d.Text = s
	if now := time.Now(); now.Sub(g.last) >= draftEvery {
		g.last = now
		g.send()
	}
}

// end marks the draft ended in state; a sent draft carries the stored
// message's ID and content.
func (g *drafting) end(state string, sent ...chat.Message) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended {
		return
	}
	g.ended = true
	if g.d.Text == "" && state != DraftSent {
		// Nothing was shown: nothing to mark.
		return
	}
	g.d.State = state
	if len(sent) > 0 {
		g.d.Message, g.d.Text = sent[0].ID, sent[0].Content
	}
	g.send()
}

func (g *drafting) send() {
	d := g.d
	g.emit(Event{Type: "draft", Room: d.Room, Draft: &d})
}
