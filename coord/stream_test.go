package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// inBubble runs f in a synctest bubble with a fresh Stream that is closed
// before the bubble ends.
func inBubble(t *testing.T, opts Options, f func(t *testing.T, s *Stream)) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	synctest.Test(t, func(t *testing.T) {
		s := New(opts)
		defer s.Close()
		f(t, s)
	})
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func mustThink(t *testing.T, s *Stream, th Thought) {
	t.Helper()
	if err := s.Think(th); err != nil {
		t.Fatalf("Think(%s on %s): %v", th.Persona, th.Item, err)
	}
}

// awaiter collects one Await result in the background.
// done is atomic because synctest.Wait orders nothing with a goroutine that
// has already exited; d and err are read only after done or wg.Wait.
type awaiter struct {
	done atomic.Bool
	d    Decision
	err  error
}

func startAwait(ctx context.Context, wg *sync.WaitGroup, s *Stream, item string) *awaiter {
	a := &awaiter{}
	wg.Go(func() {
		a.d, a.err = s.Await(ctx, item)
		a.done.Store(true)
	})
	return a
}

func TestTenThinkersOneItem(t *testing.T) {
	personas := names("p", 10)
	tests := []struct {
		name       string
		addressees []string
		want       string
	}{
		{"highest confidence is the only grant", nil, "p9"},
		{"addressee wins with the lowest confidence", []string{"p0"}, "p0"},
		{"addressee wins from the middle", []string{"p4"}, "p4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inBubble(t, Options{}, func(t *testing.T, s *Stream) {
				s.Open("m1", "room", personas, tt.addressees)
				var wg sync.WaitGroup
				got := make([]Decision, len(personas))
				errs := make([]error, len(personas))
				for i, p := range personas {
					wg.Go(func() {
						if err := s.Think(Thought{Persona: p, Item: "m1", Confidence: float64(i) / 10, Intent: IntentRespond}); err != nil {
							errs[i] = err
							return
						}
						got[i], errs[i] = s.Await(context.Background(), "m1")
					})
				}
				wg.Wait()
				for i, d := range got {
					if errs[i] != nil {
						t.Fatalf("%s: %v", personas[i], errs[i])
					}
					if !slices.Equal(d.Granted, []string{tt.want}) {
						t.Fatalf("%s saw granted %q, want [%s]", personas[i], d.Granted, tt.want)
					}
					if d.TimedOut || len(d.Missing) != 0 || !d.Closed.Equal(d.Opened) {
						t.Fatalf("decision should close at once when all spoke: %+v", d)
					}
					if len(d.Reasons) != len(personas) || len(d.Thoughts) != len(personas) {
						t.Fatalf("want a reason and a thought per persona, got %d and %d", len(d.Reasons), len(d.Thoughts))
					}
				}
			})
		})
	}
}

func TestGrantsRotateFairly(t *testing.T) {
	inBubble(t, Options{}, func(t *testing.T, s *Stream) {
		personas := names("p", 10)
		count := map[string]int{}
		for i := range 100 {
			item := fmt.Sprintf("m%d", i)
			s.Open(item, "room", personas, nil)
			// Vary the thinking order: the outcome must not depend on it.
			for j := range personas {
				p := personas[(i*3+j)%len(personas)]
				mustThink(t, s, Thought{Persona: p, Item: item, Confidence: 0.5, Intent: IntentRespond})
			}
			d, ok := s.Decision(item)
			if !ok || len(d.Granted) != 1 {
				t.Fatalf("%s: decided %v, granted %q", item, ok, d.Granted)
			}
			count[d.Granted[0]]++
		}
		for _, p := range personas {
			if n := count[p]; n < 9 || n > 11 {
				t.Errorf("%s granted %d of 100, want 10±1 (all: %v)", p, n, count)
			}
		}
	})
}

