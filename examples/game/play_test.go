package game

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/state"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder keeps every persona event of a run.
type recorder struct {
	mu  sync.Mutex
	evs []persona.Event
}

func (r *recorder) Observe(e persona.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

func (r *recorder) events() []persona.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]persona.Event(nil), r.evs...)
}

// play runs a game inside a synctest bubble, so its game time passes at once, and returns the
// report and every persona event.
func play(t *testing.T, opts Options) (Report, []persona.Event) {
	t.Helper()
	var (
		rep Report
		rec recorder
	)
	synctest.Test(t, func(t *testing.T) {
		opts.Logger, opts.Observer = quiet, &rec
		var err error
		if rep, err = Run(context.Background(), opts); err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
	return rep, rec.events()
}

// The test: a predator coming within reach of a resting player wakes it at once, and it
// thinks in the same tick, so its answer is applied by the very next Step.
func TestUrgentEventIsAnsweredWithinOneTickOfTheWakeUp(t *testing.T) {
	rep, evs := play(t, Options{Game: Config{Seed: 1}, Duration: 20 * time.Second})
	p := rep.Persona
	if p.Threats < 20 {
		t.Fatalf("%d urgent events in 20 s; the game is not testing anything", p.Threats)
	}

	demandAt := map[string]time.Time{}
	woken, urgent := 0, 0
	for _, e := range evs {
		switch {
		case e.Kind == persona.EventWake && e.Trigger == persona.TriggerDemand:
			demandAt[e.Persona] = e.At
		case e.Kind == persona.EventHandled && e.Urgent && e.Took > 0: // a thought, not merged context
			urgent++
			if e.Wait >= TickDuration {
				t.Errorf("%s started on an urgent state %v after it was delivered, want within one tick", e.Persona, e.Wait)
			}
			if e.At.Equal(demandAt[e.Persona]) {
				woken++
				if e.Wait != 0 {
					t.Errorf("%s was woken by danger at %v but started thinking %v later, want at once",
						e.Persona, e.At, e.Wait)
				}
			}
		}
	}
	if woken == 0 || urgent < p.Threats {
		t.Errorf("%d urgent thoughts (%d right at a demand wake-up) for %d urgent events, want one per event at least and some wake-ups",
			urgent, woken, p.Threats)
	}
	for _, pl := range p.Players {
		for _, r := range pl.Reactions {
			if r != 1 {
				t.Errorf("%s reacted to an urgent event in %d ticks, want 1 (the Step after the wake-up)", pl.Name, r)
				break
			}
		}
		if pl.Missed != 0 || pl.UrgentWaitMax >= TickDuration {
			t.Errorf("%s missed %d urgent events, waited up to %v for one; want none missed, within a tick",
				pl.Name, pl.Missed, pl.UrgentWaitMax)
		}
	}
	if p.ReactP50 != 1 || p.ReactP95 != 1 {
		t.Errorf("reaction p50/p95 = %d/%d ticks, want 1/1", p.ReactP50, p.ReactP95)
	}
}

// No player is starved of turns, whatever the others are doing: over a minute of play every player
// acts about as often as the others (Jain's index of actions), never goes ten seconds without acting,
// eats, and answers every urgent event.
func TestNoPlayerStarves(t *testing.T) {
	rep, _ := play(t, Options{Game: Config{Seed: 2}, Duration: time.Minute})
	p := rep.Persona
	if p.Jain < 0.9 {
		t.Errorf("Jain's index of actions %.3f, want >= 0.9", p.Jain)
	}
	for _, pl := range p.Players {
		if pl.Food == 0 || pl.Missed != 0 || pl.MaxIdleTicks > 10*TickRate {
			t.Errorf("%s ate %d, missed %d urgent events, longest idle stretch %d ticks; want some food, none missed, at most %d ticks",
				pl.Name, pl.Food, pl.Missed, pl.MaxIdleTicks, 10*TickRate)
		}
		if !pl.Counts.Balanced() {
			t.Errorf("%s's inbox accounts do not add up: %+v", pl.Name, pl.Counts)
		}
	}
}

// With nothing to chase and nothing chasing, a player looks once, finds nothing worth its attention,
// and is never woken again: the driver hands it no news and it holds no timer.
func TestIdlePlayersCostNothing(t *testing.T) {
	rep, evs := play(t, Options{Game: Config{Predators: -1, Food: -1}, Duration: 30 * time.Second})
	p, b := rep.Persona, rep.Baseline
	if p.WakesPerSec > 0.5 || b.WakesPerSec != TickRate {
		t.Errorf("wake-ups per player per second: persona %.2f, baseline %.0f; want under 0.5 and %d",
			p.WakesPerSec, b.WakesPerSec, TickRate)
	}
	if p.ThinkDuty > 0.01 {
		t.Errorf("think duty %.4f, want under 1%%", p.ThinkDuty)
	}
	for _, e := range evs {
		if e.Kind == persona.EventWake && e.At.Sub(evs[0].At) > 5*time.Second {
			t.Errorf("%s woke (%v) %v into a game with nothing to do", e.Persona, e.Trigger, e.At.Sub(evs[0].At))
		}
	}
	last := p.Series[len(p.Series)-1].Thoughts
	for _, s := range p.Series {
		if s.Tick >= 5*TickRate {
			for i := range last {
				if s.Thoughts[i] != last[i] {
					t.Errorf("%s thought between tick %d and the end, want no thoughts after the first seconds", p.Players[i].Name, s.Tick)
				}
			}
		}
	}
}

// A player whose thoughts are expensive (400 ms each) tires, and as its energy falls its cadence
// grows from the fresh 300 to 500 ms to the tired 700 ms: it slows down rather than burn out.
func TestTiredPlayerSlowsDown(t *testing.T) {
	rep, evs := play(t, Options{Game: Config{Players: []string{"ada"}, Predators: -1, Food: 80},
		Think: 400 * time.Millisecond, Duration: 20 * time.Second})
	cfg := PlayerState()
	var rests []persona.Event
	for _, e := range evs {
		if e.Kind == persona.EventRest {
			rests = append(rests, e)
		}
	}
	if len(rests) < 5 {
		t.Fatalf("%d rests in 20 s, want a player that works and rests", len(rests))
	}
	if c := rests[0].Cadence; c > cfg.CadenceActive {
		t.Errorf("fresh player's first cadence %v, want at most %v", c, cfg.CadenceActive)
	}
	tired := 0
	for _, r := range rests {
		switch {
		case r.Mood == state.Tired:
			tired++
			if r.Cadence != cfg.CadenceTired {
				t.Errorf("tired player rests %v, want %v", r.Cadence, cfg.CadenceTired)
			}
		case r.Cadence >= cfg.CadenceTired:
			t.Errorf("%v player rests %v, want less than the tired %v", r.Mood, r.Cadence, cfg.CadenceTired)
		}
	}
	if pl := rep.Persona.Players[0]; tired == 0 || pl.MinEnergy >= cfg.TiredEnergy {
		t.Errorf("%d tired rests, lowest energy %.2f; want the player to tire below %.1f", tired, pl.MinEnergy, cfg.TiredEnergy)
	}
}

// The persona game next to the baseline on the same board: far fewer wake-ups and thoughts, less
// time thinking, the same one-tick reactions, and a score in the same league.
func TestRunComparesWithBaseline(t *testing.T) {
	rep, _ := play(t, Options{Game: Config{Seed: 3}, Duration: 20 * time.Second})
	p, b := rep.Persona, rep.Baseline
	if rep.Ticks != 20*TickRate || rep.GameTime != 20*time.Second || rep.Wall != 20*time.Second {
		t.Errorf("%d ticks, game time %v, wall %v; want %d, 20s, 20s", rep.Ticks, rep.GameTime, rep.Wall, 20*TickRate)
	}
	if b.ThoughtsPerSec != TickRate || b.WakesPerSec != TickRate || b.Thoughts != len(b.Players)*rep.Ticks {
		t.Errorf("baseline thinks %.1f/s, wakes %.1f/s, %d thoughts; want every tick", b.ThoughtsPerSec, b.WakesPerSec, b.Thoughts)
	}
	if want := rep.Think.Seconds() / TickDuration.Seconds(); math.Abs(b.ThinkDuty-want) > 1e-9 {
		t.Errorf("baseline think duty %.3f, want Think/TickDuration = %.3f", b.ThinkDuty, want)
	}
	if p.WakesPerSec > b.WakesPerSec/2 || p.ThoughtsPerSec > b.ThoughtsPerSec/2 || p.ThinkDuty > b.ThinkDuty/2 {
		t.Errorf("persona wakes %.1f/s, thinks %.1f/s, duty %.2f; want under half the baseline's %.0f, %.0f, %.2f",
			p.WakesPerSec, p.ThoughtsPerSec, p.ThinkDuty, b.WakesPerSec, b.ThoughtsPerSec, b.ThinkDuty)
	}
	if p.ReactP95 != 1 || b.ReactP95 != 1 {
		t.Errorf("reaction p95: persona %d, baseline %d ticks; want 1 and 1", p.ReactP95, b.ReactP95)
	}
	if p.Total < b.Total/2 {
		t.Errorf("persona score %d, baseline %d; want at least half", p.Total, b.Total)
	}
	if n := len(p.Series); n != 21 || len(b.Series) != n || p.Series[n-1].Total != p.Total || b.Series[n-1].Total != b.Total {
		t.Errorf("series of %d and %d samples ending at %d and %d; want 21 each, ending at the totals %d and %d",
			n, len(b.Series), p.Series[n-1].Total, b.Series[len(b.Series)-1].Total, p.Total, b.Total)
	}
	again, err := Baseline(rep.Game, rep.Ticks, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Total != b.Total || again.Threats != b.Threats || again.Actions != b.Actions {
		t.Errorf("baseline replay scored %d with %d threats, %d actions; want %d, %d, %d",
			again.Total, again.Threats, again.Actions, b.Total, b.Threats, b.Actions)
	}
}

func TestRun(t *testing.T) {
	t.Run("cancelled context ends the game early with what was played", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			frames := 0
			rep, err := Run(ctx, Options{Logger: quiet, OnTick: func(f Frame) {
				frames++
				if len(f.Players) != 4 || f.World.W != 32 {
					t.Errorf("frame with %d players on a %d wide board", len(f.Players), f.World.W)
				}
				if f.World.Tick == 40 {
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v, want context.Canceled", err)
			}
			if rep.Ticks != 40 || frames != 40 || rep.Baseline.Players[0].Thoughts != 40 {
				t.Errorf("%d ticks, %d frames, baseline %d thoughts; want 40 each", rep.Ticks, frames, rep.Baseline.Players[0].Thoughts)
			}
		})
	})
	t.Run("bad config is refused", func(t *testing.T) {
		if _, err := Run(context.Background(), Options{Game: Config{W: 2}}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Run: %v, want ErrInvalidConfig", err)
		}
	})
}

func TestPlot(t *testing.T) {
	rep, _ := play(t, Options{Game: Config{Seed: 4}, Duration: 3 * time.Second})
	var buf bytes.Buffer
	if err := WritePlot(rep, &buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("plot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 400 {
		t.Errorf("plot is %dx%d, want a readable size", b.Dx(), b.Dy())
	}
	path := filepath.Join(t.TempDir(), "plot.png")
	if err := PlotPNG(rep, path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("PlotPNG wrote %v, %v", fi, err)
	}
}

// RunVirtual is deterministic: the same options give the same report,
// and the game is played (players think, score and answer danger).
func TestRunVirtualIsDeterministic(t *testing.T) {
	opts := Options{Duration: 20 * time.Second, Game: Config{Seed: 7}}
	a, err := RunVirtual(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := RunVirtual(opts)
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatalf("two runs of seed 7 differ:\n%s\n%s", ja, jb)
	}
	p := a.Persona
	if a.Ticks != 400 || p.Thoughts == 0 || p.Total == 0 || p.Threats == 0 || p.ComputeDuty != 0 {
		t.Fatalf("persona side %+v over %d ticks: want thoughts, a score, threats met, no measured compute", p, a.Ticks)
	}
	other, err := RunVirtual(Options{Duration: 20 * time.Second, Game: Config{Seed: 8}})
	if err != nil {
		t.Fatal(err)
	}
	if jo, _ := json.Marshal(other); string(jo) == string(ja) {
		t.Fatal("seeds 7 and 8 gave the same report")
	}
}
