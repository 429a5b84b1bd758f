package govern

import (
	"math"
	"testing"
)

func TestPolicyDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Policy
		want Policy
	}{
		{"zero value is the default policy", Policy{}, Policy{Ceiling: 0.7, Hysteresis: 0.05, IdleBelow: 0.5}},
		{"set fields are kept", Policy{Ceiling: 0.5, Hysteresis: 0.1, IdleBelow: 0.2}, Policy{Ceiling: 0.5, Hysteresis: 0.1, IdleBelow: 0.2}},
		{"ceiling above the machine is the machine", Policy{Ceiling: 3}, Policy{Ceiling: 1, Hysteresis: 0.05, IdleBelow: 0.5}},
		{"NaN ceiling is the default", Policy{Ceiling: math.NaN()}, Policy{Ceiling: 0.7, Hysteresis: 0.05, IdleBelow: 0.5}},
		{"negative hysteresis is none", Policy{Hysteresis: -1}, Policy{Ceiling: 0.7, Hysteresis: 0, IdleBelow: 0.5}},
		{"negative idle line is never idle", Policy{IdleBelow: -1}, Policy{Ceiling: 0.7, Hysteresis: 0.05, IdleBelow: math.Inf(-1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.withDefaults(); got != tc.want {
				t.Errorf("withDefaults() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPressure(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		in   Inputs
		want float64
	}{
		{"zero inputs are no pressure", Policy{}, Inputs{}, 0},
		{"duty at the ceiling is 1", Policy{}, Inputs{Duty: 0.7}, 1},
		{"duty against a lower ceiling", Policy{Ceiling: 0.5}, Inputs{Duty: 0.5}, 1},
		{"cpu at half the ceiling is 0.5", Policy{}, Inputs{CPU: 0.35}, 0.5},
		{"oversubscribed duty exceeds critical", Policy{}, Inputs{Duty: 1.4}, 2},
		{"two handlers per core is 1", Policy{}, Inputs{InFlight: 4, Cores: 2}, 1},
		{"one handler per core is half", Policy{}, Inputs{InFlight: 2, Cores: 2}, 0.5},
		{"handlers with unknown cores count nothing", Policy{}, Inputs{InFlight: 40}, 0},
		{"full inboxes are no heat", Policy{}, Inputs{Load: 1}, 0},
		{"empty budget is 1", Policy{}, Inputs{BudgetSpent: 1}, 1},
		{"budget is capped at 1", Policy{}, Inputs{BudgetSpent: 2}, 1},
		{"largest input wins", Policy{}, Inputs{Duty: 0.35, CPU: 0.56, BudgetSpent: 0.6}, 0.8},
		{"NaN and negative inputs count nothing", Policy{}, Inputs{Duty: math.NaN(), CPU: -1, Load: math.NaN(), BudgetSpent: -3}, 0},
		{"infinite duty is infinite pressure", Policy{}, Inputs{Duty: math.Inf(1)}, math.Inf(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.Pressure(tc.in)
			if !(got == tc.want || math.Abs(got-tc.want) < 1e-9) {
				t.Errorf("Pressure(%+v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cur      Thermal
		pressure float64
		want     Thermal
	}{
		{"nominal stays below the fair line", Nominal, 0.749, Nominal},
		{"nominal enters fair at the line", Nominal, 0.75, Fair},
		{"fair enters serious at the ceiling", Fair, 1, Serious},
		{"nominal jumps straight to serious", Nominal, 1.1, Serious},
		{"nominal jumps straight to critical", Nominal, 1.3, Critical},
		{"infinite pressure is critical", Nominal, math.Inf(1), Critical},
		{"serious holds just under its line", Serious, 0.99, Serious},
		{"serious holds inside the hysteresis band", Serious, 0.951, Serious},
		{"serious falls below the band", Serious, 0.949, Fair},
		{"critical holds inside the band", Critical, 1.26, Critical},
		{"critical falls to nominal at zero pressure", Critical, 0, Nominal},
		{"serious falls to nominal at zero pressure", Serious, 0, Nominal},
		{"critical falls to serious when the pressure is just under its band", Critical, 1.2, Serious},
		{"critical falls to fair when the pressure is fair's, band included", Critical, 0.8, Fair},
		{"serious falls only to fair inside fair's band", Serious, 0.71, Fair},
		{"fair holds inside the band", Fair, 0.71, Fair},
		{"fair falls to nominal below the band", Fair, 0.69, Nominal},
		{"critical stays critical", Critical, 5, Critical},
		{"state above critical is treated as critical", Thermal(9), 1.26, Critical},
		{"state below nominal is treated as nominal", Thermal(-3), 0, Nominal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Policy{}).next(tc.cur, tc.pressure); got != tc.want {
				t.Errorf("next(%v, %v) = %v, want %v", tc.cur, tc.pressure, got, tc.want)
			}
		})
	}
}

// run feeds pressures through next from Nominal and returns the states,
// starting with Nominal.
func run(t *testing.T, p Policy, pressures []float64) []Thermal {
	t.Helper()
	cur := Nominal
	out := []Thermal{cur}
	for _, pr := range pressures {
		cur = p.next(cur, pr)
		out = append(out, cur)
	}
	return out
}

func transitions(states []Thermal) int {
	n := 0
	for i := 1; i < len(states); i++ {
		if states[i] != states[i-1] {
			n++
		}
	}
	return n
}

func TestHysteresisStopsFlappingAroundALine(t *testing.T) {
	// Pressure wobbling ±0.03 around the serious line for 20 samples.
	var wobble []float64
	for i := range 20 {
		wobble = append(wobble, 1+0.03*float64(1-2*(i%2)))
	}
	with := run(t, Policy{}, wobble)
	if n := transitions(with); n != 1 || with[len(with)-1] != Serious {
		t.Errorf("with hysteresis: %d transitions, end %v; want 1 (nominal->serious), serious: %v", n, with[len(with)-1], with)
	}
	// The same wobble with no hysteresis flaps on every sample: the band is
	// what holds the state.
	without := run(t, Policy{Hysteresis: -1}, wobble)
	if n := transitions(without); n < 19 {
		t.Errorf("without hysteresis: %d transitions, want it to flap (>= 19): %v", n, without)
	}
}

// Stepping down one state per sample kept personas shedding work for
// seconds after the heat was gone: a cooled machine is cool at once, and
// the band still holds a state whose pressure hovers at its line.
func TestStatesFallToWhatThePressureCallsFor(t *testing.T) {
	got := run(t, Policy{}, []float64{2, 1.28, 1.2, 0.72, 0.2, 0})
	want := []Thermal{Nominal, Critical, Critical, Serious, Fair, Nominal, Nominal}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("states = %v, want %v", got, want)
		}
	}
}

func TestNextFromInputs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cur  Thermal
		in   Inputs
		want Thermal
	}{
		{"full inboxes and empty budget reach serious, not critical", Nominal, Inputs{Load: 5, BudgetSpent: 5}, Serious},
		{"duty far past the ceiling is critical", Nominal, Inputs{Duty: 0.95}, Critical},
		{"three handlers per core is critical", Nominal, Inputs{InFlight: 6, Cores: 2}, Critical},
		{"cpu just under the ceiling is fair", Nominal, Inputs{CPU: 0.6}, Fair},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Policy{}).Next(tc.cur, tc.in); got != tc.want {
				t.Errorf("Next(%v, %+v) = %v, want %v", tc.cur, tc.in, got, tc.want)
			}
		})
	}
}

func TestIdle(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		in   Inputs
		want bool
	}{
		{"nothing happening is idle", Policy{}, Inputs{}, true},
		{"light load is idle", Policy{}, Inputs{Load: 0.49, Duty: 0.3}, true},
		{"full inboxes on a cool machine are idle", Policy{}, Inputs{Load: 1}, true},
		{"busy cores are not idle", Policy{}, Inputs{Duty: 0.4}, false},
		{"negative idle line is never idle", Policy{IdleBelow: -1}, Inputs{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Idle(tc.in); got != tc.want {
				t.Errorf("Idle(%+v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
