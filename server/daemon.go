package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/govern"
	"github.com/personaos/persona/llm"
	"github.com/personaos/persona/metrics"
	"github.com/personaos/persona/slots"
)

// Errors of the daemon's life cycle.
var (
	ErrStarted = errors.New("daemon already started")
	ErrStopped = errors.New("daemon stopped")
)

// Daemon is the chat daemon: NATS JetStream delivery, the persona runtime,
// coordination and the HTTP API. Create it with New, then Start, and
// Shutdown when done. It implements Backend for the HTTP layer. All methods
// are safe for concurrent use; most callers want Start, URL, Token and
// Shutdown.
type Daemon struct {
	store storeHealth // whether the store takes writes (/healthz)
	lock  *dataLock   // the data directory's, held from Start to teardown
	cfg   Config
	chat  chat.Settings // the chat rules' numbers: cfg.settings()
	log   *slog.Logger
	specs []PersonaSpec
	// all is the whole configuration's personas, those other daemons run
	// included.
	all []PersonaSpec
	// remote holds the lower-case names of the configuration's personas
	// that other daemons run (left out by Config.Personas).
	remote map[string]bool
	// names maps every lower-case name and display name of the
	// configuration's personas, here or remote, to the persona's name: a
	// human may not post under one (PersonaName).
	names map[string]string

	started  time.Time
	token    string
	state    atomic.Int32 // 0 new, 1 starting or running, 2 stopped
	stopOnce sync.Once
	stopErr  error

	bus        *bus
	rooms      *rooms
	ledger     *ledger
	rt         *persona.Runtime
	stream     *coord.Stream
	scorer     *chat.Scorer
	reg        *prometheus.Registry
	metrics    *metrics.Metrics
	suppressed *prometheus.CounterVec
	// modelFailures counts failed model calls by persona and class.
	modelFailures *prometheus.CounterVec
	// promptPrefix is the share of each prompt its persona's previous one
	// shares as a prefix.
	promptPrefix *prometheus.HistogramVec
	gov          *govern.Governor
	meter        *govern.Meter
	limiter      *rate.Limiter
	slots        *slots.Scheduler     // the model backend's slots
	slotsWhy     string               // why that many slots (logged)
	models       map[string]llm.Model // by model name; "" is the default
	members      []*member
	byName       map[string]*member // lower-case name
	thinkers     []string           // coordinated personas, declaration order
	// transientAt is, per persona, the time of its last handler error when
	// that was a bus or KV error (observe).
	transientMu sync.Mutex
	transientAt map[string]time.Time
	// failures are the model failures users see (failures.go).
	failures failureBook
	// history holds the personas' samples of the last minutes and tally
	// the notes of their accounts, for the dashboard (trail.go).
	history samples
	tally   tally
	// stopping is closed when teardown begins (responder.stopping).
	stopping  chan struct{}
	closeStop sync.Once

	stopFollow func()
	// leases keeps this daemon's persona leases (leases.go); lsCancel
	// stops its loop, which lsWG waits for.
	leases   *leaseKeeper
	lsCancel context.CancelFunc
	lsWG     sync.WaitGroup
	bgCancel context.CancelFunc // sampler and keep-alive
	ldCancel context.CancelFunc // the ledger writer, last
	wg       sync.WaitGroup
	ledgerWG sync.WaitGroup

	ln         net.Listener
	srv        *http.Server
	httpCancel context.CancelFunc
}

// member is one persona of this daemon.
type member struct {
	spec PersonaSpec
	p    *persona.Persona[chat.Message]
	r    *responder
	// active is set while this daemon holds the persona's lease and
	// consumes its deliveries (leases.go); a persona that waits for others
	// is never active: it has no consumer.
	active atomic.Bool
	// draining is set from deactivation until m has handled what it held
	// then (leaseKeeper.startHandOff): it consumes nothing new, but its
	// thoughts on what it holds still count in its decisions.
	draining atomic.Bool
	// consMu guards cons and cc, set on activation and cleared on
	// deactivation.
	consMu sync.Mutex
	cons   jetstream.Consumer
	cc     jetstream.ConsumeContext
	// recheck: deliveries up to this stream sequence may have been
	// accounted by an earlier run or another daemon (see
	// bus.personaConsumer). Set before consuming starts.
	recheck atomic.Uint64
	// consumeErrs counts consume errors since the last delivery.
	consumeErrs atomic.Int32
}