func TestSilentThinker(t *testing.T) {
	t.Run("decision closes at the window naming the missing", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			s.Open("m1", "room", []string{"a", "b", "crashed"}, nil)
			var wg sync.WaitGroup
			mustThink(t, s, Thought{Persona: "a", Item: "m1", Confidence: 0.4, Intent: IntentRespond})
			mustThink(t, s, Thought{Persona: "b", Item: "m1", Confidence: 0.6, Intent: IntentRespond})
			wa := startAwait(context.Background(), &wg, s, "m1")
			wb := startAwait(context.Background(), &wg, s, "m1")
			time.Sleep(DefaultWindow - time.Millisecond)
			synctest.Wait()
			if wa.done.Load() || wb.done.Load() {
				t.Fatal("Await returned before the window")
			}
			time.Sleep(time.Millisecond)
			wg.Wait()
			for _, w := range []*awaiter{wa, wb} {
				if w.err != nil {
					t.Fatal(w.err)
				}
				d := w.d
				if !d.TimedOut || !slices.Equal(d.Missing, []string{"crashed"}) || !slices.Equal(d.Granted, []string{"b"}) {
					t.Fatalf("got %+v, want timed out, missing [crashed], granted [b]", d)
				}
				if d.Reasons["crashed"] != "did not think" {
					t.Errorf("reason for crashed = %q", d.Reasons["crashed"])
				}
				if got := d.Closed.Sub(d.Opened); got != DefaultWindow {
					t.Errorf("closed after %v, want %v", got, DefaultWindow)
				}
			}
		})
	})
	t.Run("await timeout returns ctx error and others still get the decision", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			s.Open("m1", "room", []string{"a", "crashed"}, nil)
			mustThink(t, s, Thought{Persona: "a", Item: "m1", Confidence: 0.4, Intent: IntentRespond})
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			var wg sync.WaitGroup
			short := startAwait(ctx, &wg, s, "m1")
			long := startAwait(context.Background(), &wg, s, "m1")
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
			if !short.done.Load() || !errors.Is(short.err, context.DeadlineExceeded) {
				t.Fatalf("short Await: done %v err %v, want DeadlineExceeded at 100ms", short.done.Load(), short.err)
			}
			if long.done.Load() {
				t.Fatal("long Await returned before the window")
			}
			wg.Wait()
			if long.err != nil || !long.d.IsGranted("a") {
				t.Fatalf("long Await: %+v %v", long.d, long.err)
			}
		})
	})
	t.Run("item with nobody expected closes only at the window", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			mustThink(t, s, Thought{Persona: "a", Item: "m1", Key: "room", Confidence: 0.4, Intent: IntentRespond})
			synctest.Wait()
			if _, ok := s.Decision("m1"); ok {
				t.Fatal("decided before the window")
			}
			d, err := s.Await(context.Background(), "m1")
			if err != nil || !d.TimedOut || !d.IsGranted("a") || d.Key != "room" {
				t.Fatalf("got %+v, %v", d, err)
			}
		})
	})
}

