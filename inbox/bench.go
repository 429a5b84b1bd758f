package inbox

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// Mixed is the benchmark workload shared by this package's benchmarks and
// `persona bench`, so that both measure the same thing: a queue held at a
// steady depth while entries arrive and leave.
//
// Arrivals have fresh IDs, priorities drawn uniformly from [0, 1) (so about
// a fifth are urgent at the default line) and Enqueued times from a
// synthetic clock that advances 10 ms per arrival, so no clock is read.
// Fill brings the queue to its depth; each Step is then one arrival and one
// departure in random order, which keeps the depth within one of its target.
// With the depth equal to the capacity, every arrival that comes first finds
// the queue full: the eviction path is half the workload.
//
// A Mixed is deterministic for a given seed. It is not safe for concurrent
// use.
type Mixed struct {
	depth int
	rng   *rand.Rand
	now   time.Time
	n     uint64
}

// NewMixed returns the workload for a queue held at depth entries, with its
// random choices drawn from seed.
func NewMixed(depth int, seed uint64) *Mixed {
	return &Mixed{
		depth: depth,
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:   time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// Next returns the next arrival.
func (m *Mixed) Next() Entry[int] {
	m.n++
	m.now = m.now.Add(10 * time.Millisecond)
	return Entry[int]{
		ID:       strconv.FormatUint(m.n, 10),
		Priority: m.rng.Float64(),
		Enqueued: m.now,
		Value:    int(m.n),
	}
}

// Fill pushes depth arrivals.
func (m *Mixed) Fill(push func(Entry[int])) {
	for range m.depth {
		push(m.Next())
	}
}

// Step performs one arrival (push) and one departure (take), in random
// order. take reports whether it found an entry; the workload does not need
// it, but a take that finds nothing still counts as the departure.
func (m *Mixed) Step(push func(Entry[int]), take func() bool) {
	if m.rng.IntN(2) == 0 {
		push(m.Next())
		take()
		return
	}
	take()
	push(m.Next())
}

// BenchMixed runs the workload once: it fills the queue to depth, then
// times ops Steps and returns their total duration (the fill is not timed).
// It is what `persona bench` calls; divide by ops for the cost of one
// arrival plus one departure.
func BenchMixed(push func(Entry[int]), take func() bool, depth, ops int, seed uint64) time.Duration {
	m := NewMixed(depth, seed)
	m.Fill(push)
	start := time.Now()
	for range ops {
		m.Step(push, take)
	}
	return time.Since(start)
}