// consumeErrorsPersist is how many consume errors in a row, with no
// delivery between them, deserve a warning: one missed heartbeat or a
// reconnect is routine, and the client recovers from it on its own.
const consumeErrorsPersist = 3

// consumeError logs an error of a persona's consumer: at Warn when the
// consumer is gone (the client stops consuming, so the persona receives
// nothing until the daemon restarts) or errors persist, else at Debug.
func (d *Daemon) consumeError(name string, streak *atomic.Int32, err error) {
	n := streak.Add(1)
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		d.log.Warn("consumer deleted: the persona receives no messages until the daemon restarts", "persona", name, "err", err)
	case n >= consumeErrorsPersist:
		d.log.Warn("consumer errors persist", "persona", name, "errors", n, "err", err)
	default:
		d.log.Debug("consumer", "persona", name, "err", err)
	}
}

// New checks cfg and loads the personas. It starts nothing and touches no
// disk but the persona file.
func New(cfg Config) (*Daemon, error) {
	cfg = cfg.withDefaults()
	if cfg.Retention > 0 && cfg.Retention < minRetention {
		return nil, fmt.Errorf("%w: retention %v is under %v", ErrInvalid, cfg.Retention, minRetention)
	}
	if cfg.Replicas < 0 || (cfg.Replicas > 1 && cfg.NATSURL == "") {
		return nil, fmt.Errorf("%w: --replicas %d: the embedded server keeps one copy; more need --nats with a cluster", ErrInvalid, cfg.Replicas)
	}
	if cfg.LeaseTTL != 0 && cfg.LeaseTTL < time.Second {
		return nil, fmt.Errorf("%w: lease TTL %v is under 1s", ErrInvalid, cfg.LeaseTTL)
	}
	if cfg.Sync != SyncInterval && cfg.Sync != SyncAlways {
		return nil, fmt.Errorf("%w: --sync %q: want %q or %q", ErrInvalid, cfg.Sync, SyncAlways, SyncInterval)
	}
	var specs []PersonaSpec
	var err error
	switch {
	case cfg.ConfigFile != "":
		specs, err = LoadPersonas(cfg.ConfigFile)
	case cfg.Specs != nil:
		specs = cfg.Specs
	default:
		specs = DefaultPersonas()
	}
	if err != nil {
		return nil, err
	}
	all := specs
	if specs, err = selectPersonas(specs, cfg.Personas); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, chat: cfg.settings(), log: cfg.Logger, specs: specs, all: all, remote: map[string]bool{}, names: map[string]string{},
		stopping: make(chan struct{}), transientAt: map[string]time.Time{}}
	for _, s := range all {
		d.names[strings.ToLower(s.Name)] = s.Name
		d.names[strings.ToLower(s.DisplayName())] = s.Name
		if !slices.ContainsFunc(specs, func(o PersonaSpec) bool { return o.Name == s.Name }) {
			d.remote[strings.ToLower(s.Name)] = true
		}
	}
	return d, nil
}

