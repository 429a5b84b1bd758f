package coord

import (
	"maps"
	"math"
	"slices"
	"testing"
	"time"
)

func th(p string, c float64, i Intent) Thought {
	return Thought{Persona: p, Item: "m1", Confidence: c, Intent: i}
}

func TestGrant(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		thoughts   []Thought
		addressees []string
		k          int
		last       map[string]time.Time
		granted    []string
		reasons    map[string]string // checked entries only
	}{
		{
			name:     "highest confidence wins",
			thoughts: []Thought{th("a", 0.4, IntentRespond), th("b", 0.82, IntentRespond), th("c", 0.6, IntentRespond)},
			k:        1,
			granted:  []string{"b"},
			reasons:  map[string]string{"b": "top confidence 0.82", "a": "k=1 reached", "c": "k=1 reached"},
		},
		{
			name:       "addressee wins over higher confidence",
			thoughts:   []Thought{th("a", 0.9, IntentRespond), th("b", 0.1, IntentRespond)},
			addressees: []string{"b"},
			k:          1,
			granted:    []string{"b"},
			reasons:    map[string]string{"b": "addressee", "a": "k=1 reached"},
		},
		{
			name:       "addressee granted whatever its intent",
			thoughts:   []Thought{th("a", 0.9, IntentRespond), th("b", 0.3, IntentObserve), th("c", 0.3, IntentDefer)},
			addressees: []string{"b", "c"},
			k:          1,
			granted:    []string{"b", "c"},
			reasons:    map[string]string{"b": "addressee", "c": "addressee", "a": "k=1 reached"},
		},
		{
			name:       "addressees fill k then others get the rest",
			thoughts:   []Thought{th("a", 0.9, IntentRespond), th("b", 0.3, IntentRespond), th("c", 0.5, IntentRespond)},
			addressees: []string{"b"},
			k:          2,
			granted:    []string{"b", "a"},
			reasons:    map[string]string{"a": "top confidence 0.90", "c": "k=2 reached"},
		},
		{
			name:     "observe and defer are never granted",
			thoughts: []Thought{th("a", 0.9, IntentObserve), th("b", 0.8, IntentDefer), th("c", 0.1, IntentRespond)},
			k:        3,
			granted:  []string{"c"},
			reasons:  map[string]string{"a": "intent observe", "b": "intent defer", "c": "top confidence 0.10"},
		},
		{
			name:     "nobody granted when nobody responds",
			thoughts: []Thought{th("a", 0.9, IntentObserve)},
			k:        1,
			granted:  nil,
		},
		{
			name:     "least recently granted wins a confidence tie",
			thoughts: []Thought{th("a", 0.5, IntentRespond), th("b", 0.5, IntentRespond)},
			k:        1,
			last:     map[string]time.Time{"a": t0.Add(time.Second), "b": t0},
			granted:  []string{"b"},
			reasons:  map[string]string{"b": "won tie on recency at confidence 0.50", "a": "lost tie on recency"},
		},
		{
			name:     "never granted beats once granted",
			thoughts: []Thought{th("a", 0.5, IntentRespond), th("b", 0.5, IntentRespond)},
			k:        1,
			last:     map[string]time.Time{"a": t0},
			granted:  []string{"b"},
		},
		{
			name:     "name breaks a full tie",
			thoughts: []Thought{th("b", 0.5, IntentRespond), th("a", 0.5, IntentRespond)},
			k:        1,
			granted:  []string{"a"},
			reasons:  map[string]string{"a": "won tie on name at confidence 0.50", "b": "lost tie on name"},
		},
		{
			name:     "confidence beats recency",
			thoughts: []Thought{th("a", 0.6, IntentRespond), th("b", 0.5, IntentRespond)},
			k:        1,
			last:     map[string]time.Time{"a": t0.Add(time.Hour)},
			granted:  []string{"a"},
		},
		{
			name:     "k=2 grants the top two in rank order",
			thoughts: []Thought{th("a", 0.2, IntentRespond), th("b", 0.7, IntentRespond), th("c", 0.9, IntentRespond)},
			k:        2,
			granted:  []string{"c", "b"},
			reasons:  map[string]string{"a": "k=2 reached"},
		},
		{
			name:     "a persona's last thought counts",
			thoughts: []Thought{th("a", 0.9, IntentRespond), th("b", 0.5, IntentRespond), th("a", 0.9, IntentObserve)},
			k:        1,
			granted:  []string{"b"},
			reasons:  map[string]string{"a": "intent observe"},
		},
		{
			name:       "silent addressee is not granted and frees the slot",
			thoughts:   []Thought{th("a", 0.5, IntentRespond)},
			addressees: []string{"z"},
			k:          1,
			granted:    []string{"a"},
			reasons:    map[string]string{"z": "addressee, did not think"},
		},
		{
			name:       "negative k grants only addressees",
			thoughts:   []Thought{th("a", 0.9, IntentRespond), th("b", 0.1, IntentRespond)},
			addressees: []string{"b"},
			k:          -1,
			granted:    []string{"b"},
			reasons:    map[string]string{"a": "k=0 reached"},
		},
		{
			name:     "NaN confidence ranks as zero",
			thoughts: []Thought{th("a", math.NaN(), IntentRespond), th("b", 0.01, IntentRespond)},
			k:        1,
			granted:  []string{"b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.thoughts)
			granted, reasons := Grant(tt.thoughts, tt.addressees, tt.k, tt.last)
			if !slices.Equal(granted, tt.granted) {
				t.Errorf("granted = %q, want %q", granted, tt.granted)
			}
			for p, want := range tt.reasons {
				if got := reasons[p]; got != want {
					t.Errorf("reason[%s] = %q, want %q", p, got, want)
				}
			}
			for _, x := range tt.thoughts {
				if _, ok := reasons[x.Persona]; !ok {
					t.Errorf("no reason for thinker %s", x.Persona)
				}
			}
			if !slices.EqualFunc(in, tt.thoughts, func(a, b Thought) bool {
				return a.Persona == b.Persona && a.Intent == b.Intent
			}) {
				t.Error("Grant modified its input")
			}
		})
	}
}