func TestAdaptiveWindow(t *testing.T) {
	// slowThoughts opens n items and has one persona think on each after delay.
	var seq int
	slowThoughts := func(t *testing.T, s *Stream, n int, delay time.Duration) {
		t.Helper()
		first := seq
		seq += n
		for i := first; i < seq; i++ {
			s.Open(fmt.Sprintf("slow%d", i), "room", []string{"slow", "other"}, nil)
		}
		time.Sleep(delay)
		for i := first; i < seq; i++ {
			// Late thoughts fail but still teach the window.
			err := s.Think(Thought{Persona: "slow", Item: fmt.Sprintf("slow%d", i), Confidence: 0.5, Intent: IntentRespond})
			if err != nil && !errors.Is(err, ErrClosedDecision) {
				t.Fatal(err)
			}
		}
	}
	t.Run("slow thoughts grow the window and then fit in it", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			slowThoughts(t, s, MinSamples-1, 3*time.Second)
			if got := s.Window(); got != DefaultWindow {
				t.Fatalf("window after %d samples = %v, want the initial %v", MinSamples-1, got, DefaultWindow)
			}
			slowThoughts(t, s, 1, 3*time.Second)
			if got, want := s.Window(), 3750*time.Millisecond; got != want {
				t.Fatalf("window = %v, want %v", got, want)
			}
			s.Open("next", "room", []string{"slow", "dead"}, nil)
			time.Sleep(3 * time.Second)
			mustThink(t, s, Thought{Persona: "slow", Item: "next", Confidence: 0.5, Intent: IntentRespond})
			d, err := s.Await(context.Background(), "next")
			if err != nil || !d.IsGranted("slow") || d.Window != 3750*time.Millisecond || d.Closed.Sub(d.Opened) != d.Window {
				t.Fatalf("got %+v, %v", d, err)
			}
		})
	})
	t.Run("very slow thoughts clamp at max", func(t *testing.T) {
		inBubble(t, Options{MaxWindow: 5 * time.Second}, func(t *testing.T, s *Stream) {
			slowThoughts(t, s, MinSamples, 20*time.Second)
			if got := s.Window(); got != 5*time.Second {
				t.Fatalf("window = %v, want 5s", got)
			}
		})
	})
	t.Run("instant thoughts clamp at min", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			slowThoughts(t, s, MinSamples, 0)
			if got := s.Window(); got != DefaultMinWindow {
				t.Fatalf("window = %v, want %v", got, DefaultMinWindow)
			}
		})
	})
	t.Run("fixed window ignores samples", func(t *testing.T) {
		inBubble(t, Options{FixedWindow: true, Window: 2 * time.Second}, func(t *testing.T, s *Stream) {
			slowThoughts(t, s, MinSamples, 5*time.Second)
			if got := s.Window(); got != 2*time.Second {
				t.Fatalf("window = %v, want 2s", got)
			}
		})
	})
}

func TestBoundedMemory(t *testing.T) {
	t.Run("only MaxClosed decisions are kept, newest first", func(t *testing.T) {
		inBubble(t, Options{MaxClosed: 8}, func(t *testing.T, s *Stream) {
			for i := range 8 + 5 {
				item := fmt.Sprintf("m%d", i)
				s.Open(item, "room", []string{"a"}, nil)
				mustThink(t, s, Thought{Persona: "a", Item: item, Confidence: 1, Intent: IntentRespond})
			}
			recent := s.Recent(100)
			if len(recent) != 8 {
				t.Fatalf("kept %d decisions, want 8", len(recent))
			}
			for i, d := range recent {
				if want := fmt.Sprintf("m%d", 12-i); d.Item != want {
					t.Fatalf("Recent[%d] = %s, want %s", i, d.Item, want)
				}
			}
			if _, ok := s.Decision("m4"); ok {
				t.Error("m4 should be forgotten")
			}
			if _, ok := s.Decision("m5"); !ok {
				t.Error("m5 should be kept")
			}
			if _, err := s.Await(context.Background(), "m0"); !errors.Is(err, ErrUnknownItem) {
				t.Errorf("Await forgotten item: %v, want ErrUnknownItem", err)
			}
			if got := len(s.Recent(3)); got != 3 {
				t.Errorf("Recent(3) returned %d", got)
			}
		})
	})
	t.Run("opening beyond MaxOpen closes the oldest early", func(t *testing.T) {
		var mu sync.Mutex
		var published []Decision
		opts := Options{MaxOpen: 2, OnDecision: func(d Decision) { mu.Lock(); published = append(published, d); mu.Unlock() }}
		inBubble(t, opts, func(t *testing.T, s *Stream) {
			s.Open("m0", "room", []string{"a"}, nil)
			s.Open("m1", "room", []string{"a"}, nil)
			if _, ok := s.Decision("m0"); ok {
				t.Fatal("m0 closed too early")
			}
			s.Open("m2", "room", []string{"a"}, nil)
			d, ok := s.Decision("m0")
			if !ok || !d.Evicted || d.TimedOut || !slices.Equal(d.Missing, []string{"a"}) {
				t.Fatalf("m0: %v %+v, want evicted", ok, d)
			}
			if _, ok := s.Decision("m1"); ok {
				t.Fatal("m1 should still be open")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(published) != 1 || published[0].Item != "m0" {
				t.Fatalf("published %v", published)
			}
		})
	})
}

func TestClose(t *testing.T) {
	t.Run("close releases all awaiters and rejects new work", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			s.Open("done", "room", []string{"a"}, nil)
			mustThink(t, s, Thought{Persona: "a", Item: "done", Confidence: 1, Intent: IntentRespond})
			var wg sync.WaitGroup
			var ws []*awaiter
			for i := range 5 {
				item := fmt.Sprintf("m%d", i%2)
				s.Open(item, "room", []string{"a", "b"}, nil)
				ws = append(ws, startAwait(context.Background(), &wg, s, item))
			}
			synctest.Wait()
			s.Close()
			wg.Wait()
			for i, w := range ws {
				if !errors.Is(w.err, ErrClosed) {
					t.Errorf("awaiter %d: %v, want ErrClosed", i, w.err)
				}
			}
			if err := s.Think(Thought{Persona: "a", Item: "m0", Confidence: 1, Intent: IntentRespond}); !errors.Is(err, ErrClosed) {
				t.Errorf("Think after Close: %v", err)
			}
			if _, err := s.Await(context.Background(), "m1"); !errors.Is(err, ErrClosed) {
				t.Errorf("Await open item after Close: %v", err)
			}
			if d, err := s.Await(context.Background(), "done"); err != nil || !d.IsGranted("a") {
				t.Errorf("Await decided item after Close: %+v %v", d, err)
			}
			s.Close() // idempotent
			// No timer may fire after Close.
			time.Sleep(DefaultMaxWindow)
			if _, ok := s.Decision("m0"); ok {
				t.Error("a window closed m0 after Close")
			}
		})
	})
}

