package sim

import (
	"context"
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
	if rep.SuppressedBudget == 0 {
		t.Fatalf("a budget of 1 reply a minute at 30 messages a minute refused nothing: %+v", rep)
	}
	if n := rep.MentionsMissed["suppressed"]; n != 0 {
		t.Errorf("%d @mentions suppressed by a guard, want 0 (missed: %v)", n, rep.MentionsMissed)
	}
	if rep.MentionsAnswered < rep.Mentions*9/10 {
		t.Errorf("%d of %d mentions answered under a spent budget", rep.MentionsAnswered, rep.Mentions)
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
