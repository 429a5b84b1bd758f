package game

import "testing"

// arena builds a w x h open board, without food unless cfg asks for it, with players (named ada, bo,
// cy, ...) and predators on the given cells. Other cfg fields pass through.
func arena(t *testing.T, w, h int, players, preds []Pos, cfg Config) *Engine {
	t.Helper()
	names := []string{"ada", "bo", "cy", "dee", "eve", "fay"}[:len(players)]
	cfg.W, cfg.H, cfg.Players = w, h, names
	cfg.Predators = len(preds)
	if len(preds) == 0 {
		cfg.Predators = -1
	}
	if cfg.Food == 0 {
		cfg.Food = -1
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	for i, p := range players {
		e.players[i].pos = p
	}
	for k, p := range preds {
		e.preds[k].pos = p
	}
	for i := range e.players {
		d, _ := e.nearestPredator(e.players[i].pos)
		e.players[i].adjacent = d <= AdjacentDist
	}
	return e
}

// mustState is e.State for a player that exists.
func mustState(t *testing.T, e *Engine, player string) GameState {
	t.Helper()
	gs, err := e.State(player)
	if err != nil {
		t.Fatalf("State(%q): %v", player, err)
	}
	return gs
}

// mustSubmit is e.Submit for a valid player and action.
func mustSubmit(t *testing.T, e *Engine, player string, a Action) {
	t.Helper()
	if err := e.Submit(player, a); err != nil {
		t.Fatalf("Submit(%q, %v): %v", player, a, err)
	}
}

// baseline steps e for ticks ticks with every player thinking (Decide) on every tick, and returns
// every event.
func baseline(t *testing.T, e *Engine, ticks int) []Event {
	t.Helper()
	var evs []Event
	for range ticks {
		for _, gs := range e.States() {
			mustSubmit(t, e, gs.Player, Decide(gs))
		}
		evs = append(evs, e.Step()...)
	}
	return evs
}

// lagged plays a one-player game in which the player scans every 10 ticks (a resting persona's
// cadence) and answers danger lag ticks after it begins (0: at once, woken by the urgent item).
// While in danger and past the lag it thinks every tick, as a persona handling urgent items would.
func lagged(t *testing.T, seed int64, lag, ticks int) PlayerStats {
	t.Helper()
	e, err := NewEngine(Config{Players: []string{"ada"}, Seed: seed})
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	onset := -1
	for tick := range ticks {
		gs := mustState(t, e, "ada")
		think := tick%10 == 0
		if Priority(gs) >= UrgentLine {
			if onset < 0 {
				onset = tick
			}
			think = tick-onset >= lag // resting until then: a scan would not come sooner
		} else {
			onset = -1
		}
		if think {
			mustSubmit(t, e, "ada", Decide(gs))
		}
		e.Step()
	}
	return e.Stats()[0]
}
