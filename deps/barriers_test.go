package deps

import (
	"strconv"
	"testing"
	"time"
)

// A step of a barriers script: at t0+at, do one call and expect exactly the
// releases in want, in order. next, when set, is the NextDeadline expected
// after the call, as an offset from t0 (none: no key open).
type step struct {
	at      time.Duration
	do      string // begin, by (BeginBy), finish, expire
	persona string // finish: who; by: the author
	key     string
	status  Status
	value   any
	want    []Release
	next    time.Duration // 0: not checked
	pending *int          // nil: not checked
}

const none = -1 // step.next: no deadline

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func runScript(t *testing.T, b *Barriers, script []step) {
	t.Helper()
	for i, s := range script {
		now := t0.Add(s.at)
		var got []Release
		switch s.do {
		case "begin":
			got = b.Begin(now, s.key)
		case "by":
			got = b.BeginBy(now, s.key, s.persona)
		case "finish":
			got = b.Finish(now, s.persona, s.key, s.status, s.value)
		case "expire":
			got = b.Expire(now)
		default:
			t.Fatalf("step %d: unknown call %q", i, s.do)
		}
		if len(got) != len(s.want) {
			t.Fatalf("step %d (%s %s %s at %v): releases = %+v, want %+v", i, s.do, s.persona, s.key, s.at, got, s.want)
		}
		for j := range got {
			if !sameRelease(got[j], s.want[j]) {
				t.Errorf("step %d (%s %s %s at %v): release %d = %+v, want %+v", i, s.do, s.persona, s.key, s.at, j, got[j], s.want[j])
			}
		}
		switch next, ok := b.NextDeadline(); {
		case s.next == 0:
		case s.next == none && ok:
			t.Errorf("step %d: NextDeadline = %v, want none", i, next.Sub(t0))
		case s.next != none && (!ok || !next.Equal(t0.Add(s.next))):
			t.Errorf("step %d: NextDeadline = %v (%v), want %v", i, next.Sub(t0), ok, s.next)
		}
		if s.pending != nil && b.Pending() != *s.pending {
			t.Errorf("step %d: Pending = %d, want %d", i, b.Pending(), *s.pending)
		}
	}
}

func n(v int) *int { return &v }

func rel(persona, key string, st Status, in ...Output) Release {
	return Release{Persona: persona, Key: key, Status: st, Inputs: in}
}

func out(from string, st Status, v any) Output { return Output{From: from, Status: st, Value: v} }

