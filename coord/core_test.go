package coord

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is the origin of the fixed times the Core tests run at.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// op is one call on a Core at t0+at. Its decisions go into the test's log.
type op struct {
	at      time.Duration
	run     func(c *Core, now time.Time) ([]Decision, error)
	wantErr error
}

func openAt(at time.Duration, item, key string, expected, addressees []string) op {
	return op{at: at, run: func(c *Core, now time.Time) ([]Decision, error) {
		return c.Open(now, Opening{Item: item, Key: key, Expected: expected, Addressees: addressees}), nil
	}}
}

func unboundedAt(at time.Duration, item string, expected []string) op {
	return op{at: at, run: func(c *Core, now time.Time) ([]Decision, error) {
		return c.Open(now, Opening{Item: item, Expected: expected, Unbounded: true}), nil
	}}
}

func thinkAt(at time.Duration, persona, item string, conf float64, intent Intent) op {
	return op{at: at, run: func(c *Core, now time.Time) ([]Decision, error) {
		return c.Think(now, Thought{Persona: persona, Item: item, Confidence: conf, Intent: intent})
	}}
}

func addressedAt(at time.Duration, persona, item string) op {
	return op{at: at, run: func(c *Core, now time.Time) ([]Decision, error) {
		return c.Think(now, Thought{Persona: persona, Item: item, Intent: IntentObserve, Addressed: true})
	}}
}

func lateAt(at time.Duration, persona, item string) op {
	o := thinkAt(at, persona, item, 1, IntentRespond)
	o.wantErr = ErrClosedDecision
	return o
}

func withdrawAt(at time.Duration, persona, item string) op {
	return op{at: at, run: func(c *Core, now time.Time) ([]Decision, error) { return c.Withdraw(now, item, persona), nil }}
}

func leaveAt(at time.Duration, persona, item string) op {
	return op{at: at, run: func(c *Core, now time.Time) ([]Decision, error) { return c.Leave(now, item, persona), nil }}
}

func expireAt(at time.Duration) op {
	return op{at: at, run: func(c *Core, now time.Time) ([]Decision, error) { return c.Expire(now), nil }}
}

// summary is one line of a test's log: what a decision says, at which
// offset it closed.
func summary(d Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s@%v granted=%v", d.Item, d.Closed.Sub(t0), d.Granted)
	if d.TimedOut {
		b.WriteString(" timed-out")
	}
	if d.Evicted {
		b.WriteString(" evicted")
	}
	if len(d.Missing) > 0 {
		fmt.Fprintf(&b, " missing=%v", d.Missing)
	}
	return b.String()
}

// runCore runs ops in order on a new Core and returns it and the log.
func runCore(t *testing.T, opts Options, ops []op) (*Core, []string) {
	t.Helper()
	c := NewCore(opts)
	var log []string
	for i, o := range ops {
		ds, err := o.run(c, t0.Add(o.at))
		if !errors.Is(err, o.wantErr) || (err != nil && o.wantErr == nil) {
			t.Fatalf("op %d at %v: err %v, want %v", i, o.at, err, o.wantErr)
		}
		for _, d := range ds {
			log = append(log, summary(d))
		}
	}
	return c, log
}

var (
	ab  = []string{"a", "b"}
	abc = []string{"a", "b", "c"}
	ms  = time.Millisecond
	sec = time.Second
)

