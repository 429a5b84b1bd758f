package server

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// keeperProbe is one daemon's lease keeper with its personas' states
// recorded: which it consumes (active) and which still drain.
type keeperProbe struct {
	lk *leaseKeeper

	mu       sync.Mutex
	active   map[string]bool
	draining map[string]bool
	holding  map[string]bool // what the persona still holds (drained is false while set)
	events   []string
}

func newKeeperProbe(t *testing.T, b *bus, node string, names []string) *keeperProbe {
	t.Helper()
	k := &keeperProbe{active: map[string]bool{}, draining: map[string]bool{}, holding: map[string]bool{}}
	k.lk = newLeaseKeeper(b.leases, testLogger(t), leaseRecord{Daemon: node, Since: time.Now()}, defaultLeaseTTL, names, nil)
	k.lk.activate = func(name string) error {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.active[name], k.draining[name] = true, false
		k.events = append(k.events, "activate "+name)
		return nil
	}
	k.lk.deactivate = func(name string) {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.active[name], k.draining[name] = false, true
		k.events = append(k.events, "deactivate "+name)
	}
	k.lk.drained = func(name string) bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return !k.holding[name]
	}
	k.lk.finish = func(name string) {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.draining[name] = false
		k.events = append(k.events, "finish "+name)
	}
	return k
}

// running is the personas the daemon consumes or still drains.
func (k *keeperProbe) running() map[string]bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]bool{}
	for n := range k.active {
		if k.active[n] || k.draining[n] {
			out[n] = true
		}
	}
	return out
}

func (k *keeperProbe) eventsSoFar() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.events)
}

func (k *keeperProbe) consuming(name string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.active[name]
}

// exclusive fails the test if a persona runs in two daemons at once.
func exclusive(t *testing.T, round int, ks ...*keeperProbe) {
	t.Helper()
	where := map[string]int{}
	for _, k := range ks {
		for n := range k.running() {
			where[n]++
		}
	}
	for n, c := range where {
		if c > 1 {
			t.Fatalf("round %d: persona %s runs in %d daemons at once", round, n, c)
		}
	}
}

// rounds ticks every keeper in turn, n times, with the clock moving a
// tick a round, and checks exclusivity after each tick.
func rounds(t *testing.T, n int, now *time.Time, ks ...*keeperProbe) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		for _, k := range ks {
			k.lk.tick(ctx, *now)
			exclusive(t, i, ks...)
		}
		*now = now.Add(ks[0].lk.tickEvery())
	}
}

func TestLeasesSpreadAndHandOverOnlyWhatIsDrained(t *testing.T) {
	b := testBus(t)
	names := make([]string, 8)
	for i := range names {
		names[i] = fmt.Sprintf("p%d", i)
	}
	now := time.Now()
	a := newKeeperProbe(t, b, "a", names)
	rounds(t, 1, &now, a)
	if got := a.running(); len(got) != len(names) {
		t.Fatalf("a alone runs %v, want all %d personas", slices.Sorted(maps.Keys(got)), len(names))
	}

	// b joins, and one persona of those b prefers still holds work in a.
	c := newKeeperProbe(t, b, "b", names)
	var toB []string
	c.lk.readLive(context.Background())
	for _, n := range names {
		if p, _ := c.lk.preferred(n); p == "b" {
			toB = append(toB, n)
		}
	}
	if len(toB) == 0 || len(toB) == len(names) {
		t.Fatalf("rendezvous hashing gives b %v of %v: the test needs a split", toB, names)
	}
	busy := toB[0]
	a.mu.Lock()
	a.holding[busy] = true
	a.mu.Unlock()

	for i := 0; !slices.Contains(a.eventsSoFar(), "deactivate "+busy); i++ {
		if i == 2*handOffAfter+len(names) {
			t.Fatalf("a never started handing %s over to b; events %v", busy, a.eventsSoFar())
		}
		rounds(t, 1, &now, a, c)
	}
	// Within the drain's bound (a TTL, leaseTicksPerTTL ticks), b waits.
	rounds(t, leaseTicksPerTTL-2, &now, a, c)
	if c.consuming(busy) || !a.running()[busy] || a.consuming(busy) {
		t.Fatalf("persona %s holding work in a: a consuming %v, running %v; b consuming %v; want a draining it and b waiting",
			busy, a.consuming(busy), a.running()[busy], c.consuming(busy))
	}

	// Drained: the lease moves within two ticks.
	a.mu.Lock()
	a.holding[busy] = false
	a.mu.Unlock()
	rounds(t, 2, &now, a, c)
	if !c.consuming(busy) || a.running()[busy] {
		t.Fatalf("persona %s drained in a: b consuming %v, a running %v; want it moved to b", busy, c.consuming(busy), a.running()[busy])
	}
	rounds(t, 2*len(names), &now, a, c)
	for _, n := range names {
		want := slices.Contains(toB, n)
		if c.consuming(n) != want || a.consuming(n) == want {
			t.Errorf("persona %s: a consuming %v, b %v; want it where rendezvous hashing puts it (b: %v)", n, a.consuming(n), c.consuming(n), want)
		}
	}
	// a deactivated busy before it finished it.
	ae := a.eventsSoFar()
	if i, j := slices.Index(ae, "deactivate "+busy), slices.Index(ae, "finish "+busy); i < 0 || j < i {
		t.Errorf("a's events %v: want deactivate then finish of %s", ae, busy)
	}
}

func TestLeasesTakenBackAtOnceByTheSameNodeAfterARestart(t *testing.T) {
	b := testBus(t)
	names := []string{"p0", "p1", "p2"}
	now := time.Now()
	a := newKeeperProbe(t, b, "a", names)
	rounds(t, 1, &now, a)
	// a's process dies without releasing; a new run of node a finds its
	// leases held by "a" and takes them back on its first tick, without
	// waiting for the TTL.
	again := newKeeperProbe(t, b, "a", names)
	rounds(t, 1, &now, again)
	if got := again.running(); len(got) != len(names) {
		t.Fatalf("restarted a runs %v, want all of %v at once", slices.Sorted(maps.Keys(got)), names)
	}
	// Another node does not: the leases are a's until they expire.
	other := newKeeperProbe(t, b, "z", names)
	other.lk.tick(context.Background(), now)
	if got := other.running(); len(got) != 0 {
		t.Fatalf("node z took %v from a live a", slices.Sorted(maps.Keys(got)))
	}
}

func TestLeasesReleasedOnShutdownAreTakenOnTheNextTick(t *testing.T) {
	b := testBus(t)
	names := []string{"p0", "p1", "p2", "p3"}
	now := time.Now()
	a := newKeeperProbe(t, b, "a", names)
	c := newKeeperProbe(t, b, "b", names)
	rounds(t, handOffAfter+len(names)*3, &now, a, c)
	if len(a.running())+len(c.running()) != len(names) {
		t.Fatalf("a runs %v, b %v: want each persona once", a.running(), c.running())
	}
	a.lk.release(context.Background())
	// b sees the leases free; the ones b does not prefer it takes after
	// freeAfter ticks (a's presence is gone, so b prefers them all now).
	rounds(t, freeAfter, &now, c)
	if got := c.running(); len(got) != len(names) {
		t.Fatalf("after a released its leases b runs %v, want all of %v", slices.Sorted(maps.Keys(got)), names)
	}
}
