package chat_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/state"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func TestGuard(t *testing.T) {
	s := chat.DefaultSettings()
	fresh := t0.Add(time.Minute) // a minute after the last human
	for _, tc := range []struct {
		name string
		f    chat.GuardFacts
		want chat.Reason
	}{
		{"a human's fresh message passes", chat.GuardFacts{Kind: chat.Human, At: fresh, LastHuman: t0, Score: 0.5}, chat.Pass},
		{"a human's message is never quiet", chat.GuardFacts{Kind: chat.Human, At: fresh, Score: 0.5}, chat.Pass},
		{"a human's deep message is not too deep", chat.GuardFacts{Kind: chat.Human, Depth: 5, At: fresh, Score: 0.5}, chat.Pass},
		{"own message", chat.GuardFacts{Kind: chat.Persona, Own: true, Addressed: true, Depth: 1, At: fresh, LastHuman: t0, Score: 1}, chat.ReasonOwn},
		{"too deep, even addressed", chat.GuardFacts{Kind: chat.Persona, Addressed: true, Depth: 2, At: fresh, LastHuman: t0, Score: 1}, chat.ReasonTooDeep},
		{"one below the depth limit", chat.GuardFacts{Kind: chat.Persona, Addressed: true, Depth: 1, At: fresh, LastHuman: t0, Score: 1}, chat.Pass},
		{"quiet room, even addressed", chat.GuardFacts{Kind: chat.Persona, Addressed: true, Depth: 1, At: t0.Add(11 * time.Minute), LastHuman: t0, Score: 1}, chat.ReasonQuiet},
		{"no human ever", chat.GuardFacts{Kind: chat.Persona, Addressed: true, Depth: 1, At: fresh, Score: 1}, chat.ReasonQuiet},
		{"below the cut-off", chat.GuardFacts{Kind: chat.Human, At: fresh, Score: 0.39}, chat.ReasonNotRelevant},
		{"at the cut-off", chat.GuardFacts{Kind: chat.Human, At: fresh, Score: 0.4}, chat.Pass},
		{"addressed passes whatever its score", chat.GuardFacts{Kind: chat.Human, Addressed: true, At: fresh, Score: 0}, chat.Pass},
		{"the runtime's note is never answered, even addressed", chat.GuardFacts{Kind: chat.System, Addressed: true, At: fresh, LastHuman: t0, Score: 1}, chat.ReasonSystem},
		{"persona chatter below the cut-off", chat.GuardFacts{Kind: chat.Persona, Depth: 1, At: fresh, LastHuman: t0, Score: 0.35}, chat.ReasonNotRelevant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Guard(tc.f); got != tc.want {
				t.Errorf("Guard(%+v) = %q, want %q", tc.f, got, tc.want)
			}
		})
	}
}

