// Package bench measures the runtime's costs next to baselines run in the
// same process: the figures `persona bench` prints and the Go benchmarks
// check. Every measurement here is a benchmark, never a test assertion: the
// machines are shared and noisy, so what matters is the ratio to the
// baseline measured in the same run.
package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/personaos/persona"
)

// Latency is a distribution summary in microseconds.
type Latency struct {
	P50 float64 `json:"p50_us"`
	P99 float64 `json:"p99_us"`
	N   int     `json:"trials"`
}

func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	q := func(p float64) float64 {
		i := int(p * float64(len(ds)-1))
		return float64(ds[i]) / float64(time.Microsecond)
	}
	return Latency{P50: q(0.50), P99: q(0.99), N: len(ds)}
}

// UrgentWake delivers an urgent item to an idle persona, waits until it
// has handled it and gone back to sleep, and repeats: the time from
// delivery to the handler's start, over trials.
//
// With a positive linger the persona's loop goroutine is still parked on its
// wake-up channel between trials (warm); with a negative one it holds no
// goroutine and each wake-up starts one (cold).
func UrgentWake(trials int, linger time.Duration) (Latency, error) {
	rt := persona.NewRuntime(persona.RuntimeOptions{Linger: linger})
	started := make(chan time.Duration, 1)
	p, err := persona.Spawn(rt, "wake", persona.HandlerFunc[int](func(_ context.Context, it persona.Item[int]) (any, error) {
		started <- time.Since(it.Delivered)
		return nil, nil
	}), persona.Options{})
	if err != nil {
		return Latency{}, err
	}
	if err := rt.Start(); err != nil {
		return Latency{}, err
	}
	defer rt.Shutdown(context.Background())
	ds := make([]time.Duration, 0, trials)
	for i := range trials {
		// Wait for the persona to be idle: no loop goroutine, no timer.
		for p.Snapshot().Awake {
			runtime.Gosched()
		}
		if err := p.Deliver(persona.Item[int]{ID: strconv.Itoa(i), Priority: 0.9}); err != nil {
			return Latency{}, err
		}
		ds = append(ds, <-started)
	}
	if w := p.Snapshot().Wakes; w.Demand < uint64(trials) {
		return Latency{}, fmt.Errorf("bench: %d demand wake-ups for %d trials: the persona did not sleep between trials", w.Demand, trials)
	}
	return summarize(ds), nil
}

// PollingWake is the seed's baseline: a consumer that polls its queue every
// interval (the seed's pop() checks every 100 ms). Delivery lands at a
// random phase of the poll.
func PollingWake(trials int, interval time.Duration) Latency {
	var mu sync.Mutex
	var queue []time.Time
	got := make(chan time.Duration)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			q := queue
			queue = nil
			mu.Unlock()
			for _, at := range q {
				got <- time.Since(at)
			}
		}
	})
	ds := make([]time.Duration, 0, trials)
	for i := range trials {
		// Spread the deliveries over the poll's phase.
		time.Sleep(time.Duration(i*7919) % interval)
		mu.Lock()
		queue = append(queue, time.Now())
		mu.Unlock()
		ds = append(ds, <-got)
	}
	cancel()
	wg.Wait()
	return summarize(ds)
}

// Idle is the cost of n idle personas with empty inboxes and no scan.
type Idle struct {
	Personas        int     `json:"personas"`
	WakeupsPerSec   float64 `json:"wakeups_per_sec"`
	BytesPerPersona float64 `json:"bytes_per_persona"`
	Goroutines      int     `json:"goroutines"`
}

func heapAndStacks() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// IdlePersonas spawns n personas, starts them, lets one item per persona
// pass through (so each has lived once) and then watches them idle for the
// window: wake-ups per second and memory per persona.
func IdlePersonas(n int, window time.Duration) (Idle, error) {
	before := heapAndStacks()
	rt := persona.NewRuntime(persona.RuntimeOptions{})
	var handled atomic.Int64
	h := persona.HandlerFunc[int](func(context.Context, persona.Item[int]) (any, error) {
		handled.Add(1)
		return nil, nil
	})
	ps := make([]*persona.Persona[int], n)
	for i := range n {
		p, err := persona.Spawn(rt, "idle-"+strconv.Itoa(i), h, persona.Options{})
		if err != nil {
			return Idle{}, err
		}
		ps[i] = p
	}
	if err := rt.Start(); err != nil {
		return Idle{}, err
	}
	defer rt.Shutdown(context.Background())
	for _, p := range ps {
		p.Deliver(persona.Item[int]{ID: "warm", Priority: 0.9})
	}
	for handled.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	for _, p := range ps {
		for p.Snapshot().Awake {
			runtime.Gosched()
		}
	}
	wakes := func() uint64 {
		var s uint64
		for _, p := range ps {
			w := p.Snapshot().Wakes
			s += w.Demand + w.Dependency + w.Scan
		}
		return s
	}
	w0 := wakes()
	time.Sleep(window)
	w1 := wakes()
	after := heapAndStacks()
	res := Idle{
		Personas:        n,
		WakeupsPerSec:   float64(w1-w0) / window.Seconds(),
		BytesPerPersona: float64(int64(after)-int64(before)) / float64(n),
		Goroutines:      runtime.NumGoroutine(),
	}
	runtime.KeepAlive(ps)
	return res, nil
}

