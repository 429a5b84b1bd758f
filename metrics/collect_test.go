package metrics

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	persona "github.com/personaos/persona"
	"github.com/personaos/persona/govern"
	"github.com/personaos/persona/state"
)

// fakeClock is a settable clock for duty-cycle windows.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// watched returns metrics on a fresh registry watching *snaps, with two
// cores and a 10s duty window.
func watched(t *testing.T, snaps *[]persona.Snapshot) (*prometheus.Registry, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	m, err := New(reg, Options{Now: clk.now, Cores: 2, DutyWindow: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WatchRuntime(func() []persona.Snapshot { return *snaps }); err != nil {
		t.Fatal(err)
	}
	return reg, clk
}

func TestWatchRuntimeGaugesReflectSnapshots(t *testing.T) {
	snaps := []persona.Snapshot{
		{Name: "ada", Energy: 0.25, Attention: 0.5, Mood: state.Tired, Load: 0.1, Budget: 1, Cadence: 7 * time.Second,
			Awake: true, Counts: persona.Counts{Queued: 4, Deferred: 2, InFlight: 1}, Slices: 3, Busy: 1500 * time.Millisecond},
		{Name: "bo", Energy: 1, Attention: 1, Mood: state.Idle, Cadence: 3 * time.Second, Slices: 1},
	}
	reg, _ := watched(t, &snaps)
	compare(t, reg, `
# HELP persona_energy Persona energy, 0..1: falls with work, recovers with rest.
# TYPE persona_energy gauge
persona_energy{persona="ada"} 0.25
persona_energy{persona="bo"} 1
# HELP persona_mood 1 for the persona's current mood, 0 for the others.
# TYPE persona_mood gauge
persona_mood{mood="active",persona="ada"} 0
persona_mood{mood="active",persona="bo"} 0
persona_mood{mood="idle",persona="ada"} 0
persona_mood{mood="idle",persona="bo"} 1
persona_mood{mood="overwhelmed",persona="ada"} 0
persona_mood{mood="overwhelmed",persona="bo"} 0
persona_mood{mood="tired",persona="ada"} 1
persona_mood{mood="tired",persona="bo"} 0
# HELP persona_inbox_depth Items waiting in the inbox.
# TYPE persona_inbox_depth gauge
persona_inbox_depth{persona="ada"} 4
persona_inbox_depth{persona="bo"} 0
# HELP persona_deferred_depth Items in the deferred store.
# TYPE persona_deferred_depth gauge
persona_deferred_depth{persona="ada"} 2
persona_deferred_depth{persona="bo"} 0
# HELP persona_cadence_seconds Current scan cadence (rest between scans).
# TYPE persona_cadence_seconds gauge
persona_cadence_seconds{persona="ada"} 7
persona_cadence_seconds{persona="bo"} 3
# HELP persona_awake 1 while the persona's loop is running, 0 while it rests or idles.
# TYPE persona_awake gauge
persona_awake{persona="ada"} 1
persona_awake{persona="bo"} 0
# HELP persona_busy_seconds_total Total handler time.
# TYPE persona_busy_seconds_total counter
persona_busy_seconds_total{persona="ada"} 1.5
persona_busy_seconds_total{persona="bo"} 0
# HELP persona_fairness_jain Jain's fairness index across personas of cumulative time slices (over=slices) or busy time (over=busy): 1 is equal shares, 1/n is one persona taking all.
# TYPE persona_fairness_jain gauge
persona_fairness_jain{over="busy"} 0.5
persona_fairness_jain{over="slices"} 0.8
# HELP persona_members Personas in the runtime.
# TYPE persona_members gauge
persona_members 2
`, "persona_energy", "persona_mood", "persona_inbox_depth", "persona_deferred_depth", "persona_cadence_seconds",
		"persona_awake", "persona_busy_seconds_total", "persona_fairness_jain", "persona_members")

	// A later scrape sees the new state, and a persona that left is gone.
	snaps = snaps[:1]
	snaps[0].Energy = 0.75
	compare(t, reg, `
# HELP persona_energy Persona energy, 0..1: falls with work, recovers with rest.
# TYPE persona_energy gauge
persona_energy{persona="ada"} 0.75
`, "persona_energy")
}

// duty returns the scraped duty cycles by persona, and the system's (NaN
// when absent).
func duty(t *testing.T, reg prometheus.Gatherer) (map[string]float64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	per, sys := map[string]float64{}, math.NaN()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "persona_duty_cycle":
			for _, m := range mf.GetMetric() {
				per[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		case "persona_system_duty_cycle":
			sys = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return per, sys
}

func TestWatchRuntimeDutyCycle(t *testing.T) {
	snaps := []persona.Snapshot{{Name: "ada"}, {Name: "bo"}}
	reg, clk := watched(t, &snaps)
	step := func(name string, wantPer map[string]float64, wantSys float64) {
		t.Helper()
		per, sys := duty(t, reg)
		if fmt.Sprint(per) != fmt.Sprint(wantPer) {
			t.Errorf("%s: duty cycles %v, want %v", name, per, wantPer)
		}
		if !(sys == wantSys || math.IsNaN(sys) && math.IsNaN(wantSys)) {
			t.Errorf("%s: system duty %v, want %v", name, sys, wantSys)
		}
	}

	step("first scrape has no window yet", map[string]float64{}, math.NaN())

	clk.advance(10 * time.Second)
	snaps[0].Busy = 5 * time.Second
	// ada busy 5s of 10s; system 5s of 2 cores * 10s.
	step("a full window yields busy over wall", map[string]float64{"ada": 0.5, "bo": 0}, 0.25)

	clk.advance(time.Second)
	snaps[0].Busy = 6 * time.Second
	snaps = append(snaps, persona.Snapshot{Name: "cy"})
	step("a scrape inside the window repeats the last values", map[string]float64{"ada": 0.5, "bo": 0}, 0.25)

	clk.advance(9 * time.Second)
	snaps[0].Busy = 30 * time.Second // a long call ended inside the window
	snaps[1].Busy = 2 * time.Second
	snaps[2].Busy = 4 * time.Second
	// cy joined mid-window: no baseline, no duty cycle yet. ada is clamped
	// to the wall time: 10s + bo 2s over 2 cores * 10s.
	step("long calls are clamped and newcomers wait a window", map[string]float64{"ada": 1, "bo": 0.2}, 0.6)

	clk.advance(10 * time.Second)
	snaps = snaps[1:] // ada left
	snaps[0].Busy = 2 * time.Second
	snaps[1].Busy = 9 * time.Second
	step("a persona that left drops out", map[string]float64{"bo": 0, "cy": 0.5}, 0.25)
}

type fakeGovernor struct {
	t  govern.Thermal
	in govern.Inputs
	p  float64
}

func (g *fakeGovernor) State() govern.Thermal          { return g.t }
func (g *fakeGovernor) Last() (govern.Inputs, float64) { return g.in, g.p }

var _ GovernorSource = (*govern.Governor)(nil)

func TestWatchGovernor(t *testing.T) {
	m, reg := newTest(t)
	g := &fakeGovernor{t: govern.Serious, p: 1.25, in: govern.Inputs{Load: 0.5, InFlight: 3, Cores: 2, Duty: 0.75, CPU: 0.5, BudgetSpent: 0.25}}
	if err := m.WatchGovernor(g); err != nil {
		t.Fatal(err)
	}
	compare(t, reg, `
# HELP persona_thermal_state 1 for the governor's current thermal state, 0 for the others.
# TYPE persona_thermal_state gauge
persona_thermal_state{state="critical"} 0
persona_thermal_state{state="fair"} 0
persona_thermal_state{state="nominal"} 0
persona_thermal_state{state="serious"} 1
# HELP persona_thermal_level Thermal state as a number: 0 nominal, 1 fair, 2 serious, 3 critical.
# TYPE persona_thermal_level gauge
persona_thermal_level 2
# HELP persona_governor_pressure The governor's pressure score; 1 means some input is at its limit.
# TYPE persona_governor_pressure gauge
persona_governor_pressure 1.25
# HELP persona_governor_duty_cycle Handler time over cores times the window at the last governor sample.
# TYPE persona_governor_duty_cycle gauge
persona_governor_duty_cycle 0.75
# HELP persona_governor_in_flight Handlers running at the last governor sample.
# TYPE persona_governor_in_flight gauge
persona_governor_in_flight 3
`, "persona_thermal_state", "persona_thermal_level", "persona_governor_pressure", "persona_governor_duty_cycle", "persona_governor_in_flight")

	g.t = govern.Nominal
	compare(t, reg, `
# HELP persona_thermal_state 1 for the governor's current thermal state, 0 for the others.
# TYPE persona_thermal_state gauge
persona_thermal_state{state="critical"} 0
persona_thermal_state{state="fair"} 0
persona_thermal_state{state="nominal"} 1
persona_thermal_state{state="serious"} 0
# HELP persona_thermal_level Thermal state as a number: 0 nominal, 1 fair, 2 serious, 3 critical.
# TYPE persona_thermal_level gauge
persona_thermal_level 0
`, "persona_thermal_state", "persona_thermal_level")
}

func TestJain(t *testing.T) {
	for _, tc := range []struct {
		name string
		xs   []float64
		want float64
	}{
		{"no personas is fair", nil, 1},
		{"all zero is fair", []float64{0, 0, 0}, 1},
		{"one persona is fair", []float64{7}, 1},
		{"equal shares give 1", []float64{3, 3, 3, 3}, 1},
		{"one-hot of 4 gives 1/4", []float64{0, 9, 0, 0}, 0.25},
		{"one-hot of 2 gives 1/2", []float64{5, 0}, 0.5},
		{"1 2 3 gives 36/42", []float64{1, 2, 3}, 36.0 / 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Jain(tc.xs); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("Jain(%v) = %v, want %v", tc.xs, got, tc.want)
			}
		})
	}
}
