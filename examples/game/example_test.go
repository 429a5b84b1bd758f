package game_test

import (
	"fmt"

	"github.com/personaos/persona/examples/game"
)

// A player with a predator two moves to its west: the state is urgent, and the brain runs east.
func ExampleDecide() {
	gs := game.GameState{
		Player: "ada", Pos: game.Pos{X: 5, Y: 5}, W: 32, H: 20, View: 8,
		Predators: []game.Sighting{{Pos: game.Pos{X: 3, Y: 5}, Dist: 2}},
	}
	fmt.Printf("priority %.2f urgent %v\n", game.Priority(gs), game.Priority(gs) >= game.UrgentLine)
	fmt.Println("action", game.Decide(gs))
	// Output:
	// priority 0.90 urgent true
	// action E
}

// The baseline driver: every player thinks on every tick. A persona driver instead hands each
// player its GameState as an Item[GameState] with game.Priority, and the player submits when it
// chooses to think.
func ExampleEngine() {
	e, err := game.NewEngine(game.Config{Seed: 1})
	if err != nil {
		panic(err)
	}
	for range 20 * game.TickRate { // twenty seconds of game time
		for _, gs := range e.States() {
			_ = e.Submit(gs.Player, game.Decide(gs))
		}
		for _, ev := range e.Step() {
			if ev.Kind == game.EventPredatorAdjacent {
				_ = ev // urgent: wake ev.Player at once
			}
		}
	}
	fmt.Print(game.ASCII(e.World()))
	fmt.Print(e.Scoreboard())
}
