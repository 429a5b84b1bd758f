package deps

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder collects releases and, interleaved with them, events the test
// notes, so tests can assert on order.
type recorder struct {
	mu       sync.Mutex
	releases []Release
	events   []string
}

func (r *recorder) release(rel Release) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releases = append(r.releases, rel)
	r.events = append(r.events, "release "+rel.Persona+" "+rel.Key)
}

func (r *recorder) note(ev string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) take() []Release {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.releases
	r.releases = nil
	return out
}

// expectReleases checks (and consumes) the releases made since the last call.
func expectReleases(t *testing.T, r *recorder, want ...Release) {
	t.Helper()
	got := r.take()
	if len(got) != len(want) {
		t.Fatalf("releases = %+v, want %+v", got, want)
	}
	for i := range want {
		if !sameRelease(got[i], want[i]) {
			t.Errorf("release %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func sameRelease(a, b Release) bool {
	return a.Persona == b.Persona && a.Key == b.Key && a.Status == b.Status &&
		slices.EqualFunc(a.Inputs, b.Inputs, func(x, y Output) bool { return x == y })
}

func chain(t testing.TB) *Graph {
	return mustGraph(t, Node{Name: "a", Notifies: []string{"b"}}, Node{Name: "b", Notifies: []string{"c"}}, Node{Name: "c"})
}

func diamond(t testing.TB) *Graph {
	return mustGraph(t,
		Node{Name: "a"},
		Node{Name: "b", WaitsFor: []string{"a"}},
		Node{Name: "c", WaitsFor: []string{"a"}},
		Node{Name: "d", WaitsFor: []string{"b", "c"}},
	)
}

func TestPipelineReleasesStageAfterStage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		tr := NewTracker(chain(t), Options{}, r.release)
		defer tr.Close()

		tr.Begin("f1")
		expectReleases(t, r)
		tr.Finish("c", "f1", Done, "too early") // c was not handed f1: ignored
		tr.Finish("b", "f1", Done, "too early")
		expectReleases(t, r)

		tr.Finish("a", "f1", Done, "lines")
		expectReleases(t, r, Release{Persona: "b", Key: "f1", Status: Done, Inputs: []Output{{From: "a", Status: Done, Value: "lines"}}})
		tr.Finish("b", "f1", Done, "planes")
		expectReleases(t, r, Release{Persona: "c", Key: "f1", Status: Done, Inputs: []Output{{From: "b", Status: Done, Value: "planes"}}})
		if n := tr.Pending(); n != 0 {
			t.Errorf("Pending after last release = %d, want 0", n)
		}

		// Late and repeated finishes of a closed key release nobody again.
		tr.Finish("c", "f1", Done, nil)
		tr.Finish("a", "f1", Done, nil)
		tr.Begin("f1")
		time.Sleep(time.Minute)
		synctest.Wait()
		expectReleases(t, r)
		if n := tr.Pending(); n != 0 {
			t.Errorf("Pending after late finishes = %d, want 0", n)
		}
	})
}

// A small runtime: each persona works for a while on its own goroutine when
// released, then finishes with a value built from its inputs. Many keys are
// in flight at once.
func TestPipelineUnderConcurrentKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		var work sync.WaitGroup
		var tr *Tracker
		finish := func(persona, key string, after time.Duration, value string) {
			work.Go(func() {
				time.Sleep(after)
				r.note("finish " + persona + " " + key)
				tr.Finish(persona, key, Done, value)
			})
		}
		tr = NewTracker(chain(t), Options{Timeout: time.Second}, func(rel Release) {
			r.release(rel)
			if rel.Persona == "b" {
				finish("b", rel.Key, 300*time.Millisecond, rel.Inputs[0].Value.(string)+"/b")
			}
		})
		defer tr.Close()

		const keys = 20
		for k := range keys {
			key := "f" + strconv.Itoa(k)
			tr.Begin(key)
			finish("a", key, time.Duration(k%5)*100*time.Millisecond, key+"/a")
		}
		work.Wait()
		synctest.Wait()

		got := r.take()
		if len(got) != 2*keys {
			t.Fatalf("%d releases, want %d", len(got), 2*keys)
		}
		pos := func(ev string) int {
			i := slices.Index(r.events, ev)
			if i < 0 {
				t.Fatalf("no event %q", ev)
			}
			return i
		}
		for k := range keys {
			key := "f" + strconv.Itoa(k)
			if !(pos("finish a "+key) < pos("release b "+key) && pos("release b "+key) < pos("finish b "+key) && pos("finish b "+key) < pos("release c "+key)) {
				t.Errorf("key %s: events out of order: %q", key, r.events)
			}
		}
		for _, rel := range got {
			if rel.Status != Done {
				t.Errorf("%s %s released %v, want done", rel.Persona, rel.Key, rel.Status)
			}
			if rel.Persona == "c" && rel.Inputs[0].Value != rel.Key+"/a/b" {
				t.Errorf("c got %v for %s, want %s/a/b", rel.Inputs[0].Value, rel.Key, rel.Key)
			}
		}
		if n := tr.Pending(); n != 0 {
			t.Errorf("Pending = %d, want 0", n)
		}
	})
}

