package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/personaos/persona/examples/vision"
)

func newVisionCmd() *cobra.Command {
	var (
		asJSON     bool
		out        string
		seed       uint64
		duration   time.Duration
		duty       float64
		noBaseline bool
	)
	cmd := &cobra.Command{
		Use:   "vision",
		Short: "Run the seed's mobile AR pipeline as personas on a synthetic camera",
		Long: `Renders a synthetic camera's walk through a room (30 fps, 20 s by default) and runs
the seed's mobile AR pipeline on it twice: as personas, fed in real time, each frame
with a deadline, under a governor that holds the CPU under a target; and as a
baseline that runs every stage on every frame. The personas are a novelty detector
on every frame, a line finder (edges and Hough transform) that engages only on new
territory, a plane segmenter that waits for lines, a semantic segmenter (floor /
wall / other) that waits for planes, and a lighting estimator. Every stage takes
every frame at once and declines what it need not work on; when the governor
measures the duty at its target, lighting is shed and the line finder waits for
more drift, by declining: no frame is left to expire.

Prints per-stage processed / skipped / expired, CPU time against the baseline,
latency, duty and quality. --out DIR writes overlay PNGs (lines red, floor green,
walls blue) of processed frames with the summary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			p := vision.New(vision.Options{
				Seed: seed, Duration: duration, DutyTarget: duty, Out: out,
				NoBaseline: noBaseline, Logger: log,
			})
			o := p.Options()
			fmt.Fprintf(cmd.ErrOrStderr(), "rendering %v of camera at %d fps...\n", o.Path.Duration().Round(time.Millisecond), o.Camera.FPS)
			if _, err := p.Frames(cmd.Context()); err != nil {
				return err
			}
			what := "the baseline, then the personas"
			if noBaseline {
				what = "the personas"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "running %s in real time for %v...\n", what, o.Path.Duration().Round(time.Millisecond))
			rep, err := p.Run(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			if err := rep.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			if out != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "overlay frames, summary.txt and report.json written to %s\n", out)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.StringVar(&out, "out", "", "write overlay PNGs of processed frames and the summary to `DIR`")
	f.Uint64Var(&seed, "seed", 1, "seed of the camera's walk")
	f.DurationVar(&duration, "duration", 20*time.Second, "length of the walk, run in real time")
	f.Float64Var(&duty, "duty", 0.05, "CPU target for the governor, a fraction of one core")
	f.BoolVar(&noBaseline, "no-baseline", false, "skip the baseline run")
	return cmd
}
