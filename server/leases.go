package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Leases: a persona runs in exactly one daemon of a cluster at a time.
//
// Each source persona has a key persona.<name> in the leases bucket, whose
// TTL is the lease's: the daemon that created it renews it every
// leaseTick, and a key not renewed for a TTL is gone. A daemon consumes a
// persona's deliveries only while it holds its lease; every other daemon
// configured with the persona stands by, and takes the lease (create-only)
// once it is gone: a dead daemon's personas move within a TTL and a tick.
// A daemon that shuts down deletes its leases, so its personas move within
// a tick.
//
// Each daemon also keeps a presence key daemon.<node>, renewed as leases
// are, listing the personas it can run. A persona's preferred daemon is
// the one of the live daemons that can run it with the highest rendezvous
// hash of (persona, daemon): every daemon computes the same one, so a
// free lease goes to it, and a daemon holding a persona another live
// daemon prefers hands it over (one a tick, once that daemon has been seen
// for handOffAfter ticks). Started with every persona, the daemons spread
// them evenly, and a daemon that joins gets its share.
//
// A hand-over is a drain: the daemon stops consuming the persona's
// deliveries but keeps its lease, renewed, while the persona handles what
// it holds (its inbox and the reply in hand), and deletes the lease once
// the ledger holds nothing of the persona's, or after a TTL at most. The
// next holder then starts from a consumer with nothing in flight, and no
// message is handled by two daemons at once. A lease lost (not renewed in
// time) is drained the same way, without a lease to keep.
//
// A daemon that restarts (same node id, kept in its data directory) takes
// back at once the leases its previous run held: it knows the holder was
// itself.

// defaultLeaseTTL is a lease's life without renewal (Config.LeaseTTL): a
// dead daemon's personas are taken over within it and a tick.
const defaultLeaseTTL = 10 * time.Second

// Ticks of the lease keeper, in leaseTicks per TTL: renewals, takeovers
// and hand-offs happen on them.
const (
	leaseTicksPerTTL = 5
	// handOffAfter is how many ticks a preferred daemon must have been
	// seen live before a persona is handed to it, and freeAfter how many
	// a lease must have been seen free before a daemon that is not its
	// preferred one takes it.
	handOffAfter = 3
	freeAfter    = 2
)

// leaseRecord is the value of a lease or presence key.
type leaseRecord struct {
	Daemon string    `json:"daemon"`         // the node id
	Addr   string    `json:"addr,omitempty"` // its HTTP API
	Since  time.Time `json:"since"`          // when it took the persona, or started
	// Personas, in a presence key, are the personas the daemon can run
	// (lower-case).
	Personas []string `json:"personas,omitempty"`
}

// LeaseInfo says where a persona of the cluster runs.
type LeaseInfo struct {
	Daemon string    `json:"daemon"`
	Addr   string    `json:"addr,omitempty"`
	Since  time.Time `json:"since"`
}

// leaseKeeper keeps this daemon's leases and presence.
type leaseKeeper struct {
	kv   jetstream.KeyValue
	log  *slog.Logger
	self leaseRecord
	ttl  time.Duration
	// names are the source personas this daemon can run, lower-case, and
	// watch the others of the configuration, whose leases it only reads
	// (where).
	names []string
	watch []string
	// activate starts consuming a persona's deliveries once its lease is
	// held; deactivate stops it when the lease is lost or handed over.
	activate   func(name string) error
	deactivate func(name string)
	// drained reports whether a deactivated persona has handled
	// everything it held; finish ends its drain.
	drained func(name string) bool
	finish  func(name string)

	mu    sync.Mutex
	held  map[string]heldLease
	other map[string]leaseRecord // leases seen held by other daemons
	free  map[string]int         // ticks a lease was seen free in a row
	live  map[string]int         // ticks each daemon was seen live in a row
	caps  map[string][]string    // what each live daemon can run
	// handing are the leases being handed over, and draining the
	// personas deactivated on a lost lease: each until when its drain
	// may last.
	handing  map[string]time.Time
	draining map[string]time.Time
}

// heldLease is a lease this daemon holds.
type heldLease struct {
	rev     uint64
	since   time.Time
	renewed time.Time // last renewal that succeeded
}

