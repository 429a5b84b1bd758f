package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
)

var trailT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func thoughtEvent(room, item string) Event {
	return Event{Type: "thought", Room: room, Thought: &coord.Thought{Persona: "ada", Item: item, Key: room}}
}

func decisionEvent(room, item string) Event {
	return Event{Type: "decision", Room: room, Decision: &coord.Decision{Item: item, Key: room, Granted: []string{"ada"}}}
}

// items lists the items of a trail's events, in order.
func items(evs []Event) string {
	var out []string
	for _, ev := range evs {
		switch {
		case ev.Thought != nil:
			out = append(out, "t:"+ev.Thought.Item)
		case ev.Decision != nil:
			out = append(out, "d:"+ev.Decision.Item)
		default:
			out = append(out, ev.Type)
		}
	}
	return strings.Join(out, ",")
}

func TestTrailKeepsRecentThoughtsAndDecisions(t *testing.T) {
	type add struct {
		at time.Duration // after trailT0
		ev Event
	}
	for _, tc := range []struct {
		name string
		adds []add
		room string
		at   time.Duration
		want string
	}{
		{"thoughts and decisions in order", []add{{0, thoughtEvent("r", "a")}, {time.Second, decisionEvent("r", "a")}}, "r", time.Minute, "t:a,d:a"},
		{"messages and drafts are not kept", []add{{0, Event{Type: "message", Room: "r"}}, {0, Event{Type: "draft", Room: "r"}}, {0, thoughtEvent("r", "a")}}, "r", 0, "t:a"},
		{"each room its own", []add{{0, thoughtEvent("r", "a")}, {0, thoughtEvent("s", "b")}}, "s", 0, "t:b"},
		{"an event an hour old is gone", []add{{0, thoughtEvent("r", "a")}, {time.Minute, thoughtEvent("r", "b")}}, "r", trailAge + time.Second, "t:b"},
		{"an event just under an hour old stays", []add{{0, thoughtEvent("r", "a")}}, "r", trailAge, "t:a"},
		{"a room never seen is empty", nil, "r", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr trail
			for _, a := range tc.adds {
				tr.add(trailT0.Add(a.at), a.ev)
			}
			if got := items(tr.list(tc.room, trailT0.Add(tc.at))); got != tc.want {
				t.Errorf("trail = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("at most trailKeep per room, the newest", func(t *testing.T) {
		var tr trail
		for i := range trailKeep + 50 {
			tr.add(trailT0.Add(time.Duration(i)*time.Millisecond), thoughtEvent("r", fmt.Sprint(i)))
		}
		got := tr.list("r", trailT0.Add(time.Second))
		if len(got) != trailKeep || got[0].Thought.Item != "50" || got[len(got)-1].Thought.Item != fmt.Sprint(trailKeep+49) {
			t.Errorf("kept %d events, %s..%s; want the last %d", len(got), got[0].Thought.Item, got[len(got)-1].Thought.Item, trailKeep)
		}
	})
	t.Run("at most trailRooms rooms: silent ones go first, then the stalest", func(t *testing.T) {
		var tr trail
		tr.add(trailT0, thoughtEvent("silent", "x"))
		at := trailT0.Add(2 * trailAge)
		for i := range trailRooms - 1 {
			tr.add(at.Add(time.Duration(i)*time.Second), thoughtEvent(fmt.Sprint("room", i), "x"))
		}
		tr.add(at.Add(time.Hour/2), thoughtEvent("new", "x")) // the silent room makes way
		if _, ok := tr.by["silent"]; ok || len(tr.by) != trailRooms {
			t.Fatalf("%d rooms, silent kept %v; want %d without it", len(tr.by), ok, trailRooms)
		}
		tr.add(at.Add(time.Hour/2), thoughtEvent("newer", "x")) // room0, the stalest, makes way
		if _, ok := tr.by["room0"]; ok || len(tr.by) != trailRooms {
			t.Errorf("%d rooms, room0 kept %v; want %d without it", len(tr.by), ok, trailRooms)
		}
	})
}

func TestSamplesKeepFiveMinutesEveryFiveSeconds(t *testing.T) {
	snap := func(energy float64, queued int) func() []persona.Snapshot {
		return func() []persona.Snapshot {
			return []persona.Snapshot{{Name: "ada", Energy: energy, Counts: persona.Counts{Queued: queued}}}
		}
	}
	var s samples
	// The sampler ticks every second: one tick in five is taken.
	for i := range 11 {
		s.record(trailT0.Add(time.Duration(i)*time.Second), snap(float64(i)/10, i))
	}
	got := s.of("ada", trailT0.Add(10*time.Second))
	var at []time.Duration
	for _, smp := range got {
		at = append(at, smp.At.Sub(trailT0))
	}
	if want := []time.Duration{0, 5 * time.Second, 10 * time.Second}; !slices.Equal(at, want) {
		t.Fatalf("samples at %v, want %v", at, want)
	}
	if got[1].Energy != 0.5 || got[1].Queued != 5 {
		t.Errorf("sample at 5s = %+v, want energy 0.5, queued 5", got[1])
	}
	t.Run("a tick a little early still counts", func(t *testing.T) {
		var s samples
		s.record(trailT0, snap(1, 0))
		s.record(trailT0.Add(sampleEvery-sampleEvery/20), snap(1, 0))
		if n := len(s.of("ada", trailT0.Add(sampleEvery))); n != 2 {
			t.Errorf("%d samples, want 2", n)
		}
	})
	t.Run("older than five minutes is forgotten", func(t *testing.T) {
		var s samples
		for i := range 100 { // 8 minutes and a bit
			s.record(trailT0.Add(time.Duration(i)*sampleEvery), snap(1, 0))
		}
		now := trailT0.Add(99 * sampleEvery)
		got := s.of("ada", now)
		if len(got) != int(sampleKeep/sampleEvery)+1 || got[0].At.Before(now.Add(-sampleKeep)) {
			t.Errorf("%d samples from %v, want %d from %v", len(got), got[0].At, int(sampleKeep/sampleEvery)+1, now.Add(-sampleKeep))
		}
		if n := len(s.by["ada"]); n > int(sampleKeep/sampleEvery)+1 {
			t.Errorf("%d samples held, want at most %d", n, int(sampleKeep/sampleEvery)+1)
		}
		if got := s.of("ada", now.Add(time.Hour)); len(got) != 0 {
			t.Errorf("samples after the sampler stopped: %d, want none", len(got))
		}
	})
}

// TestBeforePagesBackwardsLikeAModel reads random pages backwards through
// rooms interleaved in one stream, each room with its own share of it,
// and checks each against a plain list of the room's messages.
func TestBeforePagesBackwardsLikeAModel(t *testing.T) {
	ctx := context.Background()
	b := testBus(t)
	rng := rand.New(rand.NewPCG(1, 13))
	model := map[string][]chat.Message{} // room -> messages in stream order
	seqs := map[string]uint64{}          // id -> stream sequence
	base := time.Now().Add(-time.Hour)
	for i := range 1500 {
		room := "dense"
		switch r := rng.IntN(100); {
		case r < 10:
			room = "sparse"
		case r < 11:
			room = "rare"
		}
		at := base.Add(time.Duration(i) * time.Millisecond)
		m := chat.Message{ID: newMessageID(at), Room: room, Author: "bob", Kind: chat.Human, Content: fmt.Sprint(i), At: at.UTC()}
		seq, err := b.publish(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		model[room] = append(model[room], m)
		seqs[m.ID] = seq
	}
	ids := func(ms []chat.Message) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = m.ID
		}
		return out
	}
	check := func(t *testing.T, room string, cursor, limit int) {
		t.Helper()
		all := model[room]
		var seq uint64
		end := len(all)
		if cursor >= 0 {
			seq, end = seqs[all[cursor].ID], cursor
		}
		want := ids(all[max(0, end-limit):end])
		got, err := b.before(ctx, room, seq, limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), want) {
			t.Fatalf("before(%s, #%d, %d) = %d messages %v, want %d %v", room, cursor, limit, len(got), ids(got), len(want), want)
		}
	}
	for _, room := range []string{"dense", "sparse", "rare"} {
		t.Run(room, func(t *testing.T) {
			n := len(model[room])
			for _, limit := range []int{1, 7, 100, 500} {
				check(t, room, -1, limit) // the newest page
				check(t, room, 0, limit)  // before the first: nothing
				check(t, room, n-1, limit)
				for range 5 {
					check(t, room, rng.IntN(n), limit)
				}
			}
			// Paging from the newest back to the start reads each message once.
			var seen []string
			seq := uint64(0)
			for {
				page, err := b.before(ctx, room, seq, 50)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				seen = append(ids(page), seen...)
				seq = seqs[page[0].ID]
			}
			if !slices.Equal(seen, ids(model[room])) {
				t.Errorf("paging back read %d messages, want the room's %d in order", len(seen), n)
			}
		})
	}
	t.Run("a room without messages", func(t *testing.T) {
		if got, err := b.before(ctx, "none", 0, 10); err != nil || len(got) != 0 {
			t.Errorf("before(none) = %v, %v; want nothing", got, err)
		}
	})
}

