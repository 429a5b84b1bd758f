package sim

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/personaos/persona/coord"
)

// duo is a two-persona room for coordination tests: y knows "go", x does
// not. No traffic is generated; the tests post messages themselves.
func duo(c Coordination, yHandle Handle) *Scenario {
	return &Scenario{
		Name: "duo", Seed: 1, Duration: time.Hour, Cores: 2, Coordination: c,
		Personas: []PersonaSpec{
			{Name: "x", Handle: Handle{Median: time.Second, P95: 2 * time.Second}},
			{Name: "y", Expertise: []string{"go"}, Handle: yHandle},
		},
		Traffic: Traffic{Rate: 1, Rooms: 2, Topics: []Topic{{"go", 0.5}}},
	}
}

func newDuo(t *testing.T, c Coordination, yHandle Handle) *run {
	t.Helper()
	r, err := newRun(context.Background(), duo(c, yHandle), Persona, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const (
	px, py  = int32(0), int32(1) // actor indexes in duo
	goTopic = uint64(1)
)

func (r *run) runTo(t *testing.T, at time.Duration) {
	t.Helper()
	if err := r.runUntil(int64(at)); err != nil {
		t.Fatal(err)
	}
	r.advance(int64(at))
}

// postOpen posts a message and opens its decision as its first
// evaluation would (openMsg): the persona policy opens a decision when a
// persona first evaluates the message, not at the post.
func (r *run) postOpen(room, author, mention, depth int32, topics uint64) int32 {
	mi := r.post(room, author, mention, depth, topics)
	r.openMsg(mi)
	return mi
}

// closeByWindow ends message mi's window now, as its timer would.
func (r *run) closeByWindow(t *testing.T, mi int32) {
	t.Helper()
	next, ok := r.co.NextDeadline()
	if !ok {
		t.Fatal("no window is pending")
	}
	r.advance(int64(next.Sub(r.epoch)))
	r.windowEnds()
	if !r.decided(mi) {
		t.Fatalf("message %d is still open at its window's end", mi)
	}
}

// deadline is the stream's earliest pending deadline, in virtual time.
func (r *run) deadline(t *testing.T) time.Duration {
	t.Helper()
	next, ok := r.co.NextDeadline()
	if !ok {
		t.Fatal("no deadline is pending")
	}
	return next.Sub(r.epoch)
}

func TestLateAndAddressedThoughtsAreGrantedAsCoordDoes(t *testing.T) {
	fixed := Coordination{Fixed: true}
	t.Run("a late addressee is granted, a late peer is not", func(t *testing.T) {
		r := newDuo(t, fixed, Handle{Median: time.Second, P95: 2 * time.Second})
		mi := r.postOpen(0, -1, px, 0, 0) // a human names x
		r.closeByWindow(t, mi)
		if r.think(mi, r.delOf(mi, py), 0.8, coord.IntentRespond, false) || r.isGranted(mi, py) {
			t.Errorf("a peer thinking after the decision closed was granted")
		}
		if r.think(mi, r.delOf(mi, px), 1, coord.IntentRespond, false) || !r.isGranted(mi, px) {
			t.Errorf("the addressee thinking after the decision closed was not granted: %v", r.msgs[mi].granted)
		}
		if r.m.lateGrants != 1 || r.m.lateThoughts != 2 {
			t.Errorf("late grants %d, late thoughts %d; want 1 and 2", r.m.lateGrants, r.m.lateThoughts)
		}
	})
	t.Run("a late thinker addressed through a merged message is granted", func(t *testing.T) {
		r := newDuo(t, fixed, Handle{Median: time.Second, P95: 2 * time.Second})
		mi := r.postOpen(0, -1, -1, 0, 0) // names nobody
		r.closeByWindow(t, mi)
		if r.think(mi, r.delOf(mi, px), 1, coord.IntentRespond, true) || !r.isGranted(mi, px) {
			t.Errorf("an addressed late thinker was not granted: %v", r.msgs[mi].granted)
		}
	})
	t.Run("an addressed thought takes the only slot from a keener peer", func(t *testing.T) {
		r := newDuo(t, fixed, Handle{Median: time.Second, P95: 2 * time.Second})
		mi := r.postOpen(0, -1, -1, 0, goTopic)
		if !r.think(mi, r.delOf(mi, py), 0.9, coord.IntentRespond, false) {
			t.Fatal("an on-time thought did not count")
		}
		r.think(mi, r.delOf(mi, px), 0.1, coord.IntentObserve, true) // the last expected thinker closes it
		if m := &r.msgs[mi]; !r.decided(mi) || len(m.granted) != 1 || m.granted[0] != px {
			t.Errorf("granted %v (decided %v), want only the addressed x", m.granted, r.decided(mi))
		}
	})
}

func TestWindowFromFirstThought(t *testing.T) {
	c := Coordination{Fixed: true, Window: 2 * time.Second, FromFirstThought: true, Patience: 30 * time.Second}
	t.Run("the window starts at the first thought", func(t *testing.T) {
		r := newDuo(t, c, Handle{Median: time.Second, P95: 2 * time.Second})
		mi := r.postOpen(0, -1, -1, 0, 0)
		if got := r.deadline(t); got != c.Patience {
			t.Fatalf("before any thought the item waits %v, want the patience %v", got, c.Patience)
		}
		r.advance(int64(10 * time.Second))
		r.think(mi, r.delOf(mi, py), 0.5, coord.IntentRespond, false)
		if got := r.deadline(t); got != 12*time.Second {
			t.Fatalf("after the first thought at 10s the window ends at %v, want 12s", got)
		}
		// The window timer alone (the personas' own steps are not run).
		r.advance(int64(12*time.Second) - 1)
		r.windowEnds()
		if r.decided(mi) {
			t.Fatal("closed before the window that started at the first thought ended")
		}
		r.advance(int64(12 * time.Second))
		r.windowEnds()
		if m := &r.msgs[mi]; !r.decided(mi) || !r.isGranted(mi, py) {
			t.Errorf("at the window's end: decided %v, granted %v", r.decided(mi), m.granted)
		}
	})
	t.Run("an item nobody thinks about closes after the patience", func(t *testing.T) {
		r := newDuo(t, c, Handle{Median: time.Second, P95: 2 * time.Second})
		r.advance(int64(time.Minute))
		mi := r.postOpen(1, -1, -1, 0, 0)
		end := r.deadline(t)
		if end != time.Minute+c.Patience {
			t.Fatalf("the item waits until %v, want the patience after opening at 1m", end)
		}
		// The window timer alone, before and at the patience's end (the
		// personas' own steps are not run, so nobody thinks).
		r.advance(int64(end) - 1)
		r.windowEnds()
		if r.decided(mi) {
			t.Fatal("closed before the patience ran out")
		}
		r.advance(int64(end))
		r.windowEnds()
		if m := &r.msgs[mi]; !r.decided(mi) || len(m.granted) != 0 || r.m.timedOut != 1 {
			t.Errorf("after the patience: decided %v, granted %v, timed out %d", r.decided(mi), m.granted, r.m.timedOut)
		}
	})
}

// TestAwaitOutlastsAShrunkenWindow: a persona waits for a decision up to
// the stream's longest window plus a second (the default
// persona.Options.CoordinationTimeout), so an addressee still answers when
// the adaptive window has shrunk since its item opened. (Bounded by the
// current window, as the runtime once was, it gave up and the mention went
// unanswered.)
func TestAwaitOutlastsAShrunkenWindow(t *testing.T) {
	c := Coordination{Window: 3 * time.Second, MinWindow: 250 * time.Millisecond, MaxWindow: 3 * time.Second, FromFirstThought: true}
	// y answers the first message with a 5 s reply and reaches the second
	// one only then; x is named by the second and thinks at once.
	slow := Handle{Median: 5 * time.Second, P95: 5 * time.Second}
	for _, tc := range []struct {
		name     string
		shrink   bool
		answered bool
	}{
		{"the addressee waits out the window and answers", false, true},
		{"the addressee waits out its item's window even after the window shrank", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newDuo(t, c, slow)
			m0 := r.postOpen(0, -1, -1, 0, goTopic) // y, the expert, is granted
			r.runTo(t, 500*time.Millisecond)
			if !r.isGranted(m0, py) {
				t.Fatalf("setup: y not granted on the first message: %v", r.msgs[m0].granted)
			}
			if w := r.co.Window(); w != 3*time.Second {
				t.Fatalf("setup: the next item opens with window %v", w)
			}
			m1 := r.postOpen(1, -1, px, 0, 0)
			if tc.shrink {
				// Thoughts at once on items of the stream's own: samples
				// of 0 s that shrink the window to its minimum.
				now := r.t(r.now)
				for i := range coord.MinSamples {
					item := "shrink" + strconv.Itoa(i)
					r.co.Open(now, coord.Opening{Item: item, Expected: []string{"z"}})
					if _, err := r.co.Think(now, coord.Thought{Persona: "z", Item: item, Intent: coord.IntentObserve}); err != nil {
						t.Fatal(err)
					}
				}
				if w := r.co.Window(); w != c.MinWindow {
					t.Fatalf("setup: the window did not shrink: %v", w)
				}
			}
			r.runTo(t, 30*time.Second)
			answered := r.msgs[m1].mentionAnswered >= 0
			if answered != tc.answered || (r.m.awaitTimeouts > 0) == tc.answered {
				t.Errorf("mention answered %v, await timeouts %d; want answered %v", answered, r.m.awaitTimeouts, tc.answered)
			}
			if !r.isGranted(m1, px) {
				t.Errorf("the stream did not grant the addressee: %v", r.msgs[m1].granted)
			}
		})
	}
}

// TestDirectDecisionsHaveNoWindow: the old flow waits for every
// recipient's evaluation, however long the model server takes.
func TestDirectDecisionsHaveNoWindow(t *testing.T) {
	r, err := newRun(context.Background(), duo(Coordination{}, Handle{Median: time.Second, P95: 2 * time.Second}), Direct, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mi := r.postOpen(0, -1, -1, 0, goTopic)
	if next, ok := r.co.NextDeadline(); ok {
		t.Fatalf("a direct decision has a deadline at %v", next.Sub(r.epoch))
	}
	r.advance(int64(time.Hour) - 1)
	r.windowEnds()
	if !r.think(mi, r.delOf(mi, px), 0.2, coord.IntentRespond, false) || r.decided(mi) {
		t.Fatal("closed before every recipient evaluated")
	}
	r.think(mi, r.delOf(mi, py), 0.9, coord.IntentRespond, false)
	if !r.decided(mi) || !r.isGranted(mi, py) || r.m.timedOut != 0 {
		t.Errorf("after both evaluations: decided %v, granted %v, timed out %d", r.decided(mi), r.msgs[mi].granted, r.m.timedOut)
	}
}

// TestForgottenDecisionIsOpenedAnew: the stream remembers
// coord.DefaultMaxClosed decisions; a persona that reaches an older one
// finds it undecided and its thought opens a new decision, as the runtime
// does (Stream.Decision, then Think).
func TestForgottenDecisionIsOpenedAnew(t *testing.T) {
	r := newDuo(t, Coordination{Fixed: true}, Handle{Median: time.Second, P95: 2 * time.Second})
	first := r.postOpen(0, -1, -1, 0, 0)
	r.closeByWindow(t, first)
	for range coord.DefaultMaxClosed {
		r.closeByWindow(t, r.postOpen(0, -1, -1, 0, 0))
	}
	if r.decided(first) {
		t.Fatal("the oldest decision is still remembered")
	}
	decisions := r.m.decisions
	if !r.think(first, r.delOf(first, px), 1, coord.IntentRespond, false) {
		t.Fatal("a thought on a forgotten decision does not await a new one")
	}
	if r.m.decisions != decisions+1 || r.m.lateThoughts != 0 {
		t.Errorf("decisions %d (want %d), late thoughts %d", r.m.decisions, decisions+1, r.m.lateThoughts)
	}
	r.closeByWindow(t, first)
	if !r.isGranted(first, px) {
		t.Errorf("the new decision did not grant the only thinker: %v", r.msgs[first].granted)
	}
}