func leaseKey(name string) string    { return "persona." + strings.ToLower(name) }
func presenceKey(node string) string { return "daemon." + node }

func newLeaseKeeper(kv jetstream.KeyValue, log *slog.Logger, self leaseRecord, ttl time.Duration, names, watch []string) *leaseKeeper {
	self.Personas = names
	return &leaseKeeper{
		kv: kv, log: log, self: self, ttl: ttl, names: names, watch: watch,
		held: map[string]heldLease{}, other: map[string]leaseRecord{}, free: map[string]int{},
		live: map[string]int{}, caps: map[string][]string{},
		handing: map[string]time.Time{}, draining: map[string]time.Time{},
		drained: func(string) bool { return true }, finish: func(string) {},
	}
}

// tickEvery is the keeper's period.
func (lk *leaseKeeper) tickEvery() time.Duration { return lk.ttl / leaseTicksPerTTL }

// run ticks until ctx ends. It does not release the leases: the daemon
// does, after its last accounts are written (release).
func (lk *leaseKeeper) run(ctx context.Context) {
	t := time.NewTicker(lk.tickEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			lk.tick(ctx, time.Now())
		}
	}
}

// tick renews the presence and the leases held, takes the free ones this
// daemon should run, and hands over at most one this daemon should not.
func (lk *leaseKeeper) tick(ctx context.Context, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, lk.tickEvery())
	defer cancel()
	lk.presence(ctx)
	lk.readLive(ctx)
	handed := false
	for _, name := range lk.names {
		lk.mu.Lock()
		h, holding := lk.held[name]
		until, handing := lk.handing[name]
		lk.mu.Unlock()
		switch {
		case holding && handing:
			if lk.drained(name) || !now.Before(until) {
				lk.handOff(ctx, name, h)
				continue
			}
			lk.renew(ctx, name, h, now)
		case holding:
			if !handed && lk.shouldHandOff(name) {
				lk.startHandOff(name, now)
				handed = true
			}
			lk.renew(ctx, name, h, now)
		default:
			lk.endDrain(name, now)
			lk.tryTake(ctx, name, now)
		}
	}
	for _, name := range lk.watch {
		lk.look(ctx, name)
	}
}

// look reads where a persona this daemon cannot run runs.
func (lk *leaseKeeper) look(ctx context.Context, name string) {
	e, err := lk.kv.Get(ctx, leaseKey(name))
	lk.mu.Lock()
	defer lk.mu.Unlock()
	switch {
	case err == nil:
		var r leaseRecord
		if json.Unmarshal(e.Value(), &r) == nil {
			lk.other[name] = r
		}
	case errors.Is(err, jetstream.ErrKeyNotFound):
		delete(lk.other, name)
	}
}

// presence renews this daemon's presence key.
func (lk *leaseKeeper) presence(ctx context.Context) {
	data, _ := json.Marshal(lk.self)
	if _, err := lk.kv.Put(ctx, presenceKey(lk.self.Daemon), data); err != nil {
		lk.log.Debug("lease: presence not renewed", "err", err)
	}
}

// readLive reads which daemons are live and what each can run.
func (lk *leaseKeeper) readLive(ctx context.Context) {
	lister, err := lk.kv.ListKeysFiltered(ctx, "daemon.*")
	if err != nil {
		lk.log.Debug("lease: presence not read", "err", err)
		return
	}
	seen := map[string][]string{}
	for key := range lister.Keys() {
		e, err := lk.kv.Get(ctx, key)
		if err != nil {
			continue
		}
		var r leaseRecord
		if json.Unmarshal(e.Value(), &r) == nil && r.Daemon != "" {
			seen[r.Daemon] = r.Personas
		}
	}
	seen[lk.self.Daemon] = lk.names
	lk.mu.Lock()
	defer lk.mu.Unlock()
	for d := range lk.live {
		if _, ok := seen[d]; !ok {
			delete(lk.live, d)
		}
	}
	for d := range seen {
		lk.live[d]++
	}
	lk.caps = seen
}

