package sim

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"
)

// busyScenario asks for more replies than a tight budget allows: every
// message @mentions a persona, so every one is owed a model call.
func busyScenario(b Budget) *Scenario {
	sc := tiny()
	sc.Duration = 20 * time.Minute
	sc.Cores = 8 // slots to spare: only the budget can hold calls back
	sc.Traffic.Rate = 0.5
	sc.Traffic.Mention = 1
	sc.Budget = b
	return sc
}

// simulated runs the persona policy and returns the run, for its calls.
func simulated(t *testing.T, sc *Scenario) (*run, *Report) {
	t.Helper()
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := newRun(context.Background(), sc, Persona, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.simulate()
	if err != nil {
		t.Fatal(err)
	}
	return r, rep
}

// overBucket returns the first call start that a token bucket of rate
// perSec and the given burst, full at 0, could not have admitted: more
// calls started by then than burst + perSec*t. -1 if none.
func overBucket(r *run, perSec float64, burst int) int64 {
	var starts []int64
	for _, c := range r.calls {
		if c.start >= 0 {
			starts = append(starts, c.start)
		}
	}
	slices.Sort(starts)
	for i, s := range starts {
		if float64(i+1) > float64(burst)+perSec*float64(s)/float64(second)+1e-9 {
			return s
		}
	}
	return -1
}

func TestComputeBudgetHoldsModelCallsToTheBucket(t *testing.T) {
	const perSec, burst = 0.05, 3
	r, rep := simulated(t, busyScenario(Budget{PerSec: perSec, Burst: burst}))
	if at := overBucket(r, perSec, burst); at >= 0 {
		t.Fatalf("a call started at %v, more than %d + %v/s allow", time.Duration(at), burst, perSec)
	}
	b := rep.ComputeBudget
	if b == nil || b.PerSec != perSec || b.Burst != burst || b.Waited == 0 || b.WaitSeconds.Max <= 0 {
		t.Fatalf("compute_budget %+v, want calls that waited for a %v/s burst-%d bucket", b, perSec, burst)
	}
	// Calls wait for a token; none is dropped for want of one (a call
	// preempted for urgent work of its persona is cancelled, not dropped).
	if rep.ModelCalls < int(perSec*20*60) || rep.ModelCallsCompleted+rep.ModelCallsCancelled < rep.ModelCalls-burst-1 {
		t.Errorf("%d calls issued, %d completed: the budget should delay calls, not lose them", rep.ModelCalls, rep.ModelCallsCompleted)
	}

	// The same traffic unlimited breaks that bound: the budget is what held it.
	u, urep := simulated(t, busyScenario(Budget{PerSec: -1}))
	if overBucket(u, perSec, burst) < 0 || urep.ComputeBudget != nil {
		t.Errorf("unlimited run kept to the bucket (compute_budget %+v): the test shows nothing", urep.ComputeBudget)
	}
	if urep.MentionAnswerP95Seconds >= rep.MentionAnswerP95Seconds {
		t.Errorf("mention answer p95 %vs unlimited, %vs under the budget: waiting for tokens should show",
			urep.MentionAnswerP95Seconds, rep.MentionAnswerP95Seconds)
	}
}

func TestDefaultBudgetIsTheDaemons(t *testing.T) {
	sc := tiny().withDefaults()
	if sc.Budget != (Budget{PerSec: DefaultBudgetPerSec, Burst: DefaultBudgetBurst}) {
		t.Errorf("default budget %+v", sc.Budget)
	}
	_, rep := simulated(t, tiny())
	if b := rep.ComputeBudget; b == nil || b.PerSec != 2 || b.Burst != 20 {
		t.Errorf("compute_budget %+v, want persona serve's 2/s, burst 20", b)
	}
	for _, p := range []Policy{Direct, Seed} {
		rep, err := Run(context.Background(), tiny(), p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.ComputeBudget != nil {
			t.Errorf("%v has a compute budget %+v; only persona models the daemon's", p, rep.ComputeBudget)
		}
	}
}

// The governor sees the budget as the daemon's does: BudgetSpent is one
// minus the bucket's level, through the same Feed.
func TestBudgetSpentFeedsTheGovernor(t *testing.T) {
	sc := busyScenario(Budget{PerSec: 0.5, Burst: 4})
	r, err := newRun(context.Background(), sc, Persona, Options{})
	if err != nil {
		t.Fatal(err)
	}
	level := func() float64 { return r.budgetLevel() }
	steps := []struct {
		name  string
		at    time.Duration
		take  int
		level float64
		wait  time.Duration // of the last token taken
	}{
		{"full at the start", 0, 0, 1, 0},
		{"three of four taken", 0, 3, 0.25, 0},
		{"the last one", 0, 1, 0, 0},
		{"an empty bucket makes the next call wait for the refill", 0, 1, 0, 2 * time.Second},
		{"refilled by what is owed", 2 * time.Second, 0, 0, 0},
		{"one token a 2s later", 4 * time.Second, 0, 0.25, 0},
	}
	for _, st := range steps {
		r.now = int64(st.at)
		var wait int64
		for range st.take {
			wait = r.budgetWait()
		}
		if got := level(); math.Abs(got-st.level) > 1e-9 || time.Duration(wait) != st.wait {
			t.Fatalf("%s: level %v, wait %v; want %v, %v", st.name, got, time.Duration(wait), st.level, st.wait)
		}
		if s := r.governorSample(); math.Abs(s.BudgetSpent-(1-st.level)) > 1e-9 || s.Cores != sc.Cores {
			t.Fatalf("%s: governor sample %+v, want budget spent %v", st.name, s, 1-st.level)
		}
	}
}

// The persona policy's governor reads model calls as the daemon's meter
// counts them: from the slot (package slots) to done, so that the heat is
// slot occupancy; a call waiting for a slot is not heat.
func TestGovernorMetersCallsOnTheirSlot(t *testing.T) {
	sc := tiny()
	sc.Cores = 1
	r, err := newRun(context.Background(), sc, Persona, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.callModel(0, callReply, 0)
	r.callModel(1, callReply, 0) // waits for the one slot
	if s := r.governorSample(); s.InFlight != 1 {
		t.Fatalf("in flight %d, want 1: only the call on the slot counts, as in the daemon", s.InFlight)
	}
	r.advance(int64(3 * time.Second))
	if s := r.governorSample(); s.Busy != 3*time.Second {
		t.Errorf("busy %v after 3s of one slot held, want 3s", s.Busy)
	}
}
