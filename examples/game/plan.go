package game

import (
	"cmp"
	"slices"
)

// Plan returns the next n actions (at least one) a player would take if it thought on each of those
// ticks and nothing but itself moved: Decide on gs, then on gs advanced by that action (the player's
// cell, the food it would eat, every distance re-measured and re-sorted), and so on. Predators are
// assumed to stand still, which is why a persona player replays a plan only while it is out of danger
// and thinks afresh on every urgent tick. A stunned player's plan is a single Stay. Plan is pure and
// deterministic, like Decide.
func Plan(gs GameState, n int) []Action {
	n = max(n, 1)
	if gs.Stunned > 0 {
		return []Action{Stay}
	}
	gs.Food = slices.Clone(gs.Food) // advance rewrites them; the caller keeps its state
	gs.Predators = slices.Clone(gs.Predators)
	out := make([]Action, 0, n)
	for len(out) < n {
		a := Decide(gs)
		out = append(out, a)
		gs = advance(gs, a)
	}
	return out
}

// advance returns gs one tick later for a player that took a and a board on which nothing else moved.
// Decide only steps onto cells its view shows open, so the move is taken as made.
func advance(gs GameState, a Action) GameState {
	gs.Tick++
	gs.Pos = gs.Pos.Add(a)
	food := gs.Food[:0]
	for _, f := range gs.Food {
		if f.Pos != gs.Pos { // eaten on arrival
			food = append(food, Sighting{f.Pos, Dist(gs.Pos, f.Pos)})
		}
	}
	gs.Food = food
	for i, pr := range gs.Predators {
		gs.Predators[i].Dist = Dist(gs.Pos, pr.Pos)
	}
	slices.SortStableFunc(gs.Food, bySighting)
	slices.SortStableFunc(gs.Predators, bySighting)
	return gs
}

// bySighting orders sightings nearest first, ties in row-major order, as State lists them.
func bySighting(a, b Sighting) int {
	return cmp.Or(cmp.Compare(a.Dist, b.Dist), cmp.Compare(a.Pos.Y, b.Pos.Y), cmp.Compare(a.Pos.X, b.Pos.X))
}
