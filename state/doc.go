// Package state holds a persona's internal state (energy, attention, mood,
// inbox load, compute budget) and the policy that reads it: whether to
// engage an item, how long to rest, which cadence comes next.
//
// Every function is pure: it depends on the state, the Config and its
// arguments (durations and an explicit now), never on a clock, so the
// real-time runtime and the simulator run the same decisions and tests use
// tables of fixed values. The numbers default to the seed's
// (autonomous-persona-architecture.md): energy falls by duration/10s times
// complexity and recovers by rest/20s; attention fatigues by 10% per unit of
// work below 0.3 energy and recovers twice as fast as energy; moods
// overwhelmed > tired > active > idle; thresholds 0.9 / 0.5 (and energy >
// 0.2) / 0.3 / 0.1; cadences 10s / 7s / 5s / 3s, doubled when the compute
// budget is below 0.5. An item at or above the urgent line (0.8, inclusive)
// is always engaged: no starvation.
//
// A State is a plain value owned by one goroutine; copy it to publish it.
package state
