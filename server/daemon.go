package server

import (
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
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/govern"
	"github.com/personaos/persona/inbox"
	"github.com/personaos/persona/llm"
	"github.com/personaos/persona/metrics"
)

// Defaults of Config. Numbers from the issue say so; the others are ours.
const (
	DefaultAddr = "127.0.0.1:7777"
	DefaultData = "persona-data"
	// The chat rules' defaults are chat.DefaultSettings(): the simulator's
	// too, so that a scenario measures what the daemon runs.
	DefaultK            = coord.DefaultK // coordination: one responder per message unless mentioned
	DefaultReplyBudget  = chat.DefaultReplyBudget
	DefaultReplyWindow  = chat.DefaultReplyWindow
	DefaultQuietAfter   = chat.DefaultQuietAfter
	DefaultMaxDepth     = chat.DefaultMaxDepth
	DefaultRespondAbove = chat.DefaultRespondAbove
	DefaultCoordWindow  = coord.DefaultWindow
	DefaultMaxWindow    = chat.DefaultMaxWindow
	DefaultBudgetPerSec = 2  // model calls per second, all personas together
	DefaultBudgetBurst  = 20 // model calls in a burst
	DefaultAckWait      = 2 * time.Minute
	DefaultRetention    = 30 * 24 * time.Hour // a month of chat history
	DefaultMaxBytes     = 1 << 30             // 1 GiB of room stream
)

// Config configures a Daemon. The zero value is valid: it runs the built-in
// personas with the scripted model, an embedded NATS server storing under
// ./persona-data, and the API on 127.0.0.1:7777.
type Config struct {
	// Addr is the HTTP listen address (default 127.0.0.1:7777). Port 0
	// picks a free port; Daemon.Addr tells which.
	Addr string
	// Data is the data directory: the embedded NATS server's storage and
	// the access token (default ./persona-data).
	Data string
	// NATSURL, if set, connects to an existing NATS server or cluster
	// (with JetStream) instead of starting the embedded one.
	NATSURL string
	// ConfigFile is a persona YAML file (see personas.yaml). Empty: Specs,
	// or else the built-in set.
	ConfigFile string
	// Specs are the personas when ConfigFile is empty (nil: built in).
	Specs []PersonaSpec
	// Personas selects which personas of the configuration this daemon
	// runs (default all). Several daemons sharing one NATS cluster each run
	// some; a persona must run in one daemon only.
	Personas []string
	// Token is the API's bearer token. Empty: read from Data/token, or
	// generated there on first start.
	Token string

	// Model, if set, answers for every persona (tests, embedding).
	// Otherwise an OpenAI-compatible server is used when ModelBaseURL,
	// $OPENAI_BASE_URL or $OPENAI_API_KEY is set, and the built-in scripted
	// responder when none is.
	Model        llm.Model
	ModelBaseURL string
	ModelAPIKey  string
	ModelName    string
	// ModelOptions are passed to llm.NewOpenAI (BaseURL, APIKey, Model and
	// Limiter are set from the fields above and the budget).
	ModelOptions llm.OpenAIOptions
	// BudgetPerSec and BudgetBurst are the compute budget: a token bucket
	// shared by all personas, one token per model call attempt (defaults 2
	// per second, burst 20). Negative BudgetPerSec: unlimited.
	BudgetPerSec float64
	BudgetBurst  int

	// K is how many personas answer a message that mentions nobody
	// (default 1). A mentioned persona is always granted.
	K int
	// ReplyBudget is how many persona messages this daemon posts per room
	// per ReplyWindow (defaults 6 and one minute); replies over it are not
	// sent, and are accounted handled with the note "reply budget". A reply
	// to a message that addresses the persona is counted, never refused.
	ReplyBudget int
	ReplyWindow time.Duration
	// QuietAfter: a persona's message in a room where no human has spoken
	// for this long is not answered (default 10 minutes).
	QuietAfter time.Duration
	// MaxDepth: a persona's message that is the MaxDepth-th persona reply
	// of a chain is not answered (default 2: a persona may answer another's
	// reply to a human, and nobody answers that).
	MaxDepth int
	// RespondAbove is the confidence (the item's priority for the persona)
	// from which a persona not addressed asks to respond (default 0.4: any
	// fresh human message; another persona's reply only with expertise and
	// recent activity in the room); below, it declines the message.
	RespondAbove float64
	// NoMerge turns off merging a persona's pending messages of one room
	// into one reply (root Options.Coalesce), which is on by default.
	NoMerge bool
	// CoordWindow is the initial coordination window (default 1.5s): how
	// long a decision waits, from its first thought, for personas that
	// have not thought yet. It adapts to the measured time-to-thought
	// between coord's MinWindow (250ms) and MaxWindow (default 3s).
	CoordWindow time.Duration
	MaxWindow   time.Duration
	// AckWait is how long JetStream waits for an acknowledgement before
	// redelivering (default 2m); held messages are kept alive well within it.
	AckWait time.Duration
	// Retention is how long the room stream keeps a message (default 30
	// days); the accounts and replies buckets keep a key as long, so a
	// message is never redelivered after its ledger entries are gone.
	// Negative: forever. Paging, prompts and quiet rooms see only what the
	// stream keeps, and the daemon reads all of it at start.
	Retention time.Duration
	// MaxBytes caps the room stream's size: past it the oldest messages are
	// dropped (default 1 GiB). Negative: no cap.
	MaxBytes int64
	// Persona is the base of every persona's runtime options; the spec's
	// capacity, cadence and thresholds override it.
	Persona persona.Options
	// HTTP configures the API (Token, Logger and Metrics are set by the
	// daemon).
	HTTP HTTPOptions
	// Logger receives the daemon's logs (default slog.Default()).
	Logger *slog.Logger

	// hooks are test seams, zero in production (unexported: only this
	// package's tests set them).
	hooks hooks
}

