package server

import (
	"time"

	"github.com/personaos/persona/govern"
)

// The governor's feed: what the sampler reads of the daemon each tick.

// budgetLevel is the compute budget's fill at now, 0..1.
func (d *Daemon) budgetLevel(now time.Time) float64 {
	if d.limiter == nil {
		return 1
	}
	return min(1, max(0, d.limiter.TokensAt(now)/float64(d.limiter.Burst())))
}

// governorInputs is the sampler's source: total inbox load, the compute
// budget spent at now and the model slots as the cores (the meter counts
// model calls holding a slot). The sampler adds handler time and CPU, and
// its govern.Feed smooths them as the simulator's does.
func (d *Daemon) governorInputs(now time.Time) govern.Sample {
	var depth, capacity int
	for _, m := range d.members {
		c := m.p.Inbox().Counts()
		depth += c.Queued
		capacity += m.p.Inbox().Options().Capacity
	}
	s := govern.Sample{BudgetSpent: 1 - d.budgetLevel(now)}
	if d.slots != nil {
		// The meter counts calls on a slot: the heat is slot occupancy.
		_, s.Cores, _ = d.slots.Load()
	}
	if capacity > 0 {
		s.Load = float64(depth) / float64(capacity)
	}
	return s
}