func TestCore(t *testing.T) {
	fixed := Options{FixedWindow: true, Window: sec}
	for _, tc := range []struct {
		name  string
		opts  Options
		ops   []op
		want  []string
		check func(t *testing.T, c *Core)
	}{
		{
			name: "closes when every expected thinker has thought",
			opts: fixed,
			ops: []op{
				openAt(0, "m1", "r", ab, nil),
				thinkAt(100*ms, "a", "m1", 0.9, IntentRespond),
				thinkAt(200*ms, "b", "m1", 0.5, IntentRespond),
			},
			want: []string{"m1@200ms granted=[a]"},
			check: func(t *testing.T, c *Core) {
				if _, ok := c.NextDeadline(); ok {
					t.Error("a deadline is left with nothing open")
				}
			},
		},
		{
			name: "the window closes on a silent thinker",
			opts: fixed,
			ops: []op{
				openAt(0, "m1", "r", ab, nil),
				thinkAt(100*ms, "a", "m1", 0.9, IntentRespond),
				expireAt(999 * ms),
				expireAt(sec),
			},
			want: []string{"m1@1s granted=[a] timed-out missing=[b]"},
		},
		{
			name: "leaving releases the decision",
			opts: fixed,
			ops: []op{
				openAt(0, "m1", "r", ab, nil),
				thinkAt(100*ms, "a", "m1", 0.9, IntentRespond),
				leaveAt(300*ms, "b", "m1"),
			},
			want: []string{"m1@300ms granted=[a]"},
		},
		{
			name: "leaving an unknown item opens nothing",
			opts: fixed,
			ops:  []op{leaveAt(0, "a", "m1"), expireAt(time.Hour)},
			check: func(t *testing.T, c *Core) {
				if c.State("m1") != ItemUnknown {
					t.Errorf("Leave opened m1: %v", c.State("m1"))
				}
			},
		},
		{
			name: "withdrawing from an unknown item opens it until its window ends",
			opts: fixed,
			ops:  []op{withdrawAt(0, "a", "m1"), expireAt(sec)},
			want: []string{"m1@1s granted=[] timed-out"},
		},
		{
			name: "a thought after withdrawing cancels the withdrawal",
			opts: fixed,
			ops: []op{
				openAt(0, "m1", "r", ab, nil),
				withdrawAt(10*ms, "a", "m1"),
				thinkAt(20*ms, "a", "m1", 0.2, IntentRespond),
				withdrawAt(30*ms, "b", "m1"),
			},
			want: []string{"m1@30ms granted=[a]"},
		},
		{
			name: "a late addressee amends the decision, a late peer does not",
			opts: fixed,
			ops: []op{
				openAt(0, "m1", "r", abc, []string{"b"}),
				thinkAt(100*ms, "a", "m1", 0.9, IntentRespond),
				expireAt(sec),
				lateAt(2*sec, "c", "m1"),
				thinkAt(3*sec, "b", "m1", 0, IntentDefer),
				lateAt(4*sec, "b", "m1"), // granted already: a second late thought changes nothing
			},
			// The amendment keeps the decision's close time; b is no longer missing.
			want: []string{"m1@1s granted=[a] timed-out missing=[b c]", "m1@1s granted=[a b] timed-out missing=[c]"},
		},
		{
			name: "a late thought that says it is addressed is granted",
			opts: fixed,
			ops: []op{
				openAt(0, "m1", "r", ab, nil),
				thinkAt(0, "a", "m1", 0.9, IntentRespond),
				expireAt(sec),
				addressedAt(2*sec, "c", "m1"),
			},
			want: []string{"m1@1s granted=[a] timed-out missing=[b]", "m1@1s granted=[a c] timed-out missing=[b]"},
		},
		{
			name: "K is per key",
			opts: Options{FixedWindow: true, Window: sec, KFor: func(key string) int {
				if key == "big" {
					return 2
				}
				return 0 // a miss means K, never zero
			}},
			ops: []op{
				openAt(0, "m1", "big", abc, nil),
				openAt(0, "m2", "small", abc, nil),
				thinkAt(0, "a", "m1", 0.9, IntentRespond),
				thinkAt(0, "b", "m1", 0.8, IntentRespond),
				thinkAt(0, "c", "m1", 0.7, IntentRespond),
				thinkAt(0, "a", "m2", 0.9, IntentRespond),
				thinkAt(0, "b", "m2", 0.8, IntentRespond),
				thinkAt(0, "c", "m2", 0.7, IntentRespond),
			},
			want: []string{"m1@0s granted=[a b]", "m2@0s granted=[a]"},
		},
		{
			name: "ties go to the least recently granted, even within one instant",
			opts: fixed,
			ops: []op{
				openAt(0, "m1", "r", ab, nil), thinkAt(0, "a", "m1", 0.5, IntentRespond), thinkAt(0, "b", "m1", 0.5, IntentRespond),
				openAt(0, "m2", "r", ab, nil), thinkAt(0, "a", "m2", 0.5, IntentRespond), thinkAt(0, "b", "m2", 0.5, IntentRespond),
				openAt(0, "m3", "r", ab, nil), thinkAt(0, "a", "m3", 0.5, IntentRespond), thinkAt(0, "b", "m3", 0.5, IntentRespond),
			},
			want: []string{"m1@0s granted=[a]", "m2@0s granted=[b]", "m3@0s granted=[a]"},
			check: func(t *testing.T, c *Core) {
				if d, _ := c.Decision("m2"); d.Reasons["a"] != "lost tie on recency" {
					t.Errorf("m2's reason for a: %q", d.Reasons["a"])
				}
			},
		},
		{
			name: "from the first thought: patience, then the window from the first thought",
			opts: Options{FixedWindow: true, Window: 2 * sec, WindowFromFirstThought: true, Patience: 30 * sec},
			ops: []op{
				openAt(0, "m1", "r", ab, nil),
				openAt(sec, "m2", "r", ab, nil),
				thinkAt(10*sec, "a", "m1", 0.5, IntentRespond),
				expireAt(12*sec - 1),
				expireAt(12 * sec),
				expireAt(31*sec - 1),
				expireAt(31 * sec),
			},
			want: []string{"m1@12s granted=[a] timed-out missing=[b]", "m2@31s granted=[] timed-out missing=[a b]"},
		},
		{
			name: "equal deadlines close in the order they were set",
			opts: Options{FixedWindow: true, Window: 2 * sec, WindowFromFirstThought: true, Patience: 30 * sec},
			ops: []op{
				openAt(0, "m1", "r", ab, nil),
				openAt(0, "m2", "r", ab, nil),
				thinkAt(sec, "a", "m2", 0.5, IntentRespond),
				thinkAt(sec, "a", "m1", 0.5, IntentRespond),
				expireAt(3 * sec),
			},
			want: []string{"m2@3s granted=[a] timed-out missing=[b]", "m1@3s granted=[a] timed-out missing=[b]"},
		},
		{
			name: "expiry closes earliest deadline first, ties oldest opened first",
			opts: fixed,
			ops: []op{
				openAt(0, "m2", "r", ab, nil),
				openAt(0, "m1", "r", ab, nil),
				openAt(-500*ms, "m0", "r", ab, nil),
				expireAt(time.Hour),
			},
			want: []string{
				"m0@1h0m0s granted=[] timed-out missing=[a b]",
				"m2@1h0m0s granted=[] timed-out missing=[a b]",
				"m1@1h0m0s granted=[] timed-out missing=[a b]",
			},
		},
		{
			name: "an unbounded item waits for every thinker, however long",
			opts: fixed,
			ops: []op{
				unboundedAt(0, "m1", ab),
				thinkAt(sec, "a", "m1", 0.5, IntentRespond),
				expireAt(time.Hour),
				thinkAt(2*time.Hour, "b", "m1", 0.9, IntentRespond),
				unboundedAt(3*time.Hour, "m2", nil),
			},
			want: []string{"m1@2h0m0s granted=[b]", "m2@3h0m0s granted=[]"},
			check: func(t *testing.T, c *Core) {
				if d, _ := c.Decision("m1"); d.Window != 0 {
					t.Errorf("an unbounded item reports window %v", d.Window)
				}
			},
		},
		{
			name: "opening beyond MaxOpen evicts the oldest open item",
			opts: Options{FixedWindow: true, Window: sec, MaxOpen: 2},
			ops: []op{
				openAt(0, "m0", "r", ab, nil),
				openAt(0, "m1", "r", ab, nil),
				thinkAt(10*ms, "a", "m2", 1, IntentRespond), // a thought opens m2
				expireAt(sec),
				expireAt(2 * sec),
			},
			want: []string{
				"m0@10ms granted=[] evicted missing=[a b]",
				"m1@1s granted=[] timed-out missing=[a b]",
				"m2@2s granted=[a] timed-out",
			},
		},
		{
			name: "only MaxClosed decisions are remembered; a thought on a forgotten one opens it anew",
			opts: Options{FixedWindow: true, Window: sec, MaxClosed: 2},
			ops: []op{
				openAt(0, "m0", "r", []string{"a"}, nil), thinkAt(0, "a", "m0", 1, IntentRespond),
				openAt(0, "m1", "r", []string{"a"}, nil), thinkAt(0, "a", "m1", 1, IntentRespond),
				openAt(0, "m2", "r", []string{"a"}, nil), thinkAt(0, "a", "m2", 1, IntentRespond),
				thinkAt(sec, "b", "m0", 1, IntentRespond),
			},
			want: []string{"m0@0s granted=[a]", "m1@0s granted=[a]", "m2@0s granted=[a]"},
			check: func(t *testing.T, c *Core) {
				if got := c.State("m0"); got != ItemOpen {
					t.Errorf("m0 after a thought on it, forgotten: %v, want open anew", got)
				}
				if got := c.State("m1"); got != ItemDecided {
					t.Errorf("m1: %v, want decided", got)
				}
				var items []string
				for _, d := range c.Recent(10) {
					items = append(items, d.Item)
				}
				if !slices.Equal(items, []string{"m2", "m1"}) {
					t.Errorf("Recent = %v", items)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, log := runCore(t, tc.opts, tc.ops)
			if !slices.Equal(log, tc.want) {
				t.Errorf("decisions:\n  %s\nwant:\n  %s", strings.Join(log, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestCoreNextDeadline(t *testing.T) {
	c := NewCore(Options{FixedWindow: true, Window: 2 * sec, WindowFromFirstThought: true, Patience: 30 * sec})
	next := func(want time.Duration) {
		t.Helper()
		got, ok := c.NextDeadline()
		if !ok || !got.Equal(t0.Add(want)) {
			t.Fatalf("NextDeadline = %v %v, want %v", got.Sub(t0), ok, want)
		}
	}
	if _, ok := c.NextDeadline(); ok {
		t.Fatal("an empty core has a deadline")
	}
	c.Open(t0, Opening{Item: "m1", Expected: ab})
	next(30 * sec)
	c.Open(t0.Add(sec), Opening{Item: "m2", Expected: ab})
	next(30 * sec)
	// The first thought moves m2's deadline before m1's.
	if _, err := c.Think(t0.Add(5*sec), Thought{Persona: "a", Item: "m2", Intent: IntentRespond}); err != nil {
		t.Fatal(err)
	}
	next(7 * sec)
	// A second thought does not restart the window.
	if _, err := c.Think(t0.Add(6*sec), Thought{Persona: "c", Item: "m2", Intent: IntentRespond}); err != nil {
		t.Fatal(err)
	}
	next(7 * sec)
	c.Expire(t0.Add(7 * sec))
	next(30 * sec)
}

func TestCoreAdaptiveWindow(t *testing.T) {
	c := NewCore(Options{})
	if got := c.Window(); got != DefaultWindow {
		t.Fatalf("initial window %v", got)
	}
	// Sixteen items each thought about 400 ms after they opened: the p95 is
	// 400 ms, the window 500 ms.
	for i := range MinSamples {
		item := fmt.Sprintf("m%d", i)
		at := t0.Add(time.Duration(i) * sec)
		c.Open(at, Opening{Item: item, Expected: []string{"a"}})
		if _, err := c.Think(at.Add(400*ms), Thought{Persona: "a", Item: item, Intent: IntentRespond}); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Window(); got != 500*ms {
		t.Fatalf("window after %d samples of 400ms: %v, want 500ms", MinSamples, got)
	}
	// Items opened by a thought give no sample (they have no delivery time
	// to measure from); late thoughts do.
	c.Think(t0.Add(time.Hour), Thought{Persona: "a", Item: "implicit", Intent: IntentRespond})
	c.Think(t0.Add(time.Hour+time.Minute), Thought{Persona: "b", Item: "implicit", Intent: IntentRespond})
	if got := c.Window(); got != 500*ms {
		t.Fatalf("window after thoughts on an implicit item: %v, want 500ms still", got)
	}
	for i := range MinSamples {
		c.Think(t0.Add(time.Duration(i)*sec+8*sec), Thought{Persona: "z", Item: fmt.Sprintf("m%d", i), Intent: IntentRespond})
	}
	if got := c.Window(); got != DefaultMaxWindow {
		t.Fatalf("window after late samples of 8s: %v, want the maximum %v", got, DefaultMaxWindow)
	}
	if d, _ := c.Decision("m15"); d.Window != DefaultWindow {
		t.Errorf("m15, opened with 15 samples, has window %v, want the initial %v", d.Window, DefaultWindow)
	}
}

// BenchmarkCore is one item's life with twenty expected thinkers, the
// simulator's common case: open, twenty thoughts, the decision.
func BenchmarkCore(b *testing.B) {
	c := NewCore(Options{})
	personas := names("p", 20)
	now := t0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		item := "m" + fmt.Sprint(i)
		i++
		now = now.Add(time.Millisecond)
		c.Open(now, Opening{Item: item, Key: "r", Expected: personas})
		for j, p := range personas {
			if _, err := c.Think(now, Thought{Persona: p, Item: item, Confidence: float64(j%10) / 10, Intent: IntentRespond}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