// ParkedBaseline is the conventional design: one goroutine per persona
// parked on its channel and a cadence ticker (the seed polls every 100 ms).
func ParkedBaseline(n int, poll, window time.Duration) Idle {
	before := heapAndStacks()
	var wakes atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	chans := make([]chan int, n)
	for i := range n {
		ch := make(chan int, 16)
		chans[i] = ch
		wg.Go(func() {
			t := time.NewTicker(poll)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-ch:
				case <-t.C:
				}
				wakes.Add(1)
			}
		})
	}
	time.Sleep(poll) // let them all park
	w0 := wakes.Load()
	time.Sleep(window)
	w1 := wakes.Load()
	after := heapAndStacks()
	res := Idle{
		Personas:        n,
		WakeupsPerSec:   float64(w1-w0) / window.Seconds(),
		BytesPerPersona: float64(int64(after)-int64(before)) / float64(n),
		Goroutines:      runtime.NumGoroutine(),
	}
	cancel()
	wg.Wait()
	runtime.KeepAlive(chans)
	return res
}

// Throughput delivers items from producers to personas (round robin) with
// a no-op handler and returns handled items per second. Items are urgent,
// so every one takes the demand path: the persona is woken for it rather
// than batched until its next scan.
func Throughput(personas, producers, perProducer int) (float64, error) {
	rt := persona.NewRuntime(persona.RuntimeOptions{})
	var handled atomic.Int64
	h := persona.HandlerFunc[int](func(context.Context, persona.Item[int]) (any, error) {
		handled.Add(1)
		return nil, nil
	})
	ps := make([]*persona.Persona[int], personas)
	for i := range personas {
		p, err := persona.Spawn(rt, "t"+strconv.Itoa(i), h, persona.Options{SliceItems: 64})
		if err != nil {
			return 0, err
		}
		ps[i] = p
	}
	if err := rt.Start(); err != nil {
		return 0, err
	}
	defer rt.Shutdown(context.Background())
	total := int64(producers * perProducer)
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range producers {
		wg.Go(func() {
			prefix := strconv.Itoa(w) + "-"
			for i := range perProducer {
				p := ps[(i+w)%personas]
				if err := p.Deliver(persona.Item[int]{ID: prefix + strconv.Itoa(i), Priority: 0.9, Payload: i}); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	// Every item must be handled: with no-op handlers and urgent items none
	// is declined or expires. Give up if progress stops, rather than hang.
	last, lastAt := int64(-1), time.Now()
	for n := handled.Load() + failed.Load(); n < total; n = handled.Load() + failed.Load() {
		if n != last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > 10*time.Second {
			return 0, fmt.Errorf("bench: throughput stalled at %d of %d items handled", n, total)
		}
		time.Sleep(100 * time.Microsecond)
	}
	el := time.Since(start)
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("bench: %d deliveries failed", f)
	}
	return float64(total) / el.Seconds(), nil
}

// FIFOBaseline is a plain actor runtime: a goroutine per actor reading a
// buffered channel in arrival order, no priority, no state, no accounting.
func FIFOBaseline(actors, producers, perProducer int) float64 {
	var handled atomic.Int64
	chans := make([]chan int, actors)
	var wg sync.WaitGroup
	for i := range actors {
		ch := make(chan int, 1024)
		chans[i] = ch
		wg.Go(func() {
			for range ch {
				handled.Add(1)
			}
		})
	}
	start := time.Now()
	var pw sync.WaitGroup
	for w := range producers {
		pw.Go(func() {
			for i := range perProducer {
				chans[(i+w)%actors] <- i
			}
		})
	}
	pw.Wait()
	total := int64(producers * perProducer)
	for handled.Load() < total {
		time.Sleep(100 * time.Microsecond)
	}
	el := time.Since(start)
	for _, ch := range chans {
		close(ch)
	}
	wg.Wait()
	return float64(total) / el.Seconds()
}