func TestBarriersScripts(t *testing.T) {
	const T = 5 * time.Second // the default timeout
	s := time.Second
	tests := []struct {
		name   string
		graph  func(testing.TB) *Graph
		opts   Options
		script []step
	}{
		{
			name:  "chain hands each stage the one before's output",
			graph: chain,
			script: []step{
				{do: "begin", key: "f", next: T, pending: n(1)},
				{at: s, do: "finish", persona: "a", key: "f", value: "lines",
					want: []Release{rel("b", "f", Done, out("a", Done, "lines"))}, next: s + T, pending: n(1)},
				{at: 2 * s, do: "finish", persona: "b", key: "f", value: "planes",
					want: []Release{rel("c", "f", Done, out("b", Done, "planes"))}, next: none, pending: n(0)},
				{at: 3 * s, do: "finish", persona: "c", key: "f", pending: n(0)}, // a sink of a closed key
				{at: 3 * s, do: "finish", persona: "a", key: "f", pending: n(0)}, // remembered: does not reopen
				{at: 3 * s, do: "begin", key: "f", next: none, pending: n(0)},    // nor does Begin
				{at: time.Hour, do: "expire", next: none, pending: n(0)},
			},
		},
		{
			name:  "a stalled source releases b at T and c at 2T, incomplete",
			graph: chain,
			script: []step{
				{do: "begin", key: "f", next: T, pending: n(1)},
				{at: T - 1, do: "expire", next: T, pending: n(1)},
				{at: T, do: "expire", want: []Release{rel("b", "f", Incomplete)}, next: 2 * T, pending: n(1)},
				{at: 2*T - 1, do: "expire", next: 2 * T, pending: n(1)},
				{at: 2 * T, do: "expire", want: []Release{rel("c", "f", Incomplete)}, next: none, pending: n(0)},
			},
		},
		{
			name:  "incomplete is carried down a chain whose middle finishes normally",
			graph: chain,
			script: []step{
				{do: "begin", key: "f", pending: n(1)},
				{at: T, do: "expire", want: []Release{rel("b", "f", Incomplete)}, next: 2 * T},
				{at: T + s, do: "finish", persona: "b", key: "f", value: "planes without lines",
					want: []Release{rel("c", "f", Incomplete, out("b", Incomplete, "planes without lines"))}, next: none, pending: n(0)},
				{at: time.Hour, do: "expire"},
			},
		},
		{
			name:  "a failed prerequisite (finished incomplete) is carried down too",
			graph: chain,
			script: []step{
				{do: "begin", key: "f"},
				{at: s, do: "finish", persona: "a", key: "f", status: Incomplete,
					want: []Release{rel("b", "f", Incomplete, out("a", Incomplete, nil))}},
				{at: 2 * s, do: "finish", persona: "b", key: "f", value: "b",
					want: []Release{rel("c", "f", Incomplete, out("b", Incomplete, "b"))}, pending: n(0)},
			},
		},
		{
			name:  "a decline is carried down as skipped",
			graph: chain,
			script: []step{
				{do: "begin", key: "m"},
				{do: "finish", persona: "a", key: "m", status: Skipped,
					want: []Release{rel("b", "m", Skipped, out("a", Skipped, nil))}},
				{do: "finish", persona: "b", key: "m", value: "anyway",
					want: []Release{rel("c", "m", Skipped, out("b", Skipped, "anyway"))}, pending: n(0)},
			},
		},
		{
			name:  "incomplete outranks skipped at a join",
			graph: diamond,
			script: []step{
				{do: "begin", key: "k"},
				{do: "finish", persona: "a", key: "k", value: "a",
					want: []Release{rel("b", "k", Done, out("a", Done, "a")), rel("c", "k", Done, out("a", Done, "a"))}},
				{at: s, do: "finish", persona: "b", key: "k", status: Skipped, pending: n(1)},
				{at: s, do: "finish", persona: "c", key: "k", status: Incomplete,
					want: []Release{rel("d", "k", Incomplete, out("b", Skipped, nil), out("c", Incomplete, nil))}, pending: n(0)},
			},
		},
		{
			name:  "each stage's clock starts at its own release",
			graph: chain,
			script: []step{
				{do: "begin", key: "f", next: T},
				{at: 3 * s, do: "finish", persona: "a", key: "f",
					want: []Release{rel("b", "f", Done, out("a", Done, nil))}, next: 3*s + T},
				{at: T, do: "expire", next: 3*s + T}, // a's old deadline is gone
				{at: 3*s + T, do: "expire", want: []Release{rel("c", "f", Incomplete)}, next: none, pending: n(0)},
			},
		},
		{
			name:  "a diamond with one branch stalled joins incomplete with the branch that arrived",
			graph: diamond,
			opts:  Options{Timeout: s},
			script: []step{
				{do: "finish", persona: "a", key: "k", value: "a", // no Begin: a source's finish opens the key
					want: []Release{rel("b", "k", Done, out("a", Done, "a")), rel("c", "k", Done, out("a", Done, "a"))}, next: s},
				{do: "finish", persona: "b", key: "k", value: "b", next: s},
				{at: s, do: "expire", want: []Release{rel("d", "k", Incomplete, out("b", Done, "b"))}, next: none, pending: n(0)},
				{at: 2 * s, do: "finish", persona: "c", key: "k", value: "c", pending: n(0)},
			},
		},
		{
			name: "a late finish still counts while the barrier is open",
			graph: func(t testing.TB) *Graph {
				return mustGraph(t,
					Node{Name: "x", Notifies: []string{"w"}},
					Node{Name: "y", Notifies: []string{"z"}},
					Node{Name: "z", Notifies: []string{"w"}},
					Node{Name: "w"},
				)
			},
			opts: Options{Timeout: 10 * s},
			script: []step{
				{do: "begin", key: "m", next: 10 * s},
				{at: s, do: "finish", persona: "y", key: "m", value: "y", want: []Release{rel("z", "m", Done, out("y", Done, "y"))}, next: 10 * s},
				{at: 10 * s, do: "expire", next: 11 * s}, // x times out; w still waits for z
				{at: 10*s + s/2, do: "finish", persona: "x", key: "m", value: "x late", next: 11 * s},
				{at: 10*s + s/2, do: "finish", persona: "z", key: "m", value: "z",
					want: []Release{rel("w", "m", Done, out("x", Done, "x late"), out("z", Done, "z"))}, next: none, pending: n(0)},
			},
		},
		{
			name:  "keys expire by deadline, then in opening order",
			graph: chain,
			script: []step{
				{do: "begin", key: "k2"},
				{do: "begin", key: "k1"},
				{at: s, do: "begin", key: "k0", next: T, pending: n(3)},
				{at: T + s, do: "expire", want: []Release{rel("b", "k2", Incomplete), rel("b", "k1", Incomplete), rel("b", "k0", Incomplete)}, next: 2*T + s, pending: n(3)},
			},
		},
		{
			name:  "MaxKeys: opening one more releases the oldest's remaining dependents",
			graph: chain,
			opts:  Options{MaxKeys: 2},
			script: []step{
				{do: "begin", key: "k1"},
				{do: "finish", persona: "a", key: "k1", value: "a1", want: []Release{rel("b", "k1", Done, out("a", Done, "a1"))}},
				{at: s, do: "begin", key: "k2", pending: n(2)},
				{at: 2 * s, do: "begin", key: "k3", want: []Release{rel("c", "k1", Incomplete)}, next: s + T, pending: n(2)},
				{at: 3 * s, do: "finish", persona: "a", key: "k4", value: "a4", want: []Release{
					rel("b", "k2", Incomplete), rel("c", "k2", Incomplete), rel("b", "k4", Done, out("a", Done, "a4")),
				}, next: 2*s + T, pending: n(2)},
				{at: 4 * s, do: "finish", persona: "b", key: "k1", pending: n(2)}, // evicted: stays closed
				{at: 4 * s, do: "begin", key: "k2", pending: n(2)},
			},
		},
		{
			name:  "the author of an item counts as having finished it: a source",
			graph: chain,
			script: []step{
				{do: "by", persona: "a", key: "m", want: []Release{rel("b", "m", Done, out("a", Done, nil))}, next: T, pending: n(1)},
				{at: s, do: "finish", persona: "a", key: "m", status: Incomplete, next: T}, // already finished: ignored
				{at: T, do: "expire", want: []Release{rel("c", "m", Incomplete)}, next: none, pending: n(0)},
			},
		},
		{
			name:  "the author of an item counts as having finished it: mid-chain, never released",
			graph: chain,
			script: []step{
				{do: "by", persona: "b", key: "m", want: []Release{rel("c", "m", Done, out("b", Done, nil))}, next: none, pending: n(0)},
				{at: s, do: "finish", persona: "a", key: "m", pending: n(0)}, // closed: b is not released after all
				{at: time.Hour, do: "expire", pending: n(0)},
			},
		},
		{
			name:  "the author at a join frees only that input",
			graph: diamond,
			script: []step{
				{do: "by", persona: "b", key: "m", next: T, pending: n(1)},
				{at: s, do: "finish", persona: "a", key: "m", want: []Release{rel("c", "m", Done, out("a", Done, nil))}, next: s + T},
				{at: 2 * s, do: "finish", persona: "c", key: "m", value: "c",
					want: []Release{rel("d", "m", Done, out("b", Done, nil), out("c", Done, "c"))}, next: none, pending: n(0)},
			},
		},
		{
			name:  "an author that is not in the graph makes BeginBy a Begin",
			graph: chain,
			script: []step{
				{do: "by", persona: "human", key: "m", next: T, pending: n(1)},
				{do: "by", persona: "a", key: "m", pending: n(1)}, // open: nothing happens
				{at: T, do: "expire", want: []Release{rel("b", "m", Incomplete)}},
			},
		},
		{
			name:  "ignored calls",
			graph: chain,
			script: []step{
				{do: "finish", persona: "ghost", key: "k", pending: n(0)},
				{do: "finish", persona: "b", key: "k", pending: n(0)}, // a dependent cannot open a key
				{do: "finish", persona: "a", key: "k", value: 1, want: []Release{rel("b", "k", Done, out("a", Done, 1))}, pending: n(1)},
				{do: "finish", persona: "a", key: "k", value: 2, pending: n(1)},
				{do: "finish", persona: "c", key: "k", pending: n(1)}, // not released yet
			},
		},
		{
			name: "a graph without edges tracks nothing",
			graph: func(t testing.TB) *Graph {
				return mustGraph(t, Node{Name: "a"}, Node{Name: "b"})
			},
			script: []step{
				{do: "begin", key: "k", next: none, pending: n(0)},
				{do: "finish", persona: "a", key: "k", next: none, pending: n(0)},
				{at: time.Hour, do: "expire", next: none, pending: n(0)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runScript(t, NewBarriers(tt.graph(t), tt.opts), tt.script)
		})
	}
}

func TestBarriersOpen(t *testing.T) {
	b := NewBarriers(chain(t), Options{})
	if b.Open("k") {
		t.Error("Open before Begin")
	}
	b.Begin(t0, "k")
	if !b.Open("k") {
		t.Error("not Open after Begin")
	}
	b.Finish(t0, "a", "k", Done, nil)
	b.Finish(t0, "b", "k", Done, nil)
	if b.Open("k") {
		t.Error("Open after every dependent was released")
	}
}

// The core is a function of its calls: the same script, given twice, gives
// the same releases in the same order, including across keys whose
// deadlines fall at the same instant (a map iteration or a timer race would
// show up here as a different order).
func TestBarriersAreDeterministic(t *testing.T) {
	play := func() []Release {
		b := NewBarriers(diamond(t), Options{Timeout: time.Second, MaxKeys: 8})
		var all []Release
		now := t0
		for k := range 40 {
			now = t0.Add(time.Duration(k/4) * 100 * time.Millisecond)
			key := strconv.Itoa(k)
			all = append(all, b.Expire(now)...)
			all = append(all, b.Begin(now, key)...)
			if k%3 != 0 {
				all = append(all, b.Finish(now, "a", key, Status(k%2), k)...)
			}
			if k%5 == 0 {
				all = append(all, b.Finish(now, "b", key, Done, k)...)
			}
		}
		for ; b.Pending() > 0; now = now.Add(100 * time.Millisecond) {
			all = append(all, b.Expire(now)...)
		}
		return all
	}
	first, second := play(), play()
	if len(first) == 0 || len(first) != len(second) {
		t.Fatalf("%d then %d releases", len(first), len(second))
	}
	for i := range first {
		if !sameRelease(first[i], second[i]) {
			t.Fatalf("release %d: %+v, then %+v", i, first[i], second[i])
		}
	}
}
