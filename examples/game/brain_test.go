package game

import (
	"slices"
	"testing"
)

// view is a GameState for player ada at (5,5) on a 20x20 board with view 8.
func view(food, preds []Sighting, stunned int) GameState {
	return GameState{Player: "ada", Pos: Pos{5, 5}, W: 20, H: 20, View: 8, Food: food, Predators: preds,
		Stunned: stunned}
}

func TestPriority(t *testing.T) {
	at := func(x, y int) Sighting { p := Pos{x, y}; return Sighting{p, Dist(p, Pos{5, 5})} }
	for _, tc := range []struct {
		name     string
		gs       GameState
		min, max float64
	}{
		{"nothing in view is low", view(nil, nil, 0), 0.1, 0.1},
		{"food next door is worth a look", view([]Sighting{at(5, 6)}, nil, 0), 0.55, 0.6},
		{"far food is worth less", view([]Sighting{at(5, 12)}, nil, 0), 0.3, 0.4},
		{"predator adjacent is urgent", view(nil, []Sighting{at(5, 6)}, 0), 0.9, 1},
		{"predator two moves away is urgent", view(nil, []Sighting{at(6, 6)}, 0), 0.9, 1},
		{"predator three moves away is not urgent", view(nil, []Sighting{at(7, 6)}, 0), 0.6, UrgentLine - 0.01},
		{"predator three moves away beside food is not urgent", view([]Sighting{at(5, 6)}, []Sighting{at(8, 5)}, 0), 0.6, UrgentLine - 0.01},
		{"stunned player is never urgent", view(nil, []Sighting{at(5, 6)}, 3), 0, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p := Priority(tc.gs); p < tc.min || p > tc.max {
				t.Errorf("Priority = %.3f, want in [%.2f, %.2f]", p, tc.min, tc.max)
			}
		})
	}
	t.Run("closer predator is more urgent", func(t *testing.T) {
		if a, b := Priority(view(nil, []Sighting{at(5, 6)}, 0)), Priority(view(nil, []Sighting{at(5, 7)}, 0)); a <= b {
			t.Errorf("adjacent %.3f, two away %.3f; want adjacent higher", a, b)
		}
	})
}

// Over a real game, Priority is urgent in exactly the states where a predator is within two moves
// of a playing player, and always within [0, 1].
func TestPriorityIsUrgentExactlyWhenAdjacent(t *testing.T) {
	e, err := NewEngine(Config{Seed: 3, Walls: 20})
	if err != nil {
		t.Fatal(err)
	}
	urgent, calm := 0, 0
	for range 800 {
		for _, gs := range e.States() {
			p := Priority(gs)
			near, ok := gs.NearestPredator()
			adjacent := ok && gs.Stunned == 0 && near.Dist <= AdjacentDist
			if (p >= UrgentLine) != adjacent || p < 0 || p > 1 {
				t.Fatalf("tick %d %s: priority %.3f with nearest predator %+v (seen %v), stunned %d",
					gs.Tick, gs.Player, p, near, ok, gs.Stunned)
			}
			if adjacent {
				urgent++
			} else {
				calm++
			}
			_ = e.Submit(gs.Player, Decide(gs))
		}
		e.Step()
	}
	if urgent == 0 || calm == 0 {
		t.Errorf("%d urgent and %d calm states; want both", urgent, calm)
	}
}

func TestDecide(t *testing.T) {
	at := func(x, y int) Sighting { p := Pos{x, y}; return Sighting{p, Dist(p, Pos{5, 5})} }
	for _, tc := range []struct {
		name string
		gs   GameState
		want []Action // any of these
	}{
		{"stunned player stays", view([]Sighting{at(5, 6)}, nil, 2), []Action{Stay}},
		{"walks to the nearest food", view([]Sighting{at(5, 8), at(1, 1)}, nil, 0), []Action{South}},
		{"flees east from a predator to the west", view(nil, []Sighting{at(3, 5)}, 0), []Action{East}},
		{"flees away from a predator to the north-west", view(nil, []Sighting{at(4, 4)}, 0), []Action{South, East}},
		{"flight beats food", view([]Sighting{at(4, 5)}, []Sighting{at(3, 5)}, 0), []Action{East}},
		{"does not walk past a predator to food", view([]Sighting{at(5, 9)}, []Sighting{at(5, 11)}, 0),
			[]Action{Stay, North, East, West}},
		{"walks around a wall to food", func() GameState {
			gs := view([]Sighting{at(5, 7)}, nil, 0)
			gs.Walls = []Pos{{5, 6}}
			return gs
		}(), []Action{East, West}},
		{"flees along the wall from a corner", func() GameState {
			gs := view(nil, []Sighting{{Pos{0, 2}, 2}}, 0)
			gs.Pos = Pos{0, 0}
			return gs
		}(), []Action{East}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := Decide(tc.gs); !slices.Contains(tc.want, a) {
				t.Errorf("Decide = %v, want one of %v", a, tc.want)
			}
		})
	}
	t.Run("wanders when nothing is in view", func(t *testing.T) {
		moved := map[Action]bool{}
		for tick := range 48 {
			gs := view(nil, nil, 0)
			gs.Tick = tick
			moved[Decide(gs)] = true
		}
		if moved[Stay] || len(moved) < 2 {
			t.Errorf("actions over 48 ticks %v, want at least two headings and never stay", moved)
		}
	})
}

// Over a real game with walls, Decide never walks into a wall or off the board.
func TestDecideStaysOnOpenCells(t *testing.T) {
	e, err := NewEngine(Config{Seed: 5, Walls: 40})
	if err != nil {
		t.Fatal(err)
	}
	for range 500 {
		for _, gs := range e.States() {
			a := Decide(gs)
			q := gs.Pos.Add(a)
			if q.X < 0 || q.Y < 0 || q.X >= gs.W || q.Y >= gs.H || slices.Contains(gs.Walls, q) {
				t.Fatalf("tick %d %s at %v: Decide = %v leads to %v, a wall or off the board", gs.Tick,
					gs.Player, gs.Pos, a, q)
			}
			mustSubmit(t, e, gs.Player, a)
		}
		e.Step()
	}
	if s := e.Scoreboard(); s.Total() <= 0 {
		t.Errorf("players thinking every tick scored %d in 500 ticks:\n%s", s.Total(), s)
	}
}

func BenchmarkDecide(b *testing.B) {
	e, err := NewEngine(Config{Seed: 1, Walls: 20})
	if err != nil {
		b.Fatal(err)
	}
	gs := e.States()[0]
	b.ReportAllocs()
	for b.Loop() {
		Decide(gs)
	}
}
