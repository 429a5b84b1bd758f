package server

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
	m, _, err := d.PostOnce(ctx, room, author, content, "")
	return m, err
}

// ErrKeyReused is a PostOnce whose idempotency key was used for another
// message (room, author or content).
var ErrKeyReused = errors.New("this idempotency key was used for another message")

// PostOnce is Post with a client's idempotency key (empty: none). The key
// is the message's Nats-Msg-Id, so the stream itself remembers it for its
// duplicate window (10 minutes, or the retention if shorter): a second
// PostOnce of the key stores nothing and returns the message stored first,
// with replayed true, after a crash of the daemon that stored it or from
// another daemon of the cluster. The same key with another message is an
// error wrapping ErrKeyReused.
func (d *Daemon) PostOnce(ctx context.Context, room, author, content, key string) (_ chat.Message, replayed bool, _ error) {
	if err := d.running(); err != nil {
		return chat.Message{}, false, err
	}
	author, content = strings.TrimSpace(author), strings.TrimSpace(content)
	switch {
	case !roomName.MatchString(room):
		return chat.Message{}, false, fmt.Errorf("%w: room %q", ErrInvalid, room)
	case author == "":
		return chat.Message{}, false, fmt.Errorf("%w: empty author", ErrInvalid)
	case content == "":
		return chat.Message{}, false, fmt.Errorf("%w: empty content", ErrInvalid)
	}
	if p, ok := d.PersonaName(author); ok {
		return chat.Message{}, false, fmt.Errorf("%w: author %q is persona %s's name", ErrInvalid, author, p)
	}
	now := time.Now()
	m := chat.Message{ID: newMessageID(now), Room: room, Author: author, Kind: chat.Human, Content: content, At: now.UTC()}
	msgID := m.ID
	if key != "" {
		// Not the key itself: a client's key must not collide with the
		// ids the daemon publishes under.
		msgID = "key:" + key
	}
	if d.cfg.hooks.beforePublish != nil {
		d.cfg.hooks.beforePublish()
	}
	seq, dup, err := d.bus.publishAs(ctx, m, msgID)
	if err != nil {
		if ctx.Err() != nil {
			return chat.Message{}, false, fmt.Errorf("post: %w", ctx.Err())
		}
		if storageError(err) {
			d.store.failed(err)
			d.log.Warn("message refused: the store is full", "room", room, "err", err)
			return chat.Message{}, false, fmt.Errorf("%w: %w", ErrStoreFull, err)
		}
		return chat.Message{}, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d.store.wrote()
	if dup {
		first, inRoom, err := d.bus.get(ctx, room, seq)
		switch {
		case err != nil:
			return chat.Message{}, false, fmt.Errorf("%w: the first message of the key: %w", ErrUnavailable, err)
		case !inRoom || first.Kind != chat.Human || first.Author != author || first.Content != content:
			return chat.Message{}, false, fmt.Errorf("%w", ErrKeyReused)
		}
		return first, true, nil
	}
	d.rooms.posted(seq, m)
	d.metrics.Message()
	return m, false, nil
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
	return d.page(ctx, room, after, limit, d.bus.after)
}

// MessagesBefore lists the at most limit (default 100, at most 500)
// messages of a room stored right before the message with id before (the
// room's newest when empty), oldest first.
func (d *Daemon) MessagesBefore(ctx context.Context, room, before string, limit int) ([]chat.Message, error) {
	return d.page(ctx, room, before, limit, d.bus.before)
}

// page is Messages and MessagesBefore: it checks the room, finds the
// stream sequence of the cursor id (0 without one) and reads the page
// there.
func (d *Daemon) page(ctx context.Context, room, cursor string, limit int,
	read func(ctx context.Context, room string, seq uint64, limit int) ([]chat.Message, error)) ([]chat.Message, error) {
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
	if cursor != "" {
		s, ok, err := d.seqOf(ctx, room, cursor)
		if err == nil && !ok {
			err = fmt.Errorf("%w: message %q", ErrNotFound, cursor)
		}
		if err != nil {
			return nil, err
		}
		seq = s
	}
	out, err := read(ctx, room, seq, limit)
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

// before lists up to limit messages of room stored before stream sequence
// seq (0: the room's newest), oldest first. A direct get reads only
// forward (the room's next message at or after a sequence), so it reads
// windows of the stream backwards from seq, each from its start, the first
// limit sequences long and each next one twice as long as the one before,
// until the page is full or the stream begins. That costs one direct get
// per room message the windows hold, fewer than twice the page when the
// room's share of the stream is even, and a get per empty window.
func (b *bus) before(ctx context.Context, room string, seq uint64, limit int) ([]chat.Message, error) {
	subj := roomSubject(room)
	if seq == 0 {
		last, err := b.stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", room, err)
		}
		seq = last.Sequence + 1
	}
	info, err := b.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", room, err)
	}
	first := max(info.State.FirstSeq, 1)
	var out []chat.Message
	for hi, span := seq, uint64(max(limit, 1)); hi > first && len(out) < limit; span = min(2*span, 1<<62) {
		lo := first
		if hi-first > span {
			lo = hi - span
		}
		win, err := b.between(ctx, room, lo, hi)
		if err != nil {
			return nil, err
		}
		out = append(win, out...)
		hi = lo
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

// between lists the messages of room stored at sequences lo up to but not
// including hi, oldest first.
func (b *bus) between(ctx context.Context, room string, lo, hi uint64) ([]chat.Message, error) {
	if lo >= hi {
		return nil, nil
	}
	out, err := b.scan(ctx, room, lo, hi, 0)
	if err != nil {
		return nil, err
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

// Personas returns every persona of the configuration, in its order: those
// running here in full, the others with where they run (PersonaInfo.Runs).
func (d *Daemon) Personas() []PersonaInfo {
	out := make([]PersonaInfo, 0, len(d.all))
	for _, s := range d.all {
		if m := d.byName[strings.ToLower(s.Name)]; m != nil && d.runsHere(m) {
			out = append(out, d.info(m))
			continue
		}
		out = append(out, d.elsewhereInfo(s))
	}
	return out
}

// elsewhereInfo is what this daemon knows of a persona another daemon runs
// (or none does right now).
func (d *Daemon) elsewhereInfo(s PersonaSpec) PersonaInfo {
	pi := PersonaInfo{Name: s.Name, Display: s.DisplayName(), Expertise: slices.Clone(s.Expertise), Model: d.modelName(s)}
	if pi.Expertise == nil {
		pi.Expertise = []string{}
	}
	if d.leases != nil {
		if w, ok := d.leases.where(s.Name); ok {
			pi.Runs = &w
		}
	}
	return pi
}

// Persona returns one persona by name (case-insensitive).
func (d *Daemon) Persona(name string) (PersonaInfo, bool) {
	m, ok := d.byName[strings.ToLower(name)]
	if ok && d.runsHere(m) {
		return d.info(m), true
	}
	for _, s := range d.all {
		if strings.EqualFold(s.Name, name) {
			return d.elsewhereInfo(s), true
		}
	}
	return PersonaInfo{}, false
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
	pi.Outcomes = d.outcomes(m.spec.Name, pi.Snapshot)
	pi.Here = true
	if d.leases != nil {
		if w, ok := d.leases.where(m.spec.Name); ok {
			pi.Runs = &w
		}
	}
	if f, ok := d.lastFailure(m.spec.Name); ok {
		pi.LastModelFailure = &f
	}
	if cons := m.consumer(); cons != nil && d.state.Load() == 1 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ci, err := cons.Info(ctx)
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
