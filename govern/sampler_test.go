package govern

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeSystem is what a test controls: the Source's sample and a CPU clock.
type fakeSystem struct {
	in  atomic.Pointer[Sample]
	cpu atomic.Int64 // cumulative CPU time, ns

	mu      sync.Mutex
	changes []string
}

func newFakeSystem() *fakeSystem {
	f := &fakeSystem{}
	f.set(Sample{})
	return f
}

func (f *fakeSystem) set(in Sample)                   { f.in.Store(&in) }
func (f *fakeSystem) source(time.Time) Sample         { return *f.in.Load() }
func (f *fakeSystem) burn(d time.Duration)            { f.cpu.Add(int64(d)) }
func (f *fakeSystem) cpuTime() (time.Duration, error) { return time.Duration(f.cpu.Load()), nil }
func (f *fakeSystem) onChange(from, to Thermal) {
	f.mu.Lock()
	f.changes = append(f.changes, from.String()+">"+to.String())
	f.mu.Unlock()
}
func (f *fakeSystem) changeLog() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.changes, " ")
}

// start runs s until the returned stop is called, and returns once Run has
// taken its baseline and waits for the first tick; stop waits for Run to
// return and reports its error. Call it inside a synctest bubble.
func start(t *testing.T, s *Sampler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { err = s.Run(ctx) })
	synctest.Wait()
	return func() error { cancel(); wg.Wait(); return err }
}

func TestSamplerFollowsTheSystem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSystem()
		g := New(Policy{})
		// A one-second window, so that each step below is judged alone.
		s := NewSampler(g, SamplerOptions{Window: time.Second, Cores: 2, Source: f.source, CPUTime: f.cpuTime, OnChange: f.onChange})
		stop := start(t, s)

		// Each step sets what happens during the next one-second window,
		// lets the window close, and checks the state it produced.
		steps := []struct {
			name  string
			in    Sample
			burn  time.Duration // CPU used in the window, on 2 cores
			state Thermal
		}{
			{"quiet window stays nominal", Sample{Load: 0.1}, 100 * time.Millisecond, Nominal},
			{"filling inboxes are no heat", Sample{Load: 0.8}, 0, Nominal},
			{"cpu at most of the ceiling makes it fair", Sample{Load: 0.8}, 1100 * time.Millisecond, Fair},
			{"cpu past the ceiling makes it serious", Sample{Load: 0.8}, 1600 * time.Millisecond, Serious},
			{"a saturated machine is critical", Sample{}, 1900 * time.Millisecond, Critical},
			{"calm returns to nominal at once", Sample{}, 0, Nominal},
			{"and stays", Sample{}, 0, Nominal},
		}
		for _, st := range steps {
			f.set(st.in)
			f.burn(st.burn)
			time.Sleep(time.Second)
			synctest.Wait()
			if got := g.State(); got != st.state {
				t.Fatalf("%s: state %v, want %v", st.name, got, st.state)
			}
			in, _ := g.Last()
			if want := float64(st.burn) / float64(2*time.Second); math.Abs(in.CPU-want) > 1e-9 || in.Cores != 2 || in.Load != st.in.Load {
				t.Fatalf("%s: observed %+v, want CPU %v on 2 cores, load %v", st.name, in, want, st.in.Load)
			}
		}
		if err := stop(); err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
		want := "nominal>fair fair>serious serious>critical critical>nominal"
		if got := f.changeLog(); got != want {
			t.Errorf("OnChange calls:\n got %s\nwant %s", got, want)
		}
	})
}

