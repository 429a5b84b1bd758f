package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Record is a (persona, message) pair's entry in the accounts bucket: the
// final account the persona's runtime gave the message ("handled",
// "declined", "expired", "failed", or "skipped" for a message it never took
// in), with a note saying more ("replied", "not granted", "reply budget",
// "quiet room", "own message", "answered before", ...).
type Record struct {
	Account string    `json:"account"`
	Note    string    `json:"note,omitempty"`
	At      time.Time `json:"at"`
}

// ledger ties the runtime's final accounts to JetStream acknowledgements.
//
// Each source persona's consumer delivers a message once into the persona's
// inbox; the ledger holds the delivery (its ack handle) until the persona
// and every persona downstream of it in a pipeline have given the message a
// final account. Then it writes each account to the accounts bucket, and
// only after that acknowledges the message. A crash at any point leaves the
// message unacknowledged, so it is delivered again after a restart, where
// the accounts bucket tells whether it was in fact done.
//
// Finals are written by one goroutine (run), so persona loops never wait on
// the network: Observe only queues.
type ledger struct {
	log      *slog.Logger
	accounts jetstream.KeyValue
	groups   map[string][]string // source persona (lower-case) -> itself and its dependents

	mu      sync.Mutex
	pending map[string]*pend // message id -> deliveries held
	notes   map[string]string
	queue   []final
	wake    chan struct{}
	stopped bool

	// skipWrites drops finals on the floor without writing or
	// acknowledging: tests use it to stand for a crash before the ack.
	skipWrites bool
}

type pend struct {
	handles map[string]jetstream.Msg // source persona -> latest delivery
	got     map[string]bool          // personas with a final account
}

type final struct {
	persona, id string
	rec         Record
	direct      jetstream.Msg // acknowledged at once after writing (a skipped message)
}

func newLedger(log *slog.Logger, accounts jetstream.KeyValue, groups map[string][]string) *ledger {
	return &ledger{
		log: log, accounts: accounts, groups: groups,
		pending: make(map[string]*pend),
		notes:   make(map[string]string),
		wake:    make(chan struct{}, 1),
	}
}

// hold records a delivery of message id to a source persona. It reports
// whether the persona already holds the message (a redelivery while it is
// queued or being handled): then only the handle is replaced by the newer
// one, and the caller must not deliver it again.
func (l *ledger) hold(source, id string, m jetstream.Msg) (held bool) {
	source = strings.ToLower(source)
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pending[id]
	if p == nil {
		p = &pend{handles: make(map[string]jetstream.Msg, 1), got: make(map[string]bool)}
		l.pending[id] = p
	}
	_, held = p.handles[source]
	p.handles[source] = m
	return held
}

// unhold forgets a delivery that never reached the inbox (the runtime is
// shutting down): it stays unacknowledged and comes back after a restart.
func (l *ledger) unhold(source, id string) {
	source = strings.ToLower(source)
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.pending[id]; p != nil {
		delete(p.handles, source)
		if len(p.handles) == 0 {
			delete(l.pending, id)
		}
	}
}

// note attaches a detail to the next final account of (persona, id).
func (l *ledger) note(persona, id, note string) {
	l.mu.Lock()
	l.notes[ledgerKey(persona, id)] = note
	l.mu.Unlock()
}

// final queues a persona's final account of a message.
func (l *ledger) final(persona, id, account string, at time.Time) {
	key := ledgerKey(persona, id)
	l.mu.Lock()
	note := l.notes[key]
	delete(l.notes, key)
	l.enqueueLocked(final{persona: strings.ToLower(persona), id: id, rec: Record{Account: account, Note: note, At: at}})
	l.mu.Unlock()
}

// skip accounts a message a source persona never takes in (its own, a quiet
// room's, an undecodable one) and acknowledges it once written.
func (l *ledger) skip(persona, id, note string, m jetstream.Msg, at time.Time) {
	l.mu.Lock()
	l.enqueueLocked(final{persona: strings.ToLower(persona), id: id, rec: Record{Account: "skipped", Note: note, At: at}, direct: m})
	l.mu.Unlock()
}

func (l *ledger) enqueueLocked(f final) {
	l.queue = append(l.queue, f)
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// done reports whether every persona of a source's group has a final
// account of message id in the bucket: a redelivery of it is then acked and
// dropped.
func (l *ledger) done(ctx context.Context, source, id string) (bool, error) {
	for _, p := range l.group(source) {
		_, err := l.accounts.Get(ctx, ledgerKey(p, id))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

func (l *ledger) group(source string) []string {
	source = strings.ToLower(source)
	if g, ok := l.groups[source]; ok {
		return g
	}
	return []string{source}
}

// run writes queued finals until ctx is done, then writes what is still
// queued and returns. Call it once; the daemon owns its goroutine and
// cancels ctx only after the runtime has shut down, so every final the
// runtime reported is written.
func (l *ledger) run(ctx context.Context) {
	for {
		select {
		case <-l.wake:
			l.flush()
		case <-ctx.Done():
			l.flush()
			l.mu.Lock()
			l.stopped = true
			l.mu.Unlock()
			return
		}
	}
}

func (l *ledger) flush() {
	for {
		l.mu.Lock()
		q := l.queue
		l.queue = nil
		l.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, f := range q {
			l.write(f)
		}
	}
}

// write stores one final account, then acknowledges what it completes.
func (l *ledger) write(f final) {
	if l.skipWrites {
		return
	}
	data, _ := json.Marshal(f.rec)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := l.accounts.Put(ctx, ledgerKey(f.persona, f.id), data)
	cancel()
	if err != nil {
		// Not acknowledged either: the message is delivered again (after
		// the ack wait or a restart) and accounted then.
		l.log.Warn("ledger: account not written; the message will be delivered again", "persona", f.persona, "message", f.id, "err", err)
		return
	}
	if f.direct != nil {
		ack(l.log, f.direct)
		return
	}
	var acks []jetstream.Msg
	l.mu.Lock()
	if p := l.pending[f.id]; p != nil {
		p.got[f.persona] = true
		for src, m := range p.handles {
			complete := true
			for _, member := range l.group(src) {
				if !p.got[member] {
					complete = false
					break
				}
			}
			if complete {
				acks = append(acks, m)
				delete(p.handles, src)
			}
		}
		if len(p.handles) == 0 {
			delete(l.pending, f.id)
		}
	}
	l.mu.Unlock()
	for _, m := range acks {
		ack(l.log, m)
	}
}

func ack(log *slog.Logger, m jetstream.Msg) {
	if err := m.Ack(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		log.Warn("ledger: ack failed; the message will be delivered again and found accounted", "subject", m.Subject(), "err", err)
	}
}

// keepAlive tells JetStream that every held delivery is still being worked
// on, so that a message waiting in an inbox (or in a long model call) is not
// redelivered while its persona still has it.
func (l *ledger) keepAlive() {
	l.mu.Lock()
	var ms []jetstream.Msg
	for _, p := range l.pending {
		for _, m := range p.handles {
			ms = append(ms, m)
		}
	}
	l.mu.Unlock()
	for _, m := range ms {
		_ = m.InProgress() // best effort: a miss costs one harmless redelivery
	}
}

// held returns how many deliveries are waiting for a final account.
func (l *ledger) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, p := range l.pending {
		n += len(p.handles)
	}
	return n
}