// preferred is the live daemon that should run name (rendezvous hashing
// over the daemons that can run it), and how many ticks it has been live.
func (lk *leaseKeeper) preferred(name string) (string, int) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	best, bestH := "", uint64(0)
	for d, names := range lk.caps {
		if !slices.Contains(names, name) {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(name + "/" + d))
		if v := h.Sum64(); best == "" || v > bestH || (v == bestH && d < best) {
			best, bestH = d, v
		}
	}
	return best, lk.live[best]
}

// shouldHandOff reports whether a lease held should go to the daemon that
// prefers it, live long enough to be trusted.
func (lk *leaseKeeper) shouldHandOff(name string) bool {
	pref, ticks := lk.preferred(name)
	return pref != "" && pref != lk.self.Daemon && ticks >= handOffAfter
}

// renew renews a held lease. A lease taken by someone else meanwhile (it
// expired while this daemon could not reach the cluster) is dropped at
// once; one this daemon could not renew for a whole TTL is dropped too, as
// it may have expired.
func (lk *leaseKeeper) renew(ctx context.Context, name string, h heldLease, now time.Time) {
	data, _ := json.Marshal(leaseRecord{Daemon: lk.self.Daemon, Addr: lk.self.Addr, Since: h.since})
	rev, err := lk.kv.Update(ctx, leaseKey(name), data, h.rev)
	if err == nil {
		lk.mu.Lock()
		lk.held[name] = heldLease{rev: rev, since: h.since, renewed: now}
		lk.mu.Unlock()
		return
	}
	lost := conflict(err) || errors.Is(err, jetstream.ErrKeyNotFound)
	if !lost && now.Sub(h.renewed) < lk.ttl {
		lk.log.Warn("lease: not renewed; retrying next tick", "persona", name, "err", err)
		return
	}
	lk.log.Warn("lease lost: the persona stops here and runs where its lease is", "persona", name, "err", err)
	lk.drop(name, now)
}

// drop stops running a persona whose lease this daemon no longer holds:
// it drains what it holds (endDrain).
func (lk *leaseKeeper) drop(name string, now time.Time) {
	lk.mu.Lock()
	_, ok := lk.held[name]
	delete(lk.held, name)
	if _, handing := lk.handing[name]; ok && !handing {
		lk.draining[name] = now.Add(lk.ttl)
	}
	delete(lk.handing, name)
	lk.mu.Unlock()
	if ok {
		lk.deactivate(name)
	}
}

// endDrain ends the drain of a persona deactivated on a lost lease once it
// holds nothing, or its time is up.
func (lk *leaseKeeper) endDrain(name string, now time.Time) {
	lk.mu.Lock()
	until, ok := lk.draining[name]
	lk.mu.Unlock()
	if !ok || (!lk.drained(name) && now.Before(until)) {
		return
	}
	lk.mu.Lock()
	delete(lk.draining, name)
	lk.mu.Unlock()
	lk.finish(name)
}

// startHandOff stops consuming a persona's deliveries, to hand its lease
// over to the daemon that prefers it once the persona has handled what it
// holds (at most a TTL from now); meanwhile the lease is renewed.
func (lk *leaseKeeper) startHandOff(name string, now time.Time) {
	pref, _ := lk.preferred(name)
	lk.log.Info("lease: handing a persona over to the daemon that should run it, once it has handled what it holds", "persona", name, "to", pref)
	lk.mu.Lock()
	lk.handing[name] = now.Add(lk.ttl)
	lk.mu.Unlock()
	lk.deactivate(name)
}

// handOff deletes a drained persona's lease, so that the daemon that
// prefers it takes it on its next tick.
func (lk *leaseKeeper) handOff(ctx context.Context, name string, h heldLease) {
	lk.mu.Lock()
	delete(lk.held, name)
	delete(lk.handing, name)
	lk.mu.Unlock()
	lk.finish(name)
	if err := lk.kv.Delete(ctx, leaseKey(name), jetstream.LastRevision(h.rev)); err != nil {
		lk.log.Warn("lease: not released; it expires within its TTL", "persona", name, "err", err)
		return
	}
	lk.log.Info("lease: handed over", "persona", name)
}

