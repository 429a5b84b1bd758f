package metrics

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	persona "github.com/personaos/persona"
)

// Options configures Metrics. The zero value is valid: every zero field
// takes the default documented on it.
type Options struct {
	// Namespace prefixes every metric name (default "persona").
	Namespace string
	// SLA is the longest an urgent item may wait from delivery to the start
	// of handling before it counts as a violation (seed: "High priority
	// messages processed within SLA (e.g., 10 seconds)"; default 10s).
	SLA time.Duration
	// Urgent and Normal are the priority-class lines: priority >= Urgent is
	// "urgent" (seed: 0.8), >= Normal is "normal" (default 0.3, the active
	// persona's engagement threshold in the seed), below it "low". An event
	// whose Urgent flag is set is urgent whatever its priority, because the
	// runtime's own urgent line is the one that decided how it was treated.
	Urgent, Normal float64
	// WaitBuckets are the wait-time histogram buckets in seconds. The
	// default spans 10 ms to 5 min with 10 s (the SLA) and 60 s (the seed's
	// p95 latency target) as bucket edges, so both are read exactly.
	WaitBuckets []float64
	// HandleBuckets are the handling-time and model-call histogram buckets
	// in seconds (default 1 ms to 2 min: handlers range from in-memory work
	// to slow model calls).
	HandleBuckets []float64
	// DutyWindow is the shortest wall-clock window over which duty cycles
	// are recomputed at scrape time (default 5s). Scrapes closer together
	// than that report the last computed value, so several scrapers (a
	// Prometheus server and the dashboard) do not shrink each other's
	// windows to noise.
	DutyWindow time.Duration
	// Cores is what the system duty cycle is a fraction of (default
	// runtime.GOMAXPROCS(0)), as for the governor's duty input.
	Cores int
	// Now is the clock for duty-cycle windows (default time.Now). The
	// simulator passes its virtual clock.
	Now func() time.Time
}