func TestThinkAndWithdraw(t *testing.T) {
	t.Run("invalid thoughts are rejected", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			for _, bad := range []Thought{
				{Item: "m", Confidence: 0.5, Intent: IntentRespond},
				{Persona: "a", Confidence: 0.5, Intent: IntentRespond},
				{Persona: "a", Item: "m", Confidence: 0.5, Intent: "shout"},
				{Persona: "a", Item: "m", Confidence: 0.5},
				{Persona: "a", Item: "m", Confidence: 1.5, Intent: IntentRespond},
				{Persona: "a", Item: "m", Confidence: -0.1, Intent: IntentRespond},
			} {
				if err := s.Think(bad); !errors.Is(err, ErrInvalidThought) {
					t.Errorf("Think(%+v) = %v, want ErrInvalidThought", bad, err)
				}
			}
			if _, err := s.Await(context.Background(), "m"); !errors.Is(err, ErrUnknownItem) {
				t.Errorf("invalid thought opened the item: %v", err)
			}
		})
	})
	t.Run("thought after the decision is too late", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			s.Open("m", "room", []string{"a"}, nil)
			mustThink(t, s, Thought{Persona: "a", Item: "m", Confidence: 0.5, Intent: IntentRespond})
			err := s.Think(Thought{Persona: "b", Item: "m", Confidence: 0.9, Intent: IntentRespond})
			if !errors.Is(err, ErrClosedDecision) {
				t.Fatalf("late Think = %v, want ErrClosedDecision", err)
			}
			if d, _ := s.Decision("m"); !slices.Equal(d.Granted, []string{"a"}) {
				t.Fatalf("late thought changed the decision: %q", d.Granted)
			}
		})
	})
	t.Run("withdrawals complete the decision", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			s.Open("m", "room", []string{"a", "b", "c"}, []string{"c"})
			mustThink(t, s, Thought{Persona: "a", Item: "m", Confidence: 0.9, Intent: IntentRespond})
			mustThink(t, s, Thought{Persona: "c", Item: "m", Confidence: 0.9, Intent: IntentRespond})
			s.Withdraw("m", "c") // withdrawing after thinking drops the addressee's grant
			if _, ok := s.Decision("m"); ok {
				t.Fatal("closed while b had not spoken")
			}
			s.Withdraw("m", "b")
			d, ok := s.Decision("m")
			if !ok || d.TimedOut {
				t.Fatalf("want closed at once, got %v %+v", ok, d)
			}
			if !slices.Equal(d.Granted, []string{"a"}) || d.Reasons["b"] != "withdrew" || d.Reasons["c"] != "withdrew" {
				t.Fatalf("granted %q reasons %v", d.Granted, d.Reasons)
			}
			if len(d.Thoughts) != 2 {
				t.Fatalf("withdrawn thought should stay visible, got %d thoughts", len(d.Thoughts))
			}
		})
	})
	t.Run("a later thought replaces an earlier one", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			s.Open("m", "room", []string{"a", "b"}, nil)
			mustThink(t, s, Thought{Persona: "a", Item: "m", Confidence: 0.9, Intent: IntentRespond})
			mustThink(t, s, Thought{Persona: "a", Item: "m", Confidence: 0.9, Intent: IntentObserve})
			mustThink(t, s, Thought{Persona: "b", Item: "m", Confidence: 0.1, Intent: IntentRespond})
			d, _ := s.Decision("m")
			if !slices.Equal(d.Granted, []string{"b"}) || len(d.Thoughts) != 2 || d.Reasons["a"] != "intent observe" {
				t.Fatalf("got %+v", d)
			}
		})
	})
}

