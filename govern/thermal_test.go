package govern

import (
	"encoding/json"
	"math"
	"testing"
	"time"
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
		{"fair eases off", Fair, 1.5, 0.05},
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

func TestAdjustmentCadence(t *testing.T) {
	for _, tc := range []struct {
		name string
		mult float64
		base time.Duration
		want time.Duration
	}{
		{"fair stretches 10s to 15s", 1.5, 10 * time.Second, 15 * time.Second},
		{"critical stretches 3s to 12s", 4, 3 * time.Second, 12 * time.Second},
		{"zero multiplier leaves cadence alone", 0, 5 * time.Second, 5 * time.Second},
		{"NaN multiplier leaves cadence alone", math.NaN(), 5 * time.Second, 5 * time.Second},
		{"huge cadence saturates", 4, maxDuration / 2, maxDuration},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Adjustment{CadenceMultiplier: tc.mult}.Cadence(tc.base)
			if got != tc.want {
				t.Errorf("Cadence(%v) = %v, want %v", tc.base, got, tc.want)
			}
		})
	}
}

func TestEffectiveThreshold(t *testing.T) {
	const urgent = 0.8 // seed: priority > 0.8 is never neglected
	for _, tc := range []struct {
		name                  string
		base, shift, priority float64
		want                  float64
	}{
		{"non-urgent item gets the shift", 0.3, 0.15, 0.5, 0.45},
		{"item just under the line gets the shift", 0.5, 0.3, 0.79, 0.8},
		{"item at the urgent line keeps the base", 0.5, 0.3, 0.8, 0.5},
		{"urgent item keeps the base", 0.9, 0.3, 1, 0.9},
		{"shift may lift threshold past 1", 0.9, 0.3, 0.5, 1.2},
		{"NaN shift is ignored", 0.3, math.NaN(), 0.5, 0.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := EffectiveThreshold(tc.base, tc.shift, tc.priority, urgent)
			if math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("EffectiveThreshold(%v, %v, %v) = %v, want %v", tc.base, tc.shift, tc.priority, got, tc.want)
			}
		})
	}
}

func TestUrgentWorkIsNeverHeldBackInAnyState(t *testing.T) {
	const urgent = 0.8
	// The persona engagement thresholds by mood (seed: 0.9 / 0.5 / 0.3 / 0.1).
	for _, base := range []float64{0.9, 0.5, 0.3, 0.1} {
		for s := Nominal; s <= Critical; s++ {
			for _, pr := range []float64{urgent, 0.85, 1} {
				if got := EffectiveThreshold(base, s.Adjust().ThresholdShift, pr, urgent); got != base {
					t.Errorf("%v, base %v, priority %v: threshold %v, want base", s, base, pr, got)
				}
			}
		}
	}
}