// tryTake takes a persona's lease if it is free and this daemon should
// run it, or it has been free long enough; or if it is held by this very
// daemon's previous run.
func (lk *leaseKeeper) tryTake(ctx context.Context, name string, now time.Time) {
	key := leaseKey(name)
	e, err := lk.kv.Get(ctx, key)
	switch {
	case err == nil:
		var r leaseRecord
		_ = json.Unmarshal(e.Value(), &r)
		if r.Daemon != lk.self.Daemon {
			lk.mu.Lock()
			lk.other[name] = r
			lk.free[name] = 0
			lk.mu.Unlock()
			return
		}
		// This node's previous run held it: take it back at once.
		data, _ := json.Marshal(leaseRecord{Daemon: lk.self.Daemon, Addr: lk.self.Addr, Since: now})
		rev, err := lk.kv.Update(ctx, key, data, e.Revision())
		if err == nil {
			lk.took(name, rev, now)
		}
		return
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		lk.log.Debug("lease: not read", "persona", name, "err", err)
		return
	}
	lk.mu.Lock()
	delete(lk.other, name)
	lk.free[name]++
	free := lk.free[name]
	lk.mu.Unlock()
	if pref, _ := lk.preferred(name); pref != lk.self.Daemon && free < freeAfter {
		return
	}
	data, _ := json.Marshal(leaseRecord{Daemon: lk.self.Daemon, Addr: lk.self.Addr, Since: now})
	rev, err := lk.kv.Create(ctx, key, data)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			lk.log.Debug("lease: not taken", "persona", name, "err", err)
		}
		return
	}
	lk.took(name, rev, now)
}

// took starts running a persona whose lease this daemon now holds. If it
// cannot start consuming, the lease is given back.
func (lk *leaseKeeper) took(name string, rev uint64, now time.Time) {
	lk.mu.Lock()
	lk.held[name] = heldLease{rev: rev, since: now, renewed: now}
	delete(lk.other, name)
	delete(lk.draining, name)
	lk.free[name] = 0
	lk.mu.Unlock()
	if err := lk.activate(name); err != nil {
		lk.log.Warn("lease: taken but the persona could not start; giving it back", "persona", name, "err", err)
		lk.mu.Lock()
		delete(lk.held, name)
		lk.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), lk.tickEvery())
		defer cancel()
		_ = lk.kv.Delete(ctx, leaseKey(name), jetstream.LastRevision(rev))
		return
	}
	lk.log.Info("lease taken: the persona runs here", "persona", name)
}

// release deletes every lease held and the presence key, so that peers
// take the personas on their next tick. The caller has stopped consuming.
func (lk *leaseKeeper) release(ctx context.Context) {
	lk.mu.Lock()
	held := lk.held
	lk.held = map[string]heldLease{}
	lk.mu.Unlock()
	for name, h := range held {
		if err := lk.kv.Delete(ctx, leaseKey(name), jetstream.LastRevision(h.rev)); err != nil {
			lk.log.Warn("lease: not released; it expires within its TTL", "persona", name, "err", err)
		}
	}
	_ = lk.kv.Delete(ctx, presenceKey(lk.self.Daemon))
}

// where says where a persona runs, as this daemon last saw it: here, or
// on the daemon holding its lease; false when nobody holds it.
func (lk *leaseKeeper) where(name string) (LeaseInfo, bool) {
	name = strings.ToLower(name)
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if h, ok := lk.held[name]; ok {
		return LeaseInfo{Daemon: lk.self.Daemon, Addr: lk.self.Addr, Since: h.since}, true
	}
	if r, ok := lk.other[name]; ok {
		return LeaseInfo{Daemon: r.Daemon, Addr: r.Addr, Since: r.Since}, true
	}
	return LeaseInfo{}, false
}

// holds reports whether this daemon holds name's lease.
func (lk *leaseKeeper) holds(name string) bool {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	_, ok := lk.held[strings.ToLower(name)]
	return ok
}

