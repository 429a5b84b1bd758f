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
		{Duty: 0.5},                        // easing: fair
		{Duty: 0.1},                        // calm: nominal at once
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
	// fair     cadence x1.5 threshold +0.00 catch-up false
	// nominal  cadence x1.0 threshold +0.00 catch-up true
	// critical cadence x4.0 threshold +0.30 catch-up false
}

// A driver reads its counters and levels at each tick and lets a Feed turn
// them into Inputs; here one of two cores is busy from the start and the
// second joins after two seconds, over a three-second window.
func ExampleFeed() {
	f := govern.NewFeed(govern.FeedOptions{Window: 3 * time.Second})
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for sec, busy := range []time.Duration{0, 1, 2, 4, 6, 8} { // cumulative handler seconds
		in := f.Observe(t0.Add(time.Duration(sec)*time.Second), govern.Sample{Busy: busy * time.Second, Cores: 2})
		fmt.Printf("t=%ds duty %.2f\n", sec, in.Duty)
	}
	// Output:
	// t=0s duty 0.00
	// t=1s duty 0.50
	// t=2s duty 0.50
	// t=3s duty 0.67
	// t=4s duty 0.83
	// t=5s duty 1.00
}
