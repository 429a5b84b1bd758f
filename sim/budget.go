package sim

import (
	"slices"

	"golang.org/x/time/rate"

	"github.com/personaos/persona/govern"
)

// The compute budget's defaults are persona serve's (server.DefaultBudgetPerSec
// and server.DefaultBudgetBurst, the --budget and --budget-burst flags); a
// test in cmd/persona holds them equal.
const (
	DefaultBudgetPerSec = 2  // model calls per second, all personas together
	DefaultBudgetBurst  = 20 // model calls in a burst
)

// Budget is the compute budget for the persona policy's model calls, the
// daemon's token bucket: PerSec tokens a second up to Burst, one token per
// call, taken before the call starts (waiting for one when the bucket is
// empty, as the daemon's rate.Limiter.Wait does). Zero fields take the
// defaults; a negative PerSec is unlimited, as the daemon's --budget. The
// direct and seed policies have no budget: they are other designs.
type Budget struct {
	PerSec float64
	Burst  int
}

// BudgetStats is what the compute budget did in a run (persona only).
type BudgetStats struct {
	PerSec float64 `json:"per_sec"`
	Burst  int     `json:"burst"`
	// Waited counts the model calls that waited for a token; WaitSeconds
	// summarises their waits.
	Waited      int       `json:"waited"`
	WaitSeconds Quantiles `json:"wait_seconds"`
	// LevelMin is the lowest fill of the bucket the governor sampled
	// (once a virtual second), 0..1; below 0.5 a persona's state doubles
	// its cadence.
	LevelMin float64 `json:"level_min"`
}

// newLimiter returns the persona policy's token bucket, full at the start
// as the daemon's is, or nil for an unlimited budget.
func newLimiter(b Budget) *rate.Limiter {
	if b.PerSec < 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(b.PerSec), max(b.Burst, 1))
}

// budgetWait takes a token for a call issued now and returns how long the
// call waits for it: x/time/rate's own reservation at a virtual time, so
// the bucket refills and queues waiters exactly as Limiter.Wait does in
// the daemon.
func (r *run) budgetWait() int64 {
	if r.limiter == nil {
		return 0
	}
	now := r.t(r.now)
	d := int64(r.limiter.ReserveN(now, 1).DelayFrom(now))
	if d > 0 {
		r.m.budgetWaits = append(r.m.budgetWaits, float64(d)/float64(second))
	}
	return d
}

// budgetLevel is the bucket's fill now, 0..1, as the daemon's budgetLevel:
// what state.Observe and the governor see.
func (r *run) budgetLevel() float64 {
	if r.limiter == nil {
		return 1
	}
	return min(1, max(0, r.limiter.TokensAt(r.t(r.now))/float64(r.limiter.Burst())))
}

func (r *run) budgetStats() *BudgetStats {
	if r.limiter == nil {
		return nil
	}
	w := slices.Clone(r.m.budgetWaits)
	slices.Sort(w)
	return &BudgetStats{PerSec: float64(r.limiter.Limit()), Burst: r.limiter.Burst(), Waited: len(w), WaitSeconds: quantiles(w), LevelMin: r.m.budgetMin}
}

// governorSample is what the persona policy's governor reads each virtual
// second: the daemon's Sampler reads its Meter (model calls from issue to
// done, budget and slot waits included, as the daemon's responder meters
// them) and its Source (inbox load, budget spent); cores are the model
// slots. The Feed then smooths it as the Sampler's does.
func (r *run) governorSample() govern.Sample {
	depth, capTotal := r.depth()
	inFlight, busy := r.meter.Read(r.t(r.now))
	return govern.Sample{
		Busy:        busy,
		InFlight:    inFlight,
		Cores:       r.sc.Cores,
		Load:        float64(depth) / float64(capTotal),
		BudgetSpent: 1 - r.budgetLevel(),
	}
}
