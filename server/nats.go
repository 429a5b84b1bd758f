package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/personaos/persona/chat"
)

// Names on the bus. They are part of the on-disk and on-cluster format:
// changing one orphans what is stored under the old name.
const (
	streamName     = "PERSONA_ROOMS"
	subjectPrefix  = "persona.rooms."
	subjectSuffix  = ".msgs"
	allRooms       = subjectPrefix + "*" + subjectSuffix
	repliesBucket  = "persona_replies"  // (persona, message) -> the reply: create-only, so nobody answers twice
	accountsBucket = "persona_accounts" // (persona, message) -> final account: the ledger of what was handled
	leasesBucket   = "persona_leases"   // persona -> the daemon running it; daemon -> its presence
	consumerPrefix = "persona_"
)

// roomSubject is the subject a room's messages are stored under.
func roomSubject(room string) string { return subjectPrefix + room + subjectSuffix }

// roomOf returns the room of a stream subject, or "" when it is not one.
func roomOf(subject string) string {
	s, ok := strings.CutPrefix(subject, subjectPrefix)
	if !ok {
		return ""
	}
	s, ok = strings.CutSuffix(s, subjectSuffix)
	if !ok || strings.Contains(s, ".") {
		return ""
	}
	return s
}

// ledgerKey is the key of a (persona, message) pair in the KV buckets. Both
// parts use only characters KV keys allow: persona names are checked by the
// config and message ids are ours.
func ledgerKey(persona, msgID string) string { return strings.ToLower(persona) + "." + msgID }

// consumerName is the durable consumer of a persona.
func consumerName(persona string) string { return consumerPrefix + strings.ToLower(persona) }

// newMessageID returns a fresh message id: 12 hex digits of Unix
// milliseconds, so ids sort by time, then 10 random base-32 characters,
// so ids made by several daemons in one millisecond do not collide. The id
// is also the JetStream Nats-Msg-Id, which makes a retried publish a no-op.
func newMessageID(now time.Time) string {
	const alphabet = "0123456789abcdefghijklmnopqrstuv"
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	r := binary.LittleEndian.Uint64(b[:])
	var tail [10]byte
	for i := range tail {
		tail[i] = alphabet[r&31]
		r >>= 5
	}
	return fmt.Sprintf("m%012x%s", now.UnixMilli(), tail[:])
}

// busOptions configures openBus.
type busOptions struct {
	// URL of an existing NATS server or cluster; empty starts an embedded
	// server storing under StoreDir.
	URL      string
	StoreDir string
	// Name of the client connection (shows in NATS monitoring).
	Name   string
	Logger *slog.Logger
	// MaxAge and MaxBytes limit the room stream (0 and -1: unlimited). The
	// accounts and replies buckets keep a key for MaxAge: a message cannot
	// be redelivered once it is older than that, so its entries are no
	// longer needed.
	MaxAge   time.Duration
	MaxBytes int64
	// SyncAlways makes the embedded server sync to disk before it
	// acknowledges a write (Config.Sync "always").
	SyncAlways bool
	// MaxStore caps the embedded server's file store (0: the disk's).
	MaxStore int64
	// Replicas of the stream, the buckets and the consumers: 0 is 3 when
	// the server is clustered, 1 otherwise.
	Replicas int
	// LeaseTTL is the lease bucket's TTL (0: defaultLeaseTTL).
	LeaseTTL time.Duration
}

// bus is the daemon's connection to NATS JetStream: the room stream and the
// two ledger buckets. With an embedded server it also owns the server.
type bus struct {
	log      *slog.Logger
	ns       *natsserver.Server // nil when connected to an external server
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	replies  jetstream.KeyValue
	accounts jetstream.KeyValue
	leases   jetstream.KeyValue
	// replicas is how many copies the assets were asked for.
	replicas int
}

