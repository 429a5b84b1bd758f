package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/personaos/persona"
)

// Policy names one way of running the personas.
type Policy string

// The three policies. See the package documentation for what each does.
const (
	// Direct is the seed's "old flow": every persona evaluates every
	// message with a model call the moment it arrives.
	Direct Policy = "direct"
	// Seed is the seed's design exactly as written.
	Seed Policy = "seed"
	// Persona is ours: the runtime's policy code with everything on.
	Persona Policy = "persona"
	// Bound is no design but a yardstick: the best any scheduler could do
	// for urgent work on the scenario's model slots. It serves only the
	// @mentions a person is owed, with reply calls of the same durations'
	// distribution, earliest deadline first (with one SLA for all, first
	// come first served), merging a persona's mentions that wait in the
	// same room into one call as the persona policy does, and nothing else
	// ever takes a slot.
	Bound Policy = "bound"
)

// Policies returns the policies in report order: the three designs, then
// the lower bound.
func Policies() []Policy { return []Policy{Direct, Seed, Persona, Bound} }

// ParsePolicies parses "all" or one policy name.
func ParsePolicies(s string) ([]Policy, error) {
	switch p := Policy(strings.ToLower(strings.TrimSpace(s))); p {
	case "all", "":
		return Policies(), nil
	case Direct, Seed, Persona, Bound:
		return []Policy{p}, nil
	}
	return nil, fmt.Errorf("sim: unknown policy %q (want all, direct, seed, persona or bound)", s)
}

// Options configures a run. The zero value is valid: the scenario's own
// duration, no time series, no progress, no logging.
type Options struct {
	// Duration, if positive, replaces the scenario's duration.
	Duration time.Duration
	// Series keeps per-second time series in the report (Report.Series),
	// which the plots need. It costs a few floats per virtual second.
	Series bool
	// Progress, if set, is called from the run's goroutine about every
	// 100 ms of wall time and once at the end. With RunAll it is called
	// from several goroutines at once.
	Progress func(Progress)
	// Logger receives a line per finished run (default: discard).
	Logger *slog.Logger
	// Observer, if set, receives the persona policy's final accounts as
	// the runtime reports them (handled, declined, expired, with wait and
	// priority), stamped with virtual time, so that the daemon's
	// Prometheus collectors (package metrics) can be fed by a simulation.
	// Called from the run's goroutine.
	Observer persona.Observer
	// OnReply, if set, is called with every reply a persona posts, in
	// order of time: who answered which message,
	// which older ones it covered, and when (a transcript of the run).
	// Called from the run's goroutine.
	OnReply func(Reply)
	// NoLane runs the persona policy's chat personas without an urgent
	// lane (persona.Options.Lane), as the daemon with Config.Persona.Lane
	// negative.
	NoLane bool
	// Lane, if positive, is how many urgent replies a chat persona may
	// have out in its lane (default 1), and LaneAlways opens the lane
	// whatever the slots: the variants the default was chosen against
	// (persona sim --lane, --lane-always).
	Lane       int
	LaneAlways bool
}

// Progress is a run's progress, for a progress bar.
type Progress struct {
	Policy     Policy
	Virtual    time.Duration // virtual time simulated so far
	Total      time.Duration // virtual time to simulate
	Deliveries int64         // deliveries so far
	Wall       time.Duration // wall time so far
	Done       bool
}

// ErrUnbalanced is returned when a run's accounts do not add up: a bug in
// the simulator, never a property of the scenario.
var ErrUnbalanced = errors.New("sim: accounts do not add up")

// Run simulates sc under one policy and returns its report. It is
// deterministic: the same scenario, policy and options give the same
// report, except WallSeconds. It returns ctx's error if ctx ends first.
func Run(ctx context.Context, sc *Scenario, p Policy, opts Options) (*Report, error) {
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	switch p {
	case Direct, Seed, Persona, Bound:
	default:
		return nil, fmt.Errorf("sim: unknown policy %q", p)
	}
	r, err := newRun(ctx, sc, p, opts)
	if err != nil {
		return nil, err
	}
	rep, err := r.simulate()
	if err != nil {
		return nil, err
	}
	if opts.Logger != nil {
		opts.Logger.Info("sim run", "scenario", rep.Scenario, "policy", rep.Policy,
			"deliveries", rep.Delivered, "wall_seconds", rep.WallSeconds)
	}
	return rep, nil
}

// RunAll runs the policies concurrently, one goroutine each, and returns
// their reports in the order of ps. Runs share nothing, so each is as
// deterministic as Run. The first error wins; the other runs are
// cancelled.
func RunAll(ctx context.Context, sc *Scenario, ps []Policy, opts Options) ([]*Report, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reps := make([]*Report, len(ps))
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			reps[i], errs[i] = Run(ctx, sc, p, opts)
			if errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return reps, nil
}