func TestGrantIgnoresInputOrder(t *testing.T) {
	ts := []Thought{th("a", 0.5, IntentRespond), th("b", 0.7, IntentRespond), th("c", 0.7, IntentRespond), th("d", 0.2, IntentObserve)}
	want, wantR := Grant(ts, []string{"d"}, 2, nil)
	rev := slices.Clone(ts)
	slices.Reverse(rev)
	got, gotR := Grant(rev, []string{"d"}, 2, nil)
	if !slices.Equal(got, want) || !maps.Equal(gotR, wantR) {
		t.Fatalf("reversed input: %q %v, want %q %v", got, gotR, want, wantR)
	}
}

func TestAdaptWindow(t *testing.T) {
	const lo, hi, init = 250 * time.Millisecond, 10 * time.Second, 1500 * time.Millisecond
	same := func(d time.Duration, n int) []time.Duration { return slices.Repeat([]time.Duration{d}, n) }
	tests := []struct {
		name    string
		samples []time.Duration
		want    time.Duration
	}{
		{"too few samples keep the initial window", same(3*time.Second, MinSamples-1), init},
		{"slow thoughts grow the window to p95 plus a quarter", same(3*time.Second, MinSamples), 3750 * time.Millisecond},
		{"very slow thoughts clamp at max", same(time.Minute, 20), hi},
		{"instant thoughts clamp at min", same(0, 20), lo},
		{"negative samples count as zero", same(-time.Second, 20), lo},
		{
			"p95 ignores the slowest five percent",
			append(same(time.Second, 95), same(time.Minute, 5)...),
			1250 * time.Millisecond,
		},
		{
			"p95 sees the sixth percent",
			append(same(time.Second, 94), same(4*time.Second, 6)...),
			5 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AdaptWindow(tt.samples, init, lo, hi); got != tt.want {
				t.Errorf("AdaptWindow = %v, want %v", got, tt.want)
			}
		})
	}
}

func BenchmarkGrant(b *testing.B) {
	ts := make([]Thought, 10)
	last := make(map[string]time.Time)
	for i := range ts {
		ts[i] = Thought{Persona: string(rune('a' + i)), Item: "m", Confidence: float64(i%3) / 3, Intent: IntentRespond}
		last[ts[i].Persona] = time.Unix(int64(i), 0)
	}
	b.ReportAllocs()
	for b.Loop() {
		Grant(ts, []string{"c"}, 1, last)
	}
}
