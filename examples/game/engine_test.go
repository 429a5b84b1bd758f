package game

import (
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

func TestNewEngine(t *testing.T) {
	t.Run("zero config gives the default game", func(t *testing.T) {
		e, err := NewEngine(Config{})
		if err != nil {
			t.Fatal(err)
		}
		w := e.World()
		if w.W != 32 || w.H != 20 || len(w.Predators) != 3 || len(w.Food) != 12 || len(w.Walls) != 0 {
			t.Errorf("board %dx%d, %d predators, %d food, %d walls; want 32x20, 3, 12, 0",
				w.W, w.H, len(w.Predators), len(w.Food), len(w.Walls))
		}
		if got, want := e.Players(), []string{"ada", "bo", "cy", "dee"}; !slices.Equal(got, want) {
			t.Errorf("players %v, want %v", got, want)
		}
		for _, p := range w.Players {
			for _, pr := range w.Predators {
				if d := Dist(p.Pos, pr); d <= e.Config().ChaseRadius {
					t.Errorf("%s starts %d moves from a predator, want beyond the chase radius", p.Name, d)
				}
			}
		}
	})
	t.Run("negative counts mean none", func(t *testing.T) {
		e, err := NewEngine(Config{Predators: -1, Food: -1})
		if err != nil {
			t.Fatal(err)
		}
		if w := e.World(); len(w.Predators) != 0 || len(w.Food) != 0 {
			t.Errorf("%d predators, %d food; want none", len(w.Predators), len(w.Food))
		}
	})
	t.Run("walls are laid", func(t *testing.T) {
		e, err := NewEngine(Config{Walls: 30})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(e.World().Walls); n != 30 {
			t.Errorf("%d wall cells, want 30", n)
		}
	})
	t.Run("caller keeps its players slice", func(t *testing.T) {
		names := []string{"ada", "bo"}
		e, err := NewEngine(Config{Players: names})
		if err != nil {
			t.Fatal(err)
		}
		names[0] = "zed"
		if got := e.Players()[0]; got != "ada" {
			t.Errorf("first player %q after the caller changed its slice, want ada", got)
		}
	})
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"board too small is rejected", Config{W: 3, H: 10}},
		{"empty player name is rejected", Config{Players: []string{"ada", ""}}},
		{"duplicate player is rejected", Config{Players: []string{"ada", "bo", "ada"}}},
		{"board more than half full is rejected", Config{W: 8, H: 8, Food: 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewEngine(tc.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("NewEngine: %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestEngineIsDeterministic(t *testing.T) {
	run := func(seed int64) ([]Event, World, []PlayerStats) {
		e, err := NewEngine(Config{Seed: seed, Walls: 20})
		if err != nil {
			t.Fatal(err)
		}
		evs := baseline(t, e, 600)
		return evs, e.World(), e.Stats()
	}
	ev1, w1, s1 := run(42)
	ev2, w2, s2 := run(42)
	if !reflect.DeepEqual(ev1, ev2) || !reflect.DeepEqual(w1, w2) || !reflect.DeepEqual(s1, s2) {
		t.Fatal("two games with seed 42 differ")
	}
	kinds := map[EventKind]int{}
	for _, ev := range ev1 {
		kinds[ev.Kind]++
	}
	for _, k := range []EventKind{EventFoodEaten, EventFoodSpawned, EventPredatorAdjacent} {
		if kinds[k] == 0 {
			t.Errorf("no %v events in 600 ticks; the game is not being played", k)
		}
	}
	ev3, w3, _ := run(43)
	if reflect.DeepEqual(ev1, ev3) && reflect.DeepEqual(w1, w3) {
		t.Error("seeds 42 and 43 give the same game")
	}
}

func TestSubmit(t *testing.T) {
	t.Run("action is applied once then the player stays", func(t *testing.T) {
		e := arena(t, 9, 9, []Pos{{4, 4}}, nil, Config{})
		mustSubmit(t, e, "ada", East)
		e.Step()
		e.Step()
		s := e.Stats()[0]
		if gs := mustState(t, e, "ada"); gs.Pos != (Pos{5, 4}) || s.Actions != 1 || s.Moves != 1 {
			t.Errorf("at %v with %d actions, %d moves; want (5,4), 1, 1", gs.Pos, s.Actions, s.Moves)
		}
	})
	t.Run("latest submission wins", func(t *testing.T) {
		e := arena(t, 9, 9, []Pos{{4, 4}}, nil, Config{})
		mustSubmit(t, e, "ada", North)
		mustSubmit(t, e, "ada", South)
		e.Step()
		if gs, s := mustState(t, e, "ada"), e.Stats()[0]; gs.Pos != (Pos{4, 5}) || s.Actions != 1 {
			t.Errorf("at %v with %d actions; want (4,5), 1", gs.Pos, s.Actions)
		}
	})
	t.Run("move off the board leaves the player in place", func(t *testing.T) {
		e := arena(t, 9, 9, []Pos{{0, 0}}, nil, Config{})
		mustSubmit(t, e, "ada", West)
		e.Step()
		if gs, s := mustState(t, e, "ada"), e.Stats()[0]; gs.Pos != (Pos{0, 0}) || s.Actions != 1 || s.Moves != 0 {
			t.Errorf("at %v with %d actions, %d moves; want (0,0), 1, 0", gs.Pos, s.Actions, s.Moves)
		}
	})
	t.Run("move into a wall leaves the player in place", func(t *testing.T) {
		e := arena(t, 9, 9, []Pos{{4, 4}}, nil, Config{})
		e.wall[e.idx(Pos{4, 3})] = true
		mustSubmit(t, e, "ada", North)
		e.Step()
		if gs := mustState(t, e, "ada"); gs.Pos != (Pos{4, 4}) {
			t.Errorf("at %v, want (4,4)", gs.Pos)
		}
	})
	for _, tc := range []struct {
		name   string
		player string
		a      Action
		want   error
	}{
		{"unknown player is an error", "zed", North, ErrUnknownPlayer},
		{"invalid action is an error", "ada", numActions, ErrInvalidAction},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := arena(t, 9, 9, []Pos{{4, 4}}, nil, Config{})
			if err := e.Submit(tc.player, tc.a); !errors.Is(err, tc.want) {
				t.Errorf("Submit: %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("state of unknown player is an error", func(t *testing.T) {
		e := arena(t, 9, 9, []Pos{{4, 4}}, nil, Config{})
		if _, err := e.State("zed"); !errors.Is(err, ErrUnknownPlayer) {
			t.Errorf("State: %v, want ErrUnknownPlayer", err)
		}
	})
}

// A predator walks straight at a player that never moves: the urgent event fires once, on the tick
// the predator comes within two moves, and the catch comes later, with its penalty, respawn and stun.
func TestUrgentEventThenCatch(t *testing.T) {
	e := arena(t, 12, 4, []Pos{{1, 1}}, []Pos{{6, 1}}, Config{})
	var got []Event
	for range 6 {
		got = append(got, e.Step()...)
	}
	if len(got) != 2 {
		t.Fatalf("events %+v, want one urgent event and one catch", got)
	}
	urgent, caught := got[0], got[1]
	// The predator moves on ticks 1, 2, 3 (to 2 moves away), skips tick 4, catches on tick 6.
	if want := (Event{Tick: 3, Kind: EventPredatorAdjacent, Player: "ada", Pos: Pos{1, 1}, Dist: 2}); urgent != want {
		t.Errorf("urgent event %+v, want %+v", urgent, want)
	}
	if caught.Kind != EventCaught || caught.Tick != 6 || caught.Pos != (Pos{1, 1}) || caught.To == caught.Pos {
		t.Errorf("catch %+v, want ada caught at (1,1) on tick 6 and moved elsewhere", caught)
	}
	s := e.Stats()[0]
	if s.Score != -5 || s.Caught != 1 || s.Threats != 1 || s.Missed != 1 || len(s.Reactions) != 0 {
		t.Errorf("stats %+v, want score -5, caught 1, threats 1, missed 1, no reactions", s)
	}
	gs := mustState(t, e, "ada")
	if gs.Stunned != 20 || gs.Pos != caught.To {
		t.Errorf("after the catch: stunned %d at %v, want 20 at %v", gs.Stunned, gs.Pos, caught.To)
	}
	// Stunned for 20 ticks: actions are consumed and dropped, then applied again.
	for range 20 {
		mustSubmit(t, e, "ada", Stay)
		e.Step()
	}
	mustSubmit(t, e, "ada", Stay)
	e.Step()
	if s := e.Stats()[0]; s.Dropped != 20 || s.Actions != 1 {
		t.Errorf("dropped %d, applied %d actions; want 20 dropped while stunned, then 1 applied", s.Dropped, s.Actions)
	}
}

func TestFleeingOnTimeAvoidsCapture(t *testing.T) {
	const seeds, ticks = 30, 400
	var prompt, late int
	for seed := range int64(seeds) {
		p := lagged(t, seed, 0, ticks)
		for _, r := range p.Reactions {
			if r != 1 {
				t.Fatalf("seed %d: reaction %d ticks after an urgent event, want 1 (the next tick)", seed, r)
			}
		}
		prompt += p.Caught
		late += lagged(t, seed, 10, ticks).Caught
	}
	t.Logf("caught over %d games: %d reacting at once, %d reacting 10 ticks late", seeds, prompt, late)
	if late < seeds || 2*prompt >= late {
		t.Errorf("caught %d times reacting at once, %d reacting late; want late at least twice as often",
			prompt, late)
	}
}

func TestNobodyIsCaughtWithoutWarning(t *testing.T) {
	for seed := range int64(8) {
		e, err := NewEngine(Config{Seed: seed, Walls: 20})
		if err != nil {
			t.Fatal(err)
		}
		warned := map[string]int{} // tick of the last urgent event since the last catch
		catches := 0
		for tick := range 500 {
			for i, gs := range e.States() {
				// Players think at different cadences and never on urgency: plenty of catches.
				if tick%(3*i+2) == 0 {
					mustSubmit(t, e, gs.Player, Decide(gs))
				}
			}
			for _, ev := range e.Step() {
				switch ev.Kind {
				case EventPredatorAdjacent:
					warned[ev.Player] = ev.Tick
				case EventCaught:
					catches++
					if w, ok := warned[ev.Player]; !ok || w >= ev.Tick {
						t.Fatalf("seed %d: %s caught on tick %d without an earlier urgent event", seed, ev.Player, ev.Tick)
					}
					delete(warned, ev.Player)
				}
			}
		}
		for _, s := range e.Stats() {
			if len(s.Reactions)+s.Missed > s.Threats {
				t.Errorf("seed %d: %s answered %d and missed %d of %d urgent events", seed, s.Name,
					len(s.Reactions), s.Missed, s.Threats)
			}
		}
		if catches == 0 {
			t.Errorf("seed %d: no catches in 500 ticks; the test proves nothing", seed)
		}
	}
}

func TestFoodRespawns(t *testing.T) {
	e := arena(t, 9, 9, []Pos{{4, 4}}, nil, Config{Food: 1})
	for i := range e.food {
		e.food[i] = false
	}
	e.food[e.idx(Pos{5, 4})] = true
	mustSubmit(t, e, "ada", East)
	evs := e.Step()
	if len(evs) != 1 || evs[0].Kind != EventFoodEaten || evs[0].Pos != (Pos{5, 4}) {
		t.Fatalf("events %+v, want ada eating at (5,4)", evs)
	}
	if s := e.Stats()[0]; s.Score != 1 || s.Food != 1 {
		t.Errorf("score %d, food %d; want 1, 1", s.Score, s.Food)
	}
	for tick := 2; tick < 1+20; tick++ {
		if evs := e.Step(); len(evs) != 0 || len(e.World().Food) != 0 {
			t.Fatalf("tick %d: events %+v with %d food, want nothing before tick 21", tick, evs, len(e.World().Food))
		}
	}
	evs = e.Step()
	if len(evs) != 1 || evs[0].Kind != EventFoodSpawned || evs[0].Tick != 21 || len(e.World().Food) != 1 {
		t.Errorf("tick 21: events %+v, want the food back", evs)
	}
}

func TestStateShowsNearbyThingsNearestFirst(t *testing.T) {
	e := arena(t, 20, 20, []Pos{{10, 10}}, []Pos{{10, 14}, {1, 1}, {12, 10}}, Config{View: 5})
	e.food[e.idx(Pos{10, 7})] = true
	e.food[e.idx(Pos{11, 10})] = true
	e.food[e.idx(Pos{19, 19})] = true
	e.wall[e.idx(Pos{9, 10})] = true
	gs := mustState(t, e, "ada")
	wantFood := []Sighting{{Pos{11, 10}, 1}, {Pos{10, 7}, 3}}
	wantPred := []Sighting{{Pos{12, 10}, 2}, {Pos{10, 14}, 4}}
	if !slices.Equal(gs.Food, wantFood) || !slices.Equal(gs.Predators, wantPred) ||
		!slices.Equal(gs.Walls, []Pos{{9, 10}}) {
		t.Errorf("food %v, predators %v, walls %v; want %v, %v, [(9,10)]", gs.Food, gs.Predators, gs.Walls,
			wantFood, wantPred)
	}
}

// Personas submit and read state from their own goroutines while a driver steps the game.
func TestConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, err := NewEngine(Config{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, name := range e.Players() {
			wg.Go(func() {
				for range 100 {
					gs, err := e.State(name)
					if err != nil {
						t.Error(err)
						return
					}
					if err := e.Submit(name, Decide(gs)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		for range 100 {
			e.Step()
			_ = e.Scoreboard()
		}
		wg.Wait()
		if e.Tick() != 100 {
			t.Errorf("tick %d, want 100", e.Tick())
		}
	})
}

func BenchmarkStep(b *testing.B) {
	e, err := NewEngine(Config{Seed: 1, Walls: 20})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Step()
	}
}

func BenchmarkBaselineTick(b *testing.B) {
	e, err := NewEngine(Config{Seed: 1, Walls: 20})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, gs := range e.States() {
			_ = e.Submit(gs.Player, Decide(gs))
		}
		e.Step()
	}
}