func TestSamplerReadsMeterAndSmoothsOverTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSystem()
		f.set(Sample{CPU: time.Hour, HasCPU: true, InFlight: 99, Busy: time.Hour, BudgetSpent: 0.25}) // all but the budget replaced by measurements
		var m Meter
		g := New(Policy{})
		s := NewSampler(g, SamplerOptions{Cores: 2, Source: f.source, CPUTime: f.cpuTime, Meter: &m})
		stop := start(t, s)
		defer stop()

		m.Begin(time.Now()) // one handler busy for the whole first second
		time.Sleep(time.Second)
		synctest.Wait()
		in, pr := g.Last()
		want := Inputs{InFlight: 1, Cores: 2, Duty: 0.5, CPU: 0, BudgetSpent: 0.25}
		if in != want {
			t.Fatalf("first second observed %+v, want %+v", in, want)
		}
		if g.State() != Nominal || math.Abs(pr-0.5/0.7) > 1e-9 {
			t.Fatalf("state %v at pressure %v, want nominal at 0.5/0.7 (duty)", g.State(), pr)
		}

		// A second handler: both cores busy this second, but the rate is
		// over the window so far, (1+2)/(2*2): serious, not the critical
		// that one second alone (duty 1) would give.
		m.Begin(time.Now())
		time.Sleep(time.Second)
		synctest.Wait()
		in, _ = g.Last()
		if in.InFlight != 2 || in.Duty != 0.75 {
			t.Fatalf("second second observed %+v, want 2 in flight at duty 0.75", in)
		}
		if g.State() != Serious {
			t.Fatalf("state %v, want serious (0.75 > 0.7 ceiling)", g.State())
		}

		// Ten more seconds with both busy: the window holds only them.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if in, _ = g.Last(); in.Duty != 1 || g.State() != Critical {
			t.Fatalf("after a full window observed duty %v in %v, want 1 and critical", in.Duty, g.State())
		}
	})
}

func TestSamplerRunsOnceAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSystem()
		s := NewSampler(New(Policy{}), SamplerOptions{CPUTime: f.cpuTime})
		stop := start(t, s)
		if err := s.Run(t.Context()); !errors.Is(err, ErrRunning) {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}
		if err := stop(); err != nil {
			t.Fatalf("Run = %v", err)
		}
		stop = start(t, s) // stopped samplers may run again
		if err := stop(); err != nil {
			t.Errorf("Run after restart = %v", err)
		}
	})
}

func TestSamplerCPUFailureIsLoggedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		g := New(Policy{})
		s := NewSampler(g, SamplerOptions{
			Cores:   2,
			CPUTime: func() (time.Duration, error) { return 0, errors.New("no rusage") },
			Source:  func(time.Time) Sample { return Sample{CPU: time.Hour, HasCPU: true} },
			Logger:  slog.New(slog.NewTextHandler(&buf, nil)),
		})
		stop := start(t, s)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(buf.String(), "cannot read CPU time"); n != 1 {
			t.Errorf("CPU failure logged %d times, want once:\n%s", n, buf.String())
		}
		if in, _ := g.Last(); in.CPU != 0 || g.State() != Nominal {
			t.Errorf("observed CPU %v in %v; want 0 (unknown) and nominal", in.CPU, g.State())
		}
	})
}

func TestSamplerDefaults(t *testing.T) {
	s := NewSampler(New(Policy{}), SamplerOptions{})
	if s.opts.Interval != time.Second || s.opts.Window != 0 || s.opts.Cores != runtime.GOMAXPROCS(0) || s.opts.Source == nil || s.opts.CPUTime == nil || s.opts.Logger == nil {
		t.Errorf("defaults not filled in: %+v", s.opts)
	}
	if _, err := s.opts.CPUTime(); err != nil && runtime.GOOS != "windows" && runtime.GOOS != "plan9" && runtime.GOOS != "js" && runtime.GOOS != "wasip1" {
		t.Errorf("process CPU time: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("NewSampler(nil) did not panic")
		}
	}()
	NewSampler(nil, SamplerOptions{})
}

// The Source reads its levels at the sample's own time, so a budget level
// and the meter's totals describe the same instant.
func TestSamplerAsksTheSourceAtTheSampleTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked []time.Time
		s := NewSampler(New(Policy{}), SamplerOptions{
			CPUTime: func() (time.Duration, error) { return 0, nil },
			Source:  func(now time.Time) Sample { asked = append(asked, now); return Sample{} },
		})
		t0 := time.Now()
		stop := start(t, s)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		want := []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second)}
		if len(asked) != len(want) {
			t.Fatalf("Source asked at %v, want %v", asked, want)
		}
		for i := range want {
			if !asked[i].Equal(want[i]) {
				t.Fatalf("Source asked at %v, want %v", asked, want)
			}
		}
	})
}
