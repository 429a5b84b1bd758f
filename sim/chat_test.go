package sim

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/personaos/persona/chat"
)

// chatty is one busy room where most messages name a persona: the reply
// budget is spent by owed replies and the chatter over it is refused.
func chatty(budget int) *Scenario {
	return &Scenario{
		Name: "chatty", Seed: 3, Duration: 20 * time.Minute, Cores: 4,
		Rules: Rules{ReplyBudget: budget},
		Personas: []PersonaSpec{
			{Name: "a", Handle: Handle{Median: 500 * time.Millisecond, P95: time.Second}},
			{Name: "b", Handle: Handle{Median: 500 * time.Millisecond, P95: time.Second}},
		},
		Traffic: Traffic{Rate: 0.5, Rooms: 1, Mention: 0.6, Human: 1},
	}
}

func TestReplyBudgetNeverRefusesAMentionInTheSimulator(t *testing.T) {
	rep, err := Run(context.Background(), chatty(1), Persona, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A budget of 1 reply a minute at 30 messages a minute: every reply to
	// a person waits for the budget instead of being refused (chat.Waits),
	// merged with what follows it, and an owed one at most a window.
	if rep.SuppressedBudget != 0 {
		t.Errorf("%d replies to people refused by the budget, want 0", rep.SuppressedBudget)
	}
	if n := rep.MentionsMissed["suppressed"]; n != 0 {
		t.Errorf("%d @mentions suppressed by a guard, want 0 (missed: %v)", n, rep.MentionsMissed)
	}
	if rep.MentionsAnswered < rep.Mentions*9/10 || rep.QuestionsUnanswered != 0 {
		t.Errorf("%d of %d mentions answered, %d questions unanswered, under a spent budget", rep.MentionsAnswered, rep.Mentions, rep.QuestionsUnanswered)
	}
	// The budget is kept by merging: far fewer replies than messages.
	if rep.Replies*3 > rep.HumanMessages {
		t.Errorf("%d replies to %d messages: the budget did not merge them", rep.Replies, rep.HumanMessages)
	}
}

func TestSimulatorDefaultsAreTheDaemons(t *testing.T) {
	sc := chatty(0).withDefaults()
	s, d := sc.settings(), chat.DefaultSettings()
	if s.QuietAfter != d.QuietAfter || s.ReplyBudget != d.ReplyBudget || s.ReplyWindow != d.ReplyWindow ||
		s.MaxDepth != d.MaxDepth || s.RespondAbove != d.RespondAbove {
		t.Errorf("scenario rules %+v, want chat.DefaultSettings %+v", s, d)
	}
	if g, w := s.Stream, d.Stream; g.Window != w.Window || g.MinWindow != w.MinWindow || g.MaxWindow != w.MaxWindow ||
		g.K != w.K || g.WindowFromFirstThought != w.WindowFromFirstThought || g.Patience != w.Patience || g.FixedWindow {
		t.Errorf("scenario stream %+v, want chat.DefaultSettings' %+v", g, w)
	}
}

func TestDeepPersonaChainsStopInTheSimulator(t *testing.T) {
	// Personas answer one another (replies feed back) in a room a human
	// keeps alive, and a low cut-off makes every reply relevant: chains
	// stop at the depth limit, not by relevance.
	sc := &Scenario{
		Name: "chain", Seed: 5, Duration: 10 * time.Minute, Cores: 4,
		Rules: Rules{ReplyBudget: 1000, RespondAbove: 0.05},
		Personas: []PersonaSpec{
			{Name: "a", Expertise: []string{"go"}, Handle: Handle{Median: 200 * time.Millisecond, P95: 400 * time.Millisecond}},
			{Name: "b", Expertise: []string{"go"}, Handle: Handle{Median: 200 * time.Millisecond, P95: 400 * time.Millisecond}},
		},
		Traffic: Traffic{Rate: 0.2, Rooms: 1, Mention: 1, Human: 0.5, RepliesFeedBack: true, Topics: []Topic{{"go", 1}}},
	}
	rep, err := Run(context.Background(), sc, Persona, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.SuppressedDepth == 0 {
		t.Errorf("no reply stopped at the depth limit: %+v", rep)
	}
	sc.Rules.MaxDepth = 100
	deep, err := Run(context.Background(), sc, Persona, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if deep.SuppressedDepth != 0 || deep.Replies <= rep.Replies {
		t.Errorf("max_depth 100: %d stopped by depth, %d replies; want 0 and more than the %d at depth 2",
			deep.SuppressedDepth, deep.Replies, rep.Replies)
	}
}

func TestExpectedThinkersFollowTheChatRule(t *testing.T) {
	r := newDuo(t, Coordination{}, Handle{Median: time.Second, P95: 2 * time.Second})
	// A persona's reply on go, written by x: y knows go but the reply is
	// not relevant enough for it (a peer's reply without recent activity
	// in the room), and x wrote it.
	mi := r.post(0, px, -1, 1, goTopic)
	if exp, addr := r.expected(mi); len(exp) != 0 || addr != -1 {
		t.Errorf("persona reply: expected %v, addressee %d; want nobody", exp, addr)
	}
	// A human names x: both are expected (a fresh human message is
	// relevant to anyone), x as the addressee.
	mi = r.post(0, -1, px, 0, 0)
	if exp, addr := r.expected(mi); len(exp) != 2 || addr != px {
		t.Errorf("human mention of x: expected %v, addressee %d; want both, x", exp, addr)
	}
}

func TestScriptReplaysAConversation(t *testing.T) {
	sc, err := ParseScenario("script.yaml", []byte(`
name: replay
duration: 2m
cores: 4
budget: {per_sec: -1}
personas:
  - {name: ava, expertise: [go], handle: {median: 2s, p95: 2s}}
  - {name: ben, expertise: [plan], handle: {median: 3s, p95: 3s}}
traffic:
  replies_feed_back: true
  script:
    - {at: 1s, room: dev, author: kim, text: "@ben can you plan the release"}
    - {at: 30s, room: dev, author: ava, text: "a plan for go, anyone"}
    - {at: 31s, room: ops, author: ben, text: "quiet in here"}
`))
	if err != nil {
		t.Fatal(err)
	}
	var replies []Reply
	rep, err := Run(context.Background(), sc, Persona, Options{OnReply: func(r Reply) { replies = append(replies, r) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages < 3 || rep.HumanMessages != 1 || rep.Mentions != 1 {
		t.Fatalf("messages %d, human %d, mentions %d; want the script's 3 (1 human, 1 mention) and replies", rep.Messages, rep.HumanMessages, rep.Mentions)
	}
	// ben is named by a person: it answers at once (an urgent item), after
	// its evaluation and its 3 s call.
	if len(replies) == 0 || !reflect.DeepEqual(replies[0], Reply{At: time.Second + evalCost + 3*time.Second, Persona: "ben", Room: "dev", To: "#0"}) {
		t.Fatalf("replies %+v; want ben answering #0 in dev at 4.05s first", replies)
	}
	// ben's message in ops, a room no person ever spoke in, is quiet: ava
	// does not take it in.
	for _, r := range replies {
		if r.To == "#2" {
			t.Errorf("a persona's message in a quiet room was answered: %+v", r)
		}
	}
	if rep.Skipped == 0 || rep.SuppressedQuiet == 0 {
		t.Errorf("skipped %d, quiet %d: the quiet room's message was taken in", rep.Skipped, rep.SuppressedQuiet)
	}
}