// hooks are a daemon's test seams. Each is read once, by the step it
// wraps: the ledger's writer (dropFinals, accounts) and Post
// (beforePublish).
type hooks struct {
	// dropFinals makes the ledger drop every final account without
	// writing or acknowledging it: a crash just before each ack.
	dropFinals bool
	// accounts, if set, wraps the accounts bucket the ledger writes to
	// (tests inject failures).
	accounts func(jetstream.KeyValue) jetstream.KeyValue
	// beforePublish, if set, runs in Post just before the publish.
	beforePublish func()
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Data == "" {
		c.Data = DefaultData
	}
	if c.BudgetPerSec == 0 {
		c.BudgetPerSec = DefaultBudgetPerSec
	}
	if c.BudgetBurst <= 0 {
		c.BudgetBurst = DefaultBudgetBurst
	}
	if c.K <= 0 {
		c.K = DefaultK
	}
	if c.ReplyBudget <= 0 {
		c.ReplyBudget = DefaultReplyBudget
	}
	if c.ReplyWindow <= 0 {
		c.ReplyWindow = DefaultReplyWindow
	}
	if c.QuietAfter <= 0 {
		c.QuietAfter = DefaultQuietAfter
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.RespondAbove <= 0 {
		c.RespondAbove = DefaultRespondAbove
	}
	if c.CoordWindow <= 0 {
		c.CoordWindow = DefaultCoordWindow
	}
	if c.MaxWindow <= 0 {
		c.MaxWindow = DefaultMaxWindow
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// settings are the chat rules' settings of a defaulted Config:
// chat.DefaultSettings with the fields the Config sets.
func (c Config) settings() chat.Settings {
	s := chat.DefaultSettings()
	s.QuietAfter, s.ReplyBudget, s.ReplyWindow = c.QuietAfter, c.ReplyBudget, c.ReplyWindow
	s.MaxDepth, s.RespondAbove, s.NoMerge = c.MaxDepth, c.RespondAbove, c.NoMerge
	s.Stream.Window, s.Stream.MaxWindow, s.Stream.K = c.CoordWindow, c.MaxWindow, c.K
	return s
}

// streamLimits are Retention and MaxBytes in JetStream's terms: 0 and -1
// mean unlimited.
func (c Config) streamLimits() (maxAge time.Duration, maxBytes int64) {
	maxAge, maxBytes = max(c.Retention, 0), c.MaxBytes
	if maxBytes < 0 {
		maxBytes = -1
	}
	return maxAge, maxBytes
}

// minRetention is the shortest Config.Retention: a message must outlive
// the time it may wait for its personas and its redeliveries.
const minRetention = time.Hour

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
	cfg   Config
	chat  chat.Settings // the chat rules' numbers: cfg.settings()
	log   *slog.Logger
	specs []PersonaSpec
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
	gov        *govern.Governor
	meter      *govern.Meter
	limiter    *rate.Limiter
	models     map[string]llm.Model // by model name; "" is the default
	members    []*member
	byName     map[string]*member // lower-case name
	thinkers   []string           // coordinated personas, declaration order

	stopFollow func()
	consumes   []jetstream.ConsumeContext
	bgCancel   context.CancelFunc // sampler and keep-alive
	ldCancel   context.CancelFunc // the ledger writer, last
	wg         sync.WaitGroup
	ledgerWG   sync.WaitGroup

	ln         net.Listener
	srv        *http.Server
	httpCancel context.CancelFunc
}

// member is one persona of this daemon.
type member struct {
	spec PersonaSpec
	p    *persona.Persona[chat.Message]
	r    *responder
	cons jetstream.Consumer // nil for a persona that waits for others
	// recheck: deliveries up to this stream sequence may have been
	// accounted by an earlier run (see bus.personaConsumer).
	recheck uint64
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
	d := &Daemon{cfg: cfg, chat: cfg.settings(), log: cfg.Logger, specs: specs, remote: map[string]bool{}, names: map[string]string{}}
	for _, s := range all {
		d.names[strings.ToLower(s.Name)] = s.Name
		d.names[strings.ToLower(s.display())] = s.Name
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
	if d.token, err = loadToken(d.cfg.Data, d.cfg.Token); err != nil {
		return err
	}
	maxAge, maxBytes := d.cfg.streamLimits()
	if d.bus, err = openBus(ctx, busOptions{URL: d.cfg.NATSURL, StoreDir: d.cfg.Data, Name: "persona", Logger: d.log, MaxAge: maxAge, MaxBytes: maxBytes}); err != nil {
		return err
	}
	d.rooms = newRooms(d.log)
	d.rooms.budget = chat.NewBudget[string](d.chat.ReplyBudget, d.chat.ReplyWindow)
	if d.stopFollow, err = d.rooms.follow(ctx, d.bus.js, d.bus.stream); err != nil {
		return err
	}
	if err := d.buildModels(); err != nil {
		return err
	}
	if err := d.buildRuntime(); err != nil {
		return err
	}
	if err := d.rt.Start(); err != nil {
		return err
	}

	ldCtx, ldCancel := context.WithCancel(context.Background())
	d.ldCancel = ldCancel
	d.ledgerWG.Go(func() { d.ledger.run(ldCtx) })

	for _, m := range d.members {
		if m.spec.dependent() {
			continue
		}
		if m.cons, m.recheck, err = d.bus.personaConsumer(ctx, m.spec.Name, 2*m.p.Inbox().Options().Capacity, d.cfg.AckWait); err != nil {
			return err
		}
		cc, err := m.cons.Consume(func(msg jetstream.Msg) {
			m.consumeErrs.Store(0)
			d.deliver(m, msg)
		},
			jetstream.PullMaxMessages(64),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				d.consumeError(m.spec.Name, &m.consumeErrs, err)
			}))
		if err != nil {
			return fmt.Errorf("consume for %s: %w", m.spec.Name, err)
		}
		d.consumes = append(d.consumes, cc)
	}

	bgCtx, bgCancel := context.WithCancel(context.Background())
	d.bgCancel = bgCancel
	sampler := govern.NewSampler(d.gov, govern.SamplerOptions{
		Source: d.governorInputs,
		Meter:  d.meter,
		Logger: d.log,
	})
	d.wg.Go(func() { _ = sampler.Run(bgCtx) })
	d.wg.Go(func() { d.keepAlive(bgCtx) })

	return d.listen()
}

// listen binds the HTTP address and serves on a goroutine the daemon owns.
func (d *Daemon) listen() error {
	ln, err := net.Listen("tcp", d.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", d.cfg.Addr, err)
	}
	d.ln = ln
	hopts := d.cfg.HTTP
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
		// A browser's idle keep-alive connection is not held for ever.
		IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return base },
	}
	d.wg.Go(func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
	for _, cc := range d.consumes {
		cc.Stop()
		<-cc.Closed()
	}
	if d.bgCancel != nil {
		d.bgCancel()
	}
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
		d.ldCancel()
		d.ledgerWG.Wait()
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
	return errors.Join(errs...)
}