// Default wait and handle buckets, in seconds.
var (
	defaultWaitBuckets   = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}
	defaultHandleBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
	// Responders granted per coordination decision: the default K is 1 and
	// mentions add a few.
	grantedBuckets = []float64{0, 1, 2, 3, 5, 8}
)

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = "persona"
	}
	if o.SLA <= 0 {
		o.SLA = 10 * time.Second
	}
	if o.Urgent == 0 {
		o.Urgent = 0.8
	}
	if o.Normal == 0 {
		o.Normal = 0.3
	}
	if len(o.WaitBuckets) == 0 {
		o.WaitBuckets = defaultWaitBuckets
	}
	if len(o.HandleBuckets) == 0 {
		o.HandleBuckets = defaultHandleBuckets
	}
	if o.DutyWindow <= 0 {
		o.DutyWindow = 5 * time.Second
	}
	if o.Cores <= 0 {
		o.Cores = runtime.GOMAXPROCS(0)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Priority classes, the values of the "class" label.
const (
	classUrgent = iota
	classNormal
	classLow
	numClasses
)

var classNames = [numClasses]string{"urgent", "normal", "low"}

// Accounts, the values of the "account" label of items_total. "deferred"
// counts moves to the deferred store (an item may be deferred, readmitted
// and handled); the others are final accounts.
const (
	accDelivered = iota
	accDeferred
	accHandled
	accDeclined
	accExpired
	accFailed
	numAccounts
)

var accountNames = [numAccounts]string{"delivered", "deferred", "handled", "declined", "expired", "failed"}

// Wake-up triggers, the values of the "trigger" label, indexed by
// persona.Trigger.
var triggers = [...]persona.Trigger{persona.TriggerDemand, persona.TriggerDependency, persona.TriggerScan}

// Metrics holds the Prometheus collectors of one system: the persona
// runtime's events (it is a persona.Observer), gauges read from snapshots
// at scrape time (WatchRuntime, WatchGovernor), and chat-level counters the
// daemon increments. Create it with New; the zero value is not usable.
// Every method is safe for concurrent use. Most callers want New, pass the
// Metrics as the runtime's Observer, then call WatchRuntime.
type Metrics struct {
	opts Options
	reg  prometheus.Registerer

	wait      [numClasses]prometheus.Observer
	waitVec   *prometheus.HistogramVec
	handleVec *prometheus.HistogramVec
	itemsVec  *prometheus.CounterVec
	errorsVec *prometheus.CounterVec
	panicsVec *prometheus.CounterVec
	slaVec    *prometheus.CounterVec
	wakesVec  *prometheus.CounterVec

	messages    prometheus.Counter
	evaluations *prometheus.CounterVec
	responses   *prometheus.CounterVec
	modelCalls  *prometheus.CounterVec
	modelTime   *prometheus.HistogramVec
	thoughts    *prometheus.CounterVec
	decisions   prometheus.Counter
	granted     prometheus.Histogram

	// personas maps a persona name to its cached label children. It is
	// copied on write: Observe reads it with one atomic load and a map
	// lookup, no lock and no allocation; addMu serialises the rare insert
	// of a persona seen for the first time.
	personas atomic.Pointer[map[string]*personaSet]
	addMu    sync.Mutex
}

// personaSet holds one persona's label children, resolved once, because
// WithLabelValues hashes and locks on every call.
type personaSet struct {
	items  [numAccounts]prometheus.Counter
	errors prometheus.Counter
	panics prometheus.Counter
	sla    prometheus.Counter
	wakes  [len(triggers)]prometheus.Counter
	handle prometheus.Observer
}

var _ persona.Observer = (*Metrics)(nil)

// New creates the metrics and registers the event and chat collectors on
// reg. Registration is all or nothing: if one collector is refused (most
// often because New was already called on reg, which yields a wrapped
// prometheus.AlreadyRegisteredError), those already registered are
// unregistered again and the error is returned.
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: new: nil Registerer")
	}
	o := opts.withDefaults()
	ns := o.Namespace
	m := &Metrics{opts: o, reg: reg}
	m.waitVec = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Name: "wait_seconds",
		Help:    "Time from delivery to the start of handling, by priority class (handled, failed, and handler-declined items).",
		Buckets: o.WaitBuckets,
	}, []string{"class"})
	m.handleVec = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Name: "handle_seconds",
		Help:    "Time one handler call took, by persona.",
		Buckets: o.HandleBuckets,
	}, []string{"persona"})
	m.itemsVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "items_total",
		Help: "Items by persona and account: delivered, deferred (moves to the deferred store), and the final accounts handled, declined, expired, failed.",
	}, []string{"persona", "account"})
	m.errorsVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "handler_errors_total",
		Help: "Handler calls that returned an error (the item may be retried).",
	}, []string{"persona"})
	m.panicsVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "handler_panics_total",
		Help: "Handler calls that panicked (recovered).",
	}, []string{"persona"})
	m.slaVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "sla_violations_total",
		Help: "Urgent items that waited longer than the SLA from delivery (starvation count).",
	}, []string{"persona"})
	m.wakesVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "wakeups_total",
		Help: "Times a persona woke, by trigger: demand, dependency, scan.",
	}, []string{"persona", "trigger"})

	m.messages = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Subsystem: "chat", Name: "messages_total",
		Help: "Chat messages posted; evaluations_total and responses_total over it are the per-message rates.",
	})
	m.evaluations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: "chat", Name: "evaluations_total",
		Help: "Chat messages a persona evaluated (decided whether to answer).",
	}, []string{"persona"})
	m.responses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: "chat", Name: "responses_total",
		Help: "Chat responses a persona posted, by room.",
	}, []string{"persona", "room"})
	m.modelCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: "model", Name: "calls_total",
		Help: "Language-model calls by persona and outcome (ok, error, rate_limited).",
	}, []string{"persona", "outcome"})
	m.modelTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: "model", Name: "call_seconds",
		Help:    "Language-model call duration by outcome.",
		Buckets: o.HandleBuckets,
	}, []string{"outcome"})
	m.thoughts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: "coord", Name: "thoughts_total",
		Help: "Thoughts a persona broadcast on the coordination stream.",
	}, []string{"persona"})
	m.decisions = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Subsystem: "coord", Name: "decisions_total",
		Help: "Coordination decisions closed.",
	})
	m.granted = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: "coord", Name: "granted",
		Help:    "Responders granted per coordination decision.",
		Buckets: grantedBuckets,
	})

	if err := registerAll(reg, m.waitVec, m.handleVec, m.itemsVec, m.errorsVec, m.panicsVec, m.slaVec, m.wakesVec,
		m.messages, m.evaluations, m.responses, m.modelCalls, m.modelTime, m.thoughts, m.decisions, m.granted); err != nil {
		return nil, fmt.Errorf("metrics: new: %w", err)
	}
	for c := range m.wait {
		m.wait[c] = m.waitVec.WithLabelValues(classNames[c])
	}
	empty := map[string]*personaSet{}
	m.personas.Store(&empty)
	return m, nil
}

// registerAll registers cs in order, or none of them.
func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}

