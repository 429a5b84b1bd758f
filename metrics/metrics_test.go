package metrics

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	persona "github.com/personaos/persona"
)

// newTest returns metrics on a fresh registry with two wait buckets, so
// expected expositions stay short.
func newTest(t testing.TB) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg, Options{WaitBuckets: []float64{1, 10}, HandleBuckets: []float64{1}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, reg
}

func compare(t *testing.T, reg prometheus.Gatherer, want string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func ev(k persona.EventKind, prio float64, wait, took time.Duration) persona.Event {
	return persona.Event{Kind: k, Persona: "ada", Priority: prio, Wait: wait, Took: took}
}

const s = time.Second

func TestObserveWaitLandsInClassBuckets(t *testing.T) {
	m, reg := newTest(t)
	for _, e := range []persona.Event{
		ev(persona.EventHandled, 0.9, 500*time.Millisecond, s),                                 // urgent, le=1
		ev(persona.EventHandled, 0.8, 2*s, s),                                                  // urgent at the line, le=10
		ev(persona.EventHandled, 0.5, 12*s, s),                                                 // normal, +Inf
		ev(persona.EventHandled, 0.3, 0, s),                                                    // normal at the line, zero wait still counts
		ev(persona.EventFailed, 0.1, 3*s, s),                                                   // low, le=10
		{Kind: persona.EventHandled, Persona: "ada", Priority: 0.2, Urgent: true, Wait: 4 * s}, // flag wins: urgent
		ev(persona.EventDeclined, 0.5, 5*s, s),                                                 // handler declined after waiting: normal
		ev(persona.EventDeclined, 0.9, 0, 0),                                                   // retired by time-to-live: no wait
		ev(persona.EventExpired, 0.9, 30*s, 0),                                                 // never started: no wait
		ev(persona.EventDelivered, 0.9, 0, 0),
		ev(persona.EventDeferred, 0.1, 0, 0),
	} {
		m.Observe(e)
	}
	compare(t, reg, `
# HELP persona_wait_seconds Time from delivery to the start of handling, by priority class (handled, failed, and handler-declined items).
# TYPE persona_wait_seconds histogram
persona_wait_seconds_bucket{class="low",le="1"} 0
persona_wait_seconds_bucket{class="low",le="10"} 1
persona_wait_seconds_bucket{class="low",le="+Inf"} 1
persona_wait_seconds_sum{class="low"} 3
persona_wait_seconds_count{class="low"} 1
persona_wait_seconds_bucket{class="normal",le="1"} 1
persona_wait_seconds_bucket{class="normal",le="10"} 2
persona_wait_seconds_bucket{class="normal",le="+Inf"} 3
persona_wait_seconds_sum{class="normal"} 17
persona_wait_seconds_count{class="normal"} 3
persona_wait_seconds_bucket{class="urgent",le="1"} 1
persona_wait_seconds_bucket{class="urgent",le="10"} 3
persona_wait_seconds_bucket{class="urgent",le="+Inf"} 3
persona_wait_seconds_sum{class="urgent"} 6.5
persona_wait_seconds_count{class="urgent"} 3
`, "persona_wait_seconds")
	compare(t, reg, `
# HELP persona_items_total Items by persona and account: delivered, deferred (moves to the deferred store), and the final accounts handled, declined, expired, failed.
# TYPE persona_items_total counter
persona_items_total{account="declined",persona="ada"} 2
persona_items_total{account="deferred",persona="ada"} 1
persona_items_total{account="delivered",persona="ada"} 1
persona_items_total{account="expired",persona="ada"} 1
persona_items_total{account="failed",persona="ada"} 1
persona_items_total{account="handled",persona="ada"} 5
`, "persona_items_total")
}

func TestObserveSLAViolations(t *testing.T) {
	urgentFlag := persona.Event{Kind: persona.EventHandled, Persona: "ada", Priority: 0.1, Urgent: true, Wait: 11 * s}
	for _, tc := range []struct {
		name string
		e    persona.Event
		want float64
	}{
		{"urgent handled over SLA counts", ev(persona.EventHandled, 0.9, 11*s, s), 1},
		{"urgent handled at SLA does not count", ev(persona.EventHandled, 0.9, 10*s, s), 0},
		{"urgent flag over SLA counts", urgentFlag, 1},
		{"normal over SLA does not count", ev(persona.EventHandled, 0.79, time.Minute, s), 0},
		{"urgent failed over SLA counts", ev(persona.EventFailed, 0.9, 11*s, s), 1},
		{"urgent handler-declined over SLA counts", ev(persona.EventDeclined, 0.9, 11*s, s), 1},
		{"urgent expired after waiting over SLA counts", ev(persona.EventExpired, 0.9, 11*s, 0), 1},
		{"urgent retired by time-to-live does not count", ev(persona.EventDeclined, 0.9, 0, 0), 0},
		{"delivery does not count", ev(persona.EventDelivered, 0.9, 11*s, 0), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTest(t)
			m.Observe(tc.e)
			if got := testutil.ToFloat64(m.slaVec.WithLabelValues("ada")); got != tc.want {
				t.Errorf("sla_violations_total = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestObserveSLAIsConfigurable(t *testing.T) {
	m, err := New(prometheus.NewRegistry(), Options{SLA: 2 * s, Urgent: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(ev(persona.EventHandled, 0.6, 3*s, s))
	if got := testutil.ToFloat64(m.slaVec.WithLabelValues("ada")); got != 1 {
		t.Errorf("violations = %v, want 1 with SLA 2s and urgent line 0.5", got)
	}
}

func TestObserveHandleTimeAndFaults(t *testing.T) {
	m, reg := newTest(t)
	for _, e := range []persona.Event{
		ev(persona.EventHandled, 0.5, s, 500*time.Millisecond), // le=1
		ev(persona.EventHandled, 0.5, s, 0),                    // merged context: not a call
		ev(persona.EventDeclined, 0.5, s, 2*s),                 // handler declined: +Inf
		ev(persona.EventError, 0.5, 0, 3*s),                    // one failed call
		ev(persona.EventPanic, 0.5, 0, 100*time.Millisecond),   // one panicked call
		ev(persona.EventFailed, 0.5, s, 100*time.Millisecond),  // repeats the panic's Took: not counted again
	} {
		m.Observe(e)
	}
	compare(t, reg, `
# HELP persona_handle_seconds Time one handler call took, by persona.
# TYPE persona_handle_seconds histogram
persona_handle_seconds_bucket{persona="ada",le="1"} 2
persona_handle_seconds_bucket{persona="ada",le="+Inf"} 4
persona_handle_seconds_sum{persona="ada"} 5.6
persona_handle_seconds_count{persona="ada"} 4
# HELP persona_handler_errors_total Handler calls that returned an error (the item may be retried).
# TYPE persona_handler_errors_total counter
persona_handler_errors_total{persona="ada"} 1
# HELP persona_handler_panics_total Handler calls that panicked (recovered).
# TYPE persona_handler_panics_total counter
persona_handler_panics_total{persona="ada"} 1
`, "persona_handle_seconds", "persona_handler_errors_total", "persona_handler_panics_total")
}

func TestObserveWakeupsByTrigger(t *testing.T) {
	m, reg := newTest(t)
	for _, tr := range []persona.Trigger{persona.TriggerDemand, persona.TriggerScan, persona.TriggerScan, persona.Trigger(7)} {
		m.Observe(persona.Event{Kind: persona.EventWake, Persona: "bo", Trigger: tr})
	}
	m.Observe(persona.Event{Kind: persona.EventWake, Persona: "cy", Trigger: persona.TriggerDependency})
	compare(t, reg, `
# HELP persona_wakeups_total Times a persona woke, by trigger: demand, dependency, scan.
# TYPE persona_wakeups_total counter
persona_wakeups_total{persona="bo",trigger="demand"} 1
persona_wakeups_total{persona="bo",trigger="dependency"} 0
persona_wakeups_total{persona="bo",trigger="scan"} 2
persona_wakeups_total{persona="bo",trigger="unknown"} 1
persona_wakeups_total{persona="cy",trigger="demand"} 0
persona_wakeups_total{persona="cy",trigger="dependency"} 1
persona_wakeups_total{persona="cy",trigger="scan"} 0
`, "persona_wakeups_total")
}

func TestObserveDoesNotAllocate(t *testing.T) {
	m, _ := newTest(t)
	events := []persona.Event{
		ev(persona.EventDelivered, 0.9, 0, 0),
		ev(persona.EventDeferred, 0.1, 0, 0),
		ev(persona.EventHandled, 0.9, 11*s, s),
		ev(persona.EventDeclined, 0.5, 2*s, s),
		ev(persona.EventExpired, 0.9, 20*s, 0),
		ev(persona.EventFailed, 0.1, s, s),
		ev(persona.EventError, 0.1, 0, s),
		ev(persona.EventPanic, 0.1, 0, s),
		{Kind: persona.EventWake, Persona: "ada", Trigger: persona.TriggerScan},
		{Kind: persona.EventRest, Persona: "ada", Cadence: 3 * s},
	}
	m.Observe(events[0]) // the first event of a persona caches its children
	for _, e := range events {
		t.Run(e.Kind.String()+" does not allocate", func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { m.Observe(e) }); n != 0 {
				t.Errorf("Observe(%v) allocates %v times per call", e.Kind, n)
			}
		})
	}
}

func TestObserveConcurrentPersonas(t *testing.T) {
	// Many goroutines meeting new personas at once: the copy-on-write map
	// must keep every persona's children and lose no increment.
	m, reg := newTest(t)
	const workers, personas, per = 8, 20, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				name := fmt.Sprintf("p%d", (w+i)%personas)
				m.Observe(persona.Event{Kind: persona.EventDelivered, Persona: name})
			}
		})
	}
	wg.Go(func() { // a scrape racing the inserts
		if _, err := reg.Gather(); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	var total float64
	for i := range personas {
		total += testutil.ToFloat64(m.itemsVec.WithLabelValues(fmt.Sprintf("p%d", i), "delivered"))
	}
	if total != workers*per {
		t.Errorf("delivered total = %v, want %v", total, workers*per)
	}
	if got := len(*m.personas.Load()); got != personas {
		t.Errorf("cached personas = %d, want %d", got, personas)
	}
}

func TestChatCounters(t *testing.T) {
	m, reg := newTest(t)
	m.Message()
	m.Message()
	m.Evaluation("ada")
	m.Evaluation("ada")
	m.Evaluation("bo")
	m.Response("ada", "lobby")
	m.ModelCall("ada", "ok", 2*s)
	m.ModelCall("ada", "rate_limited", 0)
	m.Thought("ada")
	m.Decision(1)
	m.Decision(3)
	for _, tc := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"messages", m.messages, 2},
		{"evaluations of ada", m.evaluations.WithLabelValues("ada"), 2},
		{"evaluations of bo", m.evaluations.WithLabelValues("bo"), 1},
		{"responses of ada in lobby", m.responses.WithLabelValues("ada", "lobby"), 1},
		{"ok model calls", m.modelCalls.WithLabelValues("ada", "ok"), 1},
		{"rate-limited model calls", m.modelCalls.WithLabelValues("ada", "rate_limited"), 1},
		{"thoughts", m.thoughts.WithLabelValues("ada"), 1},
		{"decisions", m.decisions, 2},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	compare(t, reg, `
# HELP persona_coord_granted Responders granted per coordination decision.
# TYPE persona_coord_granted histogram
persona_coord_granted_bucket{le="0"} 0
persona_coord_granted_bucket{le="1"} 1
persona_coord_granted_bucket{le="2"} 1
persona_coord_granted_bucket{le="3"} 2
persona_coord_granted_bucket{le="5"} 2
persona_coord_granted_bucket{le="8"} 2
persona_coord_granted_bucket{le="+Inf"} 2
persona_coord_granted_sum 4
persona_coord_granted_count 2
`, "persona_coord_granted")
}

func TestRegistration(t *testing.T) {
	t.Run("New twice on one registry errors", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		if _, err := New(reg, Options{}); err != nil {
			t.Fatal(err)
		}
		_, err := New(reg, Options{})
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) || !strings.HasPrefix(err.Error(), "metrics: new: ") {
			t.Fatalf("second New: %v, want a wrapped AlreadyRegisteredError", err)
		}
	})
	t.Run("a different namespace shares a registry", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		if _, err := New(reg, Options{}); err != nil {
			t.Fatal(err)
		}
		if _, err := New(reg, Options{Namespace: "sim"}); err != nil {
			t.Fatalf("New with namespace sim: %v", err)
		}
	})
	t.Run("failed New leaves the registry as it was", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		// Occupy the last name New registers, so it fails after
		// registering all the others. The blocker matches New's help text:
		// a registry remembers a name's help and labels even after
		// Unregister.
		blocker := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "persona_coord_granted",
			Help: "Responders granted per coordination decision."})
		reg.MustRegister(blocker)
		if _, err := New(reg, Options{}); err == nil {
			t.Fatal("New succeeded over a conflicting collector")
		}
		reg.Unregister(blocker)
		if _, err := New(reg, Options{}); err != nil {
			t.Fatalf("New after the conflict is gone: %v (collectors of the failed New were left behind)", err)
		}
	})
	t.Run("nil registerer errors", func(t *testing.T) {
		if _, err := New(nil, Options{}); err == nil {
			t.Fatal("New(nil) succeeded")
		}
	})
	t.Run("watching twice errors", func(t *testing.T) {
		m, _ := newTest(t)
		src := func() []persona.Snapshot { return nil }
		if err := m.WatchRuntime(src); err != nil {
			t.Fatal(err)
		}
		var are prometheus.AlreadyRegisteredError
		if err := m.WatchRuntime(src); !errors.As(err, &are) {
			t.Errorf("second WatchRuntime: %v, want AlreadyRegisteredError", err)
		}
		g := &fakeGovernor{}
		if err := m.WatchGovernor(g); err != nil {
			t.Fatal(err)
		}
		if err := m.WatchGovernor(g); !errors.As(err, &are) {
			t.Errorf("second WatchGovernor: %v, want AlreadyRegisteredError", err)
		}
	})
	t.Run("nil sources error", func(t *testing.T) {
		m, _ := newTest(t)
		if err := m.WatchRuntime(nil); err == nil {
			t.Error("WatchRuntime(nil) succeeded")
		}
		if err := m.WatchGovernor(nil); err == nil {
			t.Error("WatchGovernor(nil) succeeded")
		}
	})
}

