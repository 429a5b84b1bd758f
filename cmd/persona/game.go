package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/personaos/persona/examples/game"
)

func newGameCmd() *cobra.Command {
	var (
		opts    game.Options
		seed    int64
		walls   int
		ascii   bool
		asJSON  bool
		outDir  string
		players string
		real    bool
	)
	cmd := &cobra.Command{
		Use:   "game",
		Short: "Play the forager game with AI players as personas, against a think-every-tick baseline",
		Long: `Plays a real-time grid game (foragers collect food while predators roam) at 20 ticks a
second. Each player is a persona: it gets the game state as an Item[GameState], thinks
on its own cadence (300 ms to 1 s: the seed's 3 to 10 s scaled to game time), is woken at
once when a predator comes within two moves (priority >= 0.8), tires when it thinks
hard and slows down, and costs nothing while idle. A thought plans ten ticks ahead and
stands in for a model call of --think (sleeping, not spinning).

Then the same board is replayed with every player thinking on every tick, and both are
reported: score, reaction ticks to urgent events (p50/p95), actions and thoughts per
player, wake-ups per second and think duty (handler busy time / wall).

By default the game is played in virtual time (game.RunVirtual: each player's life
cycle driven by the simulator's driver), so the same --seed prints the same report on
every run. --real-time plays it on the clock with real goroutines and timers
(game.Run), as a live game would run, and adds the CPU the decisions cost; its figures
vary a little from run to run. --ascii renders a real-time game live.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Game = game.Config{Seed: seed, Walls: walls}
			if players != "" {
				opts.Game.Players = strings.Split(players, ",")
			}
			opts.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			out := cmd.OutOrStdout()
			real = real || ascii
			if ascii {
				w := bufio.NewWriter(out)
				opts.OnTick = func(f game.Frame) { drawFrame(w, f) }
			} else if real && !asJSON {
				fmt.Fprintf(cmd.ErrOrStderr(), "playing %v of game time at %d ticks a second...\n", opts.Duration, game.TickRate)
			}
			var rep game.Report
			var err error
			if real {
				rep, err = game.Run(cmd.Context(), opts)
			} else {
				rep, err = game.RunVirtual(opts)
			}
			if err != nil && !errors.Is(err, cmd.Context().Err()) {
				return err
			}
			if outDir != "" {
				if err := writeGameFiles(outDir, rep, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printGame(out, rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.Duration, "duration", 30*time.Second, "game time to play")
	f.Int64Var(&seed, "seed", 0, "board seed: the same seed gives the same board and baseline game")
	f.IntVar(&walls, "walls", 0, "wall cells on the board")
	f.StringVar(&players, "players", "", "comma-separated player names (default ada,bo,cy,dee)")
	f.DurationVar(&opts.Think, "think", 24*time.Millisecond, "modelled think time of one decision")
	f.BoolVar(&ascii, "ascii", false, "render the board live in the terminal (a real-time game)")
	f.BoolVar(&real, "real-time", false, "play on the clock with real goroutines and timers instead of in virtual time")
	f.StringVar(&outDir, "out", "", "directory to write board.png (final board) and plot.png (score and energy over time)")
	f.BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	return cmd
}

// drawFrame clears the terminal and draws the board with each player's persona state.
func drawFrame(w *bufio.Writer, f game.Frame) {
	fmt.Fprint(w, "\x1b[H\x1b[2J", game.ASCII(f.World))
	for _, p := range f.Players {
		state := "resting"
		if p.Awake {
			state = "thinking"
		}
		fmt.Fprintf(w, "%-6s energy %4.2f %-11v cadence %-6v %s\n", p.Name, p.Energy, p.Mood, p.Cadence, state)
	}
	_ = w.Flush() // a terminal that went away is no reason to stop the game
}

func writeGameFiles(dir string, rep game.Report, log io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("game: %w", err)
	}
	board, plot := filepath.Join(dir, "board.png"), filepath.Join(dir, "plot.png")
	if err := game.PNG(rep.Board, board); err != nil {
		return fmt.Errorf("game: %w", err)
	}
	if err := game.PlotPNG(rep, plot); err != nil {
		return fmt.Errorf("game: %w", err)
	}
	fmt.Fprintf(log, "wrote %s and %s\n", board, plot)
	return nil
}

func printGame(w io.Writer, rep game.Report) {
	cfg := rep.Game
	if e, err := game.NewEngine(rep.Game); err == nil {
		cfg = e.Config() // the counts with their defaults filled in
	}
	fmt.Fprintf(w, "persona game: %dx%d board, %d players, %d predators, %d food, %d walls, seed %d\n",
		cfg.W, cfg.H, len(cfg.Players), cfg.Predators, cfg.Food, cfg.Walls, cfg.Seed)
	virtual := rep.Virtual
	if virtual {
		fmt.Fprintf(w, "%d ticks = %v of game time, played in virtual time; think time %v a decision\n\n", rep.Ticks, rep.GameTime, rep.Think)
	} else {
		fmt.Fprintf(w, "%d ticks = %v of game time in %v of wall time; think time %v a decision\n\n",
			rep.Ticks, rep.GameTime, rep.Wall.Round(time.Millisecond), rep.Think)
	}

	p, s := rep.Persona, rep.Baseline
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tpersonas\tthink every tick\t")
	row := func(name, a, b string) { fmt.Fprintf(tw, "%s\t%s\t%s\t\n", name, a, b) }
	row("total score", fmt.Sprint(p.Total), fmt.Sprint(s.Total))
	row("urgent events", fmt.Sprint(p.Threats), fmt.Sprint(s.Threats))
	row("reaction p50/p95 (ticks)", react(p.ReactP50, p.ReactP95), react(s.ReactP50, s.ReactP95))
	row("urgent events missed", fmt.Sprint(p.Missed), fmt.Sprint(s.Missed))
	row("caught", fmt.Sprint(p.Caught), fmt.Sprint(s.Caught))
	row("actions / player", fmt.Sprintf("%.0f", perPlayer(p.Actions, p)), fmt.Sprintf("%.0f", perPlayer(s.Actions, s)))
	row("thoughts / player / s", fmt.Sprintf("%.1f", p.ThoughtsPerSec), fmt.Sprintf("%.1f", s.ThoughtsPerSec))
	row("wake-ups / player / s", fmt.Sprintf("%.1f", p.WakesPerSec), fmt.Sprintf("%.1f", s.WakesPerSec))
	row("think duty (busy / wall)", pct(p.ThinkDuty), pct(s.ThinkDuty))
	if !virtual {
		row("CPU of decisions / wall", fmt.Sprintf("%.3f%%", 100*p.ComputeDuty), fmt.Sprintf("%.3f%%", 100*s.ComputeDuty))
	}
	row("fairness of actions (Jain)", fmt.Sprintf("%.3f", p.Jain), fmt.Sprintf("%.3f", s.Jain))
	_ = tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "player\tscore\tfood\tcaught\tactions\tthoughts\turgent\treact\twakes demand/scan\tduty\tenergy min/end\tmood\tbaseline: score\tactions\treact\t")
	for i, pl := range p.Players {
		bl := s.Players[i]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d/%d\t%s\t%.2f/%.2f\t%v\t%d\t%d\t%s\t\n",
			pl.Name, pl.Score, pl.Food, pl.Caught, pl.Actions, pl.Thoughts, pl.UrgentThoughts,
			react(pl.ReactP50, pl.ReactP95), pl.Wakes.Demand, pl.Wakes.Scan, pct(pl.Duty),
			pl.MinEnergy, pl.Energy, pl.Mood, bl.Score, bl.Actions, react(bl.ReactP50, bl.ReactP95))
	}
	_ = tw.Flush()
}

func react(p50, p95 int) string {
	if p50 < 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", p50, p95)
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

func perPlayer(n int, s game.Side) float64 {
	if len(s.Players) == 0 {
		return 0
	}
	return float64(n) / float64(len(s.Players))
}
