package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

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
	k     int // responders per message that names nobody
}

// answeredBefore looks for this persona's claim on message id. A claim
// whose reply is in the stream means done; a claim without it is a crash
// between claiming and publishing, and the stored reply is published now
// (under its own id, so JetStream drops it if it was stored after all).
func (rp *replies) answeredBefore(ctx context.Context, name, id string) (bool, error) {
	e, err := rp.bus.replies.Get(ctx, ledgerKey(name, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("persona %s: replies: %w", name, err)
	}
	prev, err := decodeWire(e.Value())
	if err != nil {
		return true, nil // claimed; nothing we can republish
	}
	// Looked up in the stream too: an old reply may have left the index,
	// and publishing it again outside the duplicate window would store it
	// twice.
	if _, ok, err := seqOf(ctx, rp.rooms, rp.bus, prev.Room, prev.ID); err != nil {
		return false, fmt.Errorf("persona %s: find reply %s: %w", name, prev.ID, err)
	} else if ok {
		return true, nil
	}
	seq, err := rp.bus.publish(ctx, prev)
	if err != nil {
		return false, fmt.Errorf("persona %s: republish %s: %w", name, prev.ID, err)
	}
	rp.rooms.posted(seq, prev)
	rp.log.Info("published a reply claimed before a restart", "persona", name, "message", id, "reply", prev.ID)
	return true, nil
}

// claimSlot claims one of the K responder slots of message id in the
// replies bucket, cluster-wide: create-only keys slot.<id>.0 .. K-1, so at
// most K personas of all the daemons sharing the cluster answer a message
// that names nobody. A slot this persona already holds (a retry, or a
// redelivery after a crash) is still its own.
func (rp *replies) claimSlot(ctx context.Context, name, id string) (bool, error) {
	for n := range max(1, rp.k) {
		key := "slot." + id + "." + strconv.Itoa(n)
		_, err := rp.bus.replies.Create(ctx, key, []byte(strings.ToLower(name)))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return false, fmt.Errorf("persona %s: claim a responder slot: %w", name, err)
		}
		if e, gerr := rp.bus.replies.Get(ctx, key); gerr == nil && strings.EqualFold(string(e.Value()), name) {
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
func (rp *replies) sendReply(ctx context.Context, name, trigger string, covered []string, out chat.Message) error {
	data, err := encodeWire(out)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	if _, err := rp.bus.replies.Create(ctx, ledgerKey(name, trigger), data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return errAnswered
		}
		return fmt.Errorf("claim reply: %w", err)
	}
	for _, id := range covered {
		// Best effort: a merged message redelivered alone after a crash is
		// then known to be answered by this reply.
		_, _ = rp.bus.replies.Create(ctx, ledgerKey(name, id), data)
	}
	seq, err := rp.bus.publish(ctx, out)
	if err != nil {
		// The claim stays and holds the reply: the retry (or a redelivery
		// after a restart) publishes it through answeredBefore.
		return fmt.Errorf("publish reply: %w", err)
	}
	rp.rooms.posted(seq, out)
	return nil
}
