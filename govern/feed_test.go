package govern

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// at is one sample a test feeds, at t0 plus a number of seconds.
type at struct {
	sec float64
	s   Sample
}

func feedAll(f *Feed, samples []at) Inputs {
	var in Inputs
	for _, a := range samples {
		in = f.Observe(t0.Add(time.Duration(a.sec*float64(time.Second))), a.s)
	}
	return in
}

func busy(sec float64) time.Duration { return time.Duration(sec * float64(time.Second)) }

func TestFeed(t *testing.T) {
	const wrap = time.Duration(math.MaxInt64)
	for _, tc := range []struct {
		name    string
		window  time.Duration
		samples []at
		want    Inputs
	}{
		{"first sample has no window: no rates, levels as read",
			0, []at{{0, Sample{Busy: busy(5), Cores: 2, InFlight: 3, Load: 0.4, BudgetSpent: 0.5}}},
			Inputs{InFlight: 3, Cores: 2, Load: 0.4, BudgetSpent: 0.5}},
		{"before a whole window the rate is over what there is",
			0, []at{{0, Sample{Cores: 2}}, {1, Sample{Busy: busy(2), Cores: 2}}, {2, Sample{Busy: busy(2), Cores: 2}}},
			Inputs{Cores: 2, Duty: 0.5}},
		{"a full window forgets what came before it",
			0, []at{
				{0, Sample{Cores: 1}},
				{1, Sample{Busy: busy(1), Cores: 1}}, // busy the first second
				{6, Sample{Busy: busy(1), Cores: 1}},
				{11, Sample{Busy: busy(1), Cores: 1}}, // idle since: the window is [1s, 11s]
			},
			Inputs{Cores: 1}},
		{"the window ends where the totals are known",
			0, []at{
				{0, Sample{Cores: 1}},
				{4, Sample{Busy: busy(4), Cores: 1}},
				{12, Sample{Busy: busy(6), Cores: 1}}, // no mark at 2s: the window is [0s, 12s]
			},
			Inputs{Cores: 1, Duty: 0.5}},
		{"levels are the latest reading, not averaged",
			0, []at{{0, Sample{Load: 1, InFlight: 9, BudgetSpent: 1, Cores: 2}}, {1, Sample{Load: 0.1, Cores: 2}}},
			Inputs{Load: 0.1, Cores: 2}},
		{"duty uses the latest cores",
			0, []at{{0, Sample{Cores: 1}}, {2, Sample{Busy: busy(2), Cores: 4}}},
			Inputs{Cores: 4, Duty: 0.25}},
		{"unknown cores: no rates",
			0, []at{{0, Sample{}}, {1, Sample{Busy: busy(1), InFlight: 2, CPU: time.Second, HasCPU: true}}},
			Inputs{InFlight: 2}},
		{"a wrapped busy total still differences exactly",
			0, []at{{0, Sample{Busy: wrap, Cores: 1}}, {1, Sample{Busy: wrap + busy(0.5), Cores: 1}}},
			Inputs{Cores: 1, Duty: 0.5}},
		{"a counter that falls reads as no work",
			0, []at{{0, Sample{Busy: busy(5), Cores: 1}}, {1, Sample{Busy: busy(1), Cores: 1}}},
			Inputs{Cores: 1}},
		{"a clock stepped back restarts the window",
			0, []at{{5, Sample{Cores: 1}}, {6, Sample{Busy: busy(1), Cores: 1}}, {3, Sample{Busy: busy(1), Cores: 1, Load: 0.2}}},
			Inputs{Cores: 1, Load: 0.2}},
		{"two samples at one instant: the second restarts the window",
			0, []at{{0, Sample{Cores: 1}}, {1, Sample{Busy: busy(1), Cores: 1}}, {1, Sample{Busy: busy(1), Cores: 1}}},
			Inputs{Cores: 1}},
		{"cpu over the window like duty",
			0, []at{{0, Sample{Cores: 2, HasCPU: true}}, {4, Sample{Cores: 2, CPU: busy(2), HasCPU: true}}},
			Inputs{Cores: 2, CPU: 0.25}},
		{"cpu not read now: zero",
			0, []at{{0, Sample{Cores: 2, HasCPU: true}}, {4, Sample{Cores: 2, CPU: busy(2)}}},
			Inputs{Cores: 2}},
		{"cpu not read at the window's start: measured from the oldest reading",
			0, []at{{0, Sample{Cores: 1}}, {2, Sample{Cores: 1, CPU: busy(10), HasCPU: true}}, {4, Sample{Cores: 1, CPU: busy(11), HasCPU: true}}},
			Inputs{Cores: 1, CPU: 0.5}},
		{"a shorter window answers sooner",
			2 * time.Second, []at{{0, Sample{Cores: 1}}, {1, Sample{Busy: busy(1), Cores: 1}}, {2, Sample{Busy: busy(1), Cores: 1}}, {3, Sample{Busy: busy(1), Cores: 1}}},
			Inputs{Cores: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := feedAll(NewFeed(FeedOptions{Window: tc.window}), tc.samples)
			if !closeInputs(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func closeInputs(a, b Inputs) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return a.InFlight == b.InFlight && a.Cores == b.Cores && near(a.Load, b.Load) && near(a.Duty, b.Duty) &&
		near(a.CPU, b.CPU) && near(a.BudgetSpent, b.BudgetSpent)
}

// The sliding window is the mean of the last Window's per-second duties,
// which is what the simulator computed by hand before it ran a Feed.
func TestFeedIsTheMeanOfTheLastWindow(t *testing.T) {
	var f Feed // the zero value: DefaultWindow
	if f.Window() != DefaultWindow {
		t.Fatalf("zero Feed window %v, want %v", f.Window(), DefaultWindow)
	}
	perSecond := []float64{1, 0, 0.5, 2, 0.25, 1, 1, 0, 0, 0.75, 1.5, 0, 0.5, 0.1, 0.9, 1, 0.3}
	const cores = 2
	var total time.Duration
	f.Observe(t0, Sample{Cores: cores})
	for i, d := range perSecond {
		total += time.Duration(d * cores * float64(time.Second))
		in := f.Observe(t0.Add(time.Duration(i+1)*time.Second), Sample{Busy: total, Cores: cores})
		n := min(i+1, int(DefaultWindow/time.Second))
		var sum float64
		for _, x := range perSecond[i+1-n : i+1] {
			sum += x
		}
		if want := sum / float64(n); math.Abs(in.Duty-want) > 1e-9 {
			t.Fatalf("second %d: duty %v, want the mean of the last %d seconds %v", i+1, in.Duty, n, want)
		}
	}
	// Memory stays bounded by one window of samples.
	for i := range 1000 {
		f.Observe(t0.Add(time.Duration(100+i)*time.Second), Sample{Cores: cores})
	}
	if n := len(f.marks); n > int(DefaultWindow/time.Second)+1 {
		t.Errorf("%d marks kept for a %v window of one-second samples", n, DefaultWindow)
	}
}