// loadToken returns the configured token, or the one kept in dir/token,
// generating it on first start.
func loadToken(dir, configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	path := filepath.Join(dir, "token")
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("token: %w", err)
	}
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	t := hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return t, nil
}

// buildModels picks the model backend and the compute budget.
func (d *Daemon) buildModels() error {
	if d.cfg.BudgetPerSec > 0 {
		d.limiter = rate.NewLimiter(rate.Limit(d.cfg.BudgetPerSec), d.cfg.BudgetBurst)
	}
	d.models = map[string]llm.Model{}
	useOpenAI := d.cfg.ModelBaseURL != "" || os.Getenv(llm.EnvBaseURL) != "" || os.Getenv(llm.EnvAPIKey) != ""
	names := []string{""}
	for _, s := range d.specs {
		if s.Model != "" && !slices.Contains(names, s.Model) {
			names = append(names, s.Model)
		}
	}
	for _, name := range names {
		switch {
		case d.cfg.Model != nil:
			d.models[name] = budgeted{d.cfg.Model, d.limiter}
		case useOpenAI:
			o := d.cfg.ModelOptions
			o.BaseURL, o.APIKey, o.Model = d.cfg.ModelBaseURL, d.cfg.ModelAPIKey, d.cfg.ModelName
			if name != "" {
				o.Model = name
			}
			o.Limiter = d.limiter
			if o.Logger == nil {
				o.Logger = d.log
			}
			c, err := llm.NewOpenAI(o)
			if err != nil {
				return fmt.Errorf("model: %w", err)
			}
			d.models[name] = c
		default:
			d.models[name] = budgeted{llm.Scripted{}, d.limiter}
		}
	}
	return nil
}

