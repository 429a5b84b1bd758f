package server

import (
	"strings"
	"testing"
	"time"

	"github.com/personaos/persona/chat"
)

// drafts collects the draft events of a room until stop says so or the
// wait ends.
func drafts(t *testing.T, ch <-chan Event, wait time.Duration, stop func([]Draft) bool) []Draft {
	t.Helper()
	var got []Draft
	deadline := time.After(wait)
	for !stop(got) {
		select {
		case ev := <-ch:
			if ev.Draft != nil {
				got = append(got, *ev.Draft)
			}
		case <-deadline:
			t.Fatalf("after %v: drafts %+v", wait, got)
		}
	}
	return got
}

// A reply streams to the room as a draft while the model writes it, and
// the draft ends "sent" with the stored message.
func TestReplyStreamsAsADraftThenSent(t *testing.T) {
	f := &fakeOpenAI{}
	cfg := testConfig(t)
	cfg.Specs = fourPersonas()
	withFakeModel(t, &cfg, f)
	d := startDaemon(t, cfg)
	ch, cancel := d.rooms.subscribe("general")
	defer cancel()

	m := post(t, d, "general", "alice", "@Helper my install fails, why?")
	got := drafts(t, ch, 10*time.Second, func(ds []Draft) bool {
		return len(ds) > 0 && ds[len(ds)-1].State != DraftWriting
	})
	last := got[len(got)-1]
	if last.State != DraftSent || last.Persona != "Helper" || last.ReplyTo != m.ID {
		t.Fatalf("the draft ended %+v, want sent by Helper in reply to %s", last, m.ID)
	}
	if len(got) < 2 || got[0].State != DraftWriting || got[0].Text == "" || got[0].ID != last.ID {
		t.Fatalf("drafts %+v, want a writing draft with text before the sent one", got)
	}
	replies := repliesTo(messages(t, d, "general"), m.ID)
	if len(replies) != 1 || replies[0].ID != last.Message || replies[0].Content != last.Text {
		t.Fatalf("replies %+v, want the one the sent draft names (%s: %q)", replies, last.Message, last.Text)
	}
	// The first piece is part of what the model wrote, not all of it.
	if !strings.Contains(last.Text, got[0].Text) || len(got[0].Text) >= len(last.Text) {
		t.Errorf("first draft text %q, want a part of the reply %q", got[0].Text, last.Text)
	}
}

// A reply cut short while it streams (its model call preempted for an
// @mention) is marked superseded, not silently dropped from the room's
// view; with NoStream no draft is shown at all.
func TestPreemptedDraftIsMarkedSuperseded(t *testing.T) {
	g := newGateModel()
	defer g.release()
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.Model = g
	d := startDaemon(t, cfg)
	busy, cancel := d.rooms.subscribe("busy")
	defer cancel()

	slow := post(t, d, "busy", "ann", "BLOCK a go question for anyone")
	if got := g.next(t); !strings.Contains(got, "BLOCK") {
		t.Fatalf("first model call %q, want the ordinary message", got)
	}
	got := drafts(t, busy, 10*time.Second, func(ds []Draft) bool { return len(ds) > 0 })
	if got[0].State != DraftWriting || got[0].Text != "thinking about it" || got[0].ReplyTo != slow.ID {
		t.Fatalf("drafts %+v, want the blocked reply writing", got)
	}
	post(t, d, "other", "bob", "@Solo quick one?")
	got = drafts(t, busy, 10*time.Second, func(ds []Draft) bool { return len(ds) > 0 })
	if got[0].State != DraftSuperseded || got[0].ID == "" || got[0].Text != "thinking about it" {
		t.Fatalf("drafts %+v, want the preempted reply marked superseded", got)
	}
}

func TestNoStreamShowsNoDraft(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.NoStream = true
	d := startDaemon(t, cfg)
	ch, cancel := d.rooms.subscribe("r")
	defer cancel()
	m := post(t, d, "r", "ann", "@Solo hello, is go fast?")
	for {
		select {
		case ev := <-ch:
			if ev.Draft != nil {
				t.Fatalf("a draft with NoStream: %+v", ev.Draft)
			}
			if ev.Message != nil && ev.Message.Kind == chat.Persona && ev.Message.ReplyTo == m.ID {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no reply within 10s")
		}
	}
}
