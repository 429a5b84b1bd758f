package coord_test

import (
	"context"
	"fmt"
	"time"

	"github.com/personaos/persona/coord"
)

func Example() {
	s := coord.New(coord.Options{})
	defer s.Close()

	// A message in room "lobby" mentions @helper; three personas are present.
	s.Open("msg-1", "lobby", []string{"helper", "critic", "poet"}, []string{"helper"})

	// Each persona decided on its own to engage, and says how keen it is.
	_ = s.Think(coord.Thought{Persona: "critic", Item: "msg-1", Confidence: 0.9, Intent: coord.IntentRespond})
	_ = s.Think(coord.Thought{Persona: "helper", Item: "msg-1", Confidence: 0.3, Intent: coord.IntentRespond})
	_ = s.Think(coord.Thought{Persona: "poet", Item: "msg-1", Confidence: 0.7, Intent: coord.IntentObserve})

	// The sync point: everyone spoke, so the decision is already made.
	d, err := s.Await(context.Background(), "msg-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("granted:", d.Granted)
	for _, p := range []string{"helper", "critic", "poet"} {
		fmt.Printf("%s: %s\n", p, d.Reasons[p])
	}
	// Output:
	// granted: [helper]
	// helper: addressee
	// critic: k=1 reached
	// poet: intent observe
}

// A driver of its own (a simulator, a test) calls the Core with explicit
// times and arms one timer at NextDeadline.
func ExampleCore() {
	c := coord.NewCore(coord.Options{FixedWindow: true, Window: time.Second})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	c.Open(t0, coord.Opening{Item: "msg-1", Key: "lobby", Expected: []string{"helper", "critic"}})
	_, _ = c.Think(t0.Add(200*time.Millisecond), coord.Thought{Persona: "critic", Item: "msg-1", Confidence: 0.6, Intent: coord.IntentRespond})

	// helper stays silent: the window's end is the next thing to happen.
	next, _ := c.NextDeadline()
	fmt.Println("wake at:", next.Sub(t0))
	for _, d := range c.Expire(next) {
		fmt.Println(d.Item, "granted:", d.Granted, "timed out:", d.TimedOut, "missing:", d.Missing)
	}
	_, armed := c.NextDeadline()
	fmt.Println("timer needed:", armed)
	// Output:
	// wake at: 1s
	// msg-1 granted: [critic] timed out: true missing: [helper]
	// timer needed: false
}