func TestQuiet(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lastHuman time.Time
		at        time.Time
		want      bool
	}{
		{"no human ever", time.Time{}, t0, true},
		{"human just spoke", t0, t0.Add(time.Second), false},
		{"exactly at the limit", t0, t0.Add(10 * time.Minute), false},
		{"past the limit", t0, t0.Add(10*time.Minute + time.Nanosecond), true},
		{"a human spoke since", t0.Add(time.Hour), t0, false},
	} {
		if got := chat.Quiet(tc.lastHuman, tc.at, 10*time.Minute); got != tc.want {
			t.Errorf("%s: Quiet = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBudget(t *testing.T) {
	b := chat.NewBudget[string](2, time.Minute)
	var got []bool
	for _, dt := range []time.Duration{0, 10 * time.Second, 20 * time.Second, 60 * time.Second, 61 * time.Second, 90 * time.Second} {
		got = append(got, b.Reserve("r", "a", t0.Add(dt), false))
	}
	// At 60s the reply at 0s has left the window; at 61s the one at 10s
	// has not (it leaves at 70s); at 90s both 10s and 20s have.
	if want := []bool{true, true, false, true, false, true}; !slices.Equal(got, want) {
		t.Errorf("allowed = %v, want %v", got, want)
	}
	if !b.Reserve("other", "a", t0.Add(90*time.Second), false) {
		t.Error("another room shares the budget")
	}
	if b := chat.NewBudget[string](0, time.Minute); b.Reserve("r", "a", t0, false) {
		t.Error("a budget of 0 allowed a reply")
	}
}

func TestBudgetOwedIsCountedNeverRefused(t *testing.T) {
	b := chat.NewBudget[int32](2, time.Minute)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for s := range 5 {
		if !b.Reserve(7, "a", at(s), true) {
			t.Fatalf("an owed reply at %ds was refused", s)
		}
	}
	if n := b.Count(7, at(5)); n != 5 {
		t.Errorf("count = %d, want the 5 owed replies counted", n)
	}
	if n := b.Over(); n != 3 {
		t.Errorf("Over = %d, want the 3 owed replies reserved over a budget of 2", n)
	}
	if b.Reserve(7, "a", at(6), false) {
		t.Error("chatter allowed over a budget spent by owed replies")
	}
	if n := b.Over(); n != 3 {
		t.Errorf("Over = %d after a refused reply, want 3 still", n)
	}
	if !b.Reserve(7, "a", at(65), false) {
		t.Error("chatter refused once the owed replies left the window")
	}
}

func TestBudgetNext(t *testing.T) {
	b := chat.NewBudget[string](2, time.Minute)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	if got := b.Next("r", at(0)); !got.Equal(at(0)) {
		t.Errorf("empty budget: next = %v, want now", got.Sub(t0))
	}
	b.Reserve("r", "a", at(0), false)
	b.Reserve("r", "a", at(10), false)
	b.Reserve("r", "a", at(20), true) // owed: over the budget
	// Three in the window, two allowed: a reply fits once the 0s and the
	// 10s one have left, at 70s.
	if got := b.Next("r", at(30)); !got.Equal(at(70)) {
		t.Errorf("next = %v, want 70s", got.Sub(t0))
	}
	if !b.Reserve("r", "a", b.Next("r", at(30)), false) {
		t.Error("a reply at Next was refused")
	}
	if got := b.Next("r", at(71)); !got.Equal(at(80)) {
		t.Errorf("after it, next = %v, want 80s (the 20s one leaves)", got.Sub(t0))
	}
	if got := chat.NewBudget[string](0, time.Minute).Next("r", t0); !got.IsZero() {
		t.Errorf("a budget of 0: next = %v, want never", got)
	}
}

func TestBudgetDuePacesOwedReplies(t *testing.T) {
	b := chat.NewBudget[string](6, time.Minute)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	if got := b.Due("r", "a", at(0)); !got.Equal(at(0)) {
		t.Errorf("a room without replies: due = %v, want now", got.Sub(t0))
	}
	// Owed replies written as soon as due: one every 10s (a minute over
	// 6), so never 7 within a minute.
	now := at(0)
	var times []time.Duration
	for range 10 {
		now = b.Due("r", "a", now)
		b.Reserve("r", "a", now, true)
		times = append(times, now.Sub(t0))
	}
	s := time.Second
	want := []time.Duration{0, 10 * s, 20 * s, 30 * s, 40 * s, 50 * s, 60 * s, 70 * s, 80 * s, 90 * s}
	if !slices.Equal(times, want) {
		t.Errorf("owed replies at %v, want %v", times, want)
	}
	// Chatter filled the window: due when it fits again.
	c := chat.NewBudget[string](2, time.Minute)
	c.Reserve("r", "a", at(0), false)
	c.Reserve("r", "a", at(1), false)
	if got := c.Due("r", "a", at(2)); !got.Equal(at(60)) {
		t.Errorf("a full window: due = %v, want 60s", got.Sub(t0))
	}
	// Its own reply 1s ago: the persona's mention is due one interval
	// after it; a reply longer ago than the interval, or another
	// persona's or runtime's: due at once.
	q := chat.NewBudget[string](6, time.Minute)
	q.Reserve("r", "a", at(0), false)
	q.Saw("r", at(1))
	if got := q.Due("r", "a", at(1)); !got.Equal(at(10)) {
		t.Errorf("its own reply 1s before: due = %v, want 10s", got.Sub(t0))
	}
	if got := q.Due("r", "a", at(11)); !got.Equal(at(11)) {
		t.Errorf("its own reply 11s before: due = %v, want now (11s)", got.Sub(t0))
	}
	if got := q.Due("r", "b", at(1)); !got.Equal(at(1)) {
		t.Errorf("another persona's reply 1s before: due = %v, want now (1s)", got.Sub(t0))
	}
	if got := chat.NewBudget[string](0, time.Minute).Due("r", "a", t0); !got.IsZero() {
		t.Errorf("a budget of 0: due = %v, want never", got)
	}
}

func TestBudgetRelease(t *testing.T) {
	b := chat.NewBudget[string](1, time.Minute)
	if !b.Reserve("r", "a", t0, false) {
		t.Fatal("first reply refused")
	}
	if b.Reserve("r", "a", t0.Add(time.Second), false) {
		t.Fatal("second reply allowed over a budget of 1")
	}
	b.Release("r", "b", t0) // another persona's reservation: nothing to give back
	if b.Reserve("r", "a", t0.Add(time.Second), false) {
		t.Fatal("releasing another persona's reservation freed this one's")
	}
	b.Release("r", "a", t0) // the first reply failed
	if !b.Reserve("r", "a", t0.Add(2*time.Second), false) {
		t.Error("a released reservation still counts")
	}
}

func TestThink(t *testing.T) {
	s := chat.DefaultSettings()
	for _, tc := range []struct {
		name      string
		score     float64
		addressed bool
		conf      float64
		intent    coord.Intent
	}{
		{"addressed: full confidence", 0.2, true, 1, coord.IntentRespond},
		{"relevant: its score", 0.5, false, 0.5, coord.IntentRespond},
		{"at the cut-off responds", 0.4, false, 0.4, coord.IntentRespond},
		{"below the cut-off observes", 0.3, false, 0.3, coord.IntentObserve},
		{"clamped above", 1.2, false, 1, coord.IntentRespond},
		{"clamped below", -0.1, false, 0, coord.IntentObserve},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, in := s.Think(tc.score, tc.addressed)
			if conf != tc.conf || in != tc.intent {
				t.Errorf("Think(%v, %v) = %v, %v; want %v, %v", tc.score, tc.addressed, conf, in, tc.conf, tc.intent)
			}
		})
	}
}

