package coord_test

import (
	"context"
	"fmt"

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
