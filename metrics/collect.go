package metrics

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	persona "github.com/personaos/persona"
	"github.com/personaos/persona/govern"
	"github.com/personaos/persona/state"
)

// moods are the values of the "mood" label, one series each per persona.
var moods = [...]state.Mood{state.Idle, state.Active, state.Tired, state.Overwhelmed}

// thermals are the values of the "state" label of thermal_state.
var thermals = [...]govern.Thermal{govern.Nominal, govern.Fair, govern.Serious, govern.Critical}

// WatchRuntime registers a collector that calls snapshots at every scrape
// (typically Runtime.Snapshots) and exports each persona's state as gauges,
// its busy time and slices as counters, duty cycles, and Jain's fairness
// index across personas. It returns a wrapped
// prometheus.AlreadyRegisteredError if a runtime is already watched on the
// same registry.
//
// Duty cycles are busy-time deltas over wall-clock deltas (Options.Now)
// between two collections at least Options.DutyWindow apart; collections in
// between repeat the last value, and a persona first seen reports no duty
// cycle until one window has passed. A persona's busy time grows when a
// handler call ends, so a window that ends a long call is clamped to 1.
func (m *Metrics) WatchRuntime(snapshots func() []persona.Snapshot) error {
	if snapshots == nil {
		return errors.New("metrics: watch runtime: nil snapshot source")
	}
	c := newRuntimeCollector(m.opts, snapshots)
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("metrics: watch runtime: %w", err)
	}
	return nil
}

type runtimeCollector struct {
	src    func() []persona.Snapshot
	now    func() time.Time
	window time.Duration
	cores  int

	energy, attention, mood, load, budget     *prometheus.Desc
	inbox, deferred, inFlight, cadence, awake *prometheus.Desc
	busy, slices, duty, systemDuty, jain      *prometheus.Desc
	members                                   *prometheus.Desc

	// mu guards the duty-cycle window: Collect may run concurrently when
	// two scrapes overlap.
	mu     sync.Mutex
	start  time.Time                // start of the current window; zero before the first collection
	ref    map[string]time.Duration // busy time of each persona at start
	last   map[string]float64       // duty cycles of the last closed window
	sys    float64                  // system duty cycle of the last closed window
	sysSet bool
}

func newRuntimeCollector(o Options, src func() []persona.Snapshot) *runtimeCollector {
	ns := o.Namespace
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, labels, nil)
	}
	p := "persona"
	return &runtimeCollector{
		src: src, now: o.Now, window: o.DutyWindow, cores: o.Cores,
		energy:     d("energy", "Persona energy, 0..1: falls with work, recovers with rest.", p),
		attention:  d("attention", "Persona attention, 0..1: fatigues when energy is low.", p),
		mood:       d("mood", "1 for the persona's current mood, 0 for the others.", p, "mood"),
		load:       d("load", "Inbox depth over inbox capacity, 0..1.", p),
		budget:     d("budget", "Compute budget as the persona sees it, 0..1 (1 = plenty).", p),
		inbox:      d("inbox_depth", "Items waiting in the inbox.", p),
		deferred:   d("deferred_depth", "Items in the deferred store.", p),
		inFlight:   d("in_flight", "Items taken from the inbox and not yet finished.", p),
		cadence:    d("cadence_seconds", "Current scan cadence (rest between scans).", p),
		awake:      d("awake", "1 while the persona's loop is running, 0 while it rests or idles.", p),
		busy:       d("busy_seconds_total", "Total handler time.", p),
		slices:     d("slices_total", "Time slices worked.", p),
		duty:       d("duty_cycle", "Handler time over wall time in the last duty window, 0..1.", p),
		systemDuty: d("system_duty_cycle", "Handler time of all personas over cores times wall time in the last duty window."),
		jain:       d("fairness_jain", "Jain's fairness index across personas of cumulative time slices (over=slices) or busy time (over=busy): 1 is equal shares, 1/n is one persona taking all.", "over"),
		members:    d("members", "Personas in the runtime."),
	}
}

// Describe sends the fixed descriptors: the label values vary, the names do
// not, so the collector is checked by the registry.
func (c *runtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.energy, c.attention, c.mood, c.load, c.budget, c.inbox, c.deferred,
		c.inFlight, c.cadence, c.awake, c.busy, c.slices, c.duty, c.systemDuty, c.jain, c.members} {
		ch <- d
	}
}

