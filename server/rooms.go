package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/llm"
)

// historyKeep is how many recent messages per room are kept in memory for
// prompts: more than llm.DefaultMaxHistory, so merged context still fits.
const historyKeep = 50

// indexKeep is how many message ids (the most recent) the rooms keep the
// stream sequence of, for paging with "after": a few megabytes. Paging
// after an older id looks it up in the stream.
const indexKeep = 100_000

// subscriberBuffer is how many events a slow live subscriber may lag
// behind before it misses some (they stay readable with GET messages).
const subscriberBuffer = 256

// rooms follows the room stream from its start with an ordered consumer and
// keeps what the daemon needs at hand: the stream sequences of the most
// recent messages (for "after" paging), each room's recent messages (for prompts), when a human
// last spoke (quiet rooms), the local reply budgets, and the live
// subscribers. Safe for concurrent use.
type rooms struct {
	log *slog.Logger

	mu sync.Mutex
	// index maps the ids of the most recent indexKeep messages to their
	// stream sequences; order holds the same ids as a ring, oldest at head,
	// so the oldest is forgotten first. An older id is looked up in the
	// stream itself (bus.findSeq).
	index    map[string]uint64
	order    []string
	head     int
	indexCap int
	byRoom   map[string]*room
	seen     uint64        // highest stream sequence applied
	target   uint64        // caught up once seen >= target
	caught   chan struct{} // closed when caught up
	subs     map[string]map[*subscriber]struct{}
	// authors maps the lower-case authors of persona messages seen to their
	// spelling. Only daemons write persona messages, so it holds one entry
	// per persona of the cluster.
	authors map[string]string
	closed  bool
	dropped uint64 // events not delivered to slow subscribers
	// budget is the rooms' reply budget: this daemon's replies per room,
	// and the persona messages of other daemons seen in the room.
	budget *chat.Budget[string]
	// local holds the lower-case names of the personas running here (their
	// leases are this daemon's), whose replies the budget counts when they
	// are reserved, not when seen. setLocal changes it.
	local map[string]bool
	// questions tracks the human messages no reply has answered yet, for
	// persona_questions_unanswered (see unanswered).
	questions questions
	// express, once set, sees every message the follower reads from then
	// on, outside the lock, on the follower's goroutine (Daemon.express).
	express atomic.Pointer[func(chat.Message)]
	// trail keeps each room's recent thoughts and decisions (trail.go).
	trail trail
}

type room struct {
	recent    []chat.Message // oldest first, at most historyKeep
	used      bool           // a message was stored
	lastHuman time.Time
}

type subscriber struct {
	ch chan Event
}

// newRooms returns the rooms with chat.DefaultSettings' reply budget; the
// daemon sets its own before any persona replies.
func newRooms(log *slog.Logger) *rooms {
	return &rooms{
		log:      log,
		budget:   chat.NewBudget[string](chat.DefaultReplyBudget, chat.DefaultReplyWindow),
		index:    make(map[string]uint64),
		indexCap: indexKeep,
		byRoom:   make(map[string]*room),
		caught:   make(chan struct{}),
		subs:     make(map[string]map[*subscriber]struct{}),
		authors:  make(map[string]string),
	}
}

func (rs *rooms) roomLocked(name string) *room {
	r := rs.byRoom[name]
	if r == nil {
		r = &room{}
		rs.byRoom[name] = r
	}
	return r
}