func (d *Daemon) modelFor(name string) llm.Model {
	if m, ok := d.models[name]; ok {
		return m
	}
	return d.models[""]
}

// modelName is what the dashboard shows as a persona's model.
func (d *Daemon) modelName(spec PersonaSpec) string {
	switch m := d.modelFor(spec.Model).(type) {
	case *llm.OpenAI:
		return m.Model()
	case budgeted:
		if _, ok := m.Model.(llm.Scripted); ok {
			return llm.ScriptedModel
		}
	}
	if spec.Model != "" {
		return spec.Model
	}
	return "custom"
}

// budgeted takes a compute-budget token before each call of a model that
// does not take one itself (the OpenAI client takes one per attempt).
type budgeted struct {
	llm.Model
	lim *rate.Limiter
}

func (b budgeted) Complete(ctx context.Context, req llm.Request) (llm.Reply, error) {
	if b.lim != nil {
		if err := b.lim.Wait(ctx); err != nil {
			return llm.Reply{}, fmt.Errorf("compute budget: %w", err)
		}
	}
	return b.Model.Complete(ctx, req)
}

// complete makes one model call for persona with its model: metered for
// the governor and counted in the metrics (modelCaller).
func (d *Daemon) complete(ctx context.Context, persona, model string, req llm.Request) (llm.Reply, error) {
	start := time.Now()
	d.meter.Begin(start)
	reply, err := d.modelFor(model).Complete(ctx, req)
	end := time.Now()
	d.meter.End(end)
	d.metrics.ModelCall(persona, outcome(err), end.Sub(start))
	return reply, err
}

