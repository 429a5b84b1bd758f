package persona_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/coord"
)

var quiet = slog.New(slog.DiscardHandler)

// responses records who responded to which item, and when.
type responses struct {
	mu  sync.Mutex
	by  map[string][]string
	at  map[string]time.Time
	all []string
}

func newResponses() *responses {
	return &responses{by: map[string][]string{}, at: map[string]time.Time{}}
}

func (r *responses) add(item, who string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.by[item] = append(r.by[item], who)
	r.at[item] = time.Now()
	r.all = append(r.all, who)
}

func (r *responses) of(item string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.by[item])
}

// thinker is a chat-like responder: it evaluates an item with a fixed
// confidence (or a custom evaluate) and records its responses.
type thinker struct {
	name     string
	conf     float64
	intent   coord.Intent
	log      *responses
	evaluate func(ctx context.Context, it persona.Item[string]) (persona.Thought, error)
}

var _ persona.Evaluator[string] = (*thinker)(nil)

func (th *thinker) Evaluate(ctx context.Context, it persona.Item[string]) (persona.Thought, error) {
	if th.evaluate != nil {
		return th.evaluate(ctx, it)
	}
	return persona.Thought{Confidence: th.conf, Intent: th.intent}, nil
}

func (th *thinker) Respond(ctx context.Context, it persona.Item[string], d coord.Decision) (any, error) {
	th.log.add(it.ID, th.name)
	return th.name + " answers " + it.ID, nil
}

// room spawns coordinated personas named p0..p{n-1} on s.
func room(t *testing.T, rt *persona.Runtime, s *coord.Stream, log *responses, confs []float64) []*persona.Persona[string] {
	t.Helper()
	ps := make([]*persona.Persona[string], len(confs))
	for i, c := range confs {
		name := fmt.Sprint("p", i)
		ps[i] = mustSpawn(t, rt, name, persona.Coordinated[string](&thinker{name: name, conf: c, log: log}),
			persona.Options{Coordination: s})
	}
	return ps
}

func message(id string, addressees ...string) persona.Item[string] {
	// Urgent, as a human's message in an active room or a mention is: every
	// persona engages it at once.
	return persona.Item[string]{ID: id, Key: "room", Priority: 0.9, Payload: "hello", Addressees: addressees}
}

func TestTenPersonasOneMessageOneResponder(t *testing.T) {
	const n, messages = 10, 50
	equal := make([]float64, n)
	for i := range equal {
		equal[i] = 0.5
	}
	t.Run("exactly one responds and grants rotate fairly", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := coord.New(coord.Options{Logger: quiet})
			defer s.Close()
			rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
			log := newResponses()
			ps := room(t, rt, s, log, equal)
			rt.Start()
			for i := range messages {
				it := message(fmt.Sprint("m", i))
				if err := persona.Broadcast(ps, s, it); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				d, ok := s.Decision(it.ID)
				if !ok || d.TimedOut || len(d.Thoughts) != n {
					t.Fatalf("%s: the decision should close as soon as all %d spoke: %+v", it.ID, n, d)
				}
				if got := log.of(it.ID); len(got) != 1 || !slices.Equal(got, d.Granted) {
					t.Fatalf("%s: responders %v, granted %v; want exactly the one granted", it.ID, got, d.Granted)
				}
			}
			for _, p := range ps {
				s := p.Snapshot()
				if s.Granted != messages/n || s.NotGranted != messages-messages/n || s.Counts.Handled != messages || !s.Counts.Balanced() {
					t.Errorf("%s: granted %d, not granted %d, counts %+v; want %d grants each",
						p.Name(), s.Granted, s.NotGranted, s.Counts, messages/n)
				}
			}
			shutdown(t, rt)
		})
	})
	t.Run("the mentioned persona always wins", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := coord.New(coord.Options{Logger: quiet})
			defer s.Close()
			rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
			log := newResponses()
			confs := make([]float64, n)
			for i := range confs {
				confs[i] = 0.9
			}
			confs[3], confs[7] = 0.1, 0 // the least confident are mentioned below
			ps := room(t, rt, s, log, confs)
			rt.Start()
			for i, mention := range []string{"p3", "p7", "p3", "p0", "p9", "p7"} {
				it := message(fmt.Sprint("m", i), mention)
				if err := persona.Broadcast(ps, s, it); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if got := log.of(it.ID); !slices.Equal(got, []string{mention}) {
					t.Fatalf("%s mentions %s: responders %v", it.ID, mention, got)
				}
			}
			shutdown(t, rt)
		})
	})
}

