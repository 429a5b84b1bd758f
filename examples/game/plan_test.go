package game

import (
	"slices"
	"testing"
)

func TestPlan(t *testing.T) {
	at := func(x, y int) Sighting { p := Pos{x, y}; return Sighting{p, Dist(p, Pos{5, 5})} }
	for _, tc := range []struct {
		name string
		gs   GameState
		n    int
		want []Action
	}{
		{"walks to the food in a line and eats it", view([]Sighting{at(8, 5)}, nil, 0), 3, []Action{East, East, East}},
		{"walks on to the next food after eating", view([]Sighting{at(6, 5), at(6, 7)}, nil, 0), 3, []Action{East, South, South}},
		{"stunned player plans one stay", view([]Sighting{at(6, 5)}, nil, 4), 5, []Action{Stay}},
		{"zero length plans one action", view([]Sighting{at(5, 4)}, nil, 0), 0, []Action{North}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Plan(tc.gs, tc.n); !slices.Equal(got, tc.want) {
				t.Errorf("Plan = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("first action is Decide's and the caller's state is untouched", func(t *testing.T) {
		gs := view([]Sighting{at(6, 5), at(5, 8)}, []Sighting{at(12, 5)}, 0)
		before := slices.Clone(gs.Food)
		plan := Plan(gs, 10)
		if len(plan) != 10 || plan[0] != Decide(gs) {
			t.Errorf("Plan = %v, want 10 actions starting with Decide's %v", plan, Decide(gs))
		}
		if !slices.Equal(gs.Food, before) || gs.Predators[0].Dist != 7 {
			t.Errorf("Plan changed the caller's state: food %v, predators %v", gs.Food, gs.Predators)
		}
	})
	t.Run("a planned walk never leaves the board", func(t *testing.T) {
		e, err := NewEngine(Config{Seed: 9, Walls: 30})
		if err != nil {
			t.Fatal(err)
		}
		for _, gs := range e.States() {
			p := gs.Pos
			for _, a := range Plan(gs, 40) {
				p = p.Add(a)
				if p.X < 0 || p.Y < 0 || p.X >= gs.W || p.Y >= gs.H || slices.Contains(gs.Walls, p) {
					t.Fatalf("%s's plan walks to %v, off the board or into a wall", gs.Player, p)
				}
			}
		}
	})
}
