package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/personaos/persona/chat"
)

// replies is the replies bucket as the responders use it: at most one reply
// per persona and message ever, K responder slots per message across the
// cluster, and the repair of a reply claimed but never published. Safe for
// concurrent use (the bucket and the rooms are).
type replies struct {
	bus   *bus
	rooms *rooms
	log   *slog.Logger
	// failPublish, if set, runs before each reply's publish and fails it
	// with its error (a test seam: hooks.failReplyPublish).
	failPublish func(chat.Message) error
}

// transientError marks a bus or KV error: infrastructure, not the
// persona's judgement nor its model's failure. The responder retries it
// with backoff, and the daemon never makes it a message's final account
// (Daemon.observe).
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// transient wraps err as a transientError (nil stays nil).
func transient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

// isTransient reports whether err is, or wraps, a transientError.
func isTransient(err error) bool {
	var te transientError
	return errors.As(err, &te)
}

// answeredBefore looks for this persona's claim on message id. A claim
// whose reply is in the stream means done; a claim without it is a crash
// or a bus error between claiming and publishing, and the stored reply is
// published now (under its own id, so JetStream drops it if it was stored
// after all): then republished is true as well, and the message is answered
// by this very attempt.
func (rp *replies) answeredBefore(ctx context.Context, name, id string) (answered, republished bool, _ error) {
	e, err := rp.bus.replies.Get(ctx, ledgerKey(name, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, transient(fmt.Errorf("persona %s: replies: %w", name, err))
	}
	if trigger, ok := coveredBy(e.Value()); ok {
		// Merged into the reply to trigger: that reply answers it, and is
		// repaired (published) as the trigger's own would be.
		if trigger == id {
			return true, false, nil // a reference to itself: claimed, nothing to republish
		}
		answered, republished, err := rp.answeredBefore(ctx, name, trigger)
		return answered || err == nil, republished, err
	}
	prev, covers, err := decodeWireCovers(e.Value())
	if err != nil {
		return true, false, nil // claimed; nothing we can republish
	}
	// Looked up in the stream too: an old reply may have left the index,
	// and publishing it again outside the duplicate window would store it
	// twice.
	if _, ok, err := seqOf(ctx, rp.rooms, rp.bus, prev.Room, prev.ID); err != nil {
		return false, false, transient(fmt.Errorf("persona %s: find reply %s: %w", name, prev.ID, err))
	} else if ok {
		return true, false, nil
	}
	seq, err := rp.publish(ctx, prev, covers...)
	if err != nil {
		return false, false, transient(fmt.Errorf("persona %s: republish %s: %w", name, prev.ID, err))
	}
	rp.rooms.posted(seq, prev)
	rp.log.Info("published a reply claimed before but not published", "persona", name, "message", id, "reply", prev.ID)
	return true, true, nil
}

// claimSlot claims one of the n responder slots of message id in the
// replies bucket, cluster-wide: create-only keys slot.<id>.0 .. n-1, so at
// most n personas of all the daemons sharing the cluster answer a message
// besides its addressees. A slot this persona already holds (a retry, or a
// redelivery after a crash) is still its own. release deletes the slot
// again, for a peer, when the persona does not answer after all (a model
// error, nothing to say); a peer that found every slot taken before that
// has accounted the message already, so a release helps the peers still
// deciding.
func (rp *replies) claimSlot(ctx context.Context, name, id string, n int) (release func(), ok bool, _ error) {
	for i := range max(0, n) {
		key := "slot." + id + "." + strconv.Itoa(i)
		rev, err := rp.bus.replies.Create(ctx, key, []byte(strings.ToLower(name)))
		if err == nil {
			return rp.freeSlot(key, rev), true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, false, transient(fmt.Errorf("persona %s: claim a responder slot: %w", name, err))
		}
		if e, gerr := rp.bus.replies.Get(ctx, key); gerr == nil && strings.EqualFold(string(e.Value()), name) {
			return rp.freeSlot(key, e.Revision()), true, nil
		}
	}
	return nil, false, nil
}

// freeSlot returns the release of a slot claimed at revision rev.
func (rp *replies) freeSlot(key string, rev uint64) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := rp.bus.replies.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil {
			rp.log.Debug("responder slot not released; it stays claimed", "slot", key, "err", err)
		}
	}
}

// coverRefPrefix starts a replies-bucket value that says which reply
// answered a merged message: the trigger's message ID follows.
const coverRefPrefix = "covered-by "

// coverRef is the value stored under a merged message's key.
func coverRef(trigger string) []byte { return []byte(coverRefPrefix + trigger) }

// coveredBy reports the trigger a merged message's value refers to.
func coveredBy(v []byte) (string, bool) {
	s, ok := strings.CutPrefix(string(v), coverRefPrefix)
	return s, ok && s != ""
}

// errAnswered means another attempt already claimed the reply.
var errAnswered = errors.New("already answered")

// sendReply claims (persona, trigger) in the replies bucket, then the merged
// messages it covers, and publishes the reply. The claim holds the reply
// itself, so a crash before the publish is repaired on redelivery.
func (rp *replies) sendReply(ctx context.Context, name, trigger string, covered []string, out chat.Message) error {
	data, err := encodeWire(out, covered...)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	// The claim and its covers' references are written together even if
	// ctx ends between them (an urgent arrival preempting the reply): a
	// claim without them would let the covered messages be answered again
	// by the retry, merged into a newer batch.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := rp.bus.replies.Create(wctx, ledgerKey(name, trigger), data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return errAnswered
		}
		return transient(fmt.Errorf("claim reply: %w", err))
	}
	ref := coverRef(trigger)
	for _, id := range covered {
		// Best effort: a merged message redelivered alone after a crash is
		// then known to be answered by this reply. It holds a reference to
		// the trigger's claim, not the reply again: a reply merging n
		// messages is stored once, not n times over with n covers each.
		_, _ = rp.bus.replies.Create(wctx, ledgerKey(name, id), ref)
	}
	seq, err := rp.publish(ctx, out, covered...)
	if err != nil {
		// The claim stays and holds the reply: the retry (or a redelivery
		// after a restart) publishes it through answeredBefore.
		return transient(fmt.Errorf("publish reply: %w", err))
	}
	rp.rooms.posted(seq, out)
	return nil
}

// publish stores a reply in its room (bus.publish), through the test seam.
func (rp *replies) publish(ctx context.Context, m chat.Message, covers ...string) (uint64, error) {
	if rp.failPublish != nil {
		if err := rp.failPublish(m); err != nil {
			return 0, err
		}
	}
	return rp.bus.publish(ctx, m, covers...)
}