// openBus starts the embedded server (or connects to opts.URL) and makes
// sure the stream and buckets exist, replicated opts.Replicas times (0: 3 on
// a cluster, 1 on a single server). On error everything it started is
// stopped again.
func openBus(ctx context.Context, opts busOptions) (_ *bus, err error) {
	b := &bus{log: opts.Logger}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if opts.URL == "" {
		if b.ns, err = startEmbedded(opts.StoreDir, opts.SyncAlways, opts.MaxStore, cmp.Or(opts.Logger, slog.Default())); err != nil {
			return nil, err
		}
		b.nc, err = nats.Connect(b.ns.ClientURL(), nats.InProcessServer(b.ns), nats.Name(opts.Name),
			nats.MaxReconnects(-1))
	} else {
		b.nc, err = connectCluster(ctx, opts.URL, opts.Name, b.log)
	}
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", err)
	}
	if opts.URL != "" {
		b.log.Info("nats connected", "url", b.nc.ConnectedUrlRedacted(), "server", b.nc.ConnectedServerName(), "cluster", b.nc.ConnectedClusterName())
	}
	if b.js, err = jetstream.New(b.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.replicas = opts.Replicas
	if b.replicas <= 0 {
		b.replicas = 1
		if b.nc.ConnectedClusterName() != "" {
			b.replicas = 3
		}
	}
	// A publish retried within this window with the same Nats-Msg-Id is
	// stored once. JetStream wants it no longer than MaxAge.
	dups := 10 * time.Minute
	if opts.MaxAge > 0 {
		dups = min(dups, opts.MaxAge)
	}
	maxBytes := opts.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	b.stream, err = ensureStream(ctx, b.js, b.log, jetstream.StreamConfig{
		Name:        streamName,
		Description: "persona chat rooms: every human message and persona reply",
		Subjects:    []string{allRooms},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld, // the oldest history goes, a new message is always stored
		MaxAge:      opts.MaxAge,
		MaxBytes:    maxBytes,
		Duplicates:  dups,
		AllowDirect: true,
		MaxMsgSize:  1 << 20,
		Replicas:    b.replicas,
	})
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "insufficient") {
			if opts.URL != "" {
				return nil, fmt.Errorf("stream %s: %w: %d replicas need as many JetStream servers with room for the stream's cap (--max-bytes %d): lower --replicas or --max-bytes", streamName, err, b.replicas, opts.MaxBytes)
			}
			// JetStream reserves the stream's cap on disk up front.
			return nil, fmt.Errorf("stream %s: %w: the room stream's cap (--max-bytes %d) does not fit the free disk under %s: lower --max-bytes%s or free space", streamName, err, opts.MaxBytes, opts.StoreDir, fitHint(opts))
		}
		return nil, fmt.Errorf("stream %s: %w", streamName, err)
	}
	ledgerCap, leasesCap := ledgerMaxBytes(maxBytes), int64(leasesMaxBytes)
	if maxBytes <= 0 {
		leasesCap = -1 // an unlimited store is unlimited throughout
	}
	for _, kv := range []struct {
		dst     *jetstream.KeyValue
		name    string
		desc    string
		ttl     time.Duration
		cap     int64
		exact   bool
		dropOld bool
	}{
		{&b.replies, repliesBucket, "replies: one key per (persona, message) answered", opts.MaxAge, ledgerCap, false, true},
		{&b.accounts, accountsBucket, "final accounts: one key per (persona, message) accounted", opts.MaxAge, ledgerCap, false, true},
		{&b.leases, leasesBucket, "persona leases and daemon presence: each key lives one lease TTL unless renewed", cmp.Or(opts.LeaseTTL, defaultLeaseTTL), leasesCap, true, false},
	} {
		*kv.dst, err = ensureKV(ctx, b.js, b.log, jetstream.KeyValueConfig{
			Bucket: kv.name, Description: kv.desc, History: 1, Storage: jetstream.FileStorage,
			TTL: kv.ttl, Replicas: b.replicas, MaxBytes: kv.cap,
		}, kv.exact, kv.dropOld)
		if err != nil {
			if kv.cap > 0 && storageError(err) {
				// Its cap is reserved up front as the stream's is.
				return nil, fmt.Errorf("kv %s: %w: the bucket's cap (%d bytes; the ledger buckets take an eighth of --max-bytes %d each) does not fit beside the room stream under %s: lower --max-bytes%s or free space", kv.name, err, kv.cap, opts.MaxBytes, cmp.Or(opts.StoreDir, opts.URL), fitHint(opts))
			}
			return nil, fmt.Errorf("kv %s: %w", kv.name, err)
		}
	}
	return b, nil
}