// follow starts the ordered consumer over every room and waits until it has
// read the stream up to its current end, so that history, quiet rooms and
// paging are complete before the personas start. The consumer runs until
// stop is called.
func (rs *rooms) follow(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream) (stop func(), err error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("room stream info: %w", err)
	}
	// Catch up to the last message the stream holds, not to its last
	// sequence: that one may hold nothing (every message expired under
	// --retention while the daemon was stopped, a deleted message, the
	// tail of a block lost to a power cut), and waiting for it would never
	// end.
	target := uint64(0)
	if info.State.Msgs > 0 {
		last, err := stream.GetLastMsgForSubject(ctx, allRooms)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return nil, fmt.Errorf("room stream: its last message: %w", err)
		default:
			target = last.Sequence
		}
	}
	if lost := info.State.NumDeleted; lost > 0 {
		rs.log.Warn("room stream lost messages: sequences that hold none (deleted, or the cut tail of a block)", "missing", lost, "first_seq", info.State.FirstSeq, "last_seq", info.State.LastSeq)
	}
	rs.mu.Lock()
	rs.target = target
	rs.checkCaughtLocked()
	rs.mu.Unlock()

	cons, err := js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{allRooms},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("room follower: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		msg, covers, err := decodeWireCovers(m.Data())
		if err != nil {
			rs.log.Warn("room follower: undecodable message", "seq", md.Sequence.Stream, "err", err)
			rs.advance(md.Sequence.Stream)
			return
		}
		rs.apply(md.Sequence.Stream, msg, covers...)
		if f := rs.express.Load(); f != nil {
			(*f)(msg)
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		rs.log.Debug("room follower", "err", err)
	}))
	if err != nil {
		return nil, fmt.Errorf("room follower: %w", err)
	}
	stop = func() {
		cc.Stop()
		<-cc.Closed()
	}
	select {
	case <-rs.caught:
		rs.log.Info("rooms caught up", "messages", info.State.Msgs, "last_seq", target)
		return stop, nil
	case <-ctx.Done():
		stop()
		return nil, fmt.Errorf("room follower: catching up with %d messages (to sequence %d): %w", info.State.Msgs, target, ctx.Err())
	}
}

func (rs *rooms) checkCaughtLocked() {
	if rs.seen >= rs.target {
		select {
		case <-rs.caught:
		default:
			close(rs.caught)
		}
	}
}

func (rs *rooms) advance(seq uint64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.seen = max(rs.seen, seq)
	rs.checkCaughtLocked()
}

// apply records a message read from the stream and tells the room's live
// subscribers.
func (rs *rooms) apply(seq uint64, m chat.Message, covers ...string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.seen = max(rs.seen, seq)
	rs.checkCaughtLocked()
	rs.rememberLocked(m.ID, seq)
	rs.questions.apply(m, covers)
	r := rs.noteLocked(m)
	r.recent = append(r.recent, m)
	if n := len(r.recent); n > historyKeep {
		r.recent = slices.Delete(r.recent, 0, n-historyKeep)
	}
	rs.emitLocked(Event{Type: "message", Room: m.Room, Message: &m})
}

// noteLocked records what any message tells about its room and author, and
// returns the room.
func (rs *rooms) noteLocked(m chat.Message) *room {
	r := rs.roomLocked(m.Room)
	r.used = true
	switch {
	case m.Kind == chat.Human && m.At.After(r.lastHuman):
		r.lastHuman = m.At
	case m.Kind == chat.Persona && m.Author != "":
		rs.authors[strings.ToLower(m.Author)] = m.Author
		if !rs.local[strings.ToLower(m.Author)] {
			rs.budget.Saw(m.Room, m.At)
		}
	}
	return r
}

// personaAuthor reports whether a persona message by author (lower-case)
// was seen, and the author's spelling.
func (rs *rooms) personaAuthor(lower string) (string, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	a, ok := rs.authors[lower]
	return a, ok
}

// posted records a message this daemon just stored, before the follower
// reads it back: paging after it and the quiet-room rule see it at once.
func (rs *rooms) posted(seq uint64, m chat.Message) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.rememberLocked(m.ID, seq)
	rs.noteLocked(m)
}

// rememberLocked indexes id at seq, forgetting the oldest id when full.
func (rs *rooms) rememberLocked(id string, seq uint64) {
	if _, ok := rs.index[id]; ok {
		rs.index[id] = seq
		return
	}
	rs.index[id] = seq
	if len(rs.order) < rs.indexCap {
		rs.order = append(rs.order, id)
		return
	}
	delete(rs.index, rs.order[rs.head])
	rs.order[rs.head] = id
	rs.head = (rs.head + 1) % len(rs.order)
}