func TestExpected(t *testing.T) {
	s := chat.DefaultSettings()
	cands := []chat.Candidate{
		{Name: "Helper", Score: 0.5},
		{Name: "Teacher", Score: 0.2},                  // not relevant: not waited for
		{Name: "Planner", Score: 0.1, Addressed: true}, // addressed: waited for and an addressee
		{Name: "Ghost", Score: 0.9},                    // the author
	}
	exp, addr := s.Expected("ghost", chat.Persona, cands)
	if want := []string{"Helper", "Planner"}; !slices.Equal(exp, want) {
		t.Errorf("expected = %q, want %q", exp, want)
	}
	if want := []string{"Planner"}; !slices.Equal(addr, want) {
		t.Errorf("addressees = %q, want %q", addr, want)
	}
	// A human named like a persona is not that persona.
	exp, _ = s.Expected("ghost", chat.Human, cands)
	if !slices.Contains(exp, "Ghost") {
		t.Errorf("expected = %q: a human's message left out the persona of the same name", exp)
	}
}

func TestCoversAddressEveryAsker(t *testing.T) {
	merged := []chat.Message{
		{ID: "a", Author: "ann", Kind: chat.Human, Content: "code review please?"},
		{ID: "b", Author: "Helper", Kind: chat.Persona, Content: "on it"},
		{ID: "c", Author: "ANN", Kind: chat.Human, Content: "also this"},
		{ID: "d", Author: "bob", Kind: chat.Human, Content: "same"},
	}
	trigger := chat.Message{ID: "e", Author: "bob", Kind: chat.Human, Content: "docker question"}
	c := chat.Covers(trigger, merged)
	if c.Trigger != "e" || !slices.Equal(c.Merged, []string{"a", "b", "c", "d"}) {
		t.Errorf("cover = %+v", c)
	}
	if want := []string{"ann"}; !slices.Equal(c.Askers, want) {
		t.Errorf("askers = %q, want %q (each human once, not the trigger's author, no persona)", c.Askers, want)
	}
	if got := chat.Address("here is how", c.Askers); got != "@ann here is how" {
		t.Errorf("Address = %q", got)
	}
	if got := chat.Address("@Ann: here is how", c.Askers); got != "@Ann: here is how" {
		t.Errorf("Address mentioned ann twice: %q", got)
	}
	if got := chat.Address("x", []string{"two words"}); got != "x" {
		t.Errorf("Address of a name no @mention can hold: %q", got)
	}
}