// Collect reads the snapshots once and emits every series from them.
func (c *runtimeCollector) Collect(ch chan<- prometheus.Metric) {
	snaps := c.src()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	slices := make([]float64, len(snaps))
	busy := make([]float64, len(snaps))
	for i, s := range snaps {
		n := s.Name
		gauge(c.energy, s.Energy, n)
		gauge(c.attention, s.Attention, n)
		for _, md := range moods {
			gauge(c.mood, b2f(s.Mood == md), n, md.String())
		}
		gauge(c.load, s.Load, n)
		gauge(c.budget, s.Budget, n)
		gauge(c.inbox, float64(s.Counts.Queued), n)
		gauge(c.deferred, float64(s.Counts.Deferred), n)
		gauge(c.inFlight, float64(s.Counts.InFlight), n)
		gauge(c.cadence, s.Cadence.Seconds(), n)
		gauge(c.awake, b2f(s.Awake), n)
		ch <- prometheus.MustNewConstMetric(c.busy, prometheus.CounterValue, s.Busy.Seconds(), n)
		ch <- prometheus.MustNewConstMetric(c.slices, prometheus.CounterValue, float64(s.Slices), n)
		slices[i] = float64(s.Slices)
		busy[i] = s.Busy.Seconds()
	}
	gauge(c.members, float64(len(snaps)))
	gauge(c.jain, Jain(slices), "slices")
	gauge(c.jain, Jain(busy), "busy")

	duty, sys, sysOK := c.duties(snaps)
	for _, s := range snaps {
		if v, ok := duty[s.Name]; ok {
			gauge(c.duty, v, s.Name)
		}
	}
	if sysOK {
		gauge(c.systemDuty, sys)
	}
}

// duties advances the duty window if it has lasted long enough and returns
// the duty cycles of the last closed window, for the personas that still
// exist.
func (c *runtimeCollector) duties(snaps []persona.Snapshot) (map[string]float64, float64, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.start.IsZero() {
		c.reset(now, snaps)
		return nil, 0, false
	}
	wall := now.Sub(c.start)
	if wall < c.window {
		return c.last, c.sys, c.sysSet
	}
	last := make(map[string]float64, len(snaps))
	var total time.Duration
	for _, s := range snaps {
		b0, ok := c.ref[s.Name]
		if !ok || s.Busy < b0 {
			// New in this window, or a new persona under an old name: no
			// baseline yet.
			continue
		}
		d := min(s.Busy-b0, wall)
		total += d
		last[s.Name] = float64(d) / float64(wall)
	}
	c.last = last
	c.sys = float64(total) / (float64(wall) * float64(c.cores))
	c.sysSet = true
	c.reset(now, snaps)
	return c.last, c.sys, c.sysSet
}

func (c *runtimeCollector) reset(now time.Time, snaps []persona.Snapshot) {
	c.start = now
	c.ref = make(map[string]time.Duration, len(snaps))
	for _, s := range snaps {
		c.ref[s.Name] = s.Busy
	}
}

// GovernorSource is what WatchGovernor reads at every scrape.
// *govern.Governor implements it.
type GovernorSource interface {
	State() govern.Thermal
	Last() (govern.Inputs, float64)
}

// WatchGovernor registers a collector that reads g at every scrape and
// exports its thermal state (one-hot by name and as a level), pressure and
// last inputs. It returns a wrapped prometheus.AlreadyRegisteredError if a
// governor is already watched on the same registry.
func (m *Metrics) WatchGovernor(g GovernorSource) error {
	if g == nil {
		return errors.New("metrics: watch governor: nil governor")
	}
	ns := m.opts.Namespace
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, labels, nil)
	}
	c := &governorCollector{
		g:        g,
		state:    d("thermal_state", "1 for the governor's current thermal state, 0 for the others.", "state"),
		level:    d("thermal_level", "Thermal state as a number: 0 nominal, 1 fair, 2 serious, 3 critical."),
		pressure: d("governor_pressure", "The governor's pressure score; 1 means some input is at its limit."),
		load:     d("governor_load", "Total inbox depth over total capacity at the last governor sample."),
		inFlight: d("governor_in_flight", "Handlers running at the last governor sample."),
		duty:     d("governor_duty_cycle", "Handler time over cores times the window at the last governor sample."),
		cpu:      d("governor_cpu", "Process CPU time over cores times the window at the last governor sample."),
		spent:    d("governor_budget_spent", "Fraction of the model-call budget used up at the last governor sample."),
	}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("metrics: watch governor: %w", err)
	}
	return nil
}

type governorCollector struct {
	g                                                        GovernorSource
	state, level, pressure, load, inFlight, duty, cpu, spent *prometheus.Desc
}

func (c *governorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.level, c.pressure, c.load, c.inFlight, c.duty, c.cpu, c.spent} {
		ch <- d
	}
}

func (c *governorCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.g.State()
	in, p := c.g.Last()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, s := range thermals {
		gauge(c.state, b2f(t == s), s.String())
	}
	gauge(c.level, float64(t))
	gauge(c.pressure, p)
	gauge(c.load, in.Load)
	gauge(c.inFlight, float64(in.InFlight))
	gauge(c.duty, in.Duty)
	gauge(c.cpu, in.CPU)
	gauge(c.spent, in.BudgetSpent)
}

// Jain returns Jain's fairness index of xs, (Σx)² / (n·Σx²): 1 when every
// x is equal, 1/n when one x holds everything, in between otherwise. xs
// should be non-negative. It returns 1 for no values or all zeros: nobody
// has had a share yet, so nobody has had an unfair one.
func Jain(xs []float64) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum += x
		sq += x * x
	}
	if len(xs) == 0 || sq == 0 {
		return 1
	}
	return sum * sum / (float64(len(xs)) * sq)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