func TestExpositionPassesLint(t *testing.T) {
	m, reg := newTest(t)
	m.Observe(ev(persona.EventHandled, 0.9, s, s))
	m.Observe(persona.Event{Kind: persona.EventWake, Persona: "ada"})
	m.Message()
	m.Evaluation("ada")
	m.Response("ada", "lobby")
	m.ModelCall("ada", "ok", s)
	m.Thought("ada")
	m.Decision(1)
	if err := m.WatchRuntime(func() []persona.Snapshot { return []persona.Snapshot{{Name: "ada"}} }); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchGovernor(&fakeGovernor{}); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func BenchmarkObserve(b *testing.B) {
	m, _ := newTest(b)
	e := persona.Event{Kind: persona.EventHandled, Persona: "ada", Priority: 0.9, Wait: 2 * s, Took: s}
	m.Observe(e)
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(e)
	}
}

func BenchmarkObserveParallel(b *testing.B) {
	m, _ := newTest(b)
	names := []string{"ada", "bo", "cy", "di"}
	for _, n := range names {
		m.Observe(persona.Event{Kind: persona.EventDelivered, Persona: n})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Observe(persona.Event{Kind: persona.EventHandled, Persona: names[i%len(names)], Priority: 0.5, Wait: s, Took: s})
			i++
		}
	})
}
