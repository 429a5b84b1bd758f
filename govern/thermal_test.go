package govern

import (
	"encoding/json"
	"testing"

	"github.com/personaos/persona/state"
)

func TestThermalNames(t *testing.T) {
	for _, tc := range []struct {
		t    Thermal
		want string
	}{
		{Nominal, "nominal"},
		{Fair, "fair"},
		{Serious, "serious"},
		{Critical, "critical"},
		{Thermal(7), "Thermal(7)"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.t.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestThermalTextRoundTrips(t *testing.T) {
	for s := Nominal; s <= Critical; s++ {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal %d: %v", s, err)
		}
		if want := `"` + s.String() + `"`; string(b) != want {
			t.Errorf("marshal %d = %s, want %s", s, b, want)
		}
		var back Thermal
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("unmarshal %s = %v, %v; want %v", b, back, err, s)
		}
	}
}

func TestThermalTextRejectsUnknown(t *testing.T) {
	var s Thermal
	if err := s.UnmarshalText([]byte("hot")); err == nil {
		t.Error(`UnmarshalText("hot") succeeded`)
	}
	if _, err := Thermal(-1).MarshalText(); err == nil {
		t.Error("MarshalText(-1) succeeded")
	}
}

func TestAdjustPerState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		t     Thermal
		mult  float64
		shift float64
	}{
		{"nominal leaves personas alone", Nominal, 1, 0},
		{"fair only slows the rhythm: it is below the ceiling", Fair, 1.5, 0},
		{"serious halves the rhythm", Serious, 2, 0.15},
		{"critical quarters the rhythm", Critical, 4, 0.3},
		{"unknown hot state counts as critical", Thermal(9), 4, 0.3},
		{"unknown cold state counts as nominal", Thermal(-2), 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.t.Adjust()
			if a.CadenceMultiplier != tc.mult || a.ThresholdShift != tc.shift || a.CatchUp {
				t.Errorf("Adjust() = %+v, want x%v %+v no catch-up", a, tc.mult, tc.shift)
			}
		})
	}
}

// The shift is applied by state.State.ShouldEngage, which every driver
// calls: no state's shift may make an urgent item harder to engage.
func TestUrgentWorkIsNeverHeldBackInAnyState(t *testing.T) {
	cfg := state.Config{}.Defaults()
	for s := Nominal; s <= Critical; s++ {
		shift := s.Adjust().ThresholdShift
		for _, mood := range []struct {
			name         string
			load, energy float64
		}{{"idle", 0, 1}, {"overwhelmed", 1, 1}, {"tired and spent", 0, 0}} {
			st := state.New(cfg)
			st.Energy = mood.energy
			st.Observe(mood.load, 1)
			for _, pr := range []float64{cfg.Urgent, 0.9, 1} {
				if !st.ShouldEngage(pr, shift) {
					t.Errorf("%v, %s persona: urgent priority %v declined under shift %v", s, mood.name, pr, shift)
				}
			}
		}
	} // And the shift does raise the bar for the rest: an idle persona takes
	// a 0.3 item at nominal (threshold 0.1) but not at critical (0.4).
	st := state.New(cfg)
	st.Observe(0, 1)
	if !st.ShouldEngage(0.3, Nominal.Adjust().ThresholdShift) || st.ShouldEngage(0.3, Critical.Adjust().ThresholdShift) {
		t.Error("critical's shift does not hold back a 0.3 item that nominal engages")
	}
}