func TestStalledStagesReleaseDownstreamIncomplete(t *testing.T) {
	const timeout = 5 * time.Second // the default
	t.Run("stalled a releases b at timeout and c at twice it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := &recorder{}
			tr := NewTracker(chain(t), Options{}, r.release)
			defer tr.Close()

			tr.Begin("f1")
			time.Sleep(timeout - time.Nanosecond)
			synctest.Wait()
			expectReleases(t, r)
			time.Sleep(time.Nanosecond)
			synctest.Wait()
			expectReleases(t, r, Release{Persona: "b", Key: "f1", Status: Incomplete})
			if n := tr.Pending(); n != 1 {
				t.Errorf("Pending while c waits = %d, want 1", n)
			}

			time.Sleep(timeout - time.Nanosecond)
			synctest.Wait()
			expectReleases(t, r)
			time.Sleep(time.Nanosecond)
			synctest.Wait()
			expectReleases(t, r, Release{Persona: "c", Key: "f1", Status: Incomplete})
			if n := tr.Pending(); n != 0 {
				t.Errorf("Pending after all released = %d, want 0", n)
			}
		})
	})
	t.Run("b finishing after an incomplete release passes incomplete on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := &recorder{}
			tr := NewTracker(chain(t), Options{}, r.release)
			defer tr.Close()

			tr.Begin("f1")
			time.Sleep(timeout)
			synctest.Wait()
			expectReleases(t, r, Release{Persona: "b", Key: "f1", Status: Incomplete})
			time.Sleep(time.Second)
			tr.Finish("b", "f1", Done, "planes without lines")
			expectReleases(t, r, Release{Persona: "c", Key: "f1", Status: Incomplete,
				Inputs: []Output{{From: "b", Status: Incomplete, Value: "planes without lines"}}})
			time.Sleep(time.Hour)
			synctest.Wait()
			expectReleases(t, r)
		})
	})
	t.Run("source opened by its own finish still times out its sibling", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := &recorder{}
			g := mustGraph(t, Node{Name: "x"}, Node{Name: "y"}, Node{Name: "z", WaitsFor: []string{"x", "y"}})
			tr := NewTracker(g, Options{Timeout: time.Second}, r.release)
			defer tr.Close()

			tr.Finish("x", "k", Done, 1) // no Begin
			time.Sleep(time.Second)
			synctest.Wait()
			expectReleases(t, r, Release{Persona: "z", Key: "k", Status: Incomplete, Inputs: []Output{{From: "x", Status: Done, Value: 1}}})
		})
	})
}

func TestLateFinishStillReachesOpenBarrier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// w waits for x (a source) and z (behind y): x times out while z is
		// still working, then finishes late; w must get x's real output.
		g := mustGraph(t,
			Node{Name: "x", Notifies: []string{"w"}},
			Node{Name: "y", Notifies: []string{"z"}},
			Node{Name: "z", Notifies: []string{"w"}},
			Node{Name: "w"},
		)
		r := &recorder{}
		tr := NewTracker(g, Options{Timeout: 10 * time.Second}, r.release)
		defer tr.Close()

		tr.Begin("m")
		time.Sleep(time.Second)
		tr.Finish("y", "m", Done, "y")
		expectReleases(t, r, Release{Persona: "z", Key: "m", Status: Done, Inputs: []Output{{From: "y", Status: Done, Value: "y"}}})
		time.Sleep(9 * time.Second) // x's deadline: w still waits for z
		synctest.Wait()
		expectReleases(t, r)
		time.Sleep(500 * time.Millisecond) // z's own deadline is at 11s
		tr.Finish("x", "m", Done, "x late")
		expectReleases(t, r)
		tr.Finish("z", "m", Done, "z")
		expectReleases(t, r, Release{Persona: "w", Key: "m", Status: Done,
			Inputs: []Output{{From: "x", Status: Done, Value: "x late"}, {From: "z", Status: Done, Value: "z"}}})
	})
}

func TestDeclinedItemReleasesDependentsSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		tr := NewTracker(chain(t), Options{}, r.release)
		defer tr.Close()

		tr.Begin("m1")
		tr.Finish("a", "m1", Skipped, nil)
		expectReleases(t, r, Release{Persona: "b", Key: "m1", Status: Skipped, Inputs: []Output{{From: "a", Status: Skipped}}})
		tr.Finish("b", "m1", Done, "anyway")
		expectReleases(t, r, Release{Persona: "c", Key: "m1", Status: Skipped, Inputs: []Output{{From: "b", Status: Skipped, Value: "anyway"}}})
	})
}

func TestDiamondReleasesJoinOncePerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		tr := NewTracker(diamond(t), Options{}, r.release)
		defer tr.Close()

		const keys = 50
		var wg sync.WaitGroup
		for k := range keys {
			key := strconv.Itoa(k)
			wg.Go(func() {
				tr.Begin(key)
				tr.Finish("a", key, Done, "a"+key)
				var both sync.WaitGroup
				for _, p := range []string{"c", "b"} {
					both.Go(func() { tr.Finish(p, key, Done, p+key) })
				}
				both.Wait()
			})
		}
		wg.Wait()

		perKey := map[string]int{}
		for _, rel := range r.take() {
			if rel.Persona != "d" {
				continue
			}
			perKey[rel.Key]++
			want := Release{Persona: "d", Key: rel.Key, Status: Done, Inputs: []Output{
				{From: "b", Status: Done, Value: "b" + rel.Key},
				{From: "c", Status: Done, Value: "c" + rel.Key},
			}}
			if !sameRelease(rel, want) {
				t.Errorf("d release = %+v, want %+v", rel, want)
			}
		}
		for k := range keys {
			if n := perKey[strconv.Itoa(k)]; n != 1 {
				t.Errorf("d released %d times for key %d, want 1", n, k)
			}
		}
		if n := tr.Pending(); n != 0 {
			t.Errorf("Pending = %d, want 0", n)
		}
	})
}

func TestDiamondWithOneBranchStalled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		tr := NewTracker(diamond(t), Options{Timeout: time.Second}, r.release)
		defer tr.Close()

		tr.Finish("a", "k", Done, "a")
		r.take()
		tr.Finish("b", "k", Done, "b")
		expectReleases(t, r)
		time.Sleep(time.Second)
		synctest.Wait()
		expectReleases(t, r, Release{Persona: "d", Key: "k", Status: Incomplete, Inputs: []Output{{From: "b", Status: Done, Value: "b"}}})
		tr.Finish("c", "k", Done, "c")
		expectReleases(t, r)
	})
}

func TestMaxKeysEvictsOldestIncomplete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		tr := NewTracker(chain(t), Options{MaxKeys: 2}, r.release)
		defer tr.Close()

		tr.Begin("k1")
		tr.Finish("a", "k1", Done, "a1")
		r.take()
		tr.Begin("k2")
		expectReleases(t, r)
		tr.Begin("k3")
		// k1 goes: c is released at once although b never finished.
		expectReleases(t, r, Release{Persona: "c", Key: "k1", Status: Incomplete})
		if n := tr.Pending(); n != 2 {
			t.Errorf("Pending = %d, want 2", n)
		}
		tr.Finish("a", "k4", Done, "a4") // a source's finish opens a key too
		expectReleases(t, r,
			Release{Persona: "b", Key: "k2", Status: Incomplete},
			Release{Persona: "c", Key: "k2", Status: Incomplete},
			Release{Persona: "b", Key: "k4", Status: Done, Inputs: []Output{{From: "a", Status: Done, Value: "a4"}}},
		)
		if n := tr.Pending(); n != 2 {
			t.Errorf("Pending = %d, want 2", n)
		}
		tr.Finish("b", "k1", Done, nil) // evicted key stays closed
		expectReleases(t, r)
	})
}

func TestTombstonesAreBounded(t *testing.T) {
	var ts tombstones
	ts.max = 3
	for k := range 5 {
		ts.add(strconv.Itoa(k))
	}
	for k, want := range []bool{false, false, true, true, true} {
		if got := ts.has(strconv.Itoa(k)); got != want {
			t.Errorf("has(%d) = %v, want %v", k, got, want)
		}
	}
	if len(ts.set) != 3 || len(ts.ring) != 3 {
		t.Errorf("tombstones hold %d/%d keys, want 3", len(ts.set), len(ts.ring))
	}
}

func TestCloseWaitsForReleasesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		unblock := make(chan struct{})
		entered := make(chan struct{})
		var calls int
		tr := NewTracker(chain(t), Options{}, func(Release) {
			calls++
			close(entered)
			<-unblock
		})
		var wg sync.WaitGroup
		wg.Go(func() { tr.Finish("a", "k", Done, nil) })
		<-entered

		closed := make(chan struct{})
		wg.Go(func() { tr.Close(); close(closed) })
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a release was in flight")
		default:
		}
		close(unblock)
		wg.Wait()

		// After Close nothing is released, by calls or by timers.
		tr.Begin("k2")
		tr.Finish("a", "k3", Done, nil)
		time.Sleep(time.Hour)
		synctest.Wait()
		if calls != 1 {
			t.Errorf("%d releases, want 1", calls)
		}
		if n := tr.Pending(); n != 0 {
			t.Errorf("Pending after Close = %d, want 0", n)
		}
		tr.Close() // idempotent
	})
}

func TestCloseStopsPendingTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		tr := NewTracker(chain(t), Options{}, r.release)
		for k := range 10 {
			tr.Begin(strconv.Itoa(k))
		}
		tr.Close()
		time.Sleep(time.Hour)
		synctest.Wait()
		expectReleases(t, r)
	})
}

func TestReleaseMayCallFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []string
		var tr *Tracker
		tr = NewTracker(chain(t), Options{}, func(rel Release) {
			got = append(got, rel.Persona)
			tr.Finish(rel.Persona, rel.Key, Done, nil) // re-entrant: no deadlock
		})
		defer tr.Close()
		tr.Finish("a", "k", Done, nil)
		if !slices.Equal(got, []string{"b", "c"}) {
			t.Errorf("released %v, want [b c]", got)
		}
	})
}

func TestPanickingReleaseDoesNotStopOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []string
		tr := NewTracker(diamond(t), Options{}, func(rel Release) {
			got = append(got, rel.Persona)
			if rel.Persona == "b" {
				panic("boom")
			}
		})
		defer tr.Close()
		tr.Finish("a", "k", Done, nil)
		if !slices.Equal(got, []string{"b", "c"}) {
			t.Errorf("released %v, want [b c]", got)
		}
	})
}

func TestIgnoredCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		tr := NewTracker(chain(t), Options{}, r.release)
		defer tr.Close()

		tr.Finish("ghost", "k", Done, nil) // unknown persona
		tr.Finish("b", "k", Done, nil)     // dependent of a key never opened
		if n := tr.Pending(); n != 0 {
			t.Errorf("Pending = %d, want 0", n)
		}
		tr.Finish("a", "k", Done, 1)
		tr.Finish("a", "k", Done, 2) // duplicate
		expectReleases(t, r, Release{Persona: "b", Key: "k", Status: Done, Inputs: []Output{{From: "a", Status: Done, Value: 1}}})
	})
}

func TestGraphWithoutEdgesTracksNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGraph(t, Node{Name: "a"}, Node{Name: "b"})
		tr := NewTracker(g, Options{}, func(Release) { t.Error("unexpected release") })
		defer tr.Close()
		tr.Begin("k")
		tr.Finish("a", "k", Done, nil)
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := tr.Pending(); n != 0 {
			t.Errorf("Pending = %d, want 0", n)
		}
	})
}

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{Done: "done", Skipped: "skipped", Incomplete: "incomplete", Status(7): "Status(7)"} {
		if got := s.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

func BenchmarkChainKey(b *testing.B) {
	tr := NewTracker(chain(b), Options{}, func(Release) {})
	defer tr.Close()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		key := strconv.Itoa(i) // unique: closed keys are remembered
		i++
		tr.Begin(key)
		tr.Finish("a", key, Done, nil)
		tr.Finish("b", key, Done, nil)
	}
}

