package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
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
// the accounts bucket tells whether it was in fact done. A final account
// that cannot be written even after retries is not acknowledged either: its
// deliveries are dropped and given back to JetStream with a Nak, so the
// message comes again within seconds rather than staying held for ever.
//
// Finals are written by one goroutine (run), so persona loops never wait on
// the network: Observe only queues.
type ledger struct {
	log      *slog.Logger
	accounts jetstream.KeyValue
	groups   map[string][]string // source persona (lower-case) -> itself and its dependents
	// nakDelay is how long JetStream waits before delivering again a
	// message given back by write or deliver (default 5s).
	nakDelay time.Duration

	mu      sync.Mutex
	pending map[string]*pend // message id -> deliveries held
	notes   map[string]string
	queue   []final
	wake    chan struct{}
	stopped bool
	// by bounds the writes of the last flush (drainBy): the shutdown's
	// deadline. Nil until then: the writer retries as long as it takes.
	by context.Context

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
		pending:  make(map[string]*pend),
		notes:    make(map[string]string),
		wake:     make(chan struct{}, 1),
		nakDelay: defaultNakDelay,
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

// holdExpress records that the express lane (Daemon.express) delivers
// message id to a source persona, with no ack handle yet: the durable
// delivery's hold supplies it. It reports false, holding nothing, when
// the persona holds the message already.
func (l *ledger) holdExpress(source, id string) bool {
	source = strings.ToLower(source)
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pending[id]
	if p == nil {
		p = &pend{handles: make(map[string]jetstream.Msg, 1), got: make(map[string]bool)}
		l.pending[id] = p
	}
	if _, ok := p.handles[source]; ok {
		return false
	}
	p.handles[source] = nil
	return true
}

// unholdExpress forgets an express delivery that never reached the inbox,
// unless the durable delivery has given it a handle meanwhile.
func (l *ledger) unholdExpress(source, id string) {
	source = strings.ToLower(source)
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.pending[id]; p != nil {
		if m, ok := p.handles[source]; ok && m == nil {
			delete(p.handles, source)
		}
		if len(p.handles) == 0 {
			delete(l.pending, id)
		}
	}
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

// holding reports whether source persona holds a delivery not yet
// accounted (queued, in hand, or waiting for its final to be written).
func (l *ledger) holding(source string) bool {
	source = strings.ToLower(source)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.pending {
		if _, ok := p.handles[source]; ok {
			return true
		}
	}
	return false
}

// holds reports whether source persona holds a delivery of message id.
func (l *ledger) holds(source, id string) bool {
	source = strings.ToLower(source)
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pending[id]
	if p == nil {
		return false
	}
	_, ok := p.handles[source]
	return ok
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

// drainBy bounds the writer's last flush by ctx, the shutdown's: once ctx
// ends, a write that has not succeeded gives its message back to
// JetStream at once (it is delivered again after the next start) instead
// of retrying, so that a failing store cannot hold a shutdown for ever.
// Call it before cancelling run's context.
func (l *ledger) drainBy(ctx context.Context) {
	l.mu.Lock()
	l.by = ctx
	l.mu.Unlock()
}

// bound is the context a write's attempts run under: the drain's, once
// set.
func (l *ledger) bound() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by != nil {
		return l.by
	}
	return context.Background()
}

// pause waits d before the next attempt, or less if the drain's deadline
// comes first; it reports false then.
func (l *ledger) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.bound().Done():
		return false
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

// Retries of a final account's write. A transient KV error (a leader
// election, a reconnect) usually clears within a second or two; a longer
// outage gives the message back to JetStream (see write).
const (
	ledgerWriteAttempts = 4
	ledgerWriteBackoff  = 250 * time.Millisecond // doubled after each failed attempt
	ledgerWriteTimeout  = 5 * time.Second        // each attempt
	defaultNakDelay     = 5 * time.Second
)

// write stores one final account, then acknowledges what it completes.
//
// The write is retried with backoff. If every attempt fails, the deliveries
// the account belonged to are dropped from pending and negatively
// acknowledged: JetStream delivers the message again (after nakDelay), and
// since no handle is held any more, the redelivery goes through the ledger
// check in deliver and is handled again (the replies bucket keeps a persona
// from answering it twice). Keeping the handle instead would leave it
// pending for ever: keepAlive would mark it in progress every AckWait/4, so
// JetStream would never redeliver it, and hold would drop a redelivery.
func (l *ledger) write(f final) {
	if l.skipWrites {
		return
	}
	data, _ := json.Marshal(f.rec)
	put := l.put
	if f.rec.Note == noteAnswered {
		// A second delivery of a message this persona already answered
		// (an express and a durable delivery, or a redelivery) does not
		// overwrite the account of the answer.
		put = l.create
	}
	if err := put(ledgerKey(f.persona, f.id), data); err != nil {
		l.giveBack(f, err)
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
		if m != nil { // an express delivery's: the durable one is acked when it comes
			ack(l.log, m)
		}
	}
}

// put writes one key, retrying with backoff.
func (l *ledger) put(key string, data []byte) error {
	return l.attempts(func(ctx context.Context) error {
		_, err := l.accounts.Put(ctx, key, data)
		return err
	})
}

// create writes one key unless it exists (then it is done), retrying
// transient errors as put does.
func (l *ledger) create(key string, data []byte) error {
	return l.attempts(func(ctx context.Context) error {
		_, err := l.accounts.Create(ctx, key, data)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil
		}
		return err
	})
}

// attempts makes up to ledgerWriteAttempts attempts of write, each bounded by
// ledgerWriteTimeout, with doubling backoff between them, and stops early
// once the drain's deadline has passed (drainBy). It sleeps on the writer's
// own goroutine: finals queue meanwhile.
func (l *ledger) attempts(write func(ctx context.Context) error) error {
	wait := ledgerWriteBackoff
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(l.bound(), ledgerWriteTimeout)
		err := write(ctx)
		cancel()
		if err == nil || attempt == ledgerWriteAttempts || !l.pause(wait) {
			return err
		}
		wait *= 2
	}
}