// remember indexes a message found in the stream by bus.findSeq.
func (rs *rooms) remember(id string, seq uint64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.rememberLocked(id, seq)
}

// seq returns the stream sequence of a message id, if it is among the
// indexed ones.
func (rs *rooms) seq(id string) (uint64, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	s, ok := rs.index[id]
	return s, ok
}

// names returns the rooms that have messages, sorted.
func (rs *rooms) names() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]string, 0, len(rs.byRoom))
	for n, r := range rs.byRoom {
		if r.used {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// lastHuman is when a human last spoke in room (zero: never), for the
// quiet-room rule (chat.Quiet).
func (rs *rooms) lastHuman(room string) time.Time {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.roomLocked(room).lastHuman
}

// history returns the room's recent lines up to and including trigger, for
// llm.BuildHistory. Merged context messages and the trigger are added when
// the follower has not read them yet.
func (rs *rooms) history(trigger chat.Message, context []chat.Message) []llm.ChatLine {
	rs.mu.Lock()
	recent := slices.Clone(rs.roomLocked(trigger.Room).recent)
	rs.mu.Unlock()
	if i := slices.IndexFunc(recent, func(m chat.Message) bool { return m.ID == trigger.ID }); i >= 0 {
		recent = recent[:i+1]
	} else {
		for _, c := range context {
			if !slices.ContainsFunc(recent, func(m chat.Message) bool { return m.ID == c.ID }) {
				recent = append(recent, c)
			}
		}
		recent = append(recent, trigger)
	}
	out := make([]llm.ChatLine, len(recent))
	for i, m := range recent {
		out[i] = llm.ChatLine{Author: m.Author, Content: m.Content, ID: m.ID}
	}
	return out
}

// reserveReply takes one reply of room's budget at now. A reply that is not
// owed is refused once the budget is spent (chat.Budget.Reserve). An owed
// reply is reserved once it is due (chat.Budget.Due), or by
// chat.Budget.OwedBy for a message written at written, or at once with
// force; before that ok is false and next is when it will be. It returns
// a func that gives the reply back (it was not sent after all).
func (rs *rooms) reserveReply(room, who string, now, written time.Time, owed, force bool) (release func(), ok bool, next time.Time) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if owed && !force {
		if by := rs.budget.OwedBy(room, who, written); now.Before(by) {
			if due := rs.budget.Due(room, who, now); due.IsZero() || due.After(now) {
				if due.IsZero() || by.Before(due) {
					due = by
				}
				return func() {}, false, due
			}
		}
	}
	if !rs.budget.Reserve(room, who, now, owed) {
		return func() {}, false, rs.budget.Next(room, now)
	}
	return func() {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		rs.budget.Release(room, who, now)
	}, true, time.Time{}
}

// subscribe registers a live subscriber of a room. cancel unregisters it and
// closes its channel; it is idempotent. After close, the channel is closed
// at once.
func (rs *rooms) subscribe(name string) (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, subscriberBuffer)}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	m := rs.subs[name]
	if m == nil {
		m = make(map[*subscriber]struct{})
		rs.subs[name] = m
	}
	m[s] = struct{}{}
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			rs.mu.Lock()
			defer rs.mu.Unlock()
			if _, ok := rs.subs[name][s]; ok {
				delete(rs.subs[name], s)
				close(s.ch)
			}
			if len(rs.subs[name]) == 0 {
				delete(rs.subs, name) // rooms come and go with their viewers
			}
		})
	}
}

// emit sends an event to a room's live subscribers.
func (rs *rooms) emit(ev Event) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.emitLocked(ev)
}

// emitLocked never blocks: a subscriber whose buffer is full misses the
// event, which a reader of the stream can still find with GET messages
// (a thought or decision, in the room's trail).
func (rs *rooms) emitLocked(ev Event) {
	if rs.trail.keeps(ev) {
		rs.trail.add(time.Now(), ev)
	}
	for s := range rs.subs[ev.Room] {
		select {
		case s.ch <- ev:
		default:
			rs.dropped++
		}
	}
}