// note records a note on persona's account of message id (accounts).
func (d *Daemon) note(persona, id, note string) { d.ledger.note(persona, id, note) }

// budgetLevel is the compute budget's fill at now, 0..1.
func (d *Daemon) budgetLevel(now time.Time) float64 {
	if d.limiter == nil {
		return 1
	}
	return min(1, max(0, d.limiter.TokensAt(now)/float64(d.limiter.Burst())))
}

// buildRuntime creates the metrics, governor, coordination stream, runtime
// and one persona per spec.
func (d *Daemon) buildRuntime() error {
	d.reg = prometheus.NewRegistry()
	var err error
	if d.metrics, err = metrics.New(d.reg, metrics.Options{}); err != nil {
		return err
	}
	d.suppressed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "persona", Name: "chat_not_answered_total",
		Help: "Messages a persona did not answer by a conversation guard: reason own message|quiet room|reply chain too deep|reply budget|answered before.",
	}, []string{"persona", "reason"})
	if err := errors.Join(
		d.reg.Register(d.suppressed),
		d.reg.Register(collectors.NewGoCollector()),
		d.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	d.gov = govern.New(govern.Policy{})
	d.meter = &govern.Meter{}
	so := d.chat.Stream
	so.Logger = d.log
	so.OnDecision = func(dec coord.Decision) {
		d.metrics.Decision(len(dec.Granted))
		d.rooms.emit(Event{Type: "decision", Room: dec.Key, Decision: &dec})
	}
	d.stream = coord.New(so)
	d.rt = persona.NewRuntime(persona.RuntimeOptions{
		Logger:   d.log,
		Observer: persona.ObserverFunc(d.observe),
		Governor: persona.GovernorFunc(func() persona.Adjustment { return persona.Adjustment(d.gov.Adjust()) }),
		Budget:   d.budgetLevel,
	})
	if err := errors.Join(d.metrics.WatchRuntime(d.rt.Snapshots), d.metrics.WatchGovernor(d.gov)); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	w := chat.DefaultWeights()
	w.Urgent = d.cfg.Persona.State.Defaults().Urgent
	d.scorer = chat.NewScorer(w)
	d.byName = make(map[string]*member)
	groups := make(map[string][]string)
	rp := &replies{bus: d.bus, rooms: d.rooms, log: d.log, k: d.chat.Stream.K}
	for _, s := range d.specs {
		d.scorer.AddProfile(chat.Profile{Name: s.Name, Expertise: slices.Clone(s.Expertise)})
		m := &member{spec: s}
		m.r = &responder{
			name: s.Name, system: s.systemPrompt(), model: s.Model, dependent: s.dependent(),
			rules: d.chat, log: d.log,
			decisions: d, accounts: d, rooms: d.rooms, replies: rp, models: d,
			metrics: d.metrics, activity: d.scorer,
		}
		opts := d.personaOptions(s)
		// Coordinated keeps the Evaluator: with a stream the persona
		// coordinates; without one (a pipeline stage) it evaluates, then
		// responds on its own judgement.
		h := persona.Coordinated[chat.Message](m.r)
		if !s.dependent() {
			opts.Coordination = d.stream
			d.thinkers = append(d.thinkers, s.Name)
		}
		if m.p, err = persona.Spawn(d.rt, s.Name, h, opts); err != nil {
			return err
		}
		d.members = append(d.members, m)
		d.byName[strings.ToLower(s.Name)] = m
	}
	for _, s := range d.specs {
		if !s.dependent() {
			groups[strings.ToLower(s.Name)] = downstream(d.specs, s.Name)
		}
	}
	accounts := d.bus.accounts
	if d.cfg.hooks.accounts != nil {
		accounts = d.cfg.hooks.accounts(accounts)
	}
	d.ledger = newLedger(d.log, accounts, groups)
	// A message given back comes again well within the ack wait.
	d.ledger.nakDelay = min(d.ledger.nakDelay, d.cfg.AckWait/4)
	d.ledger.skipWrites = d.cfg.hooks.dropFinals
	return nil
}