func TestOpen(t *testing.T) {
	t.Run("reopening merges expected thinkers", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			s.Open("m", "room", []string{"a", "b"}, nil)
			mustThink(t, s, Thought{Persona: "a", Item: "m", Confidence: 0.5, Intent: IntentRespond})
			s.Open("m", "other", []string{"c"}, nil)
			mustThink(t, s, Thought{Persona: "b", Item: "m", Confidence: 0.5, Intent: IntentRespond})
			if _, ok := s.Decision("m"); ok {
				t.Fatal("closed before the merged thinker c spoke")
			}
			mustThink(t, s, Thought{Persona: "c", Item: "m", Confidence: 0.5, Intent: IntentRespond})
			d, ok := s.Decision("m")
			if !ok || d.Key != "room" {
				t.Fatalf("got %v %+v, want closed with the first key", ok, d)
			}
		})
	})
	t.Run("thoughts before open count and open can complete", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			mustThink(t, s, Thought{Persona: "a", Item: "m", Confidence: 0.5, Intent: IntentRespond})
			s.Withdraw("m", "b")
			s.Open("m", "room", []string{"a", "b"}, nil)
			d, ok := s.Decision("m")
			if !ok || d.TimedOut || !slices.Equal(d.Granted, []string{"a"}) {
				t.Fatalf("got %v %+v", ok, d)
			}
		})
	})
	t.Run("addressees are expected", func(t *testing.T) {
		inBubble(t, Options{}, func(t *testing.T, s *Stream) {
			s.Open("m", "room", []string{"a"}, []string{"z"})
			mustThink(t, s, Thought{Persona: "a", Item: "m", Confidence: 0.5, Intent: IntentRespond})
			d, err := s.Await(context.Background(), "m")
			if err != nil || !d.TimedOut || !slices.Equal(d.Missing, []string{"z"}) || !slices.Equal(d.Granted, []string{"a"}) {
				t.Fatalf("got %+v %v", d, err)
			}
			if d.Reasons["z"] != "addressee, did not think" {
				t.Errorf("reason for z = %q", d.Reasons["z"])
			}
		})
	})
	t.Run("KFor sets K per key", func(t *testing.T) {
		kfor := func(key string) int {
			if key == "busy" {
				return 3
			}
			return 0 // a miss falls back to K
		}
		inBubble(t, Options{KFor: kfor}, func(t *testing.T, s *Stream) {
			for _, key := range []string{"busy", "quiet"} {
				ps := names("p", 5)
				s.Open(key, key, ps, nil)
				for _, p := range ps {
					mustThink(t, s, Thought{Persona: p, Item: key, Confidence: 0.5, Intent: IntentRespond})
				}
			}
			busy, _ := s.Decision("busy")
			quiet, _ := s.Decision("quiet")
			if len(busy.Granted) != 3 || busy.K != 3 || len(quiet.Granted) != 1 || quiet.K != 1 {
				t.Fatalf("busy %q (k=%d), quiet %q (k=%d)", busy.Granted, busy.K, quiet.Granted, quiet.K)
			}
		})
	})
}

