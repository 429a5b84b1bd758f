package server

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/govern"
)

// The daemon as the HTTP layer's Backend: posting, paging, live events and
// what the dashboard shows.

// roomName is what a room may be called: a NATS subject token and a URL
// path segment (the HTTP layer checks the same).
var roomName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func (d *Daemon) running() error {
	if d.state.Load() != 1 || d.bus == nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, ErrStopped)
	}
	return nil
}

// Post stores a human's message; it returns once JetStream has stored it.
func (d *Daemon) Post(ctx context.Context, room, author, content string) (chat.Message, error) {
	if err := d.running(); err != nil {
		return chat.Message{}, err
	}
	author, content = strings.TrimSpace(author), strings.TrimSpace(content)
	switch {
	case !roomName.MatchString(room):
		return chat.Message{}, fmt.Errorf("%w: room %q", ErrInvalid, room)
	case author == "":
		return chat.Message{}, fmt.Errorf("%w: empty author", ErrInvalid)
	case content == "":
		return chat.Message{}, fmt.Errorf("%w: empty content", ErrInvalid)
	}
	if p, ok := d.PersonaName(author); ok {
		return chat.Message{}, fmt.Errorf("%w: author %q is persona %s's name", ErrInvalid, author, p)
	}
	now := time.Now()
	m := chat.Message{ID: newMessageID(now), Room: room, Author: author, Kind: chat.Human, Content: content, At: now.UTC()}
	if d.cfg.hooks.beforePublish != nil {
		d.cfg.hooks.beforePublish()
	}
	seq, err := d.bus.publish(ctx, m)
	if err != nil {
		if ctx.Err() != nil {
			return chat.Message{}, fmt.Errorf("post: %w", ctx.Err())
		}
		return chat.Message{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d.rooms.posted(seq, m)
	d.metrics.Message()
	return m, nil
}

// PersonaName reports whether author would pass for a persona, and which:
// the name (what @mentions use) or display name of any persona of the
// configuration, run here or by another daemon, or the author of a persona
// message seen in the stream (a persona of a daemon configured otherwise),
// ignoring case, surrounding space and a leading '@'. It reads only memory,
// so it costs no NATS round trip per POST.
func (d *Daemon) PersonaName(author string) (string, bool) {
	bare := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(author), "@")))
	if p, ok := d.names[bare]; ok {
		return p, true
	}
	// A look-alike (Cyrillic "Teаcher", fullwidth "Ｔeacher") passes for
	// the persona too.
	look := skeleton(author)
	for name, p := range d.names {
		if skeleton(name) == look {
			return p, true
		}
	}
	if d.rooms != nil {
		return d.rooms.personaAuthor(bare)
	}
	return "", false
}

// Messages lists a room's messages after the message with id after (from
// the start when empty), oldest first, at most limit (default 100, at most
// 500).
func (d *Daemon) Messages(ctx context.Context, room, after string, limit int) ([]chat.Message, error) {
	if err := d.running(); err != nil {
		return nil, err
	}
	if !roomName.MatchString(room) {
		return nil, fmt.Errorf("%w: room %q", ErrInvalid, room)
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 500)
	var seq uint64
	if after != "" {
		s, ok, err := d.seqOf(ctx, room, after)
		if err == nil && !ok {
			err = fmt.Errorf("%w: message %q", ErrNotFound, after)
		}
		if err != nil {
			return nil, err
		}
		seq = s
	}
	out, err := d.bus.after(ctx, room, seq, limit)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("messages: %w", ctx.Err())
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if out == nil {
		out = []chat.Message{}
	}
	return out, nil
}