// personaOptions are the runtime options of one persona: the daemon's base
// with the spec's overrides.
func (d *Daemon) personaOptions(s PersonaSpec) persona.Options {
	o := d.cfg.Persona
	o.Coalesce = !d.chat.NoMerge
	if s.dependent() {
		// A source persona's items carry the score the intake guard read
		// (deliver); a dependent's are released by the pipeline and scored
		// for it by the runtime.
		o.Scorer = persona.Scorer[chat.Message](d.scorer)
	}
	if s.Capacity > 0 {
		o.Capacity = s.Capacity
	}
	if o.Capacity <= 0 {
		o.Capacity = inbox.DefaultCapacity
	}
	setD := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	setF := func(dst *float64, v float64) {
		if v > 0 {
			*dst = v
		}
	}
	st := &o.State
	setD(&st.CadenceIdle, s.Cadence.Idle)
	setD(&st.CadenceActive, s.Cadence.Active)
	setD(&st.CadenceTired, s.Cadence.Tired)
	setD(&st.CadenceOverwhelmed, s.Cadence.Overwhelmed)
	setF(&st.ThresholdIdle, s.Thresholds.Idle)
	setF(&st.ThresholdActive, s.Thresholds.Active)
	setF(&st.ThresholdTired, s.Thresholds.Tired)
	setF(&st.ThresholdOverwhelmed, s.Thresholds.Overwhelmed)
	o.WaitsFor = slices.Clone(s.WaitsFor)
	return o
}

func (s PersonaSpec) dependent() bool { return len(s.WaitsFor) > 0 }