func TestOnDecisionOncePerItem(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	var s *Stream
	opts := Options{OnDecision: func(d Decision) {
		// The hook runs outside the lock, so it may call back in.
		if _, ok := s.Decision(d.Item); !ok {
			t.Errorf("hook for %s ran before the decision was stored", d.Item)
		}
		mu.Lock()
		calls[d.Item]++
		mu.Unlock()
	}}
	inBubble(t, opts, func(t *testing.T, st *Stream) {
		s = st
		s.Open("spoken", "room", []string{"a"}, nil)
		s.Open("silent", "room", []string{"a"}, nil)
		mustThink(t, s, Thought{Persona: "a", Item: "spoken", Confidence: 0.5, Intent: IntentRespond})
		time.Sleep(DefaultWindow)
		synctest.Wait()
	})
	if calls["spoken"] != 1 || calls["silent"] != 1 {
		t.Fatalf("hook calls = %v, want one per item", calls)
	}
}

func TestDecisionsAreCopies(t *testing.T) {
	inBubble(t, Options{}, func(t *testing.T, s *Stream) {
		s.Open("m", "room", []string{"a"}, nil)
		mustThink(t, s, Thought{Persona: "a", Item: "m", Confidence: 0.5, Intent: IntentRespond})
		d, _ := s.Decision("m")
		d.Granted[0] = "mallory"
		d.Reasons["a"] = "tampered"
		again, _ := s.Decision("m")
		if again.Granted[0] != "a" || again.Reasons["a"] == "tampered" {
			t.Fatalf("caller mutated the stored decision: %+v", again)
		}
	})
}

func TestWindowFromFirstThoughtWaitsForSlowScanners(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{WindowFromFirstThought: true, FixedWindow: true, Window: 1500 * time.Millisecond, Patience: time.Minute})
		defer s.Close()
		s.Open("m1", "room", []string{"a", "b", "c"}, nil)
		// Personas scan on their own rhythm: the first notices after 4 s,
		// long after a window counted from Open would have closed.
		time.Sleep(4 * time.Second)
		if err := s.Think(Thought{Persona: "a", Item: "m1", Confidence: 0.4, Intent: IntentRespond}); err != nil {
			t.Fatalf("first thought after 4s refused: %v", err)
		}
		time.Sleep(time.Second)
		if err := s.Think(Thought{Persona: "b", Item: "m1", Confidence: 0.9, Intent: IntentRespond}); err != nil {
			t.Fatalf("second thought inside the window refused: %v", err)
		}
		d, err := s.Await(context.Background(), "m1")
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Closed.Sub(d.Opened); got != 5500*time.Millisecond {
			t.Fatalf("decision closed %v after Open, want 4s + the 1.5s window", got)
		}
		if len(d.Granted) != 1 || d.Granted[0] != "b" {
			t.Fatalf("granted %v, want the more confident b", d.Granted)
		}
	})
}

func TestWindowFromFirstThoughtGivesUpAfterPatience(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{WindowFromFirstThought: true, Patience: 30 * time.Second})
		defer s.Close()
		s.Open("m1", "room", []string{"a"}, nil)
		time.Sleep(31 * time.Second)
		d, ok := s.Decision("m1")
		if !ok || !d.TimedOut || len(d.Granted) != 0 {
			t.Fatalf("an item nobody thought about should close after its patience: %+v %v", d, ok)
		}
	})
}