// startLeases builds the lease keeper of this daemon's source personas,
// runs its first round, and starts its loop.
func (d *Daemon) startLeases(ctx context.Context) error {
	var names, watch []string
	for _, m := range d.members {
		if !m.spec.Dependent() {
			names = append(names, strings.ToLower(m.spec.Name))
		}
	}
	for lower := range d.remote {
		watch = append(watch, lower)
	}
	slices.Sort(watch)
	node, err := loadNode(d.cfg.Data, d.cfg.Node)
	if err != nil {
		return err
	}
	self := leaseRecord{Daemon: node, Addr: d.Addr(), Since: d.started}
	d.leases = newLeaseKeeper(d.bus.leases, d.log, self, cmp.Or(d.cfg.LeaseTTL, defaultLeaseTTL), names, watch)
	d.leases.activate = func(name string) error { return d.startConsuming(ctx, d.byName[name]) }
	d.leases.deactivate = func(name string) { d.stopConsuming(d.byName[name]) }
	d.leases.drained = func(name string) bool { return !d.ledger.holding(name) }
	d.leases.finish = func(name string) {
		if m := d.byName[name]; m != nil {
			m.draining.Store(false)
		}
	}
	d.leases.tick(ctx, time.Now())
	lctx, cancel := context.WithCancel(context.Background())
	d.lsCancel = cancel
	d.lsWG.Go(func() { d.leases.run(lctx) })
	return nil
}

// startConsuming makes m's durable consumer consume into its inbox: the
// daemon holds m's lease. The consumer is reset to its ack floor if it
// holds deliveries of a daemon that is gone (bus.personaConsumer): no
// live peer consumes it, since the lease is this daemon's.
func (d *Daemon) startConsuming(ctx context.Context, m *member) error {
	m.consMu.Lock()
	defer m.consMu.Unlock()
	if m.cc != nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cons, recheck, err := d.bus.personaConsumer(cctx, m.spec.Name, 2*m.p.Inbox().Options().Capacity, d.cfg.AckWait)
	if err != nil {
		return err
	}
	m.recheck.Store(recheck)
	// Active before the first delivery: the intake counts m among this
	// daemon's addressees.
	m.active.Store(true)
	m.draining.Store(false)
	d.rooms.setLocal(m.spec.Name, true)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		m.consumeErrs.Store(0)
		d.deliver(m, msg)
	},
		jetstream.PullMaxMessages(64),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			d.consumeError(m.spec.Name, &m.consumeErrs, err)
		}))
	if err != nil {
		m.active.Store(false)
		d.rooms.setLocal(m.spec.Name, false)
		return fmt.Errorf("consume for %s: %w", m.spec.Name, err)
	}
	m.cons, m.cc = cons, cc
	return nil
}

// stopConsuming stops m's consumer: its lease is lost or handed over, or
// the daemon stops. What m holds in its inbox it still handles (draining:
// its decisions still count it, Daemon.open); what it leaves
// unacknowledged the lease's next holder gets again.
func (d *Daemon) stopConsuming(m *member) {
	if m == nil {
		return
	}
	m.draining.Store(true)
	m.active.Store(false)
	m.consMu.Lock()
	cc := m.cc
	m.cc, m.cons = nil, nil
	m.consMu.Unlock()
	if cc != nil {
		cc.Stop()
		<-cc.Closed()
		d.rooms.setLocal(m.spec.Name, false)
	}
}

// consumer returns m's consumer while it is active.
func (m *member) consumer() jetstream.Consumer {
	m.consMu.Lock()
	defer m.consMu.Unlock()
	return m.cons
}

// loadNode returns the configured node id, or the one kept in dir/node,
// made on first start from the host name: it names this daemon in the
// leases, and a restart with the same data directory is the same daemon.
func loadNode(dir, configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	path := filepath.Join(dir, "node")
	if b, err := os.ReadFile(path); err == nil {
		if n := strings.TrimSpace(string(b)); n != "" {
			return n, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("node id: %w", err)
	}
	host, _ := os.Hostname()
	var raw [4]byte
	_, _ = rand.Read(raw[:])
	n := nodeSafe(host) + "-" + hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(n+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	return n, nil
}

// nodeSafe keeps the characters a KV key allows.
func nodeSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
	return cmp.Or(s, "persona")
}
