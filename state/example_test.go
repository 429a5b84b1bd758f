package state_test

import (
	"fmt"
	"time"

	"github.com/personaos/persona/state"
)

// A persona works, gets tired, keeps answering urgent items, and recovers
// by resting. Every call is a pure function of the state and its
// arguments, so a loop, a simulator or a test can drive it.
func Example() {
	s := state.New(state.Config{}) // the seed's numbers
	now := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
	s.Observe(0.01, 1) // 10 of 1000 queued, full compute budget
	fmt.Println(s.Mood, s.Cadence(1), s.ShouldEngage(0.2, 0))

	for range 3 { // three ordinary items of 2.5 s each
		now = now.Add(2500 * time.Millisecond)
		s.RecordActivity(now, 2500*time.Millisecond, 1)
	}
	fmt.Printf("%v energy=%.2f cadence=%v\n", s.Mood, s.Energy, s.Cadence(1))
	fmt.Println("engage 0.5:", s.ShouldEngage(0.5, 0), "engage urgent 0.8:", s.ShouldEngage(0.8, 0))

	s.Rest(time.Minute)
	fmt.Printf("%v energy=%.1f cadence=%v\n", s.Mood, s.Energy, s.Cadence(1))
	// Output:
	// idle 3s true
	// tired energy=0.25 cadence=7s
	// engage 0.5: false engage urgent 0.8: true
	// idle energy=1.0 cadence=3s
}
