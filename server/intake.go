package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/inbox"
)

// Intake: a JetStream delivery becomes one decoded value (inbound), which
// the guard (package chat's rules), the delivery to the persona and the
// coordination decision read.

// deliver is a persona consumer's handler: one JetStream delivery of a room
// message to one source persona. It runs on the consumer's goroutine, one
// message at a time, and never blocks on the persona.
func (d *Daemon) deliver(m *member, jm jetstream.Msg) {
	name := m.spec.Name
	now := time.Now()
	md, _ := jm.Metadata()
	msg, err := decodeWire(jm.Data())
	if err != nil {
		id := "undecodable"
		if md != nil {
			id = fmt.Sprintf("seq%d", md.Sequence.Stream)
		}
		d.log.Warn("undecodable room message", "persona", name, "subject", jm.Subject(), "err", err)
		d.ledger.skip(name, id, noteUndecodable, jm, now)
		return
	}
	if msg.Room == "" {
		msg.Room = roomOf(jm.Subject())
	}
	if !d.runsHere(m) {
		// Delivered after the lease was lost or handed over (the client
		// had it buffered): the persona's next holder gets it again.
		nak(d.log, jm, 0)
		return
	}
	in := d.decode(msg)
	reason, score := d.guard(name, in, now)
	if reason != "" {
		d.count(name, reason)
		d.ledger.skip(name, msg.ID, reason, jm, now)
		return
	}
	if d.ledger.hold(name, msg.ID, jm) {
		return // still queued or in hand: the newer handle will be acked
	}
	// A message addressed to the persona may have come by the express lane
	// and been accounted already: the ledger knows.
	if md == nil || md.NumDelivered > 1 || md.Sequence.Stream <= m.recheck.Load() || slices.Contains(in.addressees, name) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		done, err := d.ledger.done(ctx, name, msg.ID)
		cancel()
		if err != nil {
			d.ledger.unhold(name, msg.ID)
			d.log.Warn("ledger lookup failed; the message will be delivered again", "persona", name, "message", msg.ID, "err", err)
			nak(d.log, jm, d.ledger.nakDelay)
			return
		}
		if done {
			d.ledger.unhold(name, msg.ID)
			ack(d.log, jm)
			return
		}
	}
	err = m.p.Deliver(in.item(score))
	switch {
	case err == nil:
		d.supersede(name, msg.Room)
	case errors.Is(err, inbox.ErrDuplicate):
		// In the inbox under a handle the ledger dropped: keep this one.
	case errors.Is(err, persona.ErrClosed):
		d.ledger.unhold(name, msg.ID) // shutting down: delivered again next start
	default:
		d.stream.Withdraw(msg.ID, name)
		d.ledger.unhold(name, msg.ID)
		d.log.Error("deliver failed; message accounted as skipped", "persona", name, "message", msg.ID, "err", err)
		d.ledger.skip(name, msg.ID, "not delivered: "+err.Error(), jm, now)
	}
}

// supersede gives up the model calls of persona for room that still wait
// for a slot: a newer message of the room is in its inbox, and the persona
// answers it with the older one merged in, instead of spending a slot on
// the older one alone (slots.Scheduler.Supersede).
func (d *Daemon) supersede(persona, room string) {
	if d.slots != nil {
		d.slots.Supersede(persona, room)
	}
}

// express is the express lane of messages addressed to this daemon's
// personas: the room follower hands it every new message, and a message
// that addresses a source persona goes into its inbox at once, without
// waiting for the persona's durable consumer, which may be held behind a
// backlog of unacknowledged ordinary messages (MaxAckPending). The durable
// delivery still comes, later: it finds the message held (and its handle
// is the one acknowledged once the message is accounted) or accounted
// already in the ledger, so every message keeps exactly one account per
// persona. The lane holds no ack handle of its own: should the daemon stop
// before the account is written, the durable consumer delivers the message
// again. A message the guard would skip is left to the durable path, which
// accounts the skip.
func (d *Daemon) express(msg chat.Message) {
	if msg.Room == "" {
		return
	}
	in := d.decode(msg)
	now := time.Now()
	for _, name := range in.addressees {
		m := d.byName[strings.ToLower(name)]
		if m == nil || !m.active.Load() {
			continue
		}
		reason, score := d.guard(name, in, now)
		if reason != "" {
			continue
		}
		if !d.ledger.holdExpress(name, msg.ID) {
			continue // the durable delivery came first
		}
		err := m.p.Deliver(persona.Item[chat.Message]{ID: msg.ID, Key: msg.Room, Created: msg.At, Priority: score, Addressees: in.addressees, Payload: msg})
		if err == nil {
			d.supersede(name, msg.Room)
		}
		if err != nil && !errors.Is(err, inbox.ErrDuplicate) {
			d.ledger.unholdExpress(name, msg.ID)
			if !errors.Is(err, persona.ErrClosed) {
				d.log.Warn("express delivery failed; the durable consumer delivers the message", "persona", name, "message", msg.ID, "err", err)
			}
		}
	}
}

