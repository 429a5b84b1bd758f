package govern

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"
)

// ErrRunning is returned by Sampler.Run when the sampler is already running.
var ErrRunning = errors.New("govern: sampler already running")

// DefaultInterval is the Sampler's default time between samples.
const DefaultInterval = time.Second

// SamplerOptions configures a Sampler. The zero value is valid: a sample
// every second, averaged by a Feed over DefaultWindow, on GOMAXPROCS cores,
// measuring process CPU only.
type SamplerOptions struct {
	// Interval is the time between samples. Zero or negative means
	// DefaultInterval.
	Interval time.Duration
	// Window is the Feed's window (see FeedOptions). Zero means
	// DefaultWindow, the simulator's too.
	Window time.Duration
	// Cores is the number of cores the system may use. Zero means
	// runtime.GOMAXPROCS(0), which since Go 1.25 follows the container's
	// CPU limit, so a daemon in a two-core container measures against two
	// cores rather than the host's count.
	Cores int
	// Source supplies at now what only the runtime knows: Load and
	// BudgetSpent. Fields the Sampler measures itself replace the Source's
	// (see Sampler). Nil means Sample{}.
	Source func(now time.Time) Sample
	// Meter, if set, supplies InFlight and Busy.
	Meter *Meter
	// CPUTime returns the cumulative CPU time of what is governed. Nil means
	// the process's user plus system time (getrusage). Tests substitute
	// their own.
	CPUTime func() (time.Duration, error)
	// OnChange, if set, is called on the Sampler's goroutine after each
	// change of state. It should return quickly: the next sample waits.
	OnChange func(from, to Thermal)
	// Logger receives state changes (Info), samples (Debug) and a failure to
	// read CPU time (Warn, once). Nil means no logging.
	Logger *slog.Logger
}

// Sampler is the real-time driver of a Governor. Every Interval it takes a
// Sample: it starts from Source(now), sets Cores if the Source left it
// zero, always sets CPU from CPUTime, and sets InFlight and Busy from Meter
// if there is one; a Feed turns the sample into Inputs (the simulator runs
// the same Feed in virtual time); then it calls Observe and, on a change of
// state, logs it and calls OnChange.
//
// A Sampler starts no goroutines: Run blocks on the caller's goroutine, so
// the caller owns it and its lifetime is ctx's. Safe for concurrent use;
// only one Run at a time.
type Sampler struct {
	g       *Governor
	opts    SamplerOptions
	running atomic.Bool
}

// NewSampler returns a Sampler that drives g. It panics if g is nil.
func NewSampler(g *Governor, opts SamplerOptions) *Sampler {
	if g == nil {
		panic("govern: NewSampler with nil Governor")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Cores <= 0 {
		opts.Cores = runtime.GOMAXPROCS(0)
	}
	if opts.Source == nil {
		opts.Source = func(time.Time) Sample { return Sample{} }
	}
	if opts.CPUTime == nil {
		opts.CPUTime = processCPUTime
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sampler{g: g, opts: opts}
}

// Run samples every Interval until ctx is done, then returns nil: being
// stopped is not a failure. It returns ErrRunning at once if another Run of
// the same Sampler is active. Run takes a first sample at once to start the
// Feed's window; the first observation comes one Interval later, since a
// rate needs a window.
func (s *Sampler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)

	tick := time.NewTicker(s.opts.Interval)
	defer tick.Stop()

	f := NewFeed(FeedOptions{Window: s.opts.Window})
	var warned bool // CPU failure already logged
	now := time.Now()
	f.Observe(now, s.read(now, &warned))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now = time.Now()
		s.observe(f.Observe(now, s.read(now, &warned)))
	}
}

// read takes one Sample at now.
func (s *Sampler) read(now time.Time, warned *bool) Sample {
	smp := s.opts.Source(now)
	if smp.Cores <= 0 {
		smp.Cores = s.opts.Cores
	}
	c, err := s.opts.CPUTime()
	smp.CPU, smp.HasCPU = c, err == nil
	if err != nil && !*warned {
		*warned = true
		s.opts.Logger.Warn("governor: cannot read CPU time; CPU input off", "err", err)
	}
	if s.opts.Meter != nil {
		smp.InFlight, smp.Busy = s.opts.Meter.Read(now)
	}
	return smp
}

// observe hands in to the governor and reports a change of state.
func (s *Sampler) observe(in Inputs) {
	from, to, pressure := s.g.observe(in)
	// One line when the state changes, with the inputs that moved it; the
	// samples themselves are in /metrics (persona_governor_*).
	if from != to {
		s.opts.Logger.Info("governor: thermal state changed", "from", from, "to", to, "pressure", pressure,
			"load", in.Load, "duty", in.Duty, "cpu", in.CPU, "inflight", in.InFlight, "budget_spent", in.BudgetSpent)
		if s.opts.OnChange != nil {
			s.opts.OnChange(from, to)
		}
	}
}