// TestDaemonKeepsWhatTheDashboardOpensWith runs a daemon: the newest page
// and the page before an id, a reply's thought and decision in the room's
// trail, the personas' samples, and the answered count on the card.
func TestDaemonKeepsWhatTheDashboardOpensWith(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = testSpecs()
	d := startDaemon(t, cfg)
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		ids = append(ids, post(t, d, "quiet", "bob", fmt.Sprintf("note %d", i)).ID)
	}
	post(t, d, "elsewhere", "bob", "not in quiet")
	newest, err := d.MessagesBefore(ctx, "quiet", "", 500)
	if err != nil {
		t.Fatal(err)
	}
	var humans []string
	for _, m := range newest {
		if m.Kind == chat.Human {
			humans = append(humans, m.ID)
		}
	}
	if !slices.Equal(humans, ids) {
		t.Errorf("newest page of quiet: humans %v, want %v", humans, ids)
	}
	if page, err := d.MessagesBefore(ctx, "quiet", ids[0], 10); err != nil || len(page) != 0 {
		t.Errorf("before the first message = %v, %v; want nothing", page, err)
	}
	if page, err := d.MessagesBefore(ctx, "quiet", ids[3], 1); err != nil || len(page) != 1 || page[0].Room != "quiet" {
		t.Errorf("before %s limit 1 = %v, %v", ids[3], page, err)
	}
	if _, err := d.MessagesBefore(ctx, "quiet", "m000000000000nosuch", 10); err == nil {
		t.Error("before an unknown id: no error")
	}

	m := post(t, d, "live", "ann", "@Planner plan a small release")
	eventually(t, 10*time.Second, "the reply's thought and decision in the room's trail", func() bool {
		var thought, decided bool
		for _, ev := range d.Trail("live") {
			thought = thought || ev.Thought != nil && ev.Thought.Item == m.ID && ev.Thought.Persona == "Planner"
			decided = decided || ev.Decision != nil && ev.Decision.Item == m.ID && ev.Decision.IsGranted("Planner")
		}
		return thought && decided
	})
	if evs := d.Trail("nobody-here"); evs == nil || len(evs) != 0 {
		t.Errorf("trail of a silent room = %v, want an empty list", evs)
	}
	waitSettled(t, d)
	p, _ := d.Persona("planner")
	if p.Outcomes.Answered < 1 {
		t.Errorf("Planner's outcomes = %+v, want at least the reply it posted", p.Outcomes)
	}
	eventually(t, 5*time.Second, "a sample of every persona", func() bool {
		for _, p := range d.Personas() {
			if len(d.Samples(p.Name)) == 0 {
				return false
			}
		}
		return true
	})
	if d.Samples("nobody") != nil {
		t.Error("samples of an unknown persona")
	}
}

// TestCardOutcomesMatchTheAccounts checks the card's counts against the
// ledger's notes: replies answered, the reply budget's refusals held back.
func TestCardOutcomesMatchTheAccounts(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.ReplyBudget = 2
	d := startDaemon(t, cfg)
	for i := range 2 {
		m := post(t, d, "chatty", "ann", fmt.Sprintf("go question %d?", i))
		waitAccount(t, d, "Solo", m.ID)
	}
	for i := range 2 {
		m := inject(t, d, chat.Message{Room: "chatty", Author: "Ghost", Kind: chat.Persona, Depth: 1,
			Content: fmt.Sprintf("go chatter %d", i)})
		waitAccount(t, d, "Solo", m.ID)
	}
	waitSettled(t, d)
	p, _ := d.Persona("Solo")
	if want := (Outcomes{Answered: 2, HeldBack: 2}); p.Outcomes != want {
		t.Errorf("outcomes = %+v, want %+v (counts %+v)", p.Outcomes, want, p.Snapshot.Counts)
	}
}