// inbound is a room message decoded once at intake: its mentions, and what
// they mean for this daemon. The guard, the delivery and the decision read
// it; nothing parses the content again.
type inbound struct {
	chat.Inbound
	// addressees are the personas running here that the message
	// @mentions, its author left out, by their configured names.
	addressees []string
	// remote counts the personas of the configuration it @mentions that
	// run elsewhere (or nowhere right now: their leases are free).
	remote int
}

// item is the persona item of a message taken in with score as its
// priority.
func (in inbound) item(score float64) persona.Item[chat.Message] {
	return persona.Item[chat.Message]{ID: in.ID, Key: in.Room, Created: in.At, Priority: score, Addressees: in.addressees, Payload: in.Message}
}

// decode decodes msg once.
func (d *Daemon) decode(msg chat.Message) inbound {
	in := inbound{Inbound: chat.Decode(msg)}
	for _, n := range in.Mentions {
		name, ok := d.names[n]
		if !ok || strings.EqualFold(name, msg.Author) {
			continue
		}
		if m := d.byName[strings.ToLower(name)]; m != nil && d.runsHere(m) {
			in.addressees = append(in.addressees, m.spec.Name)
		} else {
			in.remote++
		}
	}
	return in
}

// guard is the intake guard of persona name (chat.Settings.Guard, which
// doc.go of package chat explains) plus the cluster's own: a message that
// does not address name and whose mentions of other daemons' personas fill
// K is left to them, since coordination is per daemon. It returns the
// reason to skip ("" to deliver) and the message's score for name, which
// becomes the item's priority.
func (d *Daemon) guard(name string, in inbound, now time.Time) (string, float64) {
	addressed := slices.Contains(in.addressees, name)
	score := d.score(name, in.Message, addressed, now)
	reason := d.chat.Guard(chat.GuardFacts{
		Kind: in.Kind, Own: strings.EqualFold(in.Author, name), Addressed: addressed, Depth: in.Depth,
		At: in.At, LastHuman: d.rooms.lastHuman(in.Room), Score: score,
	})
	switch {
	case reason != chat.Pass && reason != chat.ReasonNotRelevant:
		return string(reason), score
	case !addressed && in.remote >= d.chat.Stream.K:
		return noteElsewhere, score
	}
	return string(reason), score
}

// score is msg's priority for persona name at now.
func (d *Daemon) score(name string, msg chat.Message, addressed bool, now time.Time) float64 {
	return d.scorer.Weights().Score(d.scorer.Facts(name, msg, addressed, now))
}

// open opens the coordination decision on msg, unless it is open or
// decided, with the personas chat.Settings.Expected names: the coordinated
// personas of this daemon, but msg's author, to which msg is relevant. The
// others do not take it in (see guard).
//
// It is called when the first persona evaluates msg, not when msg is
// delivered, so that the decision's window starts when someone is looking:
// each persona waits for the decision on the message it is handling, and
// in a burst across rooms the personas can be busy waiting on one another
// for a whole window. A window started at delivery could then close on a
// message nobody has looked at yet, and it would go unanswered.
//
// Its addressees are msg's own, not those of the batch the first persona
// merged msg into: a merged message that named another persona would make
// that persona an addressee of msg, answering it with no responder slot and
// outside K. A persona owed through a merged message is granted by its
// thought (coord.Thought.Addressed).
func (d *Daemon) open(msg chat.Message, now time.Time) {
	addressees := d.decode(msg).addressees
	cands := make([]chat.Candidate, 0, len(d.thinkers))
	for _, t := range d.thinkers {
		if m := d.byName[strings.ToLower(t)]; m == nil || !d.runsHere(m) && !(m.draining.Load() && d.ledger.holds(t, msg.ID)) {
			continue // its lease is another daemon's (and it is not draining a delivery of msg)
		}
		addressed := slices.Contains(addressees, t)
		cands = append(cands, chat.Candidate{Name: t, Addressed: addressed, Score: d.score(t, msg, addressed, now)})
	}
	expected, addr := d.chat.Expected(msg.Author, msg.Kind, cands)
	d.stream.Open(msg.ID, msg.Room, expected, addr)
}

// elsewhere counts the personas msg @mentions that run on other daemons
// (or nowhere right now), its author left out (inbound.remote): the
// addressees this daemon's stream did not count against K
// (responder.elsewhere).
func (d *Daemon) elsewhere(msg chat.Message) int { return d.decode(msg).remote }

// runsHere reports whether member m runs in this daemon: it holds m's
// lease, or m waits for others (it follows its sources), or there are no
// leases (the chat parity test's daemon, which has no bus).
func (d *Daemon) runsHere(m *member) bool {
	return d.leases == nil || m.active.Load() || m.spec.Dependent()
}
