package coord

import (
	"slices"
	"time"
)

// MinSamples is how many time-to-thought samples AdaptWindow needs before it
// trusts a p95; with fewer, a single slow thought would be the p95.
const MinSamples = 16

// windowHeadroom is the margin over the observed p95: a window exactly at p95
// would cut off one thinker in twenty by construction.
const windowHeadroom = 1.25

// AdaptWindow is the adaptive-window rule, pure so the simulator can reuse it:
// with fewer than MinSamples samples it returns initial; otherwise
// clamp(p95(samples) * 1.25, lo, hi), where p95 is the nearest-rank 95th
// percentile. Negative samples count as zero. It does not modify samples.
func AdaptWindow(samples []time.Duration, initial, lo, hi time.Duration) time.Duration {
	if len(samples) < MinSamples {
		return initial
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	// Nearest rank: the smallest sample with at least 95% of samples at or below it.
	i := (len(s)*95+99)/100 - 1
	p95 := max(s[i], 0)
	w := time.Duration(float64(p95) * windowHeadroom)
	return min(max(w, lo), hi)
}

// window tracks the last n time-to-thought samples in a ring and caches the
// window they imply. Not safe for concurrent use; Stream guards it.
type window struct {
	initial, lo, hi time.Duration
	fixed           bool
	ring            []time.Duration
	next            int
	cached          time.Duration
	dirty           bool
}

func newWindow(o Options) *window {
	return &window{
		initial: o.Window, lo: o.MinWindow, hi: o.MaxWindow,
		fixed:  o.FixedWindow,
		ring:   make([]time.Duration, 0, o.Samples),
		cached: o.Window,
	}
}

func (w *window) add(d time.Duration) {
	if w.fixed {
		return
	}
	if len(w.ring) < cap(w.ring) {
		w.ring = append(w.ring, d)
	} else {
		w.ring[w.next] = d
		w.next = (w.next + 1) % len(w.ring)
	}
	w.dirty = true
}

// current recomputes lazily: many items open between thoughts, and sorting
// n samples per Open would be wasted work.
func (w *window) current() time.Duration {
	if w.dirty {
		w.cached = AdaptWindow(w.ring, w.initial, w.lo, w.hi)
		w.dirty = false
	}
	return w.cached
}