// Start starts everything, in order: NATS (embedded or connected), the room
// follower (which first reads the stream to its end), the personas and
// their durable consumers, and the HTTP listener, which it binds before
// returning so that a port already in use is reported at once. On error
// everything started so far is stopped again.
func (d *Daemon) Start(ctx context.Context) (err error) {
	if !d.state.CompareAndSwap(0, 1) {
		return ErrStarted
	}
	defer func() {
		if err != nil {
			d.state.Store(2)
			d.teardown(context.Background())
		}
	}()
	d.started = time.Now()
	if err := os.MkdirAll(d.cfg.Data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// One daemon per data directory, locked before anything touches it.
	if d.lock, err = lockData(d.cfg.Data); err != nil {
		return err
	}
	_, statErr := os.Stat(filepath.Join(d.cfg.Data, "jetstream"))
	hadData := statErr == nil
	var fresh bool
	configured := d.cfg.Token
	if configured == "" && d.cfg.TokenFile != "" {
		if configured, err = readTokenFile(d.cfg.TokenFile, d.log); err != nil {
			return err
		}
	}
	if d.token, fresh, err = loadToken(d.cfg.Data, cmp.Or(configured, os.Getenv(EnvToken))); err != nil {
		return err
	}
	if configured == "" && os.Getenv(EnvToken) == "" {
		warnLooseMode(filepath.Join(d.cfg.Data, "token"), d.log)
	}
	if fresh && hadData {
		d.log.Warn("the data directory had no token file: a new token was made, and clients with the old one get 401 until they use it", "file", filepath.Join(d.cfg.Data, "token"))
	}
	maxAge, maxBytes := d.cfg.streamLimits()
	if d.bus, err = openBus(ctx, busOptions{URL: d.cfg.NATSURL, StoreDir: d.cfg.Data, Name: "persona", Logger: d.log, MaxAge: maxAge, MaxBytes: maxBytes, SyncAlways: d.cfg.Sync == SyncAlways, MaxStore: d.cfg.hooks.maxStore, Replicas: d.cfg.Replicas, LeaseTTL: d.cfg.LeaseTTL}); err != nil {
		return err
	}
	d.rooms = newRooms(d.log)
	d.rooms.budget = chat.NewBudget[string](d.chat.ReplyBudget, d.chat.ReplyWindow)
	d.rooms.local = map[string]bool{}
	d.rooms.questions.horizon = d.cfg.hooks.questionHorizon
	if d.cfg.NATSURL == "" {
		d.log.Info("store open", "nats", "embedded", "dir", d.cfg.Data, "retention", d.cfg.Retention, "max_bytes", d.cfg.MaxBytes, "sync", d.cfg.Sync)
	} else {
		d.log.Info("store open", "nats", d.bus.nc.ConnectedUrlRedacted(), "retention", d.cfg.Retention, "max_bytes", d.cfg.MaxBytes)
	}
	if d.stopFollow, err = d.rooms.follow(ctx, d.bus.js, d.bus.stream); err != nil {
		return err
	}
	if err := d.buildModels(); err != nil {
		return err
	}
	d.probeModels(ctx)
	if err := d.buildRuntime(); err != nil {
		return err
	}
	if err := d.rt.Start(); err != nil {
		return err
	}
	names := make([]string, 0, len(d.members))
	for _, m := range d.members {
		names = append(names, m.spec.Name)
	}
	d.log.Info("personas started", "count", len(names), "names", strings.Join(names, ","))

	ldCtx, ldCancel := context.WithCancel(context.Background())
	d.ldCancel = ldCancel
	d.ledgerWG.Go(func() { d.ledger.run(ldCtx) })

	// The express lane opens once every persona consumes: a mention is
	// never held behind its persona's durable backlog.
	express := d.express
	d.rooms.express.Store(&express)

	bgCtx, bgCancel := context.WithCancel(context.Background())
	d.bgCancel = bgCancel
	sampler := govern.NewSampler(d.gov, govern.SamplerOptions{
		// The sampler's tick also samples the personas for the dashboard.
		Source: func(now time.Time) govern.Sample {
			d.sample(now)
			return d.governorInputs(now)
		},
		Meter:  d.meter,
		Logger: d.log,
	})
	d.wg.Go(func() { _ = sampler.Run(bgCtx) })
	d.wg.Go(func() { d.keepAlive(bgCtx) })

	if err := d.listen(); err != nil {
		return err
	}
	// Each source persona runs here while this daemon holds its lease: the
	// first round takes the free ones this daemon should run (all of them
	// on a lone daemon) before Start returns. The API is bound first, so
	// the leases name its address.
	return d.startLeases(ctx)
}

// listen binds the HTTP address and serves on a goroutine the daemon owns.
func (d *Daemon) listen() error {
	ln, err := net.Listen("tcp", d.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", d.cfg.Addr, err)
	}
	hopts := d.cfg.HTTP
	d.ln = newPerClientListener(ln, cmp.Or(hopts.MaxConnsPerClient, defaultClientConns))
	hopts.Token = d.token
	if hopts.Logger == nil {
		hopts.Logger = d.log
	}
	hopts.Metrics = promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{})
	base, cancel := context.WithCancel(context.Background())
	d.httpCancel = cancel
	d.srv = &http.Server{
		Handler:           NewHandler(d, hopts),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    serverMaxHeaderBytes, // the handler answers 431 in JSON below it (HTTPOptions.MaxHeaderBytes)
		ReadTimeout:       cmp.Or(hopts.ReadTimeout, 30*time.Second),
		WriteTimeout:      cmp.Or(hopts.WriteTimeout, 60*time.Second),
		// A browser's idle keep-alive connection is not held for ever.
		IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return base },
	}
	d.wg.Go(func() {
		if err := d.srv.Serve(d.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server", "err", err)
		}
	})
	return nil
}

