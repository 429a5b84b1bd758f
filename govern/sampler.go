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

// DefaultInterval is the Sampler's default sample window.
const DefaultInterval = time.Second

// SamplerOptions configures a Sampler. The zero value is valid: a one-second
// window on GOMAXPROCS cores measuring process CPU only.
type SamplerOptions struct {
	// Interval is the sample window. Zero or negative means DefaultInterval.
	Interval time.Duration
	// Cores is the number of cores the system may use. Zero means
	// runtime.GOMAXPROCS(0), which since Go 1.25 follows the container's
	// CPU limit, so a daemon in a two-core container measures against two
	// cores rather than the host's count.
	Cores int
	// Source supplies what only the runtime knows, chiefly Load. Fields the
	// Sampler measures itself replace the Source's (see Sampler). Nil means
	// Inputs{}.
	Source func() Inputs
	// Meter, if set, supplies InFlight and Duty over each window.
	Meter *Meter
	// Budget, if set, supplies BudgetSpent (1 - its level).
	Budget *Budget
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

// Sampler is the real-time driver of a Governor. Every Interval it builds
// Inputs: it starts from Source(), sets Cores if the Source left it zero,
// always sets CPU from CPUTime, sets InFlight and Duty from Meter if there
// is one and BudgetSpent from Budget if there is one (CPU and Duty are
// fractions of those Cores over the actual elapsed window); then it calls
// Observe and, on a change of state, logs it and calls OnChange.
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
		opts.Source = func() Inputs { return Inputs{} }
	}
	if opts.CPUTime == nil {
		opts.CPUTime = processCPUTime
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sampler{g: g, opts: opts}
}

// window is the state carried from one sample to the next.
type window struct {
	start  time.Time
	cpu    time.Duration
	cpuOK  bool
	busy   time.Duration
	warned bool // CPU failure already logged
}

// Run samples every Interval until ctx is done, then returns nil: being
// stopped is not a failure. It returns ErrRunning at once if another Run of
// the same Sampler is active. The first observation comes one Interval
// after Run starts, since a rate needs a window.
func (s *Sampler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)

	tick := time.NewTicker(s.opts.Interval)
	defer tick.Stop()

	var w window
	s.begin(&w, time.Now())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		s.sample(&w, time.Now())
	}
}

func (s *Sampler) begin(w *window, now time.Time) {
	w.start = now
	w.cpu, w.cpuOK = s.readCPU(w)
	if s.opts.Meter != nil {
		_, w.busy = s.opts.Meter.Read(now)
	}
}

func (s *Sampler) readCPU(w *window) (time.Duration, bool) {
	c, err := s.opts.CPUTime()
	if err != nil {
		if !w.warned {
			w.warned = true
			s.opts.Logger.Warn("governor: cannot read CPU time; CPU input off", "err", err)
		}
		return 0, false
	}
	return c, true
}

// sample closes the window that began at w.start, observes it, and opens
// the next.
func (s *Sampler) sample(w *window, now time.Time) {
	elapsed := now.Sub(w.start)
	if elapsed <= 0 {
		return
	}
	in := s.opts.Source()
	if in.Cores <= 0 {
		in.Cores = s.opts.Cores
	}
	capacity := float64(in.Cores) * float64(elapsed) // core-nanoseconds in the window
	cpu, cpuOK := s.readCPU(w)
	in.CPU = 0
	if cpuOK && w.cpuOK {
		in.CPU = float64(cpu-w.cpu) / capacity
	}
	var busy time.Duration
	if s.opts.Meter != nil {
		in.InFlight, busy = s.opts.Meter.Read(now)
		in.Duty = float64(busy-w.busy) / capacity
	}
	if s.opts.Budget != nil {
		in.BudgetSpent = 1 - s.opts.Budget.LevelAt(now)
	}
	w.start, w.cpu, w.cpuOK, w.busy = now, cpu, cpuOK, busy

	from, to, pressure := s.g.observe(in)
	log := s.opts.Logger
	log.Debug("governor: sample", "state", to, "pressure", pressure,
		"load", in.Load, "duty", in.Duty, "cpu", in.CPU, "inflight", in.InFlight, "budget_spent", in.BudgetSpent)
	if from != to {
		log.Info("governor: thermal state changed", "from", from, "to", to, "pressure", pressure)
		if s.opts.OnChange != nil {
			s.opts.OnChange(from, to)
		}
	}
}