// giveBack returns to JetStream the deliveries whose final account could not
// be written: the skipped message itself, or every held delivery of the
// message whose source's group includes the persona.
func (l *ledger) giveBack(f final, err error) {
	var naks []jetstream.Msg
	if f.direct != nil {
		naks = append(naks, f.direct)
	} else {
		l.mu.Lock()
		if p := l.pending[f.id]; p != nil {
			for src, m := range p.handles {
				if slices.Contains(l.group(src), f.persona) {
					if m != nil {
						naks = append(naks, m)
					}
					delete(p.handles, src)
				}
			}
			if len(p.handles) == 0 {
				delete(l.pending, f.id)
			}
		}
		l.mu.Unlock()
	}
	l.log.Warn("ledger: account not written; the message goes back to JetStream and will be delivered again",
		"persona", f.persona, "message", f.id, "attempts", ledgerWriteAttempts, "err", err)
	for _, m := range naks {
		nak(l.log, m, l.nakDelay)
	}
}

// retry gives back to JetStream, without any final account, the held
// deliveries of message id whose group includes persona: its handling
// failed on a transient error (Daemon.observe). JetStream delivers it again
// after nakDelay, and since no handle is held any more, the redelivery goes
// through the ledger check in deliver and is handled again.
func (l *ledger) retry(persona, id string) {
	persona = strings.ToLower(persona)
	var naks []jetstream.Msg
	l.mu.Lock()
	delete(l.notes, ledgerKey(persona, id))
	if p := l.pending[id]; p != nil {
		for src, m := range p.handles {
			if slices.Contains(l.group(src), persona) {
				if m != nil {
					naks = append(naks, m)
				}
				delete(p.handles, src)
			}
		}
		if len(p.handles) == 0 {
			delete(l.pending, id)
		}
	}
	l.mu.Unlock()
	l.log.Info("ledger: handling failed on a bus error; the message goes back to JetStream and will be delivered again",
		"persona", persona, "message", id, "after", l.nakDelay)
	for _, m := range naks {
		nak(l.log, m, l.nakDelay)
	}
}

// nak asks JetStream to deliver m again after delay. If even that fails, m
// comes back after the ack wait: it is no longer held, so nothing keeps it
// alive.
func nak(log *slog.Logger, m jetstream.Msg, delay time.Duration) {
	if err := m.NakWithDelay(delay); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		log.Warn("ledger: nak failed; the message will be delivered again after the ack wait", "subject", m.Subject(), "err", err)
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
			if m != nil {
				ms = append(ms, m)
			}
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