// downstream returns name and every persona that waits for it, directly or
// not, lower-case.
func downstream(specs []PersonaSpec, name string) []string {
	out := []string{strings.ToLower(name)}
	for i := 0; i < len(out); i++ {
		for _, s := range specs {
			if slices.ContainsFunc(s.WaitsFor, func(w string) bool { return strings.EqualFold(w, out[i]) }) &&
				!slices.Contains(out, strings.ToLower(s.Name)) {
				out = append(out, strings.ToLower(s.Name))
			}
		}
	}
	return out
}

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
	if md == nil || md.NumDelivered > 1 || md.Sequence.Stream <= m.recheck {
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
	err = m.p.Deliver(persona.Item[chat.Message]{ID: msg.ID, Key: msg.Room, Created: msg.At, Priority: score, Addressees: in.addressees, Payload: msg})
	switch {
	case err == nil:
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

// inbound is a room message decoded once at intake: its mentions, and what
// they mean for this daemon. The guard, the delivery and the decision read
// it; nothing parses the content again.
type inbound struct {
	chat.Inbound
	// addressees are this daemon's personas the message @mentions, its
	// author left out, by their configured names.
	addressees []string
	// remote counts the personas it @mentions that other daemons run.
	remote int
}

// decode decodes msg once.
func (d *Daemon) decode(msg chat.Message) inbound {
	in := inbound{Inbound: chat.Decode(msg)}
	for _, n := range in.Mentions {
		if m, ok := d.byName[n]; ok && !strings.EqualFold(m.spec.Name, msg.Author) {
			in.addressees = append(in.addressees, m.spec.Name)
		}
		if d.remote[n] {
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
func (d *Daemon) open(msg chat.Message, addressees []string, now time.Time) {
	cands := make([]chat.Candidate, 0, len(d.thinkers))
	for _, t := range d.thinkers {
		addressed := slices.Contains(addressees, t)
		cands = append(cands, chat.Candidate{Name: t, Addressed: addressed, Score: d.score(t, msg, addressed, now)})
	}
	expected, addr := d.chat.Expected(msg.Author, msg.Kind, cands)
	d.stream.Open(msg.ID, msg.Room, expected, addr)
}

// observe is the runtime's observer: metrics, and the final accounts that
// release JetStream messages.
func (d *Daemon) observe(e persona.Event) {
	d.metrics.Observe(e)
	switch e.Kind {
	case persona.EventFailed:
		if d.state.Load() == 2 {
			// Shutdown cancelled the handler: not the message's fault. It
			// stays unacknowledged and is handled after the next start.
			return
		}
		d.ledger.final(e.Persona, e.ItemID, e.Kind.String(), e.At)
	case persona.EventHandled, persona.EventDeclined, persona.EventExpired:
		d.ledger.final(e.Persona, e.ItemID, e.Kind.String(), e.At)
	case persona.EventNotGranted:
		d.ledger.note(e.Persona, e.ItemID, noteNotGranted)
	}
}

// count records a message a guard kept a persona from answering.
func (d *Daemon) count(persona, reason string) {
	d.suppressed.WithLabelValues(persona, reason).Inc()
}

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

// governorInputs is the sampler's source: total inbox load and the compute
// budget spent.
func (d *Daemon) governorInputs() govern.Inputs {
	var depth, capacity int
	for _, m := range d.members {
		c := m.p.Inbox().Counts()
		depth += c.Queued
		capacity += m.p.Inbox().Options().Capacity
	}
	in := govern.Inputs{BudgetSpent: 1 - d.budgetLevel(time.Now())}
	if capacity > 0 {
		in.Load = float64(depth) / float64(capacity)
	}
	return in
}

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
	if err := d.running(); err != nil {
		return chat.Message{}, err
	}
	author, content = strings.TrimSpace(author), strings.TrimSpace(content)
	switch {
	case !roomName.MatchString(room):
		return chat.Message{}, fmt.Errorf("%w: room %q", ErrInvalid, room)
	case author == "":
		return chat.Message{}, fmt.Errorf("%w: empty author", ErrInvalid)
	case content == "":
		return chat.Message{}, fmt.Errorf("%w: empty content", ErrInvalid)
	}
	if p, ok := d.PersonaName(author); ok {
		return chat.Message{}, fmt.Errorf("%w: author %q is persona %s's name", ErrInvalid, author, p)
	}
	now := time.Now()
	m := chat.Message{ID: newMessageID(now), Room: room, Author: author, Kind: chat.Human, Content: content, At: now.UTC()}
	if d.cfg.hooks.beforePublish != nil {
		d.cfg.hooks.beforePublish()
	}
	seq, err := d.bus.publish(ctx, m)
	if err != nil {
		if ctx.Err() != nil {
			return chat.Message{}, fmt.Errorf("post: %w", ctx.Err())
		}
		return chat.Message{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d.rooms.posted(seq, m)
	d.metrics.Message()
	return m, nil
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
	if d.rooms != nil {
		return d.rooms.personaAuthor(bare)
	}
	return "", false
}

// Messages lists a room's messages after the message with id after (from
// the start when empty), oldest first, at most limit (default 100, at most
// 500).
func (d *Daemon) Messages(ctx context.Context, room, after string, limit int) ([]chat.Message, error) {
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
	if after != "" {
		s, ok, err := d.seqOf(ctx, room, after)
		if err == nil && !ok {
			err = fmt.Errorf("%w: message %q", ErrNotFound, after)
		}
		if err != nil {
			return nil, err
		}
		seq = s
	}
	out, err := d.bus.after(ctx, room, seq, limit)
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

// Personas returns every persona of this daemon, in configuration order.
func (d *Daemon) Personas() []PersonaInfo {
	out := make([]PersonaInfo, 0, len(d.members))
	for _, m := range d.members {
		out = append(out, d.info(m))
	}
	return out
}

// Persona returns one persona by name (case-insensitive).
func (d *Daemon) Persona(name string) (PersonaInfo, bool) {
	m, ok := d.byName[strings.ToLower(name)]
	if !ok {
		return PersonaInfo{}, false
	}
	return d.info(m), true
}

func (d *Daemon) info(m *member) PersonaInfo {
	pi := PersonaInfo{
		Name:        m.spec.Name,
		Display:     m.spec.display(),
		Expertise:   slices.Clone(m.spec.Expertise),
		Model:       d.modelName(m.spec),
		Snapshot:    m.p.Snapshot(),
		LastThought: m.r.thought(),
	}
	if pi.Expertise == nil {
		pi.Expertise = []string{}
	}
	if m.cons != nil && d.state.Load() == 1 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ci, err := m.cons.Info(ctx)
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