// Caps of the KV buckets. Each ledger bucket (replies, accounts) may take
// an eighth of the room stream's cap, at least ledgerMinBytes, and drops
// its oldest keys when full (discardOldest): an account takes about 180
// bytes, so the default 128 MiB keeps the last 700,000 or so (175,000
// messages of four personas), far more than can be in flight (each
// persona holds at most its consumer's MaxAckPending; a restart delivers
// again what was acknowledged above its ack floor). With an unlimited stream they are
// unlimited too. The lease bucket holds a key per persona and daemon
// (16 MiB: tens of thousands).
const (
	ledgerShare    = 8 // each ledger bucket's cap: the stream's over ledgerShare
	ledgerMinBytes = 1 << 20
	leasesMaxBytes = 16 << 20
)

// fitHint names, for an embedded server, the largest --max-bytes whose
// room stream and buckets the disk under opts.StoreDir can hold: JetStream
// reserves their caps up front from 75% of the free space (or MaxStore),
// and the store takes the stream's cap, an eighth of it per ledger bucket
// and the lease bucket's. It is empty when that cannot be told.
func fitHint(opts busOptions) string {
	if opts.URL != "" {
		return ""
	}
	avail := opts.MaxStore
	if avail <= 0 {
		var st syscall.Statfs_t
		if syscall.Statfs(opts.StoreDir, &st) != nil {
			return ""
		}
		avail = int64(st.Bavail) * st.Bsize / 4 * 3
	}
	// stream + 2 ledger buckets = fits * (ledgerShare+2) / ledgerShare
	fits := (avail - leasesMaxBytes) / (ledgerShare + 2) * ledgerShare &^ (1<<20 - 1) // whole MiB
	if fits < 1<<20 {
		return " (not even 1 MiB fits)"
	}
	return fmt.Sprintf(" (--max-bytes %d fits)", fits)
}

// ledgerMaxBytes is the cap of a ledger bucket for a room stream capped at
// streamMax (-1: unlimited).
func ledgerMaxBytes(streamMax int64) int64 {
	if streamMax <= 0 {
		return -1
	}
	return max(streamMax/ledgerShare, ledgerMinBytes)
}

// connectCluster connects to the NATS servers of urls (comma-separated),
// trying each in turn and retrying until one answers or ctx ends: a daemon
// starts while a node of its cluster is down, or before the cluster is up.
// Once connected the client follows the cluster (reconnects, discovers
// servers) for good.
func connectCluster(ctx context.Context, urls, name string, log *slog.Logger) (*nats.Conn, error) {
	connected := make(chan struct{}, 1)
	signal := func(*nats.Conn) {
		select {
		case connected <- struct{}{}:
		default:
		}
	}
	nc, err := nats.Connect(urls, nats.Name(name), nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true), nats.ReconnectWait(250*time.Millisecond),
		nats.ConnectHandler(signal),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		// Redacted: the URL may carry a user and password.
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted(), "server", c.ConnectedServerName())
			signal(c)
		}))
	if err != nil {
		return nil, err
	}
	if nc.IsConnected() {
		return nc, nil
	}
	log.Warn("no NATS server answers yet; retrying", "urls", redactURLs(urls))
	wait := time.NewTimer(connectWait)
	defer wait.Stop()
	select {
	case <-connected:
		return nc, nil
	case <-ctx.Done():
		nc.Close()
		return nil, ctx.Err()
	case <-wait.C:
		err := nc.LastError()
		nc.Close()
		return nil, fmt.Errorf("no server of %s answered within %v: %v", redactURLs(urls), connectWait, err)
	}
}

// connectWait is how long a daemon waits at start for a server of its
// --nats list to answer.
const connectWait = 30 * time.Second