// The Tracker keeps one timer, on the earliest deadline of any open key: when
// that key closes early the timer must move on to the next key's deadline,
// and stop when no key is left.
func TestTrackerTimerFollowsTheEarliestOpenKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		tr := NewTracker(chain(t), Options{Timeout: 5 * time.Second}, r.release)
		defer tr.Close()

		tr.Begin("k1") // deadline 5s
		time.Sleep(time.Second)
		tr.Begin("k2") // deadline 6s
		time.Sleep(time.Second)
		tr.Finish("a", "k1", Done, nil)
		tr.Finish("b", "k1", Done, nil) // k1 closes at 2s
		r.take()
		time.Sleep(4*time.Second - time.Nanosecond) // just before k2's deadline
		synctest.Wait()
		expectReleases(t, r)
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		expectReleases(t, r, Release{Persona: "b", Key: "k2", Status: Incomplete})
		tr.Finish("b", "k2", Done, nil) // k2 closes: nothing is left to time out
		r.take()
		time.Sleep(time.Hour)
		synctest.Wait()
		expectReleases(t, r)
	})
}

// One policy, two clocks: random scripts of Begin and Finish calls, with
// time passing between them, give the same releases at the same instants
// whether the Tracker runs them on the (synctest) clock or Barriers is
// driven by hand with Expire at each NextDeadline.
func TestTrackerAgreesWithBarriers(t *testing.T) {
	type op struct {
		at      time.Duration
		begin   bool
		persona string
		key     string
		status  Status
	}
	type timed struct {
		at time.Duration
		r  Release
	}
	// Ops fall on multiples of 10ms and the timeout is 1003ms, so no call
	// lands on a deadline (up to the fourth stage after it) and "at the same
	// instant" never depends on whether the timer or the caller runs first.
	const timeout = 1003 * time.Millisecond
	opts := Options{Timeout: timeout, MaxKeys: 3}
	script := func(seed uint64, g *Graph) []op {
		rng := rand.New(rand.NewPCG(seed, 0))
		var ops []op
		at, keys := time.Duration(0), 0
		for range 60 {
			at += time.Duration(rng.IntN(40)) * 10 * time.Millisecond
			if keys == 0 || rng.IntN(4) == 0 {
				ops = append(ops, op{at: at, begin: true, key: "k" + strconv.Itoa(keys)})
				keys++
				continue
			}
			ops = append(ops, op{at: at, persona: g.names[rng.IntN(len(g.names))],
				key: "k" + strconv.Itoa(keys-1-rng.IntN(min(keys, 4))), status: Status(rng.IntN(3))})
		}
		return ops
	}
	for _, gc := range []struct {
		name  string
		graph func(testing.TB) *Graph
	}{{"chain", chain}, {"diamond", diamond}} {
		for seed := range uint64(20) {
			t.Run(gc.name+"/"+strconv.FormatUint(seed, 10), func(t *testing.T) {
				g := gc.graph(t)
				ops := script(seed, g)

				var core []timed
				b := NewBarriers(g, opts)
				for _, o := range ops {
					now := t0.Add(o.at)
					for next, ok := b.NextDeadline(); ok && !next.After(now); next, ok = b.NextDeadline() {
						for _, r := range b.Expire(next) {
							core = append(core, timed{next.Sub(t0), r})
						}
					}
					var rel []Release
					if o.begin {
						rel = b.Begin(now, o.key)
					} else {
						rel = b.Finish(now, o.persona, o.key, o.status, o.at)
					}
					for _, r := range rel {
						core = append(core, timed{o.at, r})
					}
				}
				for next, ok := b.NextDeadline(); ok; next, ok = b.NextDeadline() {
					for _, r := range b.Expire(next) {
						core = append(core, timed{next.Sub(t0), r})
					}
				}

				var real []timed
				synctest.Test(t, func(t *testing.T) {
					start := time.Now()
					var mu sync.Mutex
					tr := NewTracker(g, opts, func(r Release) {
						mu.Lock()
						defer mu.Unlock()
						real = append(real, timed{time.Since(start), r})
					})
					defer tr.Close()
					for _, o := range ops {
						time.Sleep(o.at - time.Since(start))
						synctest.Wait()
						if o.begin {
							tr.Begin(o.key)
						} else {
							tr.Finish(o.persona, o.key, o.status, o.at)
						}
					}
					time.Sleep(time.Hour)
					synctest.Wait()
				})

				if len(core) == 0 {
					t.Fatal("the script released nobody")
				}
				if len(real) != len(core) {
					t.Fatalf("tracker made %d releases, barriers %d:\n%v\n%v", len(real), len(core), real, core)
				}
				for i := range core {
					if real[i].at != core[i].at || !sameRelease(real[i].r, core[i].r) {
						t.Fatalf("release %d: tracker %v %+v, barriers %v %+v", i, real[i].at, real[i].r, core[i].at, core[i].r)
					}
				}
			})
		}
	}
}