func TestSettingsWithDefaults(t *testing.T) {
	d := chat.DefaultSettings()
	got := chat.Settings{}.WithDefaults()
	if got.QuietAfter != d.QuietAfter || got.ReplyBudget != d.ReplyBudget || got.MaxDepth != d.MaxDepth ||
		got.RespondAbove != d.RespondAbove || got.Stream.MaxWindow != d.Stream.MaxWindow || !got.Stream.WindowFromFirstThought {
		t.Errorf("zero settings with defaults = %+v, want DefaultSettings %+v", got, d)
	}
	p := chat.Settings{ReplyBudget: 3, Stream: coord.Options{K: 2}}.WithDefaults()
	if p.ReplyBudget != 3 || p.Stream.K != 2 || p.Stream.MaxWindow != d.Stream.MaxWindow || p.Stream.WindowFromFirstThought {
		t.Errorf("partial settings with defaults = %+v: set fields must stay, booleans as given", p)
	}
}

func TestPersonaSpecStateConfig(t *testing.T) {
	base := state.Config{}.Defaults()
	s := chat.PersonaSpec{Cadence: chat.Cadences{Idle: time.Second}, Thresholds: chat.Thresholds{Active: 0.6}}
	got := s.StateConfig(base)
	if got.CadenceIdle != time.Second || got.ThresholdActive != 0.6 {
		t.Errorf("overrides not applied: %+v", got)
	}
	if got.CadenceActive != base.CadenceActive || got.ThresholdIdle != base.ThresholdIdle {
		t.Errorf("a zero override changed the base: %+v", got)
	}
}

func TestBudgetCountsWhatOthersPosted(t *testing.T) {
	b := chat.NewBudget[string](2, time.Minute)
	b.Saw("r", t0)
	b.Saw("r", t0.Add(time.Second))
	if b.Reserve("r", "a", t0.Add(2*time.Second), false) {
		t.Error("chatter allowed after two other runtimes' persona messages filled a budget of 2")
	}
	if !b.Reserve("r", "a", t0.Add(2*time.Second), true) {
		t.Error("an owed reply refused")
	}
	// A message seen late, older than the reservation, keeps the order:
	// it leaves the window first.
	b.Saw("r", t0.Add(1500*time.Millisecond))
	if n := b.Count("r", t0.Add(61*time.Second+600*time.Millisecond)); n != 1 {
		t.Errorf("count = %d, want 1 (only the reservation at 2s still in the window)", n)
	}
}