// close ends every live subscription (their channels close) and refuses
// new ones.
func (rs *rooms) close() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.closed = true
	for _, m := range rs.subs {
		for s := range m {
			close(s.ch)
		}
	}
	clear(rs.subs)
}

// questionHorizon is how long a human message may wait for an answer
// before persona_questions_unanswered counts it: the urgent SLA (10 s)
// many times over, and past the reply budget's longest wait for an owed
// reply (chat.Budget.OwedBy: one pacing interval, 10 s by default) and a person's question
// (until the budget has room: at most a window), so that a question the budget
// delays is not counted while its answer is still coming.
const questionHorizon = 5 * time.Minute

// questions counts the human messages that no reply answered within the
// horizon of being written: answered means a persona message replies to
// it, or covers it as merged context (wireMessage.Covers) and addresses its
// author (the reply's trigger is the author's own, or the reply @mentions
// them). Messages are judged in the stream's order and by their own
// times, so the count read from history after a restart is the count the
// daemon had. The zero value is ready; not safe for concurrent use (rooms
// locks it).
type questions struct {
	horizon time.Duration // zero: questionHorizon
	recent  map[string]*question
	order   []string // ids of recent, in arrival order, from head on
	head    int
	aged    uint64 // questions that passed the horizon unanswered
}

// maxQuestions bounds the questions tracked at once: a room flooded with
// more human messages within the horizon than this has its oldest aged
// early, and counted unanswered unless a reply answered it already, so
// that a flood costs bounded memory (about 200 bytes a question).
const maxQuestions = 100_000

// question is a human message written within the horizon. It is kept once
// answered too, until it ages, so that a reply to it can be matched with
// its author.
type question struct {
	author   string
	at       time.Time
	answered bool
}

// apply records a message read from the stream.
func (q *questions) apply(m chat.Message, covers []string) {
	if q.recent == nil {
		q.recent = map[string]*question{}
	}
	q.age(m.At)
	switch m.Kind {
	case chat.Human:
		if _, ok := q.recent[m.ID]; !ok {
			q.recent[m.ID] = &question{author: m.Author, at: m.At}
			q.order = append(q.order, m.ID)
			if len(q.order)-q.head > maxQuestions {
				q.forget(1)
			}
		}
	case chat.Persona:
		trigger := q.recent[m.ReplyTo]
		if trigger != nil {
			trigger.answered = true
		}
		for _, id := range covers {
			c := q.recent[id]
			if c != nil && ((trigger != nil && strings.EqualFold(c.author, trigger.author)) || chat.Mentioned(m.Content, c.author)) {
				c.answered = true
			}
		}
	}
}

// age counts the questions written more than the horizon before now that
// no reply answered, and forgets every question that old.
func (q *questions) age(now time.Time) {
	h := q.horizon
	if h <= 0 {
		h = questionHorizon
	}
	cut := now.Add(-h)
	n := 0
	for q.head+n < len(q.order) && !q.recent[q.order[q.head+n]].at.After(cut) {
		n++
	}
	q.forget(n)
}

// forget ages the n oldest questions: those no reply answered are counted.
func (q *questions) forget(n int) {
	for _, id := range q.order[q.head : q.head+n] {
		if c := q.recent[id]; c != nil && !c.answered {
			q.aged++
		}
		delete(q.recent, id)
	}
	q.head += n
	if q.head > 1024 && q.head > len(q.order)/2 {
		q.order = append(q.order[:0], q.order[q.head:]...)
		q.head = 0
	}
}

// overBudget is how many owed replies were reserved over the budget
// (chat.Budget.Over).
func (rs *rooms) overBudget() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.budget.Over()
}

// unanswered returns how many human messages no reply answered within the
// horizon, as seen at now (persona_questions_unanswered).
func (rs *rooms) unanswered(now time.Time) uint64 {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.questions.age(now)
	return rs.questions.aged
}

// setLocal records whether persona name runs here.
func (rs *rooms) setLocal(name string, here bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if here {
		rs.local[strings.ToLower(name)] = true
	} else {
		delete(rs.local, strings.ToLower(name))
	}
}