// redactURLs hides the passwords of a comma-separated URL list.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// startEmbedded starts an in-process NATS server with JetStream storing
// under dir/jetstream (the server adds the last part). It opens no network
// port: clients connect in-process.
func startEmbedded(dir string, syncAlways bool, maxStore int64, log *slog.Logger) (*natsserver.Server, error) {
	ns, err := natsserver.NewServer(&natsserver.Options{
		ServerName:        "persona",
		JetStream:         true,
		StoreDir:          dir,
		SyncAlways:        syncAlways,
		JetStreamMaxStore: maxStore,
		DontListen:        true,
		NoSigs:            true,
		// Loopback only even if something asked it to listen.
		Host: "127.0.0.1",
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	// Its warnings and errors (a corrupt block, a full disk) reach the
	// daemon's log; its notices stay at debug.
	ns.SetLoggerV2(natsLog{log.With("component", "nats")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("embedded nats: not ready after 30s")
	}
	return ns, nil
}

// natsLog is the embedded server's logger on the daemon's slog.
type natsLog struct{ l *slog.Logger }

func (n natsLog) Noticef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLog) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n natsLog) Fatalf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLog) Errorf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLog) Debugf(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLog) Tracef(format string, v ...any)  {}

// close drains nothing: callers stop their consumers first. It closes the
// connection and, if embedded, shuts the server down and waits for it.
func (b *bus) close() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
}

// publish stores m in its room and returns its stream sequence once the
// server has stored it. covers, for a merged reply, are the older messages
// it answers besides m.ReplyTo (they travel on the wire: wireMessage). The message id doubles as Nats-Msg-Id, so a retry
// after a lost acknowledgement does not store it twice.
func (b *bus) publish(ctx context.Context, m chat.Message, covers ...string) (uint64, error) {
	seq, _, err := b.publishAs(ctx, m, m.ID, covers...)
	return seq, err
}

// publishAs is publish with msgID as the Nats-Msg-Id. A publish whose
// msgID the stream stored within its duplicate window stores nothing, and
// reports dup with the sequence of the message stored first.
func (b *bus) publishAs(ctx context.Context, m chat.Message, msgID string, covers ...string) (seq uint64, dup bool, _ error) {
	data, err := encodeWire(m, covers...)
	if err != nil {
		return 0, false, fmt.Errorf("encode message: %w", err)
	}
	msg := nats.NewMsg(roomSubject(m.Room))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	ack, err := b.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, false, fmt.Errorf("publish %s: %w", m.ID, err)
	}
	return ack.Sequence, ack.Duplicate, nil
}

// after lists up to limit messages of room stored after sequence seq, oldest
// first. Each is one direct get of the next message on the room's subject.
func (b *bus) after(ctx context.Context, room string, seq uint64, limit int) ([]chat.Message, error) {
	return b.scan(ctx, room, seq+1, 0, limit)
}