func TestBrokenThinkersDoNotBlockTheDecision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 1500 * time.Millisecond
		s := coord.New(coord.Options{Logger: quiet, Window: window, FixedWindow: true})
		defer s.Close()
		rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
		log := newResponses()
		unblock := make(chan struct{})
		spawn := func(name string, th *thinker, o persona.Options) *persona.Persona[string] {
			th.name, th.log = name, log
			o.Coordination = s
			return mustSpawn(t, rt, name, persona.Coordinated[string](th), o)
		}
		ps := []*persona.Persona[string]{
			spawn("keen", &thinker{conf: 0.8}, persona.Options{}),
			spawn("calm", &thinker{conf: 0.4}, persona.Options{}),
			spawn("stuck", &thinker{evaluate: func(ctx context.Context, it persona.Item[string]) (persona.Thought, error) {
				select { // a model call that hangs
				case <-unblock:
					return persona.Thought{Confidence: 1}, nil
				case <-ctx.Done():
					return persona.Thought{}, ctx.Err()
				}
			}}, persona.Options{}),
			spawn("panicky", &thinker{evaluate: func(context.Context, persona.Item[string]) (persona.Thought, error) {
				panic("model client bug")
			}}, persona.Options{}),
			spawn("shy", &thinker{evaluate: func(context.Context, persona.Item[string]) (persona.Thought, error) {
				return persona.Thought{}, persona.ErrDecline
			}}, persona.Options{}),
			// Absent-minded: scores the message so low that it does not
			// engage it for tens of seconds.
			spawn("absent", &thinker{conf: 1}, persona.Options{Scorer: persona.ScorerFunc[string](
				func(string, persona.Item[string], time.Time) float64 { return 0 })}),
		}
		rt.Start()
		t0 := time.Now()
		if err := persona.Broadcast(ps, s, message("m1")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := log.of("m1"); len(got) != 0 {
			t.Fatalf("responded before the decision: %v", got)
		}
		time.Sleep(window)
		synctest.Wait()
		d, ok := s.Decision("m1")
		if !ok {
			t.Fatal("no decision when the window ended")
		}
		if got := d.Closed.Sub(t0); got != window || !d.TimedOut {
			t.Fatalf("decision closed after %v (timed out %v), want by the window %v", got, d.TimedOut, window)
		}
		if !slices.Equal(d.Missing, []string{"stuck", "absent"}) || d.Reasons["panicky"] != "withdrew" || d.Reasons["shy"] != "withdrew" {
			t.Fatalf("missing %v, reasons %v", d.Missing, d.Reasons)
		}
		if got := log.of("m1"); !slices.Equal(got, []string{"keen"}) || !log.at["m1"].Equal(t0.Add(window)) {
			t.Fatalf("responders %v at %v, want keen at the window's end", got, log.at["m1"].Sub(t0))
		}

		// The hung call returns: too late to count, so not granted.
		close(unblock)
		time.Sleep(time.Minute) // and the absent-minded one gets to it
		synctest.Wait()
		if got := log.of("m1"); len(got) != 1 {
			t.Fatalf("late thinkers responded: %v", got)
		}
		want := map[string]struct {
			handled, declined, failed, granted, notGranted int
		}{
			"keen":    {1, 0, 0, 1, 0},
			"calm":    {1, 0, 0, 0, 1},
			"stuck":   {1, 0, 0, 0, 1},
			"panicky": {0, 0, 1, 0, 0},
			"shy":     {0, 1, 0, 0, 0},
			"absent":  {1, 0, 0, 0, 1},
		}
		for _, p := range ps {
			s, w := p.Snapshot(), want[p.Name()]
			c := s.Counts
			if int(c.Handled) != w.handled || int(c.Declined) != w.declined || int(c.Failed) != w.failed ||
				int(s.Granted) != w.granted || int(s.NotGranted) != w.notGranted || !c.Balanced() {
				t.Errorf("%s: counts %+v granted %d not granted %d, want %+v", p.Name(), c, s.Granted, s.NotGranted, w)
			}
		}
		if ps[3].Snapshot().Panics != 3 {
			t.Errorf("panicky: %d panics, want one per attempt", ps[3].Snapshot().Panics)
		}
		shutdown(t, rt)
	})
}

func TestCoordinationOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		confs   []float64
		intents []coord.Intent
		want    []string
	}{
		{"highest confidence wins", []float64{0.2, 0.9, 0.5}, nil, []string{"p1"}},
		{"observers are never granted", []float64{0.2, 0.9, 0.5}, []coord.Intent{"", coord.IntentObserve, coord.IntentDefer}, []string{"p0"}},
		{"nobody responds when nobody wants to", []float64{0.9}, []coord.Intent{coord.IntentObserve}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := coord.New(coord.Options{Logger: quiet})
				defer s.Close()
				rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
				log := newResponses()
				var ps []*persona.Persona[string]
				for i, c := range tc.confs {
					th := &thinker{name: fmt.Sprint("p", i), conf: c, log: log}
					if tc.intents != nil {
						th.intent = tc.intents[i]
					}
					ps = append(ps, mustSpawn(t, rt, th.name, persona.Coordinated[string](th), persona.Options{Coordination: s}))
				}
				rt.Start()
				if err := persona.Broadcast(ps, s, message("m")); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if got := log.of("m"); !slices.Equal(got, tc.want) {
					t.Fatalf("responders %v, want %v", got, tc.want)
				}
				shutdown(t, rt)
			})
		})
	}
}

func TestCoordinationSetupErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := coord.New(coord.Options{Logger: quiet})
		defer s.Close()
		rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
		if _, err := persona.Spawn(rt, "plain", newRecorder(0), persona.Options{Coordination: s}); err == nil {
			t.Fatal("a coordinated persona without an Evaluator was spawned")
		}
		// An uncoordinated recipient gets the item but is not waited for.
		log := newResponses()
		th := mustSpawn(t, rt, "p0", persona.Coordinated[string](&thinker{name: "p0", conf: 0.5, log: log}), persona.Options{Coordination: s})
		rec := newRecorder(0)
		plain := mustSpawn(t, rt, "logger", rec, persona.Options{})
		rt.Start()
		if err := persona.Broadcast([]*persona.Persona[string]{th, plain}, s, message("m", "logger")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		d, ok := s.Decision("m")
		if !ok || d.TimedOut || !slices.Equal(d.Granted, []string{"p0"}) {
			t.Fatalf("decision %+v: want p0 granted without waiting for the uncoordinated recipient", d)
		}
		if _, ok := rec.start("m"); !ok || rec.count() != 1 {
			t.Fatal("the uncoordinated recipient did not get the item")
		}
		shutdown(t, rt)
		err := persona.Broadcast([]*persona.Persona[string]{th, plain}, s, message("late"))
		if !errors.Is(err, persona.ErrClosed) {
			t.Fatalf("broadcast after shutdown: %v, want the deliveries' ErrClosed joined", err)
		}
		if d, ok := s.Decision("late"); !ok || d.Reasons["p0"] != "withdrew" {
			t.Fatalf("a recipient that could not take the item should be withdrawn at once: %+v", d)
		}
	})
}

func TestCoordinatedWithoutStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
		log := newResponses()
		th := &thinker{name: "solo", log: log, evaluate: func(_ context.Context, it persona.Item[string]) (persona.Thought, error) {
			switch it.ID {
			case "observe":
				return persona.Thought{Intent: coord.IntentObserve}, nil
			case "decline":
				return persona.Thought{}, persona.ErrDecline
			}
			return persona.Thought{Confidence: 0.5}, nil
		}}
		p := mustSpawn(t, rt, "solo", persona.Coordinated[string](th), persona.Options{})
		rt.Start()
		for _, id := range []string{"respond", "observe", "decline"} {
			p.Deliver(message(id))
		}
		synctest.Wait()
		if !slices.Equal(log.all, []string{"solo"}) || len(log.of("respond")) != 1 {
			t.Fatalf("responses %v, want one, to the item it meant to respond to", log.by)
		}
		if c := p.Snapshot().Counts; c.Handled != 2 || c.Declined != 1 {
			t.Fatalf("counts %+v", c)
		}
		shutdown(t, rt)
	})
}

func TestWaitForDecisionIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  persona.Options
		close bool // the caller closes the stream mid-wait
	}{
		{"the coordination timeout ends the wait", persona.Options{CoordinationTimeout: time.Second}, false},
		{"closing the stream ends the wait", persona.Options{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := coord.New(coord.Options{Logger: quiet, Window: time.Hour, FixedWindow: true, MaxWindow: time.Hour})
				defer s.Close()
				rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
				log := newResponses()
				o := tc.opts
				o.Coordination = s
				p := mustSpawn(t, rt, "p", persona.Coordinated[string](&thinker{name: "p", conf: 1, log: log}), o)
				rt.Start()
				s.Open("m", "room", []string{"p", "ghost"}, nil) // ghost never speaks
				p.Deliver(message("m"))
				time.Sleep(time.Second / 2)
				synctest.Wait()
				if p.Snapshot().Counts.InFlight != 1 {
					t.Fatal("the persona should wait for the decision")
				}
				if tc.close {
					s.Close()
				}
				time.Sleep(time.Second)
				synctest.Wait()
				if s := p.Snapshot(); s.Counts.Handled != 1 || s.NotGranted != 1 || len(log.all) != 0 {
					t.Fatalf("after the wait: %+v, responses %v", s, log.all)
				}
				shutdown(t, rt)
			})
		})
	}
}