// Message returns one message of room by id.
func (d *Daemon) Message(ctx context.Context, room, id string) (chat.Message, error) {
	if err := d.running(); err != nil {
		return chat.Message{}, err
	}
	if !roomName.MatchString(room) {
		return chat.Message{}, fmt.Errorf("%w: room %q", ErrInvalid, room)
	}
	seq, ok, err := d.seqOf(ctx, room, id)
	if err == nil && !ok {
		err = fmt.Errorf("%w: message %q in room %q", ErrNotFound, id, room)
	}
	if err != nil {
		return chat.Message{}, err
	}
	m, inRoom, err := d.bus.get(ctx, room, seq)
	if err != nil {
		if ctx.Err() != nil {
			return chat.Message{}, fmt.Errorf("message: %w", ctx.Err())
		}
		return chat.Message{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !inRoom || m.ID != id {
		return chat.Message{}, fmt.Errorf("%w: message %q in room %q", ErrNotFound, id, room)
	}
	return m, nil
}

// seqOf returns the stream sequence of message id of room: from the rooms'
// index of recent messages, or else found in the stream (and then indexed).
func (d *Daemon) seqOf(ctx context.Context, room, id string) (uint64, bool, error) {
	return seqOf(ctx, d.rooms, d.bus, room, id)
}

// seqOf is Daemon.seqOf over the rooms' index and the bus.
func seqOf(ctx context.Context, rs *rooms, b *bus, room, id string) (uint64, bool, error) {
	if s, ok := rs.seq(id); ok {
		return s, true, nil
	}
	s, ok, err := b.findSeq(ctx, room, id)
	if err != nil {
		if ctx.Err() != nil {
			return 0, false, fmt.Errorf("messages: %w", ctx.Err())
		}
		return 0, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if ok {
		rs.remember(id, s)
	}
	return s, ok, nil
}

// Subscribe streams a room's events: messages as they are stored, thoughts
// and decisions. A subscriber that falls more than 256 events behind misses
// some. The channel closes on cancel, when ctx ends, or at Shutdown.
func (d *Daemon) Subscribe(ctx context.Context, room string) (<-chan Event, func()) {
	if d.rooms == nil {
		ch := make(chan Event)
		close(ch)
		return ch, func() {}
	}
	ch, cancel := d.rooms.subscribe(room)
	stop := context.AfterFunc(ctx, cancel)
	return ch, func() {
		stop()
		cancel()
	}
}

// Personas returns every persona of this daemon, in configuration order.
func (d *Daemon) Personas() []PersonaInfo {
	out := make([]PersonaInfo, 0, len(d.members))
	for _, m := range d.members {
		out = append(out, d.info(m))
	}
	return out
}

// Persona returns one persona by name (case-insensitive).
func (d *Daemon) Persona(name string) (PersonaInfo, bool) {
	m, ok := d.byName[strings.ToLower(name)]
	if !ok {
		return PersonaInfo{}, false
	}
	return d.info(m), true
}

func (d *Daemon) info(m *member) PersonaInfo {
	pi := PersonaInfo{
		Name:        m.spec.Name,
		Display:     m.spec.DisplayName(),
		Expertise:   slices.Clone(m.spec.Expertise),
		Model:       d.modelName(m.spec),
		Snapshot:    m.p.Snapshot(),
		LastThought: m.r.thought(),
	}
	if pi.Expertise == nil {
		pi.Expertise = []string{}
	}
	if f, ok := d.lastFailure(m.spec.Name); ok {
		pi.LastModelFailure = &f
	}
	if m.cons != nil && d.state.Load() == 1 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ci, err := m.cons.Info(ctx)
		cancel()
		if err == nil {
			pi.Backlog = &Backlog{Pending: ci.NumPending, Unacked: ci.NumAckPending, Redelivered: ci.NumRedelivered}
		}
	}
	return pi
}

// Status returns the governor's state, when the daemon started, and the
// rooms with messages.
func (d *Daemon) Status() Status {
	st := Status{Thermal: govern.Nominal.String(), Started: d.started, Rooms: []string{}}
	if d.gov != nil {
		st.Thermal = d.gov.State().String()
		_, st.Pressure = d.gov.Last()
	}
	if d.rooms != nil {
		st.Rooms = d.rooms.names()
	}
	return st
}

var _ Backend = (*Daemon)(nil)