// set returns name's cached label children, creating them the first time.
func (m *Metrics) set(name string) *personaSet {
	if s, ok := (*m.personas.Load())[name]; ok {
		return s
	}
	m.addMu.Lock()
	defer m.addMu.Unlock()
	old := *m.personas.Load()
	if s, ok := old[name]; ok {
		return s
	}
	s := &personaSet{
		errors: m.errorsVec.WithLabelValues(name),
		panics: m.panicsVec.WithLabelValues(name),
		sla:    m.slaVec.WithLabelValues(name),
		handle: m.handleVec.WithLabelValues(name),
	}
	for a := range s.items {
		s.items[a] = m.itemsVec.WithLabelValues(name, accountNames[a])
	}
	for i, t := range triggers {
		s.wakes[i] = m.wakesVec.WithLabelValues(name, t.String())
	}
	next := make(map[string]*personaSet, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = s
	m.personas.Store(&next)
	return s
}

// class returns e's priority class.
func (m *Metrics) class(e persona.Event) int {
	switch {
	case e.Urgent || e.Priority >= m.opts.Urgent:
		return classUrgent
	case e.Priority >= m.opts.Normal:
		return classNormal
	default:
		return classLow
	}
}

// Observe records one runtime event. It takes no lock and does not
// allocate once the event's persona has been seen (the first event of a
// persona resolves its label children).
//
// What each kind records:
//   - delivered, deferred: items_total.
//   - handled, failed: items_total; wait_seconds by class; an SLA
//     violation when urgent and Wait > SLA. handle_seconds for handled only
//     (a failed event repeats the Took of the error event before it).
//   - declined: items_total; wait, SLA and handle time only when Wait > 0,
//     because a zero Wait marks an item retired by its time-to-live that
//     never started.
//   - expired: items_total; an SLA violation when urgent and Wait > SLA (an
//     urgent item that expired waiting was starved).
//   - error, panic: handler_errors_total or handler_panics_total and
//     handle_seconds.
//   - wake: wakeups_total by trigger.
//
// handle_seconds records only Took > 0: an item merged into another as
// context is reported handled with Took 0, and was not handled on its own.
func (m *Metrics) Observe(e persona.Event) {
	s := m.set(e.Persona)
	switch e.Kind {
	case persona.EventDelivered:
		s.items[accDelivered].Inc()
	case persona.EventDeferred:
		s.items[accDeferred].Inc()
	case persona.EventHandled:
		s.items[accHandled].Inc()
		m.waited(s, e)
		s.took(e.Took)
	case persona.EventDeclined:
		s.items[accDeclined].Inc()
		if e.Wait > 0 {
			m.waited(s, e)
			s.took(e.Took)
		}
	case persona.EventFailed:
		s.items[accFailed].Inc()
		m.waited(s, e)
	case persona.EventExpired:
		s.items[accExpired].Inc()
		m.overSLA(s, e)
	case persona.EventError:
		s.errors.Inc()
		s.took(e.Took)
	case persona.EventPanic:
		s.panics.Inc()
		s.took(e.Took)
	case persona.EventWake:
		if e.Trigger >= 0 && int(e.Trigger) < len(s.wakes) {
			s.wakes[e.Trigger].Inc()
		} else {
			m.wakesVec.WithLabelValues(e.Persona, e.Trigger.String()).Inc()
		}
	}
}

func (m *Metrics) waited(s *personaSet, e persona.Event) {
	m.wait[m.class(e)].Observe(e.Wait.Seconds())
	m.overSLA(s, e)
}

func (m *Metrics) overSLA(s *personaSet, e persona.Event) {
	if e.Wait > m.opts.SLA && m.class(e) == classUrgent {
		s.sla.Inc()
	}
}

func (s *personaSet) took(d time.Duration) {
	if d > 0 {
		s.handle.Observe(d.Seconds())
	}
}

// Message counts one chat message posted, whoever evaluates it.
func (m *Metrics) Message() { m.messages.Inc() }

// Evaluation counts one chat message that persona evaluated.
func (m *Metrics) Evaluation(persona string) { m.evaluations.WithLabelValues(persona).Inc() }

// Response counts one response persona posted in room.
func (m *Metrics) Response(persona, room string) { m.responses.WithLabelValues(persona, room).Inc() }

// ModelCall records one language-model call by persona that took d and
// ended in outcome; the llm package's outcomes are "ok", "error" and
// "rate_limited". Outcome is a label: keep its values few.
func (m *Metrics) ModelCall(persona, outcome string, d time.Duration) {
	m.modelCalls.WithLabelValues(persona, outcome).Inc()
	m.modelTime.WithLabelValues(outcome).Observe(d.Seconds())
}

// Thought counts one thought persona broadcast on the coordination stream.
func (m *Metrics) Thought(persona string) { m.thoughts.WithLabelValues(persona).Inc() }

// Decision records one closed coordination decision that granted granted
// responders.
func (m *Metrics) Decision(granted int) {
	m.decisions.Inc()
	m.granted.Observe(float64(granted))
}
