package govern_test

import (
	"fmt"
	"time"

	"github.com/personaos/persona/govern"
)

func ExampleGovernor() {
	g := govern.New(govern.Policy{}) // ceiling 0.7 of the machine
	for _, in := range []govern.Inputs{
		{Duty: 0.2, Load: 0.1},             // quiet
		{Duty: 0.75, Load: 0.4},            // past the ceiling
		{Duty: 0.68, Load: 0.4},            // just under it: hysteresis holds
		{Duty: 0.1},                        // calm: one step down
		{Duty: 0.1},                        // and another
		{Duty: 0.7, InFlight: 6, Cores: 2}, // oversubscribed: straight up
	} {
		s := g.Observe(in)
		a := g.Adjust()
		fmt.Printf("%-8s cadence x%.1f threshold +%.2f catch-up %v\n", s, a.CadenceMultiplier, a.ThresholdShift, a.CatchUp)
	}
	// Output:
	// nominal  cadence x1.0 threshold +0.00 catch-up true
	// serious  cadence x2.0 threshold +0.15 catch-up false
	// serious  cadence x2.0 threshold +0.15 catch-up false
	// fair     cadence x1.5 threshold +0.05 catch-up false
	// nominal  cadence x1.0 threshold +0.00 catch-up true
	// critical cadence x4.0 threshold +0.30 catch-up false
}

func ExampleEffectiveThreshold() {
	const urgentLine = 0.8 // seed: priority above 0.8 is never neglected
	a := govern.Critical.Adjust()
	base := 0.3 // an active persona's threshold (seed)
	for _, priority := range []float64{0.5, 0.95} {
		th := govern.EffectiveThreshold(base, a.ThresholdShift, priority, urgentLine)
		fmt.Printf("priority %.2f: threshold %.2f engage %v\n", priority, th, priority >= th)
	}
	fmt.Println("cadence", a.Cadence(5*time.Second))
	// Output:
	// priority 0.50: threshold 0.60 engage false
	// priority 0.95: threshold 0.30 engage true
	// cadence 20s
}