func TestOwed(t *testing.T) {
	for _, tc := range []struct {
		kind      chat.Kind
		addressed bool
		want      bool
	}{
		{chat.Human, true, true}, {chat.Human, false, false},
		{chat.Persona, true, false}, {chat.System, true, false},
	} {
		if got := chat.Owed(tc.kind, tc.addressed); got != tc.want {
			t.Errorf("Owed(%v, %v) = %v", tc.kind, tc.addressed, got)
		}
	}
}

func TestPersonaFileModelSettings(t *testing.T) {
	specs, err := chat.ParsePersonas("p.yaml", []byte(`personas:
  - name: Local
    model: llama3.2
    model_url: http://127.0.0.1:11434/v1
    max_tokens: 256
    temperature: 0.2
    model_timeout: 2m
  - name: Plain
`))
	if err != nil {
		t.Fatal(err)
	}
	l := specs[0]
	if l.ModelURL != "http://127.0.0.1:11434/v1" || l.MaxTokens != 256 || l.Temperature == nil || *l.Temperature != 0.2 || l.ModelTimeout != 2*time.Minute {
		t.Fatalf("spec %+v", l)
	}
	if specs[1].Temperature != nil || specs[1].MaxTokens != 0 {
		t.Fatalf("unset settings should stay unset: %+v", specs[1])
	}
	for _, tc := range []struct{ yaml, field string }{
		{"model_url: ollama:11434", "personas[0].model_url"},
		{"temperature: 3", "personas[0].temperature"},
		{"max_tokens: 0", "personas[0].max_tokens"},
		{"model_timeout: soon", "personas[0].model_timeout"},
	} {
		_, err := chat.ParsePersonas("p.yaml", []byte("personas:\n  - name: X\n    "+tc.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), "p.yaml:3") || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%q: err %v, want file, line 3 and %s", tc.yaml, err, tc.field)
		}
	}
}

func TestPaceIsOneIntervalOfTheBudget(t *testing.T) {
	for _, c := range []struct {
		budget int
		window time.Duration
		want   time.Duration
	}{
		{6, time.Minute, 10 * time.Second},
		{6, 6 * time.Second, time.Second},
		{1, time.Minute, time.Minute},
		{0, time.Minute, 0},
	} {
		if got := chat.NewBudget[string](c.budget, c.window).Pace(); got != c.want {
			t.Errorf("budget %d per %v: Pace = %v, want %v", c.budget, c.window, got, c.want)
		}
	}
	d := chat.DefaultSettings()
	if got := chat.NewBudget[string](d.ReplyBudget, d.ReplyWindow).Pace(); got != 10*time.Second {
		t.Errorf("default Pace = %v, want 10s", got)
	}
}

func TestBudgetOwedBy(t *testing.T) {
	b := chat.NewBudget[string](6, time.Minute)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	if got := b.OwedBy("r", "a", at(3)); !got.Equal(at(13)) {
		t.Errorf("no reply yet: owed by %v, want 13s (one interval after the message)", got.Sub(t0))
	}
	b.Reserve("r", "a", at(5), true)
	b.Reserve("r", "b", at(7), true)
	// Written at 3s, before a's reply at 5s that did not cover it: it
	// waits for a's next paced reply, at 15s, not 13s; b's reply is no
	// reason to wait.
	if got := b.OwedBy("r", "a", at(3)); !got.Equal(at(15)) {
		t.Errorf("written before its persona's reply: owed by %v, want 15s", got.Sub(t0))
	}
	if got := b.OwedBy("r", "a", at(8)); !got.Equal(at(18)) {
		t.Errorf("written after it: owed by %v, want 18s", got.Sub(t0))
	}
	if got := chat.NewBudget[string](0, time.Minute).OwedBy("r", "a", at(1)); !got.IsZero() {
		t.Errorf("a budget of 0: owed by %v, want zero", got)
	}
}
