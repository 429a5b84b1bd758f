package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/metrics"
	"github.com/personaos/persona/scenarios"
	"github.com/personaos/persona/server"
	"github.com/personaos/persona/sim"
)

// newSimCmd is `persona sim`: the discrete-event simulator.
func newSimCmd() *cobra.Command {
	var (
		policy   string
		asJSON   bool
		markdown bool
		plotDir  string
		duration time.Duration
		progress bool
		metricsF string
		configF  string
		trafficF string
		rules    ruleFlags
		seedsF   string
		lane     int
		laneOpen bool
	)
	cmd := &cobra.Command{
		Use:   "sim [FILE]",
		Short: "Simulate personas in virtual time and compare the direct, seed and persona policies with the lower bound",
		Long: `Simulate a scenario (a YAML file; without one, the embedded overload-burst
scenario) in virtual time under the direct, seed and persona policies, which
run the same policy code as the real runtime, and compare them.

Embedded scenarios: ` + strings.Join(embedded(), ", ") + `
(name one with its file name, e.g. "persona sim steady.yaml", when no such
file exists in the current directory).

--config FILE simulates a persona file as "persona serve --config FILE" runs
it, with the daemon's defaults, under the traffic of --traffic FILE (a
scenario's fields without personas) or else this default traffic:

` + sim.DefaultTraffic + `
The flags --k, --reply-budget, --quiet-after, --max-depth, --coord-window,
--max-window, --budget and --budget-burst are persona serve's, with its
defaults; given, they override the scenario's or the persona file's setting.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := sim.ParsePolicies(policy)
			if err != nil {
				return err
			}
			var sc *sim.Scenario
			switch {
			case configF != "" && len(args) == 1:
				return errors.New("sim: give a scenario FILE or --config, not both")
			case configF != "":
				if sc, err = personaScenario(configF, trafficF); err != nil {
					return err
				}
			case trafficF != "":
				return errors.New("sim: --traffic needs --config (a scenario file has its own traffic)")
			default:
				name := scenarios.Default
				if len(args) == 1 {
					name = args[0]
				}
				if sc, err = loadScenario(name); err != nil {
					return err
				}
			}
			if err := rules.apply(cmd, sc); err != nil {
				return err
			}
			if lane < 0 {
				return fmt.Errorf("--lane %d: want 0 (no urgent lane) or more", lane)
			}
			opts := sim.Options{Duration: duration, Series: plotDir != "", Lane: lane, NoLane: lane == 0, LaneAlways: laneOpen}
			var reg *prometheus.Registry
			if metricsF != "" {
				// The daemon's own collectors, fed by the persona policy's
				// final accounts, so a simulation and a live daemon read the
				// same way in the same dashboards.
				reg = prometheus.NewRegistry()
				m, err := metrics.New(reg, metrics.Options{SLA: sc.SLA.Urgent})
				if err != nil {
					return err
				}
				opts.Observer = m
			}
			stderr := cmd.ErrOrStderr()
			if seedsF != "" {
				// One run per seed, summarized: a figure that holds on one
				// seed is not a claim.
				seeds, err := sim.ParseSeeds(seedsF)
				if err != nil {
					return err
				}
				if plotDir != "" || metricsF != "" {
					return errors.New("sim: --seeds prints a table over seeds; --plot and --metrics take one seed")
				}
				runs, err := sim.RunSeeds(cmd.Context(), sc, ps, seeds, opts)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(runs)
				}
				return sim.WriteSeedsMarkdown(cmd.OutOrStdout(), seeds, runs)
			}
			var bar *progressBar
			if progress || isTerminal(stderr) {
				bar = newProgressBar(stderr, len(ps))
				opts.Progress = bar.update
			}
			reps, err := sim.RunAll(cmd.Context(), sc, ps, opts)
			if bar != nil {
				bar.finish()
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if reg != nil {
				if err := prometheus.WriteToTextfile(metricsF, reg); err != nil {
					return fmt.Errorf("sim: metrics: %w", err)
				}
				fmt.Fprintln(stderr, "wrote", metricsF)
			}
			if plotDir != "" {
				files, err := sim.WritePlots(plotDir, reps)
				if err != nil {
					return err
				}
				for _, f := range files {
					fmt.Fprintln(stderr, "wrote", f)
				}
			}
			switch {
			case asJSON:
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(reps)
			case markdown:
				return sim.WriteMarkdown(out, reps)
			}
			return sim.WriteSummary(out, reps)
		},
	}
	f := cmd.Flags()
	f.StringVar(&policy, "policy", "all", "policy to run: all, direct, seed, persona or bound (the lower bound for urgent work)")
	f.IntVar(&lane, "lane", 1, "urgent replies a persona may have out in its urgent lane (0: no lane)")
	f.BoolVar(&laneOpen, "lane-always", false, "open the urgent lane whatever the model slots (default: only while a call made now would start now)")
	f.StringVar(&seedsF, "seeds", "", "run every seed of a range (e.g. 1-20) and print a Markdown table over them (median and range, or totals)")
	f.BoolVar(&asJSON, "json", false, "print one JSON report per policy")
	f.BoolVar(&markdown, "markdown", false, "print the comparison as a Markdown table")
	f.StringVar(&plotDir, "plot", "", "write PNG plots into this directory")
	f.DurationVar(&duration, "duration", 0, "override the scenario's virtual duration (e.g. 30m)")
	f.BoolVar(&progress, "progress", false, "show a progress bar on stderr even when it is not a terminal")
	f.StringVar(&metricsF, "metrics", "", "write the persona policy's figures in Prometheus text format to this file, from the same collectors as the daemon's /metrics")
	f.StringVar(&configF, "config", "", "simulate this persona file (persona serve --config) instead of a scenario")
	f.StringVar(&trafficF, "traffic", "", "with --config: the traffic file (a scenario without personas; default: the traffic shown above)")
	rules.register(f, "answer each pending message of a room separately (not modelled by the simulator yet)")
	return cmd
}

// personaScenario is the scenario of `persona sim --config`: the persona
// file under a traffic file's traffic, or sim.DefaultTraffic.
func personaScenario(configF, trafficF string) (*sim.Scenario, error) {
	specs, err := chat.LoadPersonas(configF)
	if err != nil {
		return nil, err
	}
	var tr *sim.Scenario
	if trafficF != "" {
		tr, err = sim.LoadTraffic(trafficF)
	} else {
		tr, err = sim.ParseTraffic("default traffic", []byte(sim.DefaultTraffic))
	}
	if err != nil {
		return nil, err
	}
	return sim.FromPersonas(filepath.Base(configF), specs, tr), nil
}

// ruleFlags are the daemon's policy flags (persona serve's names and
// defaults) as the simulator takes them: a flag given overrides the
// scenario's setting, one not given leaves it.
type ruleFlags struct {
	k, replyBudget, maxDepth, burst    int
	quietAfter, coordWindow, maxWindow time.Duration
	budget                             float64
	noMerge                            bool
}

// register defines the flags on f, once for persona serve and persona sim,
// so that their names, defaults and help cannot drift apart. noMerge is the
// help of --no-merge, which differs: the simulator does not model it.
func (r *ruleFlags) register(f *pflag.FlagSet, noMerge string) {
	f.IntVar(&r.k, "k", server.DefaultK, "personas that answer a message mentioning nobody")
	f.IntVar(&r.replyBudget, "reply-budget", server.DefaultReplyBudget, "persona messages per room per minute")
	f.DurationVar(&r.quietAfter, "quiet-after", server.DefaultQuietAfter, "a room with no human message for this long stops answering personas")
	f.IntVar(&r.maxDepth, "max-depth", server.DefaultMaxDepth, "persona replies in a chain after which nobody answers")
	f.DurationVar(&r.coordWindow, "coord-window", server.DefaultCoordWindow, "initial coordination window, from the first thought")
	f.DurationVar(&r.maxWindow, "max-window", server.DefaultMaxWindow, "longest adaptive coordination window")
	f.BoolVar(&r.noMerge, "no-merge", false, noMerge)
	f.Float64Var(&r.budget, "budget", server.DefaultBudgetPerSec, "compute budget: model calls per second, all personas together (negative: unlimited)")
	f.IntVar(&r.burst, "budget-burst", server.DefaultBudgetBurst, "compute budget: model calls in a burst")
}

// config sets the daemon's configuration from the flags (all of them:
// their defaults are the daemon's).
func (r *ruleFlags) config(cfg *server.Config) {
	cfg.K, cfg.ReplyBudget, cfg.QuietAfter, cfg.MaxDepth = r.k, r.replyBudget, r.quietAfter, r.maxDepth
	cfg.CoordWindow, cfg.MaxWindow, cfg.NoMerge = r.coordWindow, r.maxWindow, r.noMerge
	cfg.BudgetPerSec, cfg.BudgetBurst = r.budget, r.burst
}

func (r *ruleFlags) apply(cmd *cobra.Command, sc *sim.Scenario) error {
	f := cmd.Flags()
	if f.Changed("no-merge") && r.noMerge {
		// The simulator's persona policy always merges a room's pending
		// items (the life cycle's coalesce); refusing beats a silent lie.
		return errors.New("sim: --no-merge is not modelled: the simulated persona policy always merges a room's pending messages")
	}
	for _, c := range []struct {
		name string
		bad  bool
	}{
		{"k", r.k < 1}, {"reply-budget", r.replyBudget < 1}, {"max-depth", r.maxDepth < 1},
		{"quiet-after", r.quietAfter <= 0}, {"coord-window", r.coordWindow <= 0}, {"max-window", r.maxWindow <= 0},
		{"budget", r.budget == 0}, {"budget-burst", r.burst < 1},
	} {
		if f.Changed(c.name) && c.bad {
			return fmt.Errorf("sim: --%s must be positive", c.name)
		}
	}
	set := func(name string, apply func()) {
		if f.Changed(name) {
			apply()
		}
	}
	set("k", func() { sc.Coordination.K = r.k })
	set("reply-budget", func() { sc.Rules.ReplyBudget = r.replyBudget })
	set("quiet-after", func() { sc.Rules.QuietAfter = r.quietAfter })
	set("max-depth", func() { sc.Rules.MaxDepth = r.maxDepth })
	set("coord-window", func() { sc.Coordination.Window = r.coordWindow })
	set("max-window", func() { sc.Coordination.MaxWindow = r.maxWindow })
	set("budget", func() { sc.Budget.PerSec = r.budget })
	set("budget-burst", func() { sc.Budget.Burst = r.burst })
	return nil
}

// loadScenario reads a file, or an embedded scenario by file name.
func loadScenario(name string) (*sim.Scenario, error) {
	sc, err := sim.LoadScenario(name)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return sc, err
	}
	data, eerr := scenarios.FS.ReadFile(name)
	if eerr != nil {
		data, eerr = scenarios.FS.ReadFile(name + ".yaml")
	}
	if eerr != nil {
		return nil, err // the file's own error names the path
	}
	return sim.ParseScenario(name, data)
}

func embedded() []string {
	ents, _ := scenarios.FS.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws one \r line on stderr for all runs: the share of
// virtual time done (the slowest run's) and deliveries per wall second.
type progressBar struct {
	w    io.Writer
	mu   sync.Mutex
	runs map[sim.Policy]sim.Progress
	n    int
	last time.Time
	drew bool
}

func newProgressBar(w io.Writer, runs int) *progressBar {
	return &progressBar{w: w, runs: map[sim.Policy]sim.Progress{}, n: runs}
}

func (b *progressBar) update(p sim.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.runs[p.Policy] = p
	now := time.Now()
	if now.Sub(b.last) < 100*time.Millisecond && !p.Done {
		return
	}
	b.last = now
	frac := 1.0
	var deliveries int64
	var wall time.Duration
	for _, r := range b.runs {
		if r.Total > 0 {
			frac = min(frac, float64(r.Virtual)/float64(r.Total))
		}
		deliveries += r.Deliveries
		wall = max(wall, r.Wall)
	}
	if len(b.runs) < b.n {
		frac = 0
	}
	const width = 30
	full := int(frac * width)
	rate := 0.0
	if wall > 0 {
		rate = float64(deliveries) / wall.Seconds()
	}
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%%  %d deliveries  %.0f/s ",
		strings.Repeat("#", full), strings.Repeat(".", width-full), frac*100, deliveries, rate)
	b.drew = true
}

func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drew {
		fmt.Fprintln(b.w)
	}
}