// Addr returns the address the API listens on (useful with port 0), or ""
// before Start.
func (d *Daemon) Addr() string {
	if d.ln == nil {
		return ""
	}
	return d.ln.Addr().String()
}

// URL returns the dashboard's URL, without the token.
func (d *Daemon) URL() string { return "http://" + d.Addr() + "/" }

// Token returns the API's bearer token (set by Start).
func (d *Daemon) Token() string { return d.token }

// Shutdown stops the daemon: the HTTP server (live streams end, requests in
// flight finish unless ctx ends first), the
// consumers, the personas (runtime Shutdown: a running handler finishes or,
// when ctx ends, is cancelled; what is still queued stays unacknowledged in
// JetStream and is delivered again on the next start), the coordination
// stream, the ledger writer (after it wrote every final the runtime
// reported), and NATS. It returns ctx's error if ctx ended first; calling it
// again returns the first result.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.stopOnce.Do(func() {
		d.state.Store(2)
		d.stopErr = d.teardown(ctx)
	})
	return d.stopErr
}

// teardown stops whatever was started, in reverse order of dependence.
func (d *Daemon) teardown(ctx context.Context) error {
	var errs []error
	if d.srv != nil {
		// Live streams end first (their channels close), so that Shutdown
		// waits only for ordinary requests. A POST in flight finishes:
		// cancelling it would answer 503 for a message JetStream may have
		// stored. Only when ctx ends first are the requests' contexts
		// cancelled and their connections closed.
		d.rooms.close()
		if err := d.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			d.httpCancel()
			_ = d.srv.Close()
		}
		d.httpCancel()
	} else if d.ln != nil {
		_ = d.ln.Close()
	}
	if d.lsCancel != nil {
		d.lsCancel()
		d.lsWG.Wait()
	}
	for _, m := range d.members {
		d.stopConsuming(m)
	}
	if d.bgCancel != nil {
		d.bgCancel()
	}
	d.closeStop.Do(func() { close(d.stopping) })
	if d.rt != nil {
		rep, err := d.rt.Shutdown(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		if n := rep.Pending(); n > 0 {
			d.log.Info("personas stopped with messages pending; they stay in JetStream for the next start", "pending", n)
		}
	}
	if d.stream != nil {
		d.stream.Close()
	}
	d.wg.Wait()
	if d.ldCancel != nil {
		// The last accounts are written within the shutdown's deadline;
		// what a failing store cannot take goes back to JetStream.
		d.ledger.drainBy(ctx)
		d.ldCancel()
		d.ledgerWG.Wait()
	}
	if d.leases != nil {
		// After the last accounts: a peer that takes a persona over gets
		// only what this daemon left unacknowledged.
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.leases.release(rctx)
		cancel()
	}
	if d.stopFollow != nil {
		d.stopFollow()
	}
	if d.rooms != nil {
		d.rooms.close()
	}
	if d.bus != nil {
		d.bus.close()
	}
	d.lock.release() // last: nothing of this daemon touches the directory after
	return errors.Join(errs...)
}

// loadToken returns the configured token, or the one kept in dir/token,
// generating it on first start.
// It reports whether it made a new one.
func loadToken(dir, configured string) (string, bool, error) {
	if configured != "" {
		return configured, false, nil
	}
	path := filepath.Join(dir, "token")
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("token: %w", err)
	}
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	t := hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("token: %w", err)
	}
	return t, true, nil
}

// readTokenFile reads the token kept in path (Config.TokenFile): a missing
// or empty file is an error that names it, not a new token that would lock
// every client out.
func readTokenFile(path string, log *slog.Logger) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: token file: %w", ErrInvalid, err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%w: token file %s is empty", ErrInvalid, path)
	}
	warnLooseMode(path, log)
	return t, nil
}

// warnLooseMode warns when the token file at path can be read or written
// by users other than its owner: any of them can then use the API.
func warnLooseMode(path string, log *slog.Logger) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		log.Warn("the token file is open to other users: any of them can use the API; chmod 600 it", "file", path, "mode", fmt.Sprintf("%#o", mode))
	}
}

// EnvToken is the environment variable persona serve reads the API token
// from when --token is not given: unlike a flag it does not show in ps.
const EnvToken = "PERSONA_TOKEN"

// keepAlive marks held messages in progress a few times per AckWait.
func (d *Daemon) keepAlive(ctx context.Context) {
	t := time.NewTicker(d.cfg.AckWait / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.ledger.keepAlive()
		}
	}
}