// scan lists the messages of room stored from sequence from on, oldest
// first, before sequence hi (0: no bound) and at most limit of them (0: no
// bound), one direct get of the next message on the room's subject each.
// An undecodable message is skipped with a warning. On an error it returns
// what it read so far.
func (b *bus) scan(ctx context.Context, room string, from, hi uint64, limit int) ([]chat.Message, error) {
	subj := roomSubject(room)
	var out []chat.Message
	for next := from; (limit <= 0 || len(out) < limit) && (hi == 0 || next < hi); {
		raw, err := b.stream.GetMsg(ctx, next, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("read %s: %w", room, err)
		}
		if hi != 0 && raw.Sequence >= hi {
			break
		}
		next = raw.Sequence + 1
		m, err := decodeWire(raw.Data)
		if err != nil {
			b.log.Warn("skipping undecodable message", "seq", raw.Sequence, "err", err)
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// get reads the message at stream sequence seq, and reports whether it
// belongs to room.
func (b *bus) get(ctx context.Context, room string, seq uint64) (chat.Message, bool, error) {
	raw, err := b.stream.GetMsg(ctx, seq)
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("read %s: %w", room, err)
	}
	if raw.Subject != roomSubject(room) {
		return chat.Message{}, false, nil
	}
	m, err := decodeWire(raw.Data)
	return m, err == nil, err
}

// idTime returns the time a newMessageID id was made at.
func idTime(id string) (time.Time, bool) {
	if len(id) < 13 || id[0] != 'm' {
		return time.Time{}, false
	}
	ms, err := strconv.ParseUint(id[1:13], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(ms)), true
}

// Bounds of findSeq. findSkew is how far apart the clocks of the daemons
// that wrote a room's ids may be; findScan caps the messages read past the
// binary search.
const (
	findSkew = 5 * time.Minute
	findScan = 10_000
	// findNear is the first, narrow look: ids made by one daemon are
	// stored in the order they were made, give or take the few
	// milliseconds between making an id and storing it, so an id is found
	// right where its time falls however many messages a room holds
	// around it. Only an id from a skewed clock needs the wide look.
	findNear = 2 * time.Second
	// findTight is the first look of all: the messages made within 50 ms
	// of the id, where it is unless its room's stream is out of time order
	// by more than that. It reads every one of them, past findScan: the
	// messages a room can store in 100 ms are what it costs, and an id
	// stays findable at any rate a room is written.
	findTight = 50 * time.Millisecond
)

// findSeq finds the stream sequence of message id in room without an
// index, from the time in the id: ids of one room grow with the stream
// sequence, give or take the skew between the clocks of the daemons that
// made them. A binary search over the stream finds the first message of
// the room made at most findSkew before the id, then a forward scan looks
// for the id until messages are made more than findSkew after it. That is
// about log2(stream length) direct gets and a scan of the messages made
// within the skew around it. It reports false when the id is not in the
// room (any more).
func (b *bus) findSeq(ctx context.Context, room, id string) (uint64, bool, error) {
	for _, skew := range []time.Duration{findTight, findNear, findSkew} {
		seq, ok, err := b.findSeqWithin(ctx, room, id, skew)
		if ok || err != nil {
			return seq, ok, err
		}
	}
	return 0, false, nil
}

// findSeqWithin is findSeq looking within skew of the id's time.
func (b *bus) findSeqWithin(ctx context.Context, room, id string, skew time.Duration) (uint64, bool, error) {
	t, ok := idTime(id)
	if !ok {
		return 0, false, nil
	}
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("find %s: %w", id, err)
	}
	subj := roomSubject(room)
	// next reads the room's first message at or after seq.
	next := func(seq uint64) (_ *jetstream.RawStreamMsg, _ time.Time, found bool, _ error) {
		raw, err := b.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, time.Time{}, false, nil
		}
		if err != nil {
			return nil, time.Time{}, false, fmt.Errorf("find %s: %w", id, err)
		}
		at := raw.Time
		if m, err := decodeWire(raw.Data); err == nil {
			if mt, ok := idTime(m.ID); ok {
				at = mt
			}
		}
		return raw, at, true, nil
	}
	// The smallest lo whose next room message is made at or after from (or
	// none is): every room message before lo is older than the id's skew.
	from := t.Add(-skew)
	lo, hi := info.State.FirstSeq, info.State.LastSeq+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		raw, at, found, err := next(mid)
		switch {
		case err != nil:
			return 0, false, err
		case !found || raw.Sequence >= hi || !at.Before(from):
			hi = mid
		default:
			lo = raw.Sequence + 1
		}
	}
	until := t.Add(skew)
	limit := findScan
	if skew <= findTight {
		limit = math.MaxInt
	}
	for seq, n := lo, 0; n < limit; n++ {
		raw, at, found, err := next(seq)
		if err != nil || !found {
			return 0, false, err
		}
		if m, err := decodeWire(raw.Data); err == nil && m.ID == id {
			return raw.Sequence, true, nil
		}
		if at.After(until) {
			return 0, false, nil
		}
		seq = raw.Sequence + 1
	}
	return 0, false, nil
}