func TestMentionSurvivesMergeAndLateness(t *testing.T) {
	t.Run("a mention merged into a newer message is still answered by the mentioned", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := coord.New(coord.Options{Logger: quiet, WindowFromFirstThought: true})
			defer s.Close()
			rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
			log := newResponses()
			// p0 is keen on everything; p1 is the one mentioned, and it
			// coalesces its room's pending items.
			p0 := mustSpawn(t, rt, "p0", persona.Coordinated[string](&thinker{name: "p0", conf: 0.9, log: log}), persona.Options{Coordination: s})
			p1 := mustSpawn(t, rt, "p1", persona.Coordinated[string](&thinker{name: "p1", conf: 0.1, log: log}), persona.Options{Coordination: s, Coalesce: true})
			ps := []*persona.Persona[string]{p0, p1}
			// Both items wait in p1's inbox before it starts: the mention m1,
			// then the newer m2 which names nobody. Not urgent, so p0 and p1
			// take them on their scans.
			m1 := message("m1", "p1")
			m1.Priority = 0.5
			m2 := message("m2")
			m2.Priority = 0.5
			m2.Created = time.Now().Add(time.Second)
			if err := persona.Broadcast(ps, s, m1); err != nil {
				t.Fatal(err)
			}
			if err := persona.Broadcast(ps, s, m2); err != nil {
				t.Fatal(err)
			}
			rt.Start()
			time.Sleep(time.Minute)
			synctest.Wait()
			if got := log.of("m2"); !slices.Contains(got, "p1") {
				t.Fatalf("the mention of p1 was merged into m2 and lost: m1 answered by %v, m2 by %v", log.of("m1"), got)
			}
			shutdown(t, rt)
		})
	})
	t.Run("a mentioned persona busy past the window is granted late", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := coord.New(coord.Options{Logger: quiet, FixedWindow: true, Window: time.Second})
			defer s.Close()
			rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
			log := newResponses()
			p0 := mustSpawn(t, rt, "p0", persona.Coordinated[string](&thinker{name: "p0", conf: 0.9, log: log}), persona.Options{Coordination: s})
			slow := &thinker{name: "p1", conf: 0.5, log: log, evaluate: func(ctx context.Context, it persona.Item[string]) (persona.Thought, error) {
				time.Sleep(5 * time.Second) // e.g. still on a model call for something else
				return persona.Thought{Confidence: 0.5}, nil
			}}
			p1 := mustSpawn(t, rt, "p1", persona.Coordinated[string](slow), persona.Options{Coordination: s})
			rt.Start()
			if err := persona.Broadcast([]*persona.Persona[string]{p0, p1}, s, message("m1", "p1")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Minute)
			synctest.Wait()
			if got := log.of("m1"); !slices.Contains(got, "p1") {
				t.Fatalf("mentioned p1 thought after the window and was never granted; responders %v", got)
			}
			shutdown(t, rt)
		})
	})
}

func TestMentionedPersonaReachingAClosedDecisionStillAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := coord.New(coord.Options{Logger: quiet, FixedWindow: true, Window: time.Second})
		defer s.Close()
		rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
		log := newResponses()
		p0 := mustSpawn(t, rt, "p0", persona.Coordinated[string](&thinker{name: "p0", conf: 0.9, log: log}), persona.Options{Coordination: s})
		busy := &thinker{name: "p1", conf: 0.5, log: log, evaluate: func(ctx context.Context, it persona.Item[string]) (persona.Thought, error) {
			if it.ID == "long" {
				time.Sleep(10 * time.Second) // busy on something else
			}
			return persona.Thought{Confidence: 0.5}, nil
		}}
		p1 := mustSpawn(t, rt, "p1", persona.Coordinated[string](busy), persona.Options{Coordination: s})
		ps := []*persona.Persona[string]{p0, p1}
		rt.Start()
		if err := persona.Broadcast(ps, s, message("long")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		// While p1 is busy, a message mentions it: the decision closes
		// without p1 long before p1 reaches the message.
		if err := persona.Broadcast(ps, s, message("m1", "p1")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := log.of("m1"); !slices.Contains(got, "p1") {
			t.Fatalf("mentioned p1 reached m1 after its decision closed and never answered; responders %v", got)
		}
		shutdown(t, rt)
	})
}