func TestLateAddresseeIsStillGranted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var published []Decision
		var mu sync.Mutex
		s := New(Options{FixedWindow: true, Window: time.Second, OnDecision: func(d Decision) {
			mu.Lock()
			published = append(published, d)
			mu.Unlock()
		}})
		defer s.Close()
		s.Open("m1", "room", []string{"a", "b"}, []string{"b"})
		if err := s.Think(Thought{Persona: "a", Item: "m1", Confidence: 0.9, Intent: IntentRespond}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // b, the addressee, was busy: the window closed without it
		d, _ := s.Decision("m1")
		if d.IsGranted("b") || !d.IsGranted("a") {
			t.Fatalf("setup: %+v", d.Granted)
		}
		if err := s.Think(Thought{Persona: "b", Item: "m1", Confidence: 0.1, Intent: IntentObserve}); err != nil {
			t.Fatalf("a late addressee's thought was refused: %v", err)
		}
		d, err := s.Await(context.Background(), "m1")
		if err != nil || !d.IsGranted("b") {
			t.Fatalf("late addressee not granted: %+v %v", d.Granted, err)
		}
		if len(d.Missing) != 0 {
			t.Fatalf("b still listed missing: %v", d.Missing)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(published) != 2 || !published[1].IsGranted("b") {
			t.Fatalf("the amended decision should be published again: %d decisions", len(published))
		}
		// A late non-addressee is still too late.
		if err := s.Think(Thought{Persona: "c", Item: "m1", Confidence: 1, Intent: IntentRespond}); !errors.Is(err, ErrClosedDecision) {
			t.Fatalf("late non-addressee: %v", err)
		}
	})
}

func TestThoughtThatSaysAddressedIsGrantedLikeAnAddressee(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{K: 1})
		defer s.Close()
		// The item itself names nobody (it was merged with an older mention
		// of "b"); b says it is addressed.
		s.Open("m2", "room", []string{"a", "b"}, nil)
		s.Think(Thought{Persona: "a", Item: "m2", Confidence: 0.9, Intent: IntentRespond})
		s.Think(Thought{Persona: "b", Item: "m2", Confidence: 0.1, Intent: IntentRespond, Addressed: true})
		d, err := s.Await(context.Background(), "m2")
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Granted) != 1 || d.Granted[0] != "b" {
			t.Fatalf("granted %v, want the addressed b alone (K=1)", d.Granted)
		}
	})
}

// TestOneTimerServesEveryItem: the stream arms one timer at the earliest
// deadline; a deadline that moves before it, and the later ones left after
// it fires, still close each item on time.
func TestOneTimerServesEveryItem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		closed := map[string]time.Duration{}
		start := time.Now()
		s := New(Options{WindowFromFirstThought: true, FixedWindow: true, Window: 2 * time.Second, Patience: 30 * time.Second,
			Logger: slog.New(slog.DiscardHandler),
			OnDecision: func(d Decision) {
				mu.Lock()
				closed[d.Item] = d.Closed.Sub(start)
				mu.Unlock()
			}})
		defer s.Close()
		s.Open("patient", "room", []string{"a"}, nil)
		time.Sleep(time.Second)
		s.Open("quick", "room", []string{"a", "b"}, nil)
		s.Open("later", "room", []string{"a", "b"}, nil)
		time.Sleep(time.Second)
		mustThink(t, s, Thought{Persona: "a", Item: "quick", Intent: IntentRespond}) // window: 2s to 4s
		time.Sleep(time.Second)
		mustThink(t, s, Thought{Persona: "a", Item: "later", Intent: IntentRespond}) // window: 3s to 5s
		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		want := map[string]time.Duration{"quick": 4 * time.Second, "later": 5 * time.Second, "patient": 30 * time.Second}
		for item, at := range want {
			if got, ok := closed[item]; !ok || got != at {
				t.Errorf("%s closed at %v (%v), want %v", item, got, ok, at)
			}
		}
	})
}