// personaConsumer creates (or finds) the durable consumer of a persona. A
// new one starts with messages published from now on: a persona added to a
// running system does not answer the whole history.
//
// An existing one may hold messages delivered to a process that is gone (a
// crash): JetStream would redeliver them only after the ack wait. It is
// reset to its ack floor instead, so they come again at once. The reset also
// forgets acknowledgements above the floor and restarts delivery counts, so
// recheck is the highest stream sequence delivered before: a message up to
// it may already be accounted, and the caller must look in the ledger.
func (b *bus) personaConsumer(ctx context.Context, name string, maxAckPending int, ackWait time.Duration) (_ jetstream.Consumer, recheck uint64, _ error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       consumerName(name),
		Description:   "persona " + name,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: maxAckPending,
		FilterSubject: allRooms,
		MaxDeliver:    -1,
		Replicas:      b.replicas,
	}
	c, err := b.js.Consumer(ctx, streamName, cfg.Durable)
	switch {
	case err == nil:
		info := c.CachedInfo()
		recheck = info.Delivered.Stream
		// Keep the durable's position; update what may change between runs.
		old := info.Config
		old.AckWait, old.MaxAckPending, old.Description = cfg.AckWait, cfg.MaxAckPending, cfg.Description
		old.Replicas = max(old.Replicas, cfg.Replicas) // never scaled down
		if c, err = b.js.UpdateConsumer(ctx, streamName, old); err != nil {
			break
		}
		if info.NumAckPending > 0 {
			if _, rerr := b.js.ResetConsumer(ctx, streamName, cfg.Durable); rerr != nil {
				// An older server: the messages come back after the ack wait.
				b.log.Warn("consumer reset failed; unacknowledged messages return after the ack wait",
					"consumer", cfg.Durable, "pending", info.NumAckPending, "ack_wait", ackWait, "err", rerr)
			}
		}
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		c, err = b.js.CreateConsumer(ctx, streamName, cfg)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("consumer %s: %w", cfg.Durable, err)
	}
	return c, recheck, nil
}

// wireMessage is a chat.Message as stored in the stream and the replies
// bucket. chat.Kind marshals to its name but cannot be unmarshalled, so the
// kind travels as a string we parse ourselves.
type wireMessage struct {
	ID      string    `json:"id"`
	Room    string    `json:"room"`
	Author  string    `json:"author"`
	Kind    string    `json:"kind"`
	Content string    `json:"content"`
	At      time.Time `json:"at"`
	ReplyTo string    `json:"reply_to,omitempty"`
	Depth   int       `json:"depth,omitempty"`
	// Covers lists, for a reply that merged older messages of its room,
	// their ids: the reply answers them too, as context addressed to their
	// authors (chat.Covers). Every daemon's question count reads it.
	Covers []string `json:"covers,omitempty"`
}

func encodeWire(m chat.Message, covers ...string) ([]byte, error) {
	return json.Marshal(wireMessage{ID: m.ID, Room: m.Room, Author: m.Author, Kind: m.Kind.String(),
		Content: m.Content, At: m.At, ReplyTo: m.ReplyTo, Depth: m.Depth, Covers: covers})
}

func decodeWire(data []byte) (chat.Message, error) {
	m, _, err := decodeWireCovers(data)
	return m, err
}

// decodeWireCovers decodes a stored message and the ids it covers
// (wireMessage.Covers).
func decodeWireCovers(data []byte) (chat.Message, []string, error) {
	var w wireMessage
	if err := json.Unmarshal(data, &w); err != nil {
		return chat.Message{}, nil, err
	}
	m := chat.Message{ID: w.ID, Room: w.Room, Author: w.Author, Content: w.Content, At: w.At, ReplyTo: w.ReplyTo, Depth: w.Depth}
	switch w.Kind {
	case chat.Human.String():
		m.Kind = chat.Human
	case chat.Persona.String():
		m.Kind = chat.Persona
	case chat.System.String():
		m.Kind = chat.System
	default:
		return chat.Message{}, nil, fmt.Errorf("unknown message kind %q", w.Kind)
	}
	if m.ID == "" {
		return chat.Message{}, nil, errors.New("message without id")
	}
	return m, w.Covers, nil
}
